"""step-3-apply on a real server: what ran is recorded, failures are explained, plain Alembic is
as safe as `python -m migrate` (lock and history live in migrations/env.py)."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import inspect, text

from conftest import assert_clean_failure
from test_step_3_apply import initialize_revision, snapshot
from tutorial_kit.revisions import write_revision
from tutorial_kit.steps import run, run_at_once

USERS = 2000

ADD_NICKNAME = """op.add_column("users", sa.Column("nickname", sa.String(40), nullable=True))"""
DROP_NICKNAME = """op.drop_column("users", "nickname")"""
# Fails on its first statement: nothing of it is applied.
FAILS_FIRST = """op.execute("UPDATE users SET no_such_column = 1")"""
# Fails after its first DDL, which MySQL has committed and cannot roll back.
FAILS_AFTER_DDL = """
op.add_column("users", sa.Column("title", sa.String(255), nullable=True))
op.execute("UPDATE users SET no_such_column = 1")
"""


def clean_failure(result) -> str:
    """Like assert_clean_failure; plain alembic also logs its INFO lines on stderr before it."""
    if "alembic" in result.args:
        result.stderr = result.stderr.strip().splitlines()[-1]
        assert all(l.startswith("INFO ") for l in result.stderr.splitlines()[:-1])
    return assert_clean_failure(result)


def history(engine) -> list[tuple]:
    with engine.connect() as conn:
        return conn.execute(text(
            "SELECT revision, kind, statements, error IS NOT NULL FROM alembic_history ORDER BY id"
        )).all()


def version(engine) -> list[str]:
    with engine.connect() as conn:
        return conn.scalars(text("SELECT version_num FROM alembic_version")).all()


def columns(engine, table="users") -> list[str]:
    return [c["name"] for c in inspect(engine).get_columns(table)]


def managed_production(step, database_url, db):
    """step-3 applied from scratch, then thousands of users: a production database."""
    app = step("step-3-apply")
    assert run(app, "-m", "migrate", "upgrade", database_url=database_url).returncode == 0
    with db.begin() as conn:
        conn.execute(text("INSERT INTO users (name, email) VALUES (:n, :e)"),
                     [{"n": f"User {i}", "e": f"u{i}@example.com"} for i in range(USERS)])
        conn.execute(text("INSERT INTO blogs (title, body, author_id) "
                          "SELECT CONCAT('Post ', id), 'text', id FROM users"))
    return app


@pytest.mark.parametrize("how", ["migrate", "alembic"])
@pytest.mark.parametrize("failing", [FAILS_FIRST, FAILS_AFTER_DDL], ids=["before-ddl", "after-ddl"])
def test_a_failed_revision_keeps_the_ones_before_it_recorded(step, database_url, db, how, failing):
    app = managed_production(step, database_url, db)
    first = initialize_revision(app)
    write_revision(app, "add_nickname", ADD_NICKNAME, DROP_NICKNAME,
                   rev="30000101000000", down=first)
    write_revision(app, "broken", failing, rev="30000101000001", down="30000101000000")
    before = snapshot(db)

    command = ["-m", "migrate", "upgrade"] if how == "migrate" else ["-m", "alembic", "upgrade", "head"]
    line = clean_failure(run(app, *command, database_url=database_url))

    # The good revision stays applied and recorded; the broken one is recorded as failed.
    assert version(db) == ["30000101000000"]
    assert history(db) == [
        (first, "upgrade", 2, 0),
        ("30000101000000", "upgrade", 1, 0),
        ("30000101000001", "failed", 0 if failing is FAILS_FIRST else 1, 1),
    ]
    assert "error: revision 30000101000001 (broken) failed at `UPDATE users SET no_such_column = 1`" in line
    assert "Unknown column 'no_such_column'" in line
    if failing is FAILS_FIRST:
        assert "Applied before it and kept (MySQL cannot roll back DDL): nothing." in line
        assert "title" not in columns(db)
    else:
        assert "kept (MySQL cannot roll back DDL): ALTER TABLE users ADD COLUMN title VARCHAR(255)" in line
        assert "title" in columns(db)
    assert "nickname" in columns(db)
    after = snapshot(db)
    assert [row.id for row in after["users"]] == [row.id for row in before["users"]]
    assert [tuple(r)[:3] for r in after["users"]] == [tuple(r)[:3] for r in before["users"]]
    assert after["blogs"] == before["blogs"]


@pytest.mark.parametrize("comment", ["/* step 1 */ ", "-- the title\\n", "# the title\\n"])
def test_a_commented_ddl_statement_is_still_counted_as_kept(step, database_url, db, comment):
    """A comment before the ALTER does not hide it: the report says it stayed applied."""
    app = managed_production(step, database_url, db)
    write_revision(app, "broken", f"""
