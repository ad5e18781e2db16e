"""Stop a local server, and remove its data folder, once the process that started it is gone.

A Jupyter kernel that is killed, or shut down before its atexit handlers finish, would leave
its server running and about 114 MB in the temporary folder. `watch(server)` starts this
module as a separate process (its own session, so that signals sent to the kernel's process
group do not reach it) holding the read end of a pipe; the kernel holds the write end. However
the kernel ends, the pipe closes: the watcher then stops the server if it still runs and
removes its folder. When the kernel stopped the server itself, the folder is gone and the
watcher has nothing to do.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from tutorial_kit.mysql import Server

_watchers: list[subprocess.Popen] = []  # kept open for the life of this process


def watch(server: Server) -> None:
    """Make sure a server this process started does not outlive it."""
    if server.pid is None or server.workdir is None:
        return  # not started by the kit: not ours to stop
    _watchers.append(subprocess.Popen(
        [sys.executable, "-m", "tutorial_kit.reaper", str(server.pid), str(server.workdir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    ))


def pids() -> list[int]:
    """The watchers this process started."""
    return [watcher.pid for watcher in _watchers]


def _runs_in(pid: int, workdir: Path) -> bool:
    """Whether process `pid` is still the server of `workdir` (and not a reused pid)."""
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    return not cmdline.exists() or str(workdir) in cmdline.read_bytes().decode(errors="replace")


def reap(pid: int, workdir: Path, *, timeout: float = 30) -> None:
    """Stop the server `pid` (SIGTERM, then SIGKILL) and remove `workdir`."""
    if _runs_in(pid, workdir):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _runs_in(pid, workdir) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _runs_in(pid, workdir):
            os.kill(pid, signal.SIGKILL)
    shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str]) -> int:
    pid, workdir = int(argv[0]), Path(argv[1])
    # `python -m tutorial_kit serve` blocks these while it waits; the watcher need not.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    sys.stdin.buffer.read()  # returns once every writer, the watched process, is gone
    if workdir.exists():
        reap(pid, workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
