"""`make tutorial`: every step's README, then every notebook, against one MySQL.

First the route where the reader follows along in a copy of their own (my-app/, the READMEs'
`<!-- follow along -->` blocks, from start to step 6, in one walk), then each step's other
README shell blocks, as a reader types them (see tutorial_kit.readme for the
convention), in a copy of the step folder under the build folder, against databases of its
own; the transcript is saved to build/transcript.txt. The notebooks are executed into
build/notebooks/ as .ipynb and HTML.

Every step and every notebook works on databases of its own, so they run side by side (one
per core, at least two); what each printed is reported in the tutorial's order.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from tutorial_kit.mysql import NoServerError, Server, find_server
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
    lines = [f"\n=== {name}: your own copy, build/follow/my-app, from start to step 6"]
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


def run_jobs(jobs, workers: int, server: Server, build: Path) -> int:
    """Run the jobs side by side; print what each printed, in order. 1 when a step failed."""
    with ThreadPoolExecutor(workers) as pool, (build / "transcript.txt").open("w") as log:
        print(f"MySQL: {server.source}; {len(jobs)} steps and notebooks, {workers} at a time",
              flush=True)
        futures: list[Future[list[str]]] = [pool.submit(job) for _, job in jobs]
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
                return 1
            for line in lines:
                print(line, flush=True)
                if kind == "step":
                    log.write(line + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-notebooks", action="store_true", help="run the steps only")
    args = parser.parse_args(argv)

    build = build_dir()
    build.mkdir(parents=True, exist_ok=True)
    lazy_ca_certificates()  # for this process's connections and the kernels' (see there)
    try:
        server = find_server()
    except NoServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    watch(server)  # a server started here goes, with its data, even if this run is killed
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
