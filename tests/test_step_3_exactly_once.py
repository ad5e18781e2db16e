"""step-3-apply's exactly-once apply, tested by killing it (issue 17's kill matrix).

A revision of seven statements, data and DDL mixed, none of which may run twice (an INSERT with
a fixed id, UPDATEs that add, a CREATE TABLE ... SELECT) is stopped by SIGKILL of
`python -m migrate upgrade` at every statement boundary and in the middle of every statement,
and by `kill -9` of the server at several points. After each: `status` tells the truth (what it
says is applied is what the database holds), and the rerun ends with exactly the schema and the
rows of an uninterrupted run.

Deterministic, no sleeps: between two statements the revision reads `SELECT GET_LOCK(...)` of a
lock the test holds, and each data statement takes such a lock in its WHERE; an ALTER waits for
a metadata lock the test holds with an open transaction. The test watches
information_schema.PROCESSLIST until the migration waits at the chosen point, then kills.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time

import pymysql
import pytest
from sqlalchemy import create_engine, inspect, text

from conftest import assert_clean_failure
from test_step_3_apply import initialize_revision
from tutorial_kit.mysql import NoServerError, crash_and_restart, find_server_binary, start_local_server
from tutorial_kit.revisions import write_revision
from tutorial_kit.steps import copy_step, run, step_env, url_text

USERS = 300

# {p}: a prefix of the test's own, for the named locks (they are server-wide).
STATEMENTS = [
    "INSERT INTO users (id, name, email) SELECT 100000, 'Kill Matrix', 'km@example.com' "
    "FROM DUAL WHERE GET_LOCK('{p}m1', 600) >= 0",
    "ALTER TABLE users ADD COLUMN score INT NOT NULL DEFAULT 0",
    "UPDATE users SET score = score + 1 WHERE GET_LOCK('{p}m3', 600) >= 0",
    "CREATE TABLE audit (PRIMARY KEY (id)) SELECT id, name AS note FROM users "
    "WHERE GET_LOCK('{p}m4', 600) >= 0",
    "UPDATE blogs SET title = CONCAT(title, '!') WHERE GET_LOCK('{p}m5', 600) >= 0",
    "ALTER TABLE blogs ADD COLUMN views INT NOT NULL DEFAULT 0",
    "INSERT INTO audit (id, note) SELECT id + 1000000, 'late' FROM users "
    "WHERE id <= 5 AND GET_LOCK('{p}m7', 600) >= 0",
]
DDL_ON = {2: "users", 6: "blogs"}  # the ALTERs: stopped mid-way by a metadata lock


def revision_body(prefix: str) -> str:
    lines = []
    for number, sql in enumerate(STATEMENTS, start=1):
        lines.append(f'op.execute("SELECT GET_LOCK(\'{prefix}b{number - 1}\', 600), '
                     f'RELEASE_LOCK(\'{prefix}b{number - 1}\')")')
        lines.append(f'op.execute("{sql.format(p=prefix)}")')
    last = len(STATEMENTS)
    lines.append(f'op.execute("SELECT GET_LOCK(\'{prefix}b{last}\', 600), RELEASE_LOCK(\'{prefix}b{last}\')")')
    return "\n".join(lines)


def applied(engine) -> int:
    """How many of the statements the database shows applied; they must be a prefix."""
    with engine.connect() as conn:
        names = inspect(conn).get_table_names()
        users = [c["name"] for c in inspect(conn).get_columns("users")]
        blogs = [c["name"] for c in inspect(conn).get_columns("blogs")]
        seen = [
            conn.scalar(text("SELECT COUNT(*) FROM users WHERE id = 100000")) == 1,
            "score" in users,
            "score" in users and conn.scalar(text("SELECT MIN(score) FROM users")) == 1,
            "audit" in names,
            conn.scalar(text("SELECT COUNT(*) FROM blogs WHERE title NOT LIKE '%!'")) == 0,
            "views" in blogs,
            "audit" in names and conn.scalar(text("SELECT COUNT(*) FROM audit WHERE id > 1000000")) > 0,
        ]
    count = seen.index(False) if False in seen else len(seen)
    assert seen == [True] * count + [False] * (len(seen) - count), seen  # never out of order
    return count


def fingerprint(engine) -> dict[str, str]:
    """Each app table's definition (without its AUTO_INCREMENT counter) and a hash of its rows."""
    found = {}
    with engine.connect() as conn:
        for table in sorted(inspect(conn).get_table_names()):
            if table.startswith("alembic_"):
                continue
            create = conn.execute(text(f"SHOW CREATE TABLE `{table}`")).one()[1]
            # created_at is the time each run inserted the row: not the migration's doing.
            names = [c["name"] for c in inspect(conn).get_columns(table) if c["name"] != "created_at"]
            rows = conn.execute(text(f"SELECT {', '.join(names)} FROM `{table}` ORDER BY 1")).all()
            found[table] = re.sub(r" AUTO_INCREMENT=\d+", "", create)
            found[f"{table} rows"] = hashlib.sha256(repr(rows).encode()).hexdigest()
    return found


