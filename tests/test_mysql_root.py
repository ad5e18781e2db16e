"""scripts/mysql-root.sh: the MySQL 9.7 root that CI builds once per machine, and its tools.

The root is built by .ci/run before either run of the suite (about a minute, as root); where it
was never built, the tests that need it are skipped and say how to build it.
"""

import os
import secrets
import shutil
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


def command_lines() -> list[str]:
    """The command line of every process this test can see, each as one string."""
    lines = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            lines.append(cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:  # the process ended meanwhile
            pass
    return lines


def test_pt_online_schema_change_of_the_root_alters_a_table_on_the_runs_server(
        built, server, mariadb, database_url, tmp_path):
    """percona-toolkit 3.7.1 (bookworm's 3.2.1 fails on MySQL 9.7: SHOW SLAVE HOSTS is gone)
    runs on MySQL 9.7 and on MariaDB 10.11 alike, with the credentials only in a
    --defaults-file of the host's (no chroot: the tool sees the host's files)."""
    name = database_url.database
    user, password = f"pt_{secrets.token_hex(4)}", f"Pw-{secrets.token_hex(16)}"
    with server.connect(name) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id INT PRIMARY KEY AUTO_INCREMENT, n INT)")
        cur.execute("INSERT INTO t (n) VALUES (1), (2), (3)")
        cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
        cur.execute(f"GRANT ALL ON `{name}`.* TO '{user}'@'%'")
        # The tool reads SHOW REPLICA STATUS, which each server guards by a privilege of its own.
        monitor = "SLAVE MONITOR" if mariadb else "REPLICATION CLIENT"
        cur.execute(f"GRANT {monitor} ON *.* TO '{user}'@'%'")
    try:
        defaults = tmp_path / "my.cnf"
        defaults.touch(mode=0o600)
        # The server's address too: a tool that could not read the file finds no server.
        defaults.write_text(f"[client]\nuser={user}\npassword={password}\n"
                            f"host={database_url.host}\nport={database_url.port or 3306}\n")
        where = f"D={name},t=t"
        tool = subprocess.Popen(
            [BIN / "pt-online-schema-change", f"--defaults-file={defaults}", "--alter",
             "ADD COLUMN x INT", where, "--execute", "--recursion-method=none",
             "--noversion-check"],
            env={}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        seen: list[str] = []
        while tool.poll() is None:  # what `ps` would have shown while it ran
            seen += [line for line in command_lines() if password in line]
            time.sleep(0.01)
        output = tool.stdout.read()
        assert tool.returncode == 0, output
        assert f"Successfully altered `{name}`.`t`." in output
        assert seen == [] and password not in output
        with server.connect(name) as conn, conn.cursor() as cur:
            cur.execute("SELECT * FROM t ORDER BY id")
            assert cur.fetchall() == ((1, 1, None), (2, 2, None), (3, 3, None))  # every row
            cur.execute("SHOW TABLES")
            assert cur.fetchall() == (("t",),)  # nothing of the tool's left behind
    finally:
        with server.connect() as conn, conn.cursor() as cur:
            cur.execute(f"DROP USER '{user}'@'%'")


def test_on_mysql_9_the_tool_needs_explain_format_traditional_to_copy_in_chunks(
        built, server, mariadb, database_url, tmp_path):
    """MySQL 9.x's EXPLAIN writes a tree by default, in which the tool finds no row estimate:
    it takes the table for empty and copies it in one INSERT ... SELECT that locks every row,
    so that writes wait for the whole copy (measured by `make bench`: 10 s of 1,000,000 rows).
    --set-vars explain_format=TRADITIONAL gives it its estimate back, and its chunks."""
    if mariadb:  # its EXPLAIN is a table, always: no variable to set (step 7 sets none there)
        with server.connect() as conn, conn.cursor() as cur:
            cur.execute("SHOW VARIABLES LIKE 'explain_format'")
            assert cur.fetchall() == ()
        return
    with server.connect(database_url.database) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id INT PRIMARY KEY AUTO_INCREMENT, n INT)")
    server.insert_rows(database_url, "t", ["n"], [(i,) for i in range(2000)])
    defaults = tmp_path / "my.cnf"
    defaults.touch(mode=0o600)
    defaults.write_text(f"[client]\nuser={database_url.username}\n"
                        f"password={database_url.password or ''}\n"
                        f"host={database_url.host}\nport={database_url.port or 3306}\n")

    def estimate(*set_vars: str) -> str:
        result = subprocess.run(
            [BIN / "pt-online-schema-change", f"--defaults-file={defaults}", "--alter",
             "ENGINE=InnoDB", f"D={database_url.database},t=t", "--execute",
             "--recursion-method=none", "--noversion-check", *set_vars],
            env={}, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        [line] = [l for l in result.stdout.splitlines() if "Copying approximately" in l]
        return line.split("Copying approximately ")[1]

    assert estimate() == "0 rows..."
    assert estimate("--set-vars", "explain_format=TRADITIONAL") != "0 rows..."
    with server.connect(database_url.database) as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*), SUM(n) FROM t")
        assert cur.fetchone() == (2000, sum(range(2000)))  # every row, twice copied


