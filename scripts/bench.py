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

`python scripts/bench.py --online [ROWS]` instead: step 7's COPY-only revision on ROWS users
(1,000,000 by default), while a thread writes to users at a fixed rate, each write timed: as
written, then through pt-online-schema-change (step 7's `python -m migrate upgrade`, with
`-x online_min_rows` above any table, then 0); the longest write wait of each, beside the goal.
"""

import argparse
import os
import platform
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pymysql
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event, text

from tutorial_kit.mysql import Server, find_server
from tutorial_kit.online_tool import online_tool
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


# --- --online: step 7's COPY-only ALTER of users (its revision widen_user_email), applied by the
# step's own `python -m migrate upgrade`, while the app writes: with -x online_min_rows above any
# table (as written: the server copies the table) and with -x online_min_rows=0 (through
# pt-online-schema-change).
STEP7 = "step-7-big-tables"
# widen_user_email, as Alembic writes it: a new character set, which only a COPY makes, on
# MySQL 9.7 and MariaDB 10.11 alike; the column and its length once altered.
CHANGE = "MODIFY email VARCHAR(320) COLLATE ascii_general_ci NOT NULL"
CHANGED = ("email", 320)
TOOL_SAYS = "altered by pt-online-schema-change"  # step 7's line after a hand-off
WRITES_PER_SECOND = 50
GOAL = 1.0  # seconds: the longest a write may wait through the tool


class Writer(threading.Thread):
    """The app meanwhile: WRITES_PER_SECOND writes to users, inserts and updates in turn, each
    timed; a write that fails is counted and the next one goes on."""

    def __init__(self, server: Server, database: str, users: int) -> None:
        super().__init__(daemon=True)
        self.server, self.database, self.users = server, database, users
        self.stopping = threading.Event()
        self.waits: list[float] = []
        self.inserted = self.failed = 0
        self.errors: list[str] = []

    def run(self) -> None:
        conn = self.server.connect(self.database, timeout=3600)  # a write may wait a whole copy
        self.started = time.perf_counter()
        period, due, n = 1 / WRITES_PER_SECOND, time.monotonic(), 0
        while not self.stopping.wait(max(0.0, due - time.monotonic())):
            n += 1
            started = time.perf_counter()
            try:
                with conn.cursor() as cur:
                    if n % 2:
                        cur.execute("INSERT INTO users (name, email, title) VALUES (%s, %s, '')",
                                    (f"Writer {n}", f"writer{n}@example.com"))
                        self.inserted += 1
                    else:
                        cur.execute("UPDATE users SET name = %s WHERE id = %s",
                                    (f"Renamed {n}", random.randint(1, self.users)))
            except pymysql.MySQLError as exc:
                self.failed += 1
                self.errors.append(str(exc.args[-1])[:100])
                conn.close()
                conn = self.server.connect(self.database, timeout=3600)
            self.waits.append(time.perf_counter() - started)
            # Late after a long wait: go on at the rate from now, not in a burst to catch up.
            due = max(due + period, time.monotonic())
        conn.close()


def fill_users(server: Server, url, rows: int) -> tuple[int, int]:
    """`rows` users, and a blog by every tenth of them; (users, blogs) in the tables then."""
    with server.connect(url.database, timeout=3600) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO users (name, email, title) SELECT CONCAT('User ', n), "
                    f"CONCAT('user', n, '@example.com'), '' FROM ({NUMBERS}) AS numbers "
                    f"WHERE n < {rows}")
        cur.execute("INSERT INTO blogs (title, body, author_id) SELECT CONCAT('Post ', id), "
                    "'Lorem ipsum dolor sit amet.', id FROM users WHERE id % 10 = 1")
        return tuple(counted(cur, table) for table in ("users", "blogs"))


def counted(cur, table: str) -> int:
    cur.execute(f"SELECT COUNT(*) FROM `{table}`")
    return cur.fetchone()[0]


def prepare(step: Path, url) -> None:
    """The schema just before the ALTER: step 7 up to the revision before widen_user_email
    (plain Alembic: step 7's env.py keeps the lock and the history all the same)."""
    [parent] = (step / "migrations" / "versions").glob("*_user_title_required.py")
    succeed(step, ["-m", "alembic", "upgrade", parent.stem.split("_")[0]], url)


def succeed(step: Path, command: list[str], url) -> str:
    done = run(step, *command, database_url=url, timeout=3600, merged=True)
    if done.returncode != 0:
        print(done.stdout[-3000:], file=sys.stderr)
        raise SystemExit(f"error: `python {' '.join(command)}` in {step.name} failed; see above")
    return done.stdout


def upgrade(step: Path, url, tool: Path, min_rows: int) -> bool:
    """Step 7's upgrade with that threshold and tool; whether it handed the ALTER to the tool."""
    said = succeed(step, ["-m", "migrate", "upgrade", "-x", f"online_min_rows={min_rows}",
                          "-x", f"online_tool={tool}"], url)
    return TOOL_SAYS in said


def plain_alter(url, tool: Path, step: Path) -> None:
    """As written: the server copies the table, and writes wait until it is done."""
    if upgrade(step, url, tool, min_rows=10 ** 15):  # no table is that big
        raise SystemExit("error: step 7 handed the ALTER to the tool above any threshold")


def tool_alter(url, tool: Path, step: Path) -> None:
    """Through pt-online-schema-change, as step 7 runs it (migrate/online.py)."""
    if not upgrade(step, url, tool, min_rows=0):
        raise SystemExit("error: step 7 did not hand the ALTER to the tool at online_min_rows=0")


def measure(server: Server, rows: int, tool: Path, way, tmp: Path) -> dict:
    """Fill a fresh database at the revision before the ALTER, start the writer, apply the
    ALTER `way`, stop the writer; what it cost the writes, and a check that no row was lost."""
    with server.database("bench") as url:
        step = copy_step(STEP7, tmp / way.__name__)
        prepare(step, url)
        started = time.perf_counter()
        users, blogs = fill_users(server, url, rows)
        seconds = time.perf_counter() - started
        writer = Writer(server, url.database, users)
        writer.start()
        try:
            time.sleep(1)  # the writes' pace, before the ALTER
            took = seconds_of(lambda: way(url, tool, step))
        finally:  # stopped before its database is dropped, whatever happened
            writer.stopping.set()
            writer.join()
        writing = time.perf_counter() - writer.started
        with server.connect(url.database) as conn, conn.cursor() as cur:
            after = counted(cur, "users"), counted(cur, "blogs")
            cur.execute("SELECT CHARACTER_MAXIMUM_LENGTH FROM information_schema.COLUMNS "
                        "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'users' "
                        "AND COLUMN_NAME = %s", (CHANGED[0],))
            altered = cur.fetchone()[0] == CHANGED[1]
            # The tool's tables (_users_new, _users_old) and triggers, had it left any.
            cur.execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA "
                        "= DATABASE() AND TABLE_NAME LIKE '\\_%' UNION ALL SELECT TRIGGER_NAME "
                        "FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()")
            left = sorted(name for name, in cur.fetchall())
    return {"filled": seconds, "seconds": took, "writing": writing, "waits": writer.waits,
            "failed": writer.failed, "errors": writer.errors,
            "kept": after == (users + writer.inserted, blogs), "rows": (users, blogs),
            "after": after, "altered": altered, "left": left}


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def online(rows: int) -> int:
    if not 1 <= rows <= 1_000_000:
        raise SystemExit("error: ROWS must be between 1 and 1000000")
    with find_server() as server, tempfile.TemporaryDirectory() as tmp:
        tool = online_tool(server)
        if tool is None:
            raise SystemExit("error: no pt-online-schema-change for this server: apt-get install "
                             "percona-toolkit (MariaDB), or bash scripts/mysql-root.sh (MySQL 9.7)")
        with server.connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT VERSION()")
            version = cur.fetchone()[0]
        tool_version = subprocess.run([tool, "--version"], capture_output=True,
                                      text=True).stdout.strip()
        print(f"MySQL: {server.source} ({version}); {tool_version} ({tool})")
        print(f"machine: {os.cpu_count()} cores, {cpu_model()}; load average "
              f"{os.getloadavg()[0]:.1f} at the start")
        print(f"{STEP7}'s python -m migrate upgrade: ALTER TABLE users {CHANGE}, on {rows:,} "
              f"users (and a blog by every tenth), while {WRITES_PER_SECOND} writes/s insert and "
              "update users\n")
        results = {}
        for label, way in (("plain ALTER (ALGORITHM=COPY)", plain_alter),
                           (f"{tool.name}", tool_alter)):
            result = results[label] = measure(server, rows, tool, way, Path(tmp))
            waits, failed = result["waits"], result["failed"]
            done = len(waits) - failed
            print(f"{label}: total {result['seconds']:.1f} s; writes: {done} done "
                  f"({done / result['writing']:.0f}/s), {failed} failed; median wait "
                  f"{statistics.median(waits) * 1000:.1f} ms; "
                  f"longest write wait {max(waits):.3f} s")
            print(f"  filled in {result['filled']:.1f} s; rows before {result['rows']}, after "
                  f"{result['after']} (users, blogs): "
                  f"{'every row kept' if result['kept'] else 'ROWS LOST'}; "
                  f"{'altered' if result['altered'] else 'NOT ALTERED'}"
                  + (f"; left behind: {', '.join(result['left'])}" if result["left"] else ""))
            for error in sorted(set(result["errors"]))[:3]:
                print(f"  failed write: {error}")
        plain, through = (max(result["waits"]) for result in results.values())
        seconds = [result["seconds"] for result in results.values()]
        print(f"\n{tool.name} / plain ALTER: total time {seconds[1] / seconds[0]:.1f} x, "
              f"longest write wait {through / plain:.3f} x")
        print(f"goal: no write waits longer than {GOAL:.0f} s through the tool (longest "
              f"{through:.3f} s: {'met' if through <= GOAL else 'NOT met'}), vs the whole copy "
              f"for the plain ALTER ({plain:.1f} s of {seconds[0]:.1f} s)")
        print(f"load average {os.getloadavg()[0]:.1f} at the end")
    ok = all(r["kept"] and r["altered"] and not r["left"] for r in results.values())
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big-tables", nargs="?", const=1_000_000, type=int, metavar="ROWS",
                        help="time the tutorial's revisions on tables of ROWS rows (1,000,000)")
    parser.add_argument("--online", nargs="?", const=1_000_000, type=int, metavar="ROWS",
                        help="step 7's ALTER of ROWS users (1,000,000) while the app writes: "
                             "plain, then through pt-online-schema-change")
    parser.add_argument("--plain", action="store_true",
                        help="also time both with TUTORIAL_PRELOAD=0, and print the ratios")
    options = parser.parse_args()
    if options.online is not None:
        sys.exit(online(options.online))
    sys.exit(main(options.plain) if options.big_tables is None else big_tables(options.big_tables))
