"""step-3-apply under Ctrl-C, SIGTERM and metadata locks: one line, a true record, a rerun
that goes on; and an ALTER that waits for a metadata lock no longer than lock_wait_timeout."""

import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pymysql
import pytest
from sqlalchemy import text

from conftest import assert_clean_failure
from test_step_3_apply import initialize_revision, snapshot
from test_step_3_exactly_once import wait_for
from test_step_3_history import columns, history, managed_production
from tutorial_kit.revisions import write_revision
from tutorial_kit.steps import run, step_env


def connect(url, *, autocommit=True):
    return pymysql.connect(host=url.host, port=url.port or 3306, user=url.username,
                           password=url.password or "", database=url.database, autocommit=autocommit)


def open_transaction_on(url, table: str):
    """An application transaction left open after reading `table`: it holds a metadata lock."""
    conn = connect(url, autocommit=False)
    with conn.cursor() as cur:
        cur.execute(f"SELECT id FROM {table} WHERE id = 1")
        cur.fetchall()
    return conn


def upgrade_process(app, url, dev_url=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "migrate", "upgrade"], cwd=app,
                            env=step_env(url, dev_url), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finished(process) -> subprocess.CompletedProcess:
    out, err = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def sigterm_while_the_alter_waits(app, database_url) -> subprocess.CompletedProcess:
    """`upgrade`, sent SIGTERM while its ALTER waits for an application's metadata lock; the
    application then commits, so the ALTER gets its lock and finishes."""
    holder, watcher = open_transaction_on(database_url, "users"), connect(database_url)
    process = upgrade_process(app, database_url)
    try:
        wait_for(watcher, database_url.database, state="Waiting for table metadata lock")
        process.send_signal(signal.SIGTERM)
        holder.commit()
        return finished(process)
    finally:
        holder.close()
        watcher.close()


def test_ctrl_c_cancels_a_data_statement_and_the_rerun_goes_on(step, database_url, db):
    app = managed_production(step, database_url, db)
    lock = f"sig_{database_url.database}"
    write_revision(app, "nickname_shout", f"""
op.execute("ALTER TABLE users ADD COLUMN nickname VARCHAR(40)")
op.execute("UPDATE users SET name = CONCAT(name, '!') WHERE GET_LOCK('{lock}', 600) >= 0")
op.execute("ALTER TABLE blogs ADD COLUMN views INT NOT NULL DEFAULT 0")
""", rev="30000101000000", down=initialize_revision(app))
    before = snapshot(db)
    holder, watcher = connect(database_url), connect(database_url)
    with holder.cursor() as cur:
        cur.execute("SELECT GET_LOCK(%s, 5)", [lock])
    process = upgrade_process(app, database_url)
    try:
        wait_for(watcher, database_url.database, info=f"'{lock}'")
        process.send_signal(signal.SIGINT)
        result = finished(process)
    finally:
        holder.close()
        watcher.close()
    line = assert_clean_failure(result)
    assert line.startswith("error: stopped by SIGINT while revision 30000101000000") and \
        "ran `UPDATE users SET name" in line and "cancelled (KILL QUERY) and rolled back" in line, line
    assert "1 statement(s) of it are applied and recorded" in line
    assert history(db)[-1][:3] == ("30000101000000", "interrupted", 1)
    assert "nickname" in columns(db) and "views" not in columns(db, "blogs")
    assert [r.name for r in snapshot(db)["users"]] == [r.name for r in before["users"]]  # rolled back

    status = run(app, "-m", "migrate", "status", database_url=database_url)
    assert status.returncode == 4 and "Migration status: INTERRUPTED" in status.stdout
    rerun = run(app, "-m", "migrate", "upgrade", database_url=database_url)
    assert rerun.returncode == 0, rerun.stderr
    after = snapshot(db)
    assert [r.name for r in after["users"]] == [r.name + "!" for r in before["users"]]  # once
    assert "views" in columns(db, "blogs")