def prepare(app, url) -> None:
    """`initialize` applied, rows in, the kill-matrix revision written and hashed."""
    assert run(app, "-m", "migrate", "upgrade", database_url=url).returncode == 0
    engine = create_engine(url_text(url))
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO users (name, email) VALUES (:n, :e)"),
                     [{"n": f"User {i}", "e": f"u{i}@example.com"} for i in range(USERS)])
        conn.execute(text("INSERT INTO blogs (title, body, author_id) "
                          "SELECT CONCAT('Post ', id), 'text', id FROM users"))
    engine.dispose()


def add_revision(app, prefix: str) -> None:
    write_revision(app, "kill_matrix", revision_body(prefix), rev="30000101000000",
                   down=initialize_revision(app))
    # The ALTERs wait as long as the test holds a metadata lock (the default is a few seconds).
    ini = app / "alembic.ini"
    ini.write_text(ini.read_text().replace("lock_wait_timeout = 5", "lock_wait_timeout = 600"))


def reference(tmp_path, server, prefix: str) -> dict[str, str]:
    """The fingerprint of an uninterrupted run, on the same server."""
    with server.database("ref") as url:
        app = copy_step("step-3-apply", tmp_path / "reference")
        prepare(app, url)
        add_revision(app, prefix)
        result = run(app, "-m", "migrate", "upgrade", database_url=url)
        assert result.returncode == 0, result.stderr
        engine = create_engine(url_text(url))
        try:
            assert applied(engine) == len(STATEMENTS)
            return fingerprint(engine)
        finally:
            engine.dispose()


def connect(url, *, autocommit=True) -> pymysql.Connection:
    return pymysql.connect(host=url.host, port=url.port or 3306, user=url.username,
                           password=url.password or "", database=url.database,
                           autocommit=autocommit)


def wait_for(conn, database: str, *, info: str | None = None, state: str | None = None):
    """The id of the connection on `database` whose query holds `info` (or whose state is
    `state`): the migration, waiting where the test holds it. At most 60 s."""
    for _ in range(600):
        with conn.cursor() as cur:
            cur.execute("SELECT ID, STATE, INFO FROM information_schema.PROCESSLIST "
                        "WHERE DB = %s AND ID <> CONNECTION_ID()", [database])
            for id_, found_state, found_info in cur.fetchall():
                if info and found_info and info in found_info and found_state == "User lock":
                    return id_
                if state and found_state == state:
                    return id_
        time.sleep(0.1)
    raise AssertionError(f"the migration never waited at {info or state}")


def gone(conn, connection_id: int) -> None:
    """Wait until the killed client's server session has ended (it finishes its statement)."""
    for _ in range(600):
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = %s",
                        [connection_id])
            if cur.fetchone()[0] == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"connection {connection_id} never ended")


