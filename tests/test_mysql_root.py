"""scripts/mysql-root.sh: the MySQL 9.7 root that CI builds once per machine, and its tools.

The root is built by .ci/run before either run of the suite (about a minute, as root); where it
was never built, the tests that need it are skipped and say how to build it.
"""

import os
import subprocess
import time
from pathlib import Path

import pytest

from conftest import assert_clean_failure
from tutorial_kit.steps import REPO

SCRIPT = REPO / "scripts" / "mysql-root.sh"
CACHE = Path(os.environ.get("TUTORIAL_MYSQL_ROOT",
                            "/var/cache/versioned-migrations-tutorial/mysql-9.7"))
BIN = CACHE / "usr" / "bin"


@pytest.fixture
def built():
    if not (BIN / "mysqld").exists():
        pytest.skip(f"no MySQL 9.7 root in {CACHE}: `bash scripts/mysql-root.sh` builds it")


def test_a_built_root_is_reused_and_its_tools_run(built):
    started = time.monotonic()
    result = subprocess.run(["bash", SCRIPT], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert result.stdout == f"{BIN / 'mysqld'}\n"
    assert time.monotonic() - started < 5  # nothing was built again
    # The wrappers run from an empty environment, as the kit's tests run them.
    versions = {tool: subprocess.run([BIN / tool, "--version"], env={}, capture_output=True,
                                     text=True, timeout=60).stdout
                for tool in ("mysqld", "mysql", "pt-online-schema-change")}
    assert "Ver 9.7." in versions["mysqld"] and "Ver 9.7." in versions["mysql"], versions
    assert versions["pt-online-schema-change"].strip() == "pt-online-schema-change 3.7.1"


def test_pt_online_schema_change_of_the_root_alters_a_table_on_the_runs_server(
        built, server, database_url):
    """percona-toolkit 3.7.1 (bookworm's 3.2.1 fails on MySQL 9.7: SHOW SLAVE HOSTS is gone)
    runs on MySQL 9.7 and on MariaDB 10.11 alike; so does the root's mysql client."""
    with server.connect(database_url.database) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id INT PRIMARY KEY AUTO_INCREMENT, n INT)")
        cur.execute("INSERT INTO t (n) VALUES (1), (2), (3)")
    host, port = database_url.host, database_url.port or 3306
    where = f"D={database_url.database},t=t,h={host},P={port},u={database_url.username}"
    env = {"MYSQL_PWD": database_url.password or ""}  # not on the command line
    result = subprocess.run(
        [BIN / "pt-online-schema-change", "--alter", "ADD COLUMN x INT", where, "--execute",
         "--recursion-method=none"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Successfully altered `{database_url.database}`.`t`." in result.stdout
    shown = subprocess.run(
        [BIN / "mysql", f"-h{host}", f"-P{port}", f"-u{database_url.username}",
         "-N", "-e", "SELECT GROUP_CONCAT(COLUMN_NAME ORDER BY ORDINAL_POSITION), COUNT(*) "
         f"FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '{database_url.database}' "
         "AND TABLE_NAME = 't'"], env=env, capture_output=True, text=True, timeout=60)
    assert shown.stdout.split() == ["id,n,x", "3"], shown.stdout + shown.stderr


def test_without_mmdebstrap_it_says_so_in_one_line(tmp_path):
    # A PATH with the few tools the script needs before it looks for mmdebstrap.
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("realpath", "id", "dirname"):
        (tools / tool).symlink_to(subprocess.run(["which", tool], capture_output=True,
                                                 text=True).stdout.strip())
    result = subprocess.run(
        ["/bin/bash", SCRIPT], env={"PATH": str(tools), "TUTORIAL_MYSQL_ROOT": str(tmp_path / "root")},
        capture_output=True, text=True, timeout=60)
    line = assert_clean_failure(result)
    assert line == "error: mysql-root: mmdebstrap is not installed (apt-get install mmdebstrap)"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin"]  # nothing was started
