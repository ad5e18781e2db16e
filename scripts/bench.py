"""`make bench`: how long the notebooks and the test suite take, with ratios.

`python scripts/bench.py --big-tables [ROWS]` instead: the tutorial's revisions from
add_user_title to user_title_required on users and blogs of ROWS rows each (1,000,000 by
default), each statement timed beside the ALGORITHM that step-6's `migrate.py lint` says the
server allows.

Figures, not asserts: run it before and after a change and compare. It finds MySQL like
everything else here, and starts a local server once for all of it when it has to.
"""

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event, text

from tutorial_kit.mysql import find_server
from tutorial_kit.notebooks import execute, sources
from tutorial_kit.revisions import write_revision
from tutorial_kit.steps import REPO, copy_step, run, url_text

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


# The tutorial's revisions after initialize, as steps 4 to 6 write them.
TUTORIAL_REVISIONS = {
    "add_user_title":
        "op.add_column('users', sa.Column('title', sa.String(length=255), nullable=True))\n",
    "seed_users":
        "op.execute(\"INSERT INTO users (name, email, title) VALUES \"\n"
        "           \"('Jerry Seinfeld', 'jerry@seinfeld.io', 'Mr.'), \"\n"
        "           \"('George Costanza', 'george@costanza.io', 'Mr.')\")\n",
    "user_title_required":
        "op.execute(\"UPDATE users SET title = '' WHERE title IS NULL\")\n"
        "op.alter_column('users', 'title', existing_type=sa.String(length=255), nullable=False)\n",
}
# ROWS numbers from 0 to 10^6 - 1 out of six digits tables, on MySQL and MariaDB alike.
NUMBERS = ("SELECT a.d + 10 * b.d + 100 * c.d + 1000 * e.d + 10000 * f.d + 100000 * g.d AS n "
           "FROM digits a, digits b, digits c, digits e, digits f, digits g")


def fill(engine, rows: int) -> None:
    """users and blogs with `rows` rows each: every blog by a user."""
    with engine.begin() as conn:
        conn.execute(text("CREATE TEMPORARY TABLE digits (d INT)"))
        conn.execute(text("INSERT INTO digits VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9)"))
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
        for name, body in TUTORIAL_REVISIONS.items():
            found = sorted(versions.glob(f"*_{name}.py"))  # the step's own, once it has them
            revisions[name] = found[0].stem.split("_")[0] if found else write_revision(step, name, body)

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
        seconds = timed(lambda: fill(engine, rows))
        print(f"Filled users and blogs with {rows:,} rows each in {seconds:.1f} s\n")
        print(f"{'revision':<20}{'statement':<58}{'seconds':>9}  lint's verdict")
        results = []
        for name, revision in revisions.items():
            # Lint first, with production at the revision's parent, as CI and a deploy would.
            linted = run(step, "migrate.py", "lint", revision,
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
    options = parser.parse_args()
    sys.exit(main() if options.big_tables is None else big_tables(options.big_tables))
