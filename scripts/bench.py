"""`make bench`: how long `make tutorial` and `make test` take, against their targets.

Figures, not asserts: run it before and after a change and compare. Both run against one
server, found (or started once) the kit's usual way; the server's start-up is not counted.
The figures depend on what else the machine does: on a shared machine, run it twice.
"""

import os
import re
import subprocess
import sys
import tempfile
import time

from tutorial_kit.mysql import find_server
from tutorial_kit.steps import REPO

TARGETS = {"make tutorial": 40.0, "make test": 60.0}  # seconds, on 2 cores


def timed(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        print(result.stdout[-2000:] + result.stderr[-2000:], file=sys.stderr)
        sys.exit(f"error: `{' '.join(command[1:])}` failed; its output is above")
    return seconds, result.stdout


def main() -> int:
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} at the start")
    with find_server() as server, tempfile.TemporaryDirectory() as build:
        print(f"MySQL: {server.source}\n")
        env = {**os.environ, **server.environ, "TUTORIAL_BUILD_DIR": build}
        tutorial, out = timed([sys.executable, "-m", "tutorial_kit.tutorial"], env)
        # What each step and notebook took, as the tutorial reported it (they run side by side).
        for name, seconds in re.findall(r"^=== (\S+): ok in ([\d.]+) s", out, re.M):
            print(f"  step {name:<28}{float(seconds):>7.1f} s")
        for name, seconds in re.findall(r"^notebook (\S+) \.\.\. ([\d.]+) s", out, re.M):
            print(f"  notebook {name:<24}{float(seconds):>7.1f} s")
        suite, _ = timed([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], env)
    print()
    for name, seconds in (("make tutorial", tutorial), ("make test", suite)):
        target = TARGETS[name]
        print(f"{name:<14}{seconds:>7.1f} s   {seconds / target:.2f} x the {target:.0f} s target")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