op.execute("{comment}ALTER TABLE users ADD COLUMN title VARCHAR(255) NULL")
op.execute("UPDATE users SET no_such_column = 1")
""", rev="30000101000001", down=initialize_revision(app))
    line = clean_failure(run(app, "-m", "migrate", "upgrade", database_url=database_url))
    assert "Applied before it and kept (MySQL cannot roll back DDL): " in line
    assert "ALTER TABLE users ADD COLUMN title VARCHAR(255) NULL. Recorded" in line
    assert "title" in columns(db)
    assert history(db)[-1] == ("30000101000001", "failed", 1, 1)


def test_status_shows_the_failed_attempt_and_the_rerun_goes_on_after_it(step, database_url, db):
    app = managed_production(step, database_url, db)
    first = initialize_revision(app)
    write_revision(app, "add_title", FAILS_AFTER_DDL, """op.drop_column("users", "title")""",
                   rev="30000101000001", down=first)
    broken = app / "migrations" / "versions" / "30000101000001_add_title.py"
    assert run(app, "-m", "migrate", "upgrade", database_url=database_url).returncode == 1
    users = snapshot(db)["users"]

    status = run(app, "-m", "migrate", "status", database_url=database_url)
    assert status.returncode == 4, status.stderr  # FAILED: a deploy gate stops here
    out = status.stdout
    assert "Migration status: FAILED" in out
    assert f"upgrade     {first}  initialize  (2 statement(s)," in out
    assert "failed      30000101000001  add_title  (1 statement(s)," in out
    assert "Last migration attempt had errors:" in out
    assert "-- SQL: UPDATE users SET no_such_column = 1" in out
    assert "-- ERROR: (1054, \"Unknown column 'no_such_column' in 'SET'\")" in out or \
        "-- ERROR: (1054, \"Unknown column 'no_such_column' in 'field list'\")" in out
    assert "Applied before it and kept (1):\n    ALTER TABLE users ADD COLUMN title VARCHAR(255);" in out

    # Reruns skip the ALTER that stayed applied (no "Duplicate column name 'title'") and stop
    # again at the statement that fails.
    for args in (["-m", "migrate", "upgrade"], ["-m", "alembic", "upgrade", "head"]):
        line = clean_failure(run(app, *args, database_url=database_url))
        assert "failed at `UPDATE users SET no_such_column = 1`" in line, line
        assert "Duplicate column" not in line
    line = assert_clean_failure(run(app, "main.py", database_url=database_url))
    assert "the last migration attempt failed (revision 30000101000001)" in line

    # Fix the revision, re-hash, upgrade: it goes on after the ALTER, which ran once.
    broken.write_text(broken.read_text().replace('    op.execute("UPDATE users SET no_such_column = 1")\n', ""))
    assert run(app, "-m", "migrate", "hash").returncode == 0
    upgrade = run(app, "-m", "migrate", "upgrade", database_url=database_url)
    assert upgrade.returncode == 0, upgrade.stderr
    assert "going on after the 1 statement(s) applied before (the last attempt failed)" in upgrade.stdout
    assert version(db) == ["30000101000001"]
    assert [(kind, n) for _, kind, n, _ in history(db)] == [
        ("upgrade", 2), ("failed", 1), ("failed", 1), ("failed", 1), ("upgrade", 1)]
    status = run(app, "-m", "migrate", "status", database_url=database_url)
    assert status.returncode == 0 and "Migration status: OK" in status.stdout
    assert "Last migration attempt had errors" not in status.stdout
    assert run(app, "main.py", database_url=database_url).returncode == 0
    assert [tuple(r)[:3] for r in snapshot(db)["users"]][: len(users)] == [tuple(r)[:3] for r in users]


def test_a_revision_undone_by_hand_runs_from_its_start_with_repaired(step, database_url, db):
    app = managed_production(step, database_url, db)
    write_revision(app, "add_title", FAILS_AFTER_DDL, rev="30000101000001", down=initialize_revision(app))
    broken = app / "migrations" / "versions" / "30000101000001_add_title.py"
    assert run(app, "-m", "migrate", "upgrade", database_url=database_url).returncode == 1
    broken.write_text(broken.read_text().replace('    op.execute("UPDATE users SET no_such_column = 1")\n', ""))
    assert run(app, "-m", "migrate", "hash").returncode == 0
    with db.begin() as conn:
        conn.execute(text("ALTER TABLE users DROP COLUMN title"))
    upgrade = run(app, "-m", "migrate", "upgrade", "--repaired", database_url=database_url)
    assert upgrade.returncode == 0, upgrade.stderr
    assert "title" in columns(db)
    assert [(kind, n) for _, kind, n, _ in history(db)] == [("upgrade", 2), ("failed", 1), ("upgrade", 1)]


def test_a_revision_finished_by_hand_is_stamped(step, database_url, db):
    """The other recovery: finish what the revision meant to do by hand, then stamp it."""
    app = managed_production(step, database_url, db)
    write_revision(app, "add_title", FAILS_AFTER_DDL,
                   rev="30000101000001", down=initialize_revision(app))
    assert run(app, "-m", "alembic", "upgrade", "head", database_url=database_url).returncode == 1
    before = snapshot(db)
    stamp = run(app, "-m", "alembic", "stamp", "30000101000001", database_url=database_url)
    assert stamp.returncode == 0, stamp.stderr
    assert [kind for _, kind, _, _ in history(db)] == ["upgrade", "failed", "baseline"]
    assert "Migration status: OK" in run(app, "-m", "migrate", "status", database_url=database_url).stdout
    assert snapshot(db) == before


@pytest.mark.parametrize("command", [["-m", "migrate", "upgrade"], ["-m", "alembic", "upgrade", "head"]])
def test_six_concurrent_upgrades_apply_each_revision_once(step, database_url, db, command):
    app = step("step-3-apply")
    first = initialize_revision(app)
    write_revision(app, "add_nickname", ADD_NICKNAME, DROP_NICKNAME,
                   rev="30000101000000", down=first)
    processes = run_at_once(app, *command, copies=6, database_url=database_url, timeout=120)
    results = [(p.returncode, p.stdout, p.stderr) for p in processes]
    assert [code for code, _, _ in results] == [0] * 6, results
    for _, _, err in results:  # at most a line saying it waited, and plain alembic's INFO log
        lines = [l for l in err.splitlines() if not l.startswith("INFO ")]
        assert lines in ([], ["Waiting for another process's migration to finish..."]), err
    assert version(db) == ["30000101000000"]
    assert history(db) == [(first, "upgrade", 2, 0), ("30000101000000", "upgrade", 1, 0)]


def test_history_table_is_invisible_to_the_schema_checks(step, database_url, dev_database_url):
    app = step("step-3-apply")
    assert run(app, "-m", "migrate", "upgrade", database_url=database_url).returncode == 0
    check = run(app, "-m", "alembic", "check", database_url=database_url)
    assert check.returncode == 0, check.stdout + check.stderr
    planned = run(app, "-m", "migrate", "generate", "nothing", dev_database_url=dev_database_url)
    assert planned.returncode == 0, planned.stderr
    assert "nothing to generate" in planned.stdout


def test_a_connection_killed_during_the_first_upgrade_is_told_truthfully(step, database_url, db):
    """Killed while `initialize` ran on an empty database: one line, and the next runs say a
    migration did not finish, not that create_all() made the tables."""
    app = step("step-3-apply")
    [path] = (app / "migrations" / "versions").glob("*_initialize.py")
    path.write_text(path.read_text().replace(
        "    op.create_table('blogs',", "    op.execute('SELECT SLEEP(60)')\n    op.create_table('blogs',"))
    assert run(app, "-m", "migrate", "hash").returncode == 0
    with ThreadPoolExecutor(1) as pool, db.connect() as conn:
        upgrade = pool.submit(run, app, "-m", "migrate", "upgrade", database_url=database_url)
        for _ in range(300):  # until the revision sleeps, at most 30 s
            sleeping = conn.scalar(text(
                "SELECT ID FROM information_schema.PROCESSLIST "
                "WHERE DB = DATABASE() AND INFO = 'SELECT SLEEP(60)'"))
            if sleeping:
                break
            time.sleep(0.1)
        assert sleeping, upgrade.result()
        conn.execute(text(f"KILL {int(sleeping)}"))
        result = upgrade.result(timeout=60)
    line = assert_clean_failure(result)
    rev = initialize_revision(app)
    assert f"lost the connection to MySQL while revision {rev} (initialize) ran `SELECT SLEEP(60)`" in line
    assert "Applied before it and kept (MySQL cannot roll back DDL): CREATE TABLE users" in line
    assert history(db) == [(rev, "failed", 1, 1)]

    line = assert_clean_failure(run(app, "main.py", database_url=database_url))
    assert f"the last migration attempt failed (revision {rev})" in line
    status = run(app, "-m", "migrate", "status", database_url=database_url)
    assert status.returncode == 4 and "Migration status: FAILED" in status.stdout
    assert "holds tables (users) from a\nfirst migration that did not finish" in status.stdout
    # The rerun goes on after CREATE TABLE users, which stays created once.
    upgrade = run(app, "-m", "migrate", "upgrade", database_url=database_url)
    assert upgrade.returncode == 0, upgrade.stderr
    assert "going on after the 1 statement(s) applied before" in upgrade.stdout
    assert sorted(inspect(db).get_table_names()) == ["alembic_history", "alembic_version", "blogs", "users"]
    assert [(kind, n) for _, kind, n, _ in history(db)] == [("failed", 1), ("upgrade", 2)]


def test_a_revision_whose_python_fails_before_any_sql_is_one_recorded_line(step, database_url, db):
    app = managed_production(step, database_url, db)
    write_revision(app, "typo", 'raise ValueError("no such setting: TITLE_LENGTH")')
    before = snapshot(db)
    line = clean_failure(run(app, "-m", "alembic", "upgrade", "head", database_url=database_url))
    assert "(typo) failed at its Python code: ValueError: no such setting: TITLE_LENGTH" in line
    assert "Applied before it and kept (MySQL cannot roll back DDL): nothing." in line
    assert [kind for _, kind, _, _ in history(db)] == ["upgrade", "failed"]
    assert snapshot(db) == before
    # Nothing stayed applied, so a rerun is not refused: it fails again, the same way.
    line = clean_failure(run(app, "-m", "migrate", "upgrade", database_url=database_url))
    assert "failed at its Python code: ValueError" in line