def test_a_root_built_with_older_wrappers_gets_new_ones_not_a_new_root(built, tmp_path):
    """A cache that an earlier version of the script built (no wrappers-version; the tool run
    with chroot) is upgraded in place: its wrappers are written again, the root is kept."""
    cache = tmp_path / "mysql-9.7"
    (cache / "usr" / "bin").mkdir(parents=True)
    (cache / "root").symlink_to(CACHE / "root")  # the same root, under another name
    for link in ("share", "lib"):
        (cache / "usr" / link).symlink_to(f"../root/usr/{link}")
    old = cache / "usr" / "bin" / "pt-online-schema-change"
    old.write_text(f'#!/bin/sh\nexec /usr/sbin/chroot "{cache}/root" /usr/bin/{old.name} "$@"\n')
    result = subprocess.run(["bash", SCRIPT],
                            env={**os.environ, "TUTORIAL_MYSQL_ROOT": str(cache)},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert result.stdout == f"{cache / 'usr' / 'bin' / 'mysqld'}\n"
    assert (cache / "wrappers-version").read_text().strip().isdigit()
    assert "chroot" not in old.read_text() and str(cache / "root") in old.read_text()
    assert sorted(p.name for p in (cache / "usr" / "bin").iterdir()) == [
        "mysql", "mysqld", "pt-online-schema-change"]  # no temporary file left
    version = subprocess.run([old, "--version"], env={}, capture_output=True, text=True, timeout=60)
    assert version.stdout.strip() == "pt-online-schema-change 3.7.1", version.stderr


def test_older_wrappers_that_this_user_cannot_replace_are_one_line(built, short_tmp):
    """Who may not write to the cache is told to run it once as root; nothing is changed."""
    if os.getuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root, to run the script as another user (setpriv)")
    short_tmp.chmod(0o755)
    cache = short_tmp / "mysql-9.7"
    (cache / "usr" / "bin").mkdir(parents=True)
    (cache / "root").symlink_to(CACHE / "root")
    old = cache / "usr" / "bin" / "pt-online-schema-change"
    old.write_text("#!/bin/sh\n# an earlier wrapper\n")
    result = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "bash", SCRIPT],
        env={"PATH": os.environ["PATH"], "TUTORIAL_MYSQL_ROOT": str(cache)},
        capture_output=True, text=True, timeout=60)
    line = assert_clean_failure(result)
    assert line == (f"error: mysql-root: the tool wrappers in {cache} are out of date; "
                    "run this once as root to update them")
    assert old.read_text() == "#!/bin/sh\n# an earlier wrapper\n"
    assert not (cache / "wrappers-version").exists()


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
