"""`make bench`: how long `make tutorial` and `make test` take, against their targets.

Figures, not asserts: run it before and after a change and compare. Both run against one
server, found (or started once) the kit's usual way; the server's start-up is not counted.
The figures depend on what else the machine does, and on how fast its CPU runs at the time:
on a virtual machine the same work can take a third longer from one minute to the next. So
beside each time it prints the CPU time the command used (all its processes) and a speed
check: seconds for a fixed pure-Python loop on one core, taken just before and just after
(smaller is faster). Compare figures taken at like speed checks.

`--plain` also times both with TUTORIAL_PRELOAD=0 (every command a plain `python`), and prints
what the preloader saves.

`python scripts/bench.py --big-tables [ROWS]` instead: the tutorial's revisions from
add_user_title to user_title_required on users and blogs of ROWS rows each (1,000,000 by
default), each statement timed beside the ALGORITHM that step-6's `python -m migrate lint` says the
server allows.
"""

import argparse
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event, text

from tutorial_kit.mysql import find_server
from tutorial_kit.steps import REPO, copy_step, run, url_text

TARGETS = {"make tutorial": 40.0, "make test": 60.0}  # seconds, on 2 cores


def speed_check() -> float:
    """Seconds for the same pure-Python loop on one core: this machine's speed right now."""
    started = time.process_time()
    total = 0
    for i in range(10_000_000):
        total += i
    return time.process_time() - started


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str], env: dict[str, str]) -> tuple[float, str, str]:
    """(seconds, stdout, what to print beside the seconds) of a command that must succeed."""
    before, cpu = speed_check(), children_cpu()
    started = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    cpu, after = children_cpu() - cpu, speed_check()
    if result.returncode != 0:
        print(result.stdout[-2000:] + result.stderr[-2000:], file=sys.stderr)
        sys.exit(f"error: `{' '.join(command[1:])}` failed; its output is above")
    return seconds, result.stdout, f"CPU {cpu:.1f} s; speed check {before:.2f} s, {after:.2f} s"


def main(plain: bool = False) -> int:
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} at the start")
    ways = [("", {})] + ([(" (plain)", {"TUTORIAL_PRELOAD": "0"})] if plain else [])
    times: dict[str, float] = {}
    notes: dict[str, str] = {}
    with find_server() as server, tempfile.TemporaryDirectory() as build:
        print(f"MySQL: {server.source}")
        for label, extra in ways:
            env = {**os.environ, **server.environ, "TUTORIAL_BUILD_DIR": build, **extra}
            print(f"\nmake tutorial{label}")
            seconds, out, notes[f"make tutorial{label}"] = timed(
                [sys.executable, "-m", "tutorial_kit.tutorial"], env)
            times[f"make tutorial{label}"] = seconds
            # What each step and notebook took, as the tutorial reported it (side by side).
            for name, took in re.findall(r"^=== (\S+): ok in ([\d.]+) s", out, re.M):
                print(f"  step {name:<28}{float(took):>7.1f} s")
            for name, took in re.findall(r"^notebook (\S+) \.\.\. ([\d.]+) s", out, re.M):
                print(f"  notebook {name:<24}{float(took):>7.1f} s")
            times[f"make test{label}"], _, notes[f"make test{label}"] = timed(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], env)
    print()
    for name, seconds in times.items():
        target = TARGETS[name.removesuffix(" (plain)")]
        print(f"{name:<22}{seconds:>7.1f} s   {seconds / target:.2f} x the {target:.0f} s target"
              f"   ({notes[name]})")
    if plain:  # what the preloader (tutorial_kit/preload.py) saves
        for name in TARGETS:
            print(f"{name}: plain / preloaded = {times[name + ' (plain)'] / times[name]:.2f}")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    return 0


def seconds_of(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


# Numbers from 0 to 10^6 - 1, the cross product of six lists of the ten digits, on MySQL and
# MariaDB alike. Each list is a derived table of its own: MySQL cannot name one TEMPORARY table
# twice in a query (error 1137, "Can't reopen table"), and a recursive CTE stops at 1,000 rows.
DIGITS = "(" + " UNION ALL ".join(f"SELECT {d} AS d" for d in range(10)) + ")"
NUMBERS = ("SELECT a.d + 10 * b.d + 100 * c.d + 1000 * e.d + 10000 * f.d + 100000 * g.d AS n "
           "FROM " + ", ".join(f"{DIGITS} AS {name}" for name in "abcefg"))


def fill(engine, rows: int) -> None:
    """users and blogs with `rows` rows each: every blog by a user."""
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO users (id, name, email) SELECT n + 1, CONCAT('User ', n), "
            f"CONCAT('user', n, '@example.com') FROM ({NUMBERS}) AS numbers WHERE n < {rows}"))
        conn.execute(text(
            "INSERT INTO blogs (title, body, author_id) "
            "SELECT CONCAT('Post ', id), 'Lorem ipsum dolor sit amet.', id FROM users"))


