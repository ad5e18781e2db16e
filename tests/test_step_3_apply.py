"""step-3-apply: production is baselined after a schema check, then migrated under a lock."""

import re

import pytest
from sqlalchemy import inspect, text

from conftest import assert_clean_failure
from tutorial_kit.steps import run, run_at_once

USERS, POSTS = 3000, 6000


def revision_of(app, name: str) -> str:
    """The revision id written in migrations/versions/*_<name>.py (the file name's time may
    be a second later than the id, when planning crossed a second)."""
    [path] = (app / "migrations" / "versions").glob(f"*_{name}.py")
    return re.search(r"^revision: str = '(\w+)'", path.read_text(), re.M).group(1)


def initialize_revision(app) -> str:
    return revision_of(app, "initialize")


def production(step, database_url, engine):
    """A database made by start/'s create_all(), with thousands of users and posts."""
    assert run(step("start"), "main.py", database_url=database_url).returncode == 0
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO users (name, email) VALUES (:name, :email)"),
            [{"name": f"User {i}", "email": f"user{i}@example.com"} for i in range(USERS)],
        )
        conn.execute(
            text(
                "INSERT INTO blogs (title, body, author_id) "
                "SELECT CONCAT('Post ', id), REPEAT('text ', id % 50), id FROM users"
            )
        )
        # The rest without an author, as ON DELETE SET NULL leaves them.
        orphans = POSTS - 1 - (USERS + 1)  # less the demo post and one post per user
        conn.execute(
            text(
                "INSERT INTO blogs (title, body, author_id) "
                f"SELECT CONCAT('Orphan ', id), 'x', NULL FROM users LIMIT {orphans}"
            )
        )


def snapshot(engine) -> dict[str, list[tuple]]:
    """Every row of the app's tables, in id order."""
    with engine.connect() as conn:
        return {
            table: conn.execute(text(f"SELECT * FROM `{table}` ORDER BY id")).all()
            for table in ("users", "blogs")
        }


def version_table_exists(engine) -> bool:
    return "alembic_version" in inspect(engine).get_table_names()


def test_production_is_baselined_with_every_row_kept(step, database_url, dev_database_url, db):
    production(step, database_url, db)
    before = snapshot(db)
    assert (len(before["users"]), len(before["blogs"])) == (USERS + 1, POSTS)
    app = step("step-3-apply")
    urls = dict(database_url=database_url, dev_database_url=dev_database_url)

    # The app no longer migrates itself: it refuses an unmanaged database, and says how to
    # bring it under the migrations (baseline, since upgrade refuses it).
    line = assert_clean_failure(run(app, "main.py", **urls))
    assert "no migration history (create_all() made them)" in line
    assert "python -m migrate baseline REV" in line and "migrate upgrade" not in line

    status = run(app, "-m", "migrate", "status", **urls)
    assert status.returncode == 6, status.stderr  # NOT MANAGED
    assert "Migration status: NOT MANAGED" in status.stdout
    assert "holds tables (blogs, users) but no" in status.stdout
    assert "Pending:          1" in status.stdout

    # Atlas's "connected database is not clean".
    line = assert_clean_failure(run(app, "-m", "migrate", "upgrade", **urls))
    assert "holds tables (blogs, users) but no migration history" in line
    assert "python -m migrate baseline REV" in line
    assert not version_table_exists(db)

    revision = initialize_revision(app)
    baseline = run(app, "-m", "migrate", "baseline", revision, **urls)
    assert baseline.returncode == 0, baseline.stdout + baseline.stderr
    assert f"The schema matches revision {revision}: stamped" in baseline.stdout

    status = run(app, "-m", "migrate", "status", **urls)
    assert f"Current revision: {revision}" in status.stdout
    assert "Pending:          0" in status.stdout
    current = run(app, "-m", "alembic", "current", **urls)
    assert f"{revision} (head)" in current.stdout
    upgrade = run(app, "-m", "migrate", "upgrade", **urls)
    assert upgrade.returncode == 0 and f"Already at {revision}" in upgrade.stdout

    result = run(app, "main.py", **urls)
    assert result.returncode == 0, result.stderr
    assert f"{USERS + 1} user(s)" in result.stdout
    assert snapshot(db) == before  # every row still there, unchanged


