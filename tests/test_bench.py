"""`make bench`'s big-table run works (on small tables here): figures, not asserts on time."""

import os
import re
import subprocess
import sys

import pytest

from conftest import assert_clean_failure
from tutorial_kit.online_tool import online_tool
from tutorial_kit.steps import REPO


def test_big_table_bench_times_each_revision_beside_lints_verdict(server):
    # It once filled the tables from a TEMPORARY table named six times in one query, which
    # MySQL refuses (error 1137, "Can't reopen table"): this runs on both servers.
    result = subprocess.run(
        [sys.executable, "scripts/bench.py", "--big-tables", "200"],
        cwd=REPO, env={**os.environ, **server.environ}, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "Filled users and blogs with 200 rows each" in result.stdout
    add = next(l for l in lines if l.startswith("add_user_title"))
    required = [l for l in lines if l.startswith("user_title_required")]
    assert add.endswith("INSTANT") and "ADD COLUMN title" in add
    # NOT NULL rebuilds the table in place, on MySQL 9.7 and MariaDB 10.11 alike.
    assert any("MODIFY title VARCHAR(255) NOT NULL" in l and l.rstrip().endswith("INPLACE")
               for l in required)
    assert "x the INSTANT one" in result.stdout


def test_online_bench_alters_users_plain_and_through_the_tool_while_the_app_writes(server):
    if online_tool(server) is None:
        pytest.skip("no pt-online-schema-change for this server (.ci/run installs it)")
    result = subprocess.run(
        [sys.executable, "scripts/bench.py", "--online", "2000"],
        cwd=REPO, env={**os.environ, **server.environ}, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("MySQL: ") and "pt-online-schema-change 3." in lines[0]
    assert any(l.startswith("machine: ") and " cores, " in l for l in lines[1:3])
    for way in ("plain ALTER (ALGORITHM=COPY): ", "pt-online-schema-change: "):
        [line] = [l for l in lines if l.startswith(way)]
        assert re.search(r"total [\d.]+ s; writes: [1-9]\d* done \(\d+/s\), \d+ failed; "
                         r"median wait [\d.]+ ms; longest write wait [\d.]+ s$", line), line
        # Every row there: the 2,000 users and the seed's 2, the writer's, a blog by every
        # tenth (ids 1, 11, ... 2001); the ALTER done; nothing of the tool's left behind.
        after = lines[lines.index(line) + 1]
        found = re.search(r"rows before \(2002, 201\), after \((\d+), 201\) \(users, blogs\): "
                          r"every row kept; altered$", after)
        assert found and int(found[1]) > 2002, after  # the writer inserted meanwhile
    assert re.search(r"^pt-online-schema-change / plain ALTER: total time [\d.]+ x", result.stdout,
                     re.M)
    assert "goal: no write waits longer than 1 s through the tool" in result.stdout


def test_online_bench_refuses_a_bad_size_in_one_line():
    result = subprocess.run([sys.executable, "scripts/bench.py", "--online", "0"], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert assert_clean_failure(result) == "error: ROWS must be between 1 and 1000000"


def test_online_bench_without_the_tool_says_how_to_get_it_in_one_line(server, tmp_path):
    # No pt-online-schema-change on PATH, no MySQL 9.7 root's mysqld named: none to be found.
    env = {"PATH": str(tmp_path), **server.environ}
    result = subprocess.run([sys.executable, "scripts/bench.py", "--online", "100"], cwd=REPO,
                            env=env, capture_output=True, text=True, timeout=60)
    assert assert_clean_failure(result) == (
        "error: no pt-online-schema-change for this server: apt-get install percona-toolkit "
        "(MariaDB), or bash scripts/mysql-root.sh (MySQL 9.7)")
