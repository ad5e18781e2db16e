"""`make bench`: how long the notebooks and the test suite take, with ratios.

Figures, not asserts: run it before and after a change and compare. It finds MySQL like
everything else here, and starts a local server once for all of it when it has to.
"""

import os
import subprocess
import sys
import time

import nbformat

from tutorial_kit.mysql import find_server
from tutorial_kit.notebooks import execute, sources
from tutorial_kit.steps import REPO

TARGET = 60.0  # seconds: what the whole test command should stay under on 2 cores


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> int:
    started = time.perf_counter()
    with find_server() as server:
        server_seconds = time.perf_counter() - started
        print(f"MySQL: {server.source}, found or started in {server_seconds:.2f} s")

        # A notebook with one empty cell: what starting a kernel costs on its own.
        empty = REPO / "build" / "bench-empty.ipynb"
        empty.parent.mkdir(exist_ok=True)
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("pass")])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, empty)
        kernel = timed(lambda: execute(empty, environ=server.environ))
        print(f"\n{'notebook':<16}{'seconds':>9}{'x kernel start':>16}")
        print(f"{'(empty)':<16}{kernel:>9.2f}{1:>16.1f}")
        total = 0.0
        for source in sources():
            seconds = timed(lambda source=source: execute(source, environ=server.environ))
            total += seconds
            print(f"{source.stem:<16}{seconds:>9.2f}{seconds / kernel:>16.1f}")
        print(f"{'all notebooks':<16}{total:>9.2f}{total / kernel:>16.1f}")

        env = {**os.environ, **server.environ}
        suite = timed(lambda: subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
            cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL,
        ))
    print(f"\ntest suite: {suite:.1f} s, {suite / TARGET:.2f} x the {TARGET:.0f} s target; "
          f"notebooks are {total / suite:.0%} of it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