def test_sigterm_lets_a_ddl_statement_finish_then_stops(step, database_url, db):
    app = managed_production(step, database_url, db)
    write_revision(app, "nickname_shout", """
op.execute("ALTER TABLE users ADD COLUMN nickname VARCHAR(40)")
op.execute("UPDATE users SET name = CONCAT(name, '!')")
""", rev="30000101000000", down=initialize_revision(app))
    before = snapshot(db)
    result = sigterm_while_the_alter_waits(app, database_url)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith("SIGTERM: stopping once `ALTER TABLE users ADD COLUMN nickname"), lines
    assert lines[-1].startswith("error: stopped by SIGTERM between two statements of revision "
                                "30000101000000"), lines
    assert "1 statement(s) of it are applied and recorded" in lines[-1]
    assert history(db)[-1][:3] == ("30000101000000", "interrupted", 1)
    assert "nickname" in columns(db)
    rerun = run(app, "-m", "migrate", "upgrade", database_url=database_url)
    assert rerun.returncode == 0, rerun.stderr
    assert [r.name for r in snapshot(db)["users"]] == [r.name + "!" for r in before["users"]]


def test_sigterm_during_the_last_ddl_statement_lets_it_finish_and_still_fails(step, database_url, db):
    """Nothing follows the statement it let finish: the run still ends in one line, not exit 0."""
    app = managed_production(step, database_url, db)
    write_revision(app, "nickname", """
op.execute("ALTER TABLE users ADD COLUMN nickname VARCHAR(40)")
""", rev="30000101000000", down=initialize_revision(app))
    before = snapshot(db)
    result = sigterm_while_the_alter_waits(app, database_url)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[-1].startswith("error: stopped by SIGTERM once the statement then running had "
                                "finished; it was the last one"), lines
    assert history(db)[-1][:3] == ("30000101000000", "upgrade", 1)
    assert "nickname" in columns(db)
    assert [tuple(r)[:3] for r in snapshot(db)["users"]] == [tuple(r)[:3] for r in before["users"]]
    status = run(app, "-m", "migrate", "status", database_url=database_url)
    assert status.returncode == 0 and "Migration status: OK" in status.stdout, status.stdout


def test_a_second_ctrl_c_cancels_the_ddl_and_the_record_stays_true(step, database_url, dev_database_url, db):
    app = managed_production(step, database_url, db)
    write_revision(app, "nickname", """
op.execute("ALTER TABLE users ADD COLUMN nickname VARCHAR(40)")
""", rev="30000101000000", down=initialize_revision(app))
    holder, watcher = open_transaction_on(database_url, "users"), connect(database_url)
    process = upgrade_process(app, database_url)
    try:
        wait_for(watcher, database_url.database, state="Waiting for table metadata lock")
        process.send_signal(signal.SIGINT)
        first = process.stderr.readline()  # two at once would be one to Python
        assert first.startswith("SIGINT: stopping once `ALTER TABLE users"), first
        process.send_signal(signal.SIGINT)
        result = finished(process)
    finally:
        holder.close()
        watcher.close()
    line = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert line.startswith("error: stopped by SIGINT while revision 30000101000000") and \
        "may or may not have taken effect" in line, line
    status = run(app, "-m", "migrate", "status", database_url=database_url)
    assert status.returncode == 4 and "Cut off during: ALTER TABLE users ADD COLUMN nickname" in status.stdout
    # Plain alembic cannot know: it refuses and points to migrate, which asks the dev database.
    line = run(app, "-m", "alembic", "upgrade", "head", database_url=database_url).stderr.strip().splitlines()[-1]
    assert "whether that took effect is unknown: run `python -m migrate upgrade`" in line
    rerun = run(app, "-m", "migrate", "upgrade", database_url=database_url, dev_database_url=dev_database_url)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "had not taken effect; it runs again" in rerun.stdout
    assert "nickname" in columns(db)