def verdicts(lint_output: str) -> list[str]:
    """The ALGORITHM lint found for each ALTER, in order."""
    return re.findall(r"^ +(?:.*; )?(INSTANT|NOCOPY|INPLACE|COPY): ", lint_output, re.M)


def big_tables(rows: int) -> int:
    if not 1 <= rows <= 1_000_000:
        raise SystemExit("error: ROWS must be between 1 and 1000000")
    with find_server() as server, server.database("bench") as app_url, \
            server.database("benchdev") as dev_url, tempfile.TemporaryDirectory() as tmp:
        with server.connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT VERSION()")
            version = cur.fetchone()[0]
        print(f"MySQL: {server.source} ({version}); {platform.machine()}, "
              f"{os.cpu_count()} cores, Python {platform.python_version()}")
        step = copy_step("step-6-verify-safety", Path(tmp))
        versions = step / "migrations" / "versions"
        revisions = {}
        for name in ("add_user_title", "seed_users", "user_title_required"):
            [found] = versions.glob(f"*_{name}.py")  # the step's own revisions
            revisions[name] = found.stem.split("_")[0]

        config = Config(step / "alembic.ini")
        config.attributes["configure_logger"] = False
        engine = create_engine(url_text(app_url))
        timings: list[tuple[str, float]] = []
        started: list[float] = []

        @event.listens_for(engine, "before_cursor_execute")
        def start(conn, cursor, statement, *args) -> None:
            started.append(time.perf_counter())

        @event.listens_for(engine, "after_cursor_execute")
        def stop(conn, cursor, statement, *args) -> None:
            seconds = time.perf_counter() - started.pop()
            if re.match(r"\s*(ALTER|UPDATE|INSERT INTO users)", statement) \
                    and "alembic_version" not in statement:
                timings.append((" ".join(statement.split()), seconds))

        def upgrade(revision: str) -> None:
            with engine.connect() as connection:
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
                connection.commit()

        upgrade(next(iter(versions.glob("*_initialize.py"))).stem.split("_")[0])
        seconds = seconds_of(lambda: fill(engine, rows))
        print(f"Filled users and blogs with {rows:,} rows each in {seconds:.1f} s\n")
        print(f"{'revision':<20}{'statement':<58}{'seconds':>9}  lint's verdict")
        results = []
        for name, revision in revisions.items():
            # Lint first, with production at the revision's parent, as CI and a deploy would.
            linted = run(step, "-m", "migrate", "lint", revision,
                         database_url=app_url, dev_database_url=dev_url)
            found = verdicts(linted.stdout)
            timings.clear()
            upgrade(revision)
            for statement, seconds in timings:
                verdict = found.pop(0) if statement.startswith("ALTER") and found else "(data)"
                results.append((seconds, verdict))
                shown = statement if len(statement) < 56 else statement[:53] + "..."
                print(f"{name:<20}{shown:<58}{seconds:>9.3f}  {verdict}")
        engine.dispose()
    print()
    instant = [seconds for seconds, verdict in results if verdict == "INSTANT"]
    alters = [result for result in results if result[1] != "(data)"]
    if instant and alters:
        for what, (seconds, verdict) in (("ALTER", max(alters)), ("statement", max(results))):
            print(f"slowest {what} ({verdict}): {seconds:.2f} s, "
                  f"{seconds / instant[0]:,.0f} x the INSTANT one ({instant[0] * 1000:.1f} ms)")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big-tables", nargs="?", const=1_000_000, type=int, metavar="ROWS",
                        help="time the tutorial's revisions on tables of ROWS rows (1,000,000)")
    parser.add_argument("--plain", action="store_true",
                        help="also time both with TUTORIAL_PRELOAD=0, and print the ratios")
    options = parser.parse_args()
    sys.exit(main(options.plain) if options.big_tables is None else big_tables(options.big_tables))
