"""`make tutorial`: every step's README, then every notebook, against one MySQL.

First the route where the reader follows along in a copy of their own (my-app/, the READMEs'
`<!-- follow along -->` blocks, from start to step 7, in one walk), then each step's other
README shell blocks, as a reader types them (see tutorial_kit.readme for the
convention), in a copy of the step folder under the build folder, against databases of its
own; the transcript is saved to build/transcript.txt. The notebooks are executed into
build/notebooks/ as .ipynb and HTML.

Every step and every notebook works on databases of its own, so they run side by side (one
per core, at least two); what each printed is reported in the tutorial's order.
"""

from __future__ import annotations

if __name__ == "__main__":  # before the imports below: a Ctrl-C while they load is one line too
    from tutorial_kit.interrupt import until_ready

    until_ready("make tutorial")

import argparse
import os
import shutil
import secrets
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import NoReturn

import pymysql

from tutorial_kit.interrupt import exit_status, ready
from tutorial_kit.mysql import NoServerError, Server, find_server
from tutorial_kit import preload, reaper
from tutorial_kit.reaper import watch
from tutorial_kit.readme import Handoff, ReadmeError, ReadmeRun, parse
from tutorial_kit.steps import REPO, STEPS, build_dir, lazy_ca_certificates


def walk_step(server: Server, build: Path, name: str, handoff: Handoff) -> list[str]:
    """The transcript of one step README's commands; ReadmeError when one misbehaves."""
    lines = [f"\n=== {name}: the commands of {name}/README.md"]
    started = time.perf_counter()
    try:
        ReadmeRun(server, build / "steps", lines.append, handoff=handoff).step(name)
    except ReadmeError as exc:
        exc.transcript = lines  # what ran up to the failure, for the reader
        raise
    lines.append(f"=== {name}: ok in {time.perf_counter() - started:.1f} s")
    return lines


def follow_along(server: Server, build: Path, steps: list[str]) -> list[str]:
    """The my-app/ route: every step README's `<!-- follow along -->` blocks, in one walk."""
    name = "follow along"
    lines = [f"\n=== {name}: your own copy, build/follow/my-app, from start to step 7"]
    started = time.perf_counter()
    where = build / "follow"
    shutil.rmtree(where, ignore_errors=True)
    try:
        ReadmeRun(server, build / "steps", lines.append).follow_along(steps, where)
    except ReadmeError as exc:
        exc.transcript = lines
        raise
    lines.append(f"=== {name}: ok in {time.perf_counter() - started:.1f} s")
    return lines


def run_notebook(server: Server, build: Path, source: Path) -> list[str]:
    from tutorial_kit.notebooks import execute_into

    environ = {**server.environ, "TUTORIAL_BUILD_DIR": str(build)}
    seconds = execute_into(source, build / "notebooks", environ=environ)
    return [f"notebook {source.stem} ... {seconds:.1f} s"]


# Set on Ctrl-C: no job starts after it. Without it, the pool's threads went on to the jobs
# still queued while the clean-up ran, and their commands and kernels outlived this process
# (seen in CI: a kernel holding make's output open for over 60 s).
_stopping = threading.Event()
_pools: list[ThreadPoolExecutor] = []


def _unless_stopping(job: Callable[[], list[str]]) -> Callable[[], list[str]]:
    return lambda: [] if _stopping.is_set() else job()


def stop_jobs() -> None:
    """No job starts from now on: the queued ones are cancelled, and a thread that took one
    just before this returns at once."""
    _stopping.set()
    for pool in _pools:
        pool.shutdown(wait=False, cancel_futures=True)


def run_jobs(jobs, workers: int, server: Server, build: Path) -> int:
    """Run the jobs side by side; print what each printed, in order. 1 when a step failed."""
    # Not `with ThreadPoolExecutor`: on Ctrl-C its exit would wait for every running job.
    pool = ThreadPoolExecutor(workers)
    _pools.append(pool)
    with (build / "transcript.txt").open("w") as log:
        print(f"MySQL: {server.source}; {len(jobs)} steps and notebooks, {workers} at a time",
              flush=True)
        futures: list[Future[list[str]]] = [pool.submit(_unless_stopping(job)) for _, job in jobs]
        for (kind, _), future in zip(jobs, futures):
            try:
                lines = future.result()
            except ReadmeError as exc:
                for line in exc.transcript:
                    print(line)
                    log.write(line + "\n")
                print(f"error: {exc}", file=sys.stderr, flush=True)
                for other in futures:
                    other.cancel()
                pool.shutdown()
                return 1
            for line in lines:
                print(line, flush=True)
                if kind == "step":
                    log.write(line + "\n")
    pool.shutdown()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-notebooks", action="store_true", help="run the steps only")
    args = parser.parse_args(argv)

    build = build_dir()
    build.mkdir(parents=True, exist_ok=True)
    lazy_ca_certificates()  # for this process's connections and the kernels' (see there)
    # The run's temporary files (the kernels' connection files, ...) go in the build folder,
    # not in /tmp or the home folder: a run stopped by Ctrl-C removes them in one go, without
    # waiting for their owners. (The server the kit starts has its folder in /tmp: see
    # mysql.server_workdir_parent; it is removed with the server.)
    # Every database this run and its kernels make carries this tag: on Ctrl-C, they go.
    os.environ.setdefault("TUTORIAL_RUN_TAG", f"r{secrets.token_hex(3)}")
    scratch = build / "tmp"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    os.environ["TMPDIR"] = os.environ["JUPYTER_RUNTIME_DIR"] = str(scratch)
    tempfile.tempdir = None  # read TMPDIR again
    # A Ctrl-C while the server starts waits until it has (a second or so), so that it is
    # stopped, and its folder removed, rather than left half-started.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        server = find_server()
    except NoServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    watch(server)  # a server started here goes, with its data, even if this run is killed
    try:
        ready()  # Ctrl-C is KeyboardInterrupt again, handled below
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # a waiting Ctrl-C lands now
        return run(args, build, server)
    except KeyboardInterrupt:
        interrupted(server)


