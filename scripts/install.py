"""Install the pinned requirements with pip, showing its progress but not its whole log.

`make` runs this with the new virtual environment's Python:
    python scripts/install.py -r requirements.txt -e .
pip's log of a first install is a few hundred lines (every package collected, the build
backend's notes on the editable install). This prints one line per phase instead, kept up to
date in place on a terminal, and the whole log only when pip fails. Standard library only: it
runs before anything is installed.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable, Iterator


def phases(lines: Iterable[str]) -> Iterator[str]:
    """The progress worth showing, from pip's log lines: what it collects, then installs."""
    collected = 0
    for line in lines:
        if line.startswith("Collecting "):
            collected += 1
            name = line.split()[1]
            yield f"collecting the requirements: {collected} ({name})"
        elif line.startswith("Installing collected packages:"):
            count = len(line.split(":", 1)[1].split(","))
            yield f"installing {count} packages"
        elif line.startswith("Successfully installed"):
            yield f"installed {len(line.split()) - 2} packages"


def main(args: list[str]) -> int:
    command = [sys.executable, "-m", "pip", "install", "--progress-bar", "off", *args]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    log: list[str] = []

    def lines() -> Iterator[str]:
        for line in process.stdout:
            log.append(line)
            yield line

    tty = sys.stdout.isatty()
    last = ""
    for status in phases(lines()):
        if tty:  # one line, rewritten in place
            print(f"\r\033[K    {status}", end="", flush=True)
        elif status.split(":")[0] != last.split(":")[0]:  # a log: each phase once
            print(f"    {status}", flush=True)
        last = status
    if tty and last:
        print()
    if process.wait() != 0:
        sys.stdout.write("".join(log))
        print(f"error: pip failed (exit {process.returncode}); its log is above", file=sys.stderr)
        return process.returncode
    if not last:
        print("    nothing to install", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
