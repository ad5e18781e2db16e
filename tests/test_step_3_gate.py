"""step-3-apply's `status` as a deploy gate, one path for migrate and plain Alembic, and the
tracebacks of issue 17 each made one line."""

import secrets

import pymysql
import pytest
from sqlalchemy import text

from conftest import assert_clean_failure
from test_step_3_apply import initialize_revision, snapshot
from test_step_3_history import ADD_NICKNAME, clean_failure, history, managed_production, version
from tutorial_kit.revisions import write_revision
from tutorial_kit.steps import run

# Not idempotent: run twice, every name gets two exclamation marks.
SHOUT = """op.execute("UPDATE users SET name = CONCAT(name, '!')")"""


def status(app, url):
    return run(app, "-m", "migrate", "status", database_url=url)


def test_status_exit_codes_ok_pending(step, database_url, db):
    app = managed_production(step, database_url, db)
    ok = status(app, database_url)
    assert ok.returncode == 0 and "Migration status: OK" in ok.stdout
    write_revision(app, "add_nickname", ADD_NICKNAME, rev="30000101000000", down=initialize_revision(app))
    pending = status(app, database_url)
    assert pending.returncode == 3 and "Migration status: PENDING" in pending.stdout


@pytest.mark.parametrize("how", ["dropped", "emptied"])
def test_a_missing_or_emptied_history_is_never_ok(step, database_url, db, how):
    app = managed_production(step, database_url, db)
    with db.begin() as conn:
        conn.execute(text("DROP TABLE alembic_history" if how == "dropped" else "DELETE FROM alembic_history"))
    result = status(app, database_url)
    assert result.returncode == 7, result.stdout + result.stderr
    assert "Migration status: INCONSISTENT" in result.stdout
    assert "the history table alembic_history is missing or empty" in result.stdout


def test_stamping_back_never_reruns_history(step, database_url, db):
    """At head, `alembic stamp` an older revision, then upgrade: before, the data revision ran
    a second time (every name changed twice)."""
    app = managed_production(step, database_url, db)
    first = initialize_revision(app)
    write_revision(app, "shout", SHOUT, rev="30000101000000", down=first)
    assert run(app, "-m", "migrate", "upgrade", database_url=database_url).returncode == 0
    shouted = snapshot(db)
    assert shouted["users"][0].name.endswith("!") and not shouted["users"][0].name.endswith("!!")

    stamp = run(app, "-m", "alembic", "stamp", first, database_url=database_url)
    assert stamp.returncode == 0, stamp.stderr
    result = status(app, database_url)
    assert result.returncode == 7 and "Migration status: INCONSISTENT" in result.stdout
    assert "the version was set back" in result.stdout
    for command in (["-m", "migrate", "upgrade"], ["-m", "alembic", "upgrade", "head"]):
        line = clean_failure(run(app, *command, database_url=database_url))
        assert "the history records revision 30000101000000 as applied here" in line, line
        assert "python -m alembic stamp 30000101000000" in line
    assert snapshot(db) == shouted  # not shouted twice

    # The way back the message gives: stamp forward again; then all is well.
    assert run(app, "-m", "alembic", "stamp", "30000101000000", database_url=database_url).returncode == 0
    assert status(app, database_url).returncode == 0
    assert snapshot(db) == shouted


def test_a_version_set_ahead_of_the_history_is_reported(step, database_url, db):
    app = managed_production(step, database_url, db)
    write_revision(app, "shout", SHOUT, rev="30000101000000", down=initialize_revision(app))
    with db.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '30000101000000'"))
    result = status(app, database_url)
    assert result.returncode == 7, result.stdout
    assert "which the history never recorded as applied" in result.stdout


def test_a_held_migration_lock_is_reported_with_who_holds_it(step, database_url, db):
    app = managed_production(step, database_url, db)
    holder = pymysql.connect(host=database_url.host, port=database_url.port, user=database_url.username,
                             password=database_url.password or "", database=database_url.database)
    try:
        with holder.cursor() as cur:
            cur.execute("SELECT GET_LOCK(%s, 0), CONNECTION_ID()", [f"migrate:{database_url.database}"[:64]])
            locked, holder_id = cur.fetchone()
        assert locked == 1
        result = status(app, database_url)
    finally:
        holder.close()
    assert result.returncode == 8, result.stdout
    assert "Migration status: LOCKED" in result.stdout
    assert f"Migration lock:   held by connection {holder_id} (" in result.stdout
    assert status(app, database_url).returncode == 0  # released with its session