def interrupted(server: Server) -> NoReturn:
    """Ctrl-C: one line, the server stopped (or the run's databases dropped), out at once.

    The steps' commands got the Ctrl-C too (they are in the terminal's process group); the
    preloader ends, with the notebook kernels it forked, when this process does. Waiting for
    the jobs' threads would take as long as their steps and notebooks: they are left to end
    with the process, and no queued job starts in the meantime.
    """
    stop_jobs()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C does not cut the clean-up
    sys.stdout.flush()
    print("make tutorial: interrupted; stopped.", file=sys.stderr, flush=True)
    keep = {server.pid, *reaper.pids(), preload.own_pid()}
    try:
        end_children(keep)
        # Then the preloader, with the kernels it forked: one still starting would otherwise
        # print a traceback when its folder below goes (seen once in CI).
        preload.stop()
        shutil.rmtree(build_dir() / "tmp", ignore_errors=True)
        if server.pid is not None:
            server.stop()  # its data folder goes with it
        else:  # a server of yours: only the databases this run and its kernels made
            drop_tagged(server, os.environ["TUTORIAL_RUN_TAG"])
    finally:
        # A job already running may have started its next command meanwhile: it goes too.
        end_children(keep, grace=0)
        os._exit(exit_status())


def children(keep: set[int | None]) -> list[int]:
    """This process's children but `keep` (Linux: read from /proc; elsewhere, none)."""
    me, found = os.getpid(), []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if parent == me and int(proc.name) not in keep:
            found.append(int(proc.name))
    return found


def end_children(keep: set[int | None], grace: float = 1.0) -> None:
    """The steps' commands got the Ctrl-C too: a second for them to end by themselves (and
    drop their throwaway databases), then every child but `keep` is killed, the notebooks'
    kernels (or the shims they run through) with them, which would otherwise go on, or report
    one by one that the preloader went."""
    deadline = time.monotonic() + grace
    while children(keep) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in children(keep):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def drop_tagged(server: Server, tag: str, *, timeout: float = 10) -> None:
    """Drop the databases whose names carry this run's tag (see Server.create_database).

    The run's processes are gone by now, but a statement one of them sent may still be running
    on the server, a CREATE DATABASE queued behind a lock among them (seen in CI: its database
    appeared after the drop). So first each connection still at work on a tagged database, or
    on a statement that names one, is ended (KILL), then the databases go; until a round finds
    neither."""
    mark = f"_{tag}"
    deadline = time.monotonic() + timeout
    with server.connect() as conn, conn.cursor() as cur:
        while True:
            cur.execute("SELECT ID, DB, INFO FROM information_schema.PROCESSLIST "
                        "WHERE ID <> CONNECTION_ID()")
            busy = [id for id, db, info in cur.fetchall() if mark in (db or "") + (info or "")]
            for id in busy:
                try:
                    cur.execute(f"KILL {int(id)}")
                except pymysql.MySQLError:
                    pass  # ended meanwhile
            cur.execute("SHOW DATABASES")
            names = [name for (name,) in cur.fetchall() if mark in name]
            for name in names:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
            if not busy and not names or time.monotonic() > deadline:
                return
            time.sleep(0.05)


def run(args, build: Path, server: Server) -> int:
    started = time.perf_counter()
    steps = [name for name in STEPS if (REPO / name / "README.md").is_file()]
    # A step whose README goes on from another's takes over the databases that one's walk
    # leaves; it waits for it (submitted before it, so it has started by then).
    handoff = Handoff(
        block.run_after[0]
        for name in steps
        for block in parse(REPO / name / "README.md")
        if len(block.run_after) == 1 and block.run_after[0] in steps
    )
    # The longest walk first: the my-app/ route goes through every step, one after the other.
    jobs: list[tuple[str, Callable[[], list[str]]]] = [
        ("step", lambda: follow_along(server, build, steps)),
        *(("step", lambda name=name: walk_step(server, build, name, handoff)) for name in steps),
    ]
    if not args.skip_notebooks:
        from tutorial_kit.notebooks import sources

        jobs += [("notebook", lambda s=s: run_notebook(server, build, s)) for s in sources()]
    # One more than the cores: a walk that waits for another's databases uses none.
    workers = int(os.environ.get("TUTORIAL_JOBS") or max(2, os.cpu_count() or 1) + 1)
    with server:
        try:
            code = run_jobs(jobs, workers, server, build)
        finally:  # after every walk has ended: what a failed walk never took over
            handoff.drop_leftovers()
        if code:
            return code
        print(f"\nTranscript: {build / 'transcript.txt'}")
        if not args.skip_notebooks:
            print(f"Executed notebooks: {build / 'notebooks'}")
        print(f"make tutorial: {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