DRIFTS = {
    "extra column": (
        "ALTER TABLE users ADD COLUMN nickname VARCHAR(20)",
        ["column users.nickname is not in revision {rev} (database has VARCHAR(20) NULL)"],
    ),
    "missing unique index": (
        "ALTER TABLE users DROP INDEX uq_users_email",
        ["index users.uq_users_email is missing (revision {rev} has UNIQUE (email))"],
    ),
    "changed column type": (
        "ALTER TABLE blogs MODIFY title VARCHAR(100) NOT NULL",
        ["column blogs.title: database has VARCHAR(100) NOT NULL, revision {rev} has VARCHAR(255) NOT NULL"],
    ),
    "foreign key without ON DELETE": (
        "ALTER TABLE blogs DROP FOREIGN KEY fk_blogs_author_id_users; ALTER TABLE blogs "
        "ADD CONSTRAINT fk_blogs_author_id_users FOREIGN KEY (author_id) REFERENCES users (id)",
        ["foreign key blogs.fk_blogs_author_id_users: database has (author_id) REFERENCES "
         "users (id), revision {rev} has (author_id) REFERENCES users (id) ON DELETE SET NULL"],
    ),
    "nullable column": (
        "ALTER TABLE users MODIFY name VARCHAR(255) NULL",
        ["column users.name: database has VARCHAR(255) NULL, revision {rev} has VARCHAR(255) NOT NULL"],
    ),
    "column collation": (
        "ALTER TABLE blogs MODIFY body TEXT COLLATE utf8mb4_bin NOT NULL",
        ["column blogs.body: database has TEXT NOT NULL COLLATE utf8mb4_bin, revision {rev} has TEXT NOT NULL"],
    ),
    "column comment": (
        "ALTER TABLE users MODIFY email VARCHAR(255) NOT NULL COMMENT 'login'",
        ["column users.email: database has VARCHAR(255) NOT NULL COMMENT 'login', revision {rev} has VARCHAR(255) NOT NULL"],
    ),
    "check constraint": (
        "ALTER TABLE users ADD CONSTRAINT ck_users_email CHECK (email LIKE '%@%')",
        ["check users.ck_users_email is not in revision {rev} (database has email LIKE '%@%')"],
    ),
    "table comment": (
        "ALTER TABLE users COMMENT 'people'",
        ["table users: database has ENGINE=InnoDB COLLATE={collation} COMMENT 'people', "
         "revision {rev} has ENGINE=InnoDB COLLATE={collation}"],
    ),
}
# Not in "all at once": it drops the foreign key that another drift changes.
ALONE = {
    "table engine": (
        "ALTER TABLE blogs DROP FOREIGN KEY fk_blogs_author_id_users; ALTER TABLE blogs ENGINE=MyISAM",
        ["foreign key blogs.fk_blogs_author_id_users is missing (revision {rev} has (author_id) "
         "REFERENCES users (id) ON DELETE SET NULL)",
         "table blogs: database has ENGINE=MyISAM COLLATE={collation}, revision {rev} has "
         "ENGINE=InnoDB COLLATE={collation}"],
    ),
}


def collation_of(engine) -> str:
    with engine.connect() as conn:
        return conn.scalar(text("SELECT @@collation_database"))


@pytest.mark.parametrize("drift", [*DRIFTS, *ALONE, "all at once"])
def test_drifted_production_is_not_baselined(
        step, database_url, dev_database_url, db, drift):
    production(step, database_url, db)
    chosen = DRIFTS.values() if drift == "all at once" else [{**DRIFTS, **ALONE}[drift]]
    with db.begin() as conn:
        for statements, _ in chosen:
            for statement in statements.split("; "):
                conn.execute(text(statement))
    before = snapshot(db)
    app = step("step-3-apply")
    revision = initialize_revision(app)
    result = run(app, "-m", "migrate", "baseline", revision,
                 database_url=database_url, dev_database_url=dev_database_url)
    line = assert_clean_failure(result)
    collation = collation_of(db)
    expected = [d.format(rev=revision, collation=collation) for _, diffs in chosen for d in diffs]
    listed = [l.strip() for l in result.stdout.splitlines()]
    assert sorted(listed) == sorted(expected)
    assert f"differs from revision {revision} in {len(expected)} place(s)" in line
    assert "nothing was stamped" in line
    assert not version_table_exists(db)
    assert snapshot(db) == before