@pytest.mark.parametrize("case", ["unhashed", "two heads", "applied head deleted", "middle deleted"])
def test_plain_alembic_refuses_what_migrate_refuses(step, database_url, db, case):
    app = managed_production(step, database_url, db)
    first = initialize_revision(app)
    versions = app / "migrations" / "versions"
    expected = {
        "unhashed": "checksum mismatch in migrations/revisions.sum",
        "two heads": "migrations/versions has 2 heads",
        "applied head deleted": "which is not in migrations/versions",
        "middle deleted": "does not hold a whole history",
    }[case]
    if case == "unhashed":  # a revision copied in by hand
        write_revision(app, "copied", SHOUT, rev="30000101000000", down=first, rehash=False)
    elif case == "two heads":
        write_revision(app, "a", SHOUT, rev="30000101000000", down=first)
        write_revision(app, "b", SHOUT, rev="30000101000001", down=first)
    elif case == "applied head deleted":
        write_revision(app, "shout", SHOUT, rev="30000101000000", down=first)
        assert run(app, "-m", "migrate", "upgrade", database_url=database_url).returncode == 0
        (versions / "30000101000000_shout.py").unlink()
        assert run(app, "-m", "migrate", "hash").returncode == 0
    else:
        write_revision(app, "shout", SHOUT, rev="30000101000000", down=first)
        write_revision(app, "nickname", ADD_NICKNAME, rev="30000101000001", down="30000101000000")
        (versions / "30000101000000_shout.py").unlink()
        assert run(app, "-m", "migrate", "hash").returncode == 0
    before, rows_before = history(db), snapshot(db)
    for command in (["-m", "alembic", "upgrade", "head"], ["-m", "migrate", "upgrade"]):
        line = clean_failure(run(app, *command, database_url=database_url))
        assert line.startswith("error: ") and expected in line, (command, line)
    assert history(db) == before  # no bogus failed row
    assert snapshot(db) == rows_before


@pytest.mark.parametrize("step_name", ["step-3-apply", "step-4-new-migration",
                                       "step-5-custom-migration", "step-6-verify-safety",
                                       "step-7-big-tables"])
def test_offline_sql_works_for_every_revision(step, step_name):
    """`alembic upgrade head --sql`: before, an AttributeError in step 5's seed_users."""
    result = run(step(step_name), "-m", "alembic", "upgrade", "head", "--sql")
    assert result.returncode == 0, result.stderr
    assert "CREATE TABLE users" in result.stdout
    if step_name >= "step-5":
        assert "INSERT INTO users (name, email, title) VALUES ('George Costanza'" in result.stdout


@pytest.mark.parametrize("step_name, args, expected", [
    ("step-3-apply", ["baseline", ""], "baseline needs the revision"),
    ("step-6-verify-safety", ["lint", ""], "lint got an empty argument"),
])
def test_empty_arguments_get_one_line(step, database_url, step_name, args, expected):
    line = assert_clean_failure(run(step(step_name), "-m", "migrate", *args, database_url=database_url))
    assert expected in line


def test_a_missing_privilege_is_named_not_called_unreachable(step, server, database_url, db):
    """A user who may not create the history table: before, "MySQL could not be reached"."""
    user, password = f"nocreate_{secrets.token_hex(3)}", secrets.token_hex(8)
    admin = server.connect()
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
            cur.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON `{database_url.database}`.* TO '{user}'@'%'")
        url = database_url.set(username=user, password=password)
        line = assert_clean_failure(run(step("step-3-apply"), "-m", "migrate", "upgrade", database_url=url),
                                    password=password)
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
        admin.close()
    assert "could not be reached" not in line
    assert "grant the migration's user CREATE" in line and "1142" in line, line