def test_an_alter_waits_for_a_metadata_lock_no_longer_than_the_timeout(step, database_url, db):
    """An application transaction stays open on `users`: the ALTER gives up after
    lock_wait_timeout, each time saying who holds the lock, so the app's other queries, queued
    behind the ALTER, go on while that transaction is still open (before: they waited with it)."""
    app = managed_production(step, database_url, db)
    write_revision(app, "add_nickname", """op.add_column("users", sa.Column("nickname", sa.String(40)))""",
                   rev="30000101000000", down=initialize_revision(app))
    before = snapshot(db)
    holder, watcher = open_transaction_on(database_url, "users"), connect(database_url)
    with holder.cursor() as cur:
        cur.execute("SELECT CONNECTION_ID()")
        [holder_id] = cur.fetchone()
    app_query = connect(database_url)
    with ThreadPoolExecutor(2) as pool:
        upgrade = pool.submit(run, app, "-m", "alembic", "-x", "lock_wait_timeout=1", "-x",
                              "lock_wait_retries=1", "upgrade", "head", database_url=database_url)
        wait_for(watcher, database_url.database, state="Waiting for table metadata lock")

        def read():  # queued behind the waiting ALTER
            with app_query.cursor() as cur:
                cur.execute("SELECT name FROM users WHERE id = 2")
                return cur.fetchone()[0]

        name = pool.submit(read).result(timeout=60)  # before: it waited as long as the holder
        result = upgrade.result(timeout=120)
        with holder.cursor() as cur:  # the application transaction is still open
            cur.execute("SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_mysql_thread_id = %s", [holder_id])
            assert cur.fetchone()[0] == 1
    holder.rollback()
    for conn in (holder, watcher, app_query):
        conn.close()
    assert name == before["users"][1].name
    lines = [l for l in result.stderr.strip().splitlines() if not l.startswith("INFO ")]
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith("Waited 1 s for a metadata lock on users, held by connection "
                               f"{holder_id} (") and "trying again in 1 s (1/1)" in lines[0], lines
    assert lines[-1].startswith("error: revision 30000101000000 (add_nickname) failed at `ALTER TABLE "
                                "users ADD COLUMN nickname") and "Lock wait timeout exceeded" in lines[-1]
    assert history(db)[-1][:4] == ("30000101000000", "failed", 0, 1)
    assert "nickname" not in columns(db)
    rerun = run(app, "-m", "migrate", "upgrade", database_url=database_url)
    assert rerun.returncode == 0, rerun.stderr
    assert "nickname" in columns(db)


@pytest.mark.parametrize("how", ["migrate", "alembic"])
def test_ctrl_c_while_waiting_for_the_migration_lock_is_one_line(step, database_url, db, how):
    app = managed_production(step, database_url, db)
    write_revision(app, "add_nickname", """op.add_column("users", sa.Column("nickname", sa.String(40)))""",
                   rev="30000101000000", down=initialize_revision(app))
    holder = connect(database_url)
    with holder.cursor() as cur:
        cur.execute("SELECT GET_LOCK(%s, 0)", [f"migrate:{database_url.database}"[:64]])
    command = ["-m", "migrate", "upgrade"] if how == "migrate" else ["-m", "alembic", "upgrade", "head"]
    process = subprocess.Popen([sys.executable, *command], cwd=app, env=step_env(database_url),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = ""
        while "Waiting for another process's migration" not in line:
            line = process.stderr.readline()
            assert line, "it never waited"
        process.send_signal(signal.SIGINT)
        result = finished(process)
    finally:
        holder.close()
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    [last] = [l for l in result.stderr.strip().splitlines() if not l.startswith("INFO ")]
    assert last.startswith("error: stopped by Ctrl-C while no revision was running"), last
    assert "nickname" not in columns(db) and history(db)[-1][0] != "30000101000000"