def start_upgrade(app, url, dev_url) -> subprocess.Popen:
    """`python -m migrate upgrade` as its own process (not the preloader's), to be killed."""
    return subprocess.Popen([sys.executable, "-m", "migrate", "upgrade"], cwd=app,
                            env=step_env(url, dev_url), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def hold(url, point: str, prefix: str):
    """Hold what makes the migration wait at `point`: "b3" (before statement 4), "m3" (in
    statement 3). Returns the connection and how to find the waiting migration."""
    kind, number = point[0], int(point[1:])
    if kind == "m" and number in DDL_ON:
        conn = connect(url, autocommit=False)
        with conn.cursor() as cur:  # an open transaction that read the table: a metadata lock
            cur.execute(f"SELECT id FROM {DDL_ON[number]} LIMIT 1")
            cur.fetchall()
        return conn, dict(state="Waiting for table metadata lock")
    conn = connect(url)
    with conn.cursor() as cur:
        cur.execute("SELECT GET_LOCK(%s, 10)", [f"{prefix}{point}"])
    return conn, dict(info=f"'{prefix}{point}'")


def check_truth_and_rerun(app, url, dev_url, engine, expected, *, killed_mid_ddl: bool):
    status = run(app, "-m", "migrate", "status", database_url=url)
    count = applied(engine)
    history = status.stdout
    if "Last migration attempt" not in history:
        # Killed before the revision's first statement: nothing of it ran, it is pending.
        assert status.returncode == 3 and "Migration status: PENDING" in history, history
        assert count == 0
    else:
        assert status.returncode == 4, history + status.stderr
        assert "Migration status: INTERRUPTED" in history or "Migration status: FAILED" in history
        recorded = int(re.search(r"Applied before it and kept \((\d+)\)", history).group(1))
        if "Cut off during:" in history:  # a DDL statement whose fate the record cannot know
            assert killed_mid_ddl and count in (recorded, recorded + 1), (count, history)
        else:
            assert count == recorded, (count, history)
    rerun = run(app, "-m", "migrate", "upgrade", database_url=url, dev_database_url=dev_url)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    if "Cut off during:" in history:  # settled on the dev database, and said so
        assert ("took effect before the run stopped" if count > recorded else "had not taken effect") \
            in rerun.stdout, rerun.stdout
    assert applied(engine) == len(STATEMENTS)
    assert fingerprint(engine) == expected
    final = run(app, "-m", "migrate", "status", database_url=url)
    assert final.returncode == 0 and "Migration status: OK" in final.stdout, final.stdout


POINTS = [f"b{k}" for k in range(len(STATEMENTS) + 1)] + [f"m{k}" for k in range(1, len(STATEMENTS) + 1)]


@pytest.mark.parametrize("point", POINTS)
def test_sigkill_at_every_boundary_and_mid_statement(step, tmp_path, server, database_url, dev_database_url, point):
    prefix = f"km{os.getpid()}{database_url.database[-8:]}"
    expected = reference(tmp_path, server, prefix)
    app = step("step-3-apply")
    prepare(app, database_url)
    add_revision(app, prefix)
    engine = create_engine(url_text(database_url))
    watcher = connect(database_url)
    holder, where = hold(database_url, point, prefix)
    upgrade = start_upgrade(app, database_url, dev_database_url)
    try:
        victim = wait_for(watcher, database_url.database, **where)
        upgrade.send_signal(signal.SIGKILL)
        upgrade.communicate(timeout=60)
    finally:
        if upgrade.poll() is None:
            upgrade.kill()
            upgrade.communicate()
        holder.commit()
        holder.close()  # the killed client's statement goes on, on the server, then ends
    gone(watcher, victim)
    watcher.close()
    check_truth_and_rerun(app, database_url, dev_database_url, engine, expected,
                          killed_mid_ddl=point[0] == "m" and int(point[1:]) in (2, 4, 6))
    engine.dispose()


@pytest.fixture(scope="module")
def own_server():
    """A server of this module's own, which its tests kill -9 and restart."""
    binary = find_server_binary()
    if binary is None:
        pytest.skip("no mariadbd or mysqld on this machine to start and crash")
    try:
        server = start_local_server(binary, durable=True)
    except NoServerError:  # seen once: another initialisation's temporary file in the way
        server = start_local_server(binary, durable=True)
    try:
        yield server
    finally:
        server.stop()


# One worker runs them all, on one server of their own.
@pytest.mark.xdist_group("own_server")
@pytest.mark.parametrize("point", ["b1", "m2", "m3", "b4", "m5", "b7"])
def test_server_killed_at_several_points(step, tmp_path, own_server, point):
    prefix = f"kc{os.getpid()}{point}"
    expected = reference(tmp_path, own_server, prefix)
    with own_server.database("crash") as url, own_server.database("dev") as dev_url:
        app = step("step-3-apply")
        prepare(app, url)
        add_revision(app, prefix)
        engine = create_engine(url_text(url))
        watcher = connect(url)
        holder, where = hold(url, point, prefix)
        upgrade = start_upgrade(app, url, dev_url)
        try:
            wait_for(watcher, url.database, **where)
            crash_and_restart(own_server)
            out, err = upgrade.communicate(timeout=60)
        finally:
            if upgrade.poll() is None:
                upgrade.kill()
                upgrade.communicate()
            for conn in (holder, watcher):
                try:
                    conn.close()
                except Exception:
                    pass
        # One line, no traceback, saying the connection was lost.
        line = assert_clean_failure(subprocess.CompletedProcess(upgrade.args, upgrade.returncode, out, err))
        assert line.startswith("error: ") and "MySQL" in line, line
        check_truth_and_rerun(app, url, dev_url, engine, expected, killed_mid_ddl=point == "m2")
        engine.dispose()


TWO_THEN_FAIL = """
op.execute("ALTER TABLE users ADD COLUMN nickname VARCHAR(40)")
op.execute("ALTER TABLE users ADD COLUMN score INT")
op.execute("UPDATE users SET no_such_column = 1")
"""


def failed_after_two(step, database_url):
    from test_step_3_history import managed_production

    engine = create_engine(url_text(database_url))
    app = managed_production(step, database_url, engine)
    write_revision(app, "two", TWO_THEN_FAIL, rev="30000101000000", down=initialize_revision(app))
    assert run(app, "-m", "migrate", "upgrade", database_url=database_url).returncode == 1
    return app, engine, app / "migrations" / "versions" / "30000101000000_two.py"


def test_a_statement_changed_after_it_was_applied_is_refused(step, database_url):
    app, engine, path = failed_after_two(step, database_url)
    path.write_text(path.read_text().replace("VARCHAR(40)", "VARCHAR(80)").replace(
        '    op.execute("UPDATE users SET no_such_column = 1")\n', ""))
    assert run(app, "-m", "migrate", "hash").returncode == 0
    for command in (["-m", "migrate", "upgrade"], ["-m", "alembic", "upgrade", "head"]):
        result = run(app, *command, database_url=database_url)
        line = result.stderr.strip().splitlines()[-1]
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert line == (
            "error: statement 1 of revision 30000101000000 changed since it was applied here: "
            "now `ALTER TABLE users ADD COLUMN nickname VARCHAR(80)`, applied `ALTER TABLE users "
            "ADD COLUMN nickname VARCHAR(40)`; restore the revision file (git checkout) and put "
            "the change in a new revision"), line
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT statements FROM alembic_history ORDER BY id DESC LIMIT 1")) == 2
    engine.dispose()


def cut_off_during_score(engine) -> None:
    """As if the run had been killed during the second ALTER: recorded as starting, not done,
    and the ALTER undone, so the live table is as before it."""
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE users DROP COLUMN score"))
        conn.execute(text(
            "UPDATE alembic_history SET statements = 1, running_sql = "
            "'ALTER TABLE users ADD COLUMN score INT', applied_sql = "
            "'ALTER TABLE users ADD COLUMN nickname VARCHAR(40)', "
            "running_hash = SUBSTRING_INDEX(hashes, ' ', -1), hashes = SUBSTRING_INDEX(hashes, ' ', 1) "
            "ORDER BY id DESC LIMIT 1"))


@pytest.mark.parametrize("case", ["no dev database", "neither before nor after", "before"])
def test_a_ddl_cut_off_is_settled_on_the_dev_database_or_refused(step, database_url, dev_database_url, case):
    app, engine, path = failed_after_two(step, database_url)
    path.write_text(path.read_text().replace('    op.execute("UPDATE users SET no_such_column = 1")\n', ""))
    assert run(app, "-m", "migrate", "hash").returncode == 0
    cut_off_during_score(engine)
    if case == "neither before nor after":
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE users ADD COLUMN score VARCHAR(5)"))
    dev = None if case == "no dev database" else dev_database_url
    result = run(app, "-m", "migrate", "upgrade", database_url=database_url, dev_database_url=dev,
                 env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    if case == "before":
        assert result.returncode == 0, result.stdout + result.stderr
        assert "`ALTER TABLE users ADD COLUMN score INT` had not taken effect; it runs again" in result.stdout
        assert run(app, "-m", "migrate", "status", database_url=database_url).returncode == 0
        return
    line = assert_clean_failure(result)
    assert line.startswith("error: revision 30000101000000 was cut off during `ALTER TABLE users "
                           "ADD COLUMN score INT`, and whether that took effect is unknown: "), line
    assert ("could not be replayed on the dev database (DEV_DATABASE_URL is not set" in line
            if case == "no dev database" else "match neither the schema before it nor the one after it"
            " (check column users.score; column users.score: here VARCHAR(5) NULL, before it missing, after"
            " it INT NULL)" in line), line
    engine.dispose()


def test_a_revision_of_many_statements_is_recorded_whole(step, database_url):
    """1,200 statements: their running hashes (65 bytes each) and SQL outgrow a TEXT column's
    64 KB; before LONGTEXT, statement 1,008 failed on its bookkeeping (error 1406)."""
    from test_step_3_history import managed_production

    engine = create_engine(url_text(database_url))
    app = managed_production(step, database_url, engine)
    body = "\n".join(f'op.execute("INSERT INTO users (name, email) VALUES (\'m{i}\', \'m{i}@example.com\')")'
                     for i in range(1200))
    write_revision(app, "many", body, rev="30000101000000", down=initialize_revision(app))
    result = run(app, "-m", "migrate", "upgrade", database_url=database_url)
    assert result.returncode == 0, result.stderr
    with engine.connect() as conn:
        row = conn.execute(text("SELECT kind, statements, LENGTH(hashes), applied_sql FROM alembic_history "
                                "ORDER BY id DESC LIMIT 1")).one()
        assert conn.scalar(text("SELECT COUNT(*) FROM users WHERE email LIKE 'm%@example.com'")) == 1200
    assert row[:3] == ("upgrade", 1200, 1200 * 65 - 1)
    assert len(row[3].split(";\n")) == 1200
    engine.dispose()