def test_baseline_builds_the_revision_with_productions_collation(step, database_url, dev_database_url, db):
    """A production database whose default collation is not the server's is no drift."""
    with db.begin() as conn:
        conn.execute(text(f"ALTER DATABASE `{database_url.database}` COLLATE utf8mb4_bin"))
    production(step, database_url, db)
    before = snapshot(db)
    app = step("step-3-apply")
    revision = initialize_revision(app)
    result = run(app, "-m", "migrate", "baseline", revision,
                 database_url=database_url, dev_database_url=dev_database_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"The schema matches revision {revision}" in result.stdout
    assert "Not compared: column order, triggers, views" in result.stdout
    with db.connect() as conn:  # production's tables differ from what the server would make
        assert conn.scalar(text("SELECT @@collation_server")) != "utf8mb4_bin"
        assert conn.scalar(text(
            "SELECT TABLE_COLLATION FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'users'")) == "utf8mb4_bin"
    assert snapshot(db) == before


def test_concurrent_upgrades_take_turns(step, database_url, db):
    app = step("step-3-apply")
    processes = run_at_once(app, "-m", "migrate", "upgrade", copies=6, database_url=database_url,
                            timeout=120)
    results = [(p.returncode, p.stdout, p.stderr) for p in processes]
    assert [code for code, _, _ in results] == [0] * 6, results
    waited = "Waiting for another process's migration to finish...\n"
    assert all(err in ("", waited) for _, _, err in results), results
    outputs = [out for _, out, _ in results]
    assert sum("Upgraded from an empty database" in out for out in outputs) == 1
    assert sum("Already at" in out for out in outputs) == 5
    check = run(app, "-m", "alembic", "check", database_url=database_url)
    assert check.returncode == 0, check.stdout + check.stderr
    with db.connect() as conn:
        assert conn.scalar(text("SELECT COUNT(*) FROM alembic_version")) == 1


def test_fresh_database_is_upgraded_then_the_app_runs(step, database_url, db):
    app = step("step-3-apply")
    upgrade = run(app, "-m", "migrate", "upgrade", database_url=database_url)
    assert upgrade.returncode == 0, upgrade.stderr
    assert f"Applying {initialize_revision(app)}  initialize" in upgrade.stdout
    for _ in range(2):
        result = run(app, "main.py", database_url=database_url)
        assert result.returncode == 0, result.stderr
    with db.connect() as conn:
        assert conn.scalar(text("SELECT COUNT(*) FROM users")) == 1


def test_app_on_an_out_of_date_database_says_migrate(step, database_url, dev_database_url, db):
    app = step("step-3-apply")
    assert run(app, "-m", "migrate", "upgrade", database_url=database_url).returncode == 0
    models = app / "models.py"
    models.write_text(models.read_text().replace(
        "    name: Mapped[str]", "    title: Mapped[str | None] = mapped_column(String(255))\n    name: Mapped[str]"))
    planned = run(app, "-m", "migrate", "generate", "add_user_title", dev_database_url=dev_database_url)
    assert planned.returncode == 0, planned.stderr
    assert planned.stdout.split("which runs:")[1].split() == \
        "ALTER TABLE users ADD COLUMN title VARCHAR(255);".split()  # no lock nor history
    old = initialize_revision(app)
    new = revision_of(app, "add_user_title")

    line = assert_clean_failure(run(app, "main.py", database_url=database_url))
    assert f"database is at revision {old}, this code needs {new}" in line
    status = run(app, "-m", "migrate", "status", database_url=database_url)
    assert "Pending:          1" in status.stdout and f"{new}  add_user_title" in status.stdout
    assert run(app, "-m", "migrate", "upgrade", database_url=database_url).returncode == 0
    assert run(app, "main.py", database_url=database_url).returncode == 0
    assert "title" in [c["name"] for c in inspect(db).get_columns("users")]


@pytest.mark.parametrize("command", ["status", "upgrade"])
def test_a_revision_from_newer_code_is_named(step, database_url, db, command):
    app = step("step-3-apply")
    assert run(app, "-m", "migrate", "upgrade", database_url=database_url).returncode == 0
    with db.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '29991231235959'"))
    line = assert_clean_failure(run(app, "-m", "migrate", command, database_url=database_url))
    assert "at revision 29991231235959, which is not in migrations/versions" in line
    # Before: "... this code needs REV: run `python -m migrate upgrade`", which cannot help.
    line = assert_clean_failure(run(app, "main.py", database_url=database_url))
    assert "at revision 29991231235959, which this code does not have" in line
    assert "deploy that code" in line and "migrate upgrade" not in line


def test_plain_alembic_keeps_working(step, database_url):
    app = step("step-3-apply")
    rev = initialize_revision(app)
    for args, expected in [
        (["upgrade", "head"], ""),
        (["current"], f"{rev} (head)"),
        (["history"], f"<base> -> {rev} (head), initialize"),
        (["check"], "No new upgrade operations detected"),
    ]:
        result = run(app, "-m", "alembic", *args, database_url=database_url)
        assert result.returncode == 0, result.stderr
        assert expected in result.stdout


SECRET = "s3cret-Pa55word"


@pytest.mark.parametrize(
    "case, args, url, expected",
    [
        ("no command", [], "ok", "usage: python -m migrate generate NAME | status | upgrade [--repaired]"),
        ("unknown command", ["apply"], "ok", "usage: python -m migrate"),
        ("baseline without REV", ["baseline"], "ok", "baseline needs the revision"),
        ("unknown revision", ["baseline", "abc123"], "filled", "unknown revision 'abc123'"),
        ("baseline an empty database", ["baseline", "REV"], "ok", "the database is empty"),
        ("baseline twice", ["baseline", "REV"], "managed", "already at revision"),
        ("malformed URL", ["status"], f"mysql+pymysql://root:{SECRET}@h:port/db", "not a valid URL"),
        ("wrong password", ["upgrade"], "password", "check the user name and password"),
        ("unreachable", ["upgrade"], "port", "cannot reach MySQL at 127.0.0.1:1"),
        ("unset", ["status"], None, "DATABASE_URL is not set"),
        ("no dev database", ["baseline", "REV"], "filled, no dev", "DEV_DATABASE_URL is not set and no Docker"),
        ("dev is production", ["baseline", "REV"], "filled, dev is production", "which holds tables (blogs, users)"),
    ],
)
def test_bad_input_gets_one_clear_line(step, database_url, dev_database_url, db, case, args, url, expected):
    app = step("step-3-apply")
    rev = initialize_revision(app)
    url, _, dev = url.partition(", ") if url else (url, "", "")
    if url == "filled":
        assert run(step("start"), "main.py", database_url=database_url).returncode == 0
    if url == "managed":
        assert run(app, "-m", "migrate", "upgrade", database_url=database_url).returncode == 0
    before = (sorted(inspect(db).get_table_names()), snapshot(db) if url in ("filled", "managed") else None)
    urls = {
        "ok": database_url, "filled": database_url, "managed": database_url,
        "password": database_url.set(password=SECRET),
        "port": database_url.set(port=1, password=SECRET),
    }
    args = [rev if a == "REV" else a for a in args]
    devs = {"": dev_database_url, "no dev": None, "dev is production": database_url}
    result = run(app, "-m", "migrate", *args, database_url=urls.get(url, url),
                 dev_database_url=devs[dev], env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    line = assert_clean_failure(result, password=SECRET)
    assert line.startswith("error: ") and expected in line, (case, line)
    db.dispose()
    after = (sorted(inspect(db).get_table_names()), snapshot(db) if url in ("filled", "managed") else None)
    assert after == before  # nothing half-done


@pytest.mark.parametrize("step_name", ["step-3-apply", "step-6-verify-safety"])
def test_status_into_a_pipe_that_closes_early_ends_quietly(step, database_url, step_name):
    """`python -m migrate status | head`: before, a BrokenPipeError traceback once head quit."""
    import subprocess

    from tutorial_kit.steps import python_on_path, step_env

    app = step(step_name)
    assert run(app, "-m", "migrate", "upgrade", database_url=database_url).returncode == 0
    env = step_env(database_url)
    env["PATH"] = f"{python_on_path(app.parent / 'bin')}:{env['PATH']}"
    # `true` reads nothing and is gone before status writes: every write meets a closed pipe.
    result = subprocess.run(
        ["bash", "-c", "python -m migrate status | true; echo status=${PIPESTATUS[0]}"],
        cwd=app, env=env, capture_output=True, text=True, timeout=60)
    assert result.stderr == "" and result.stdout == "status=1\n", result.stderr
