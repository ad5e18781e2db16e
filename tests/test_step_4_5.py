"""step-4-new-migration and step-5-custom-migration, deployed to a production database that
create_all() made and step 3 baselined, with thousands of rows, on a real server."""

import pytest
from sqlalchemy import inspect, text

from conftest import assert_clean_failure
from test_step_3_apply import USERS, initialize_revision, production, revision_of, snapshot
from tutorial_kit.steps import run

SEED = {
    "jerry@seinfeld.io": ("Jerry Seinfeld", "Mr."),
    "george@costanza.io": ("George Costanza", "Mr."),
}


def baselined(step, database_url, dev_database_url, db):
    """Production as step 3 leaves it: made by create_all(), rows added, baselined."""
    production(step, database_url, db)
    app = step("step-3-apply")
    result = run(app, "-m", "migrate", "baseline", initialize_revision(app),
                 database_url=database_url, dev_database_url=dev_database_url)
    assert result.returncode == 0, result.stdout + result.stderr


def users(db) -> dict[str, tuple]:
    with db.connect() as conn:
        return {row.email: (row.id, row.name, row.title) for row in
                conn.execute(text("SELECT id, name, email, title FROM users"))}


def test_step_4_adds_the_title_to_production(step, database_url, dev_database_url, db):
    baselined(step, database_url, dev_database_url, db)
    before = snapshot(db)
    app = step("step-4-new-migration")
    urls = dict(database_url=database_url, dev_database_url=dev_database_url)
    new = revision_of(app, "add_user_title")

    line = assert_clean_failure(run(app, "main.py", **urls))
    assert f"this code needs {new}" in line
    status = run(app, "-m", "migrate", "status", **urls)
    assert "Pending:          1" in status.stdout and f"{new}  add_user_title" in status.stdout
    upgrade = run(app, "-m", "migrate", "upgrade", **urls)
    assert upgrade.returncode == 0, upgrade.stderr
    assert f"Upgraded from {initialize_revision(app)} to {new}." in upgrade.stdout
    result = run(app, "main.py", **urls)
    assert result.returncode == 0, result.stderr
    assert f"{USERS + 1} user(s)" in result.stdout

    title = {c["name"]: c for c in inspect(db).get_columns("users")}["title"]
    assert title["nullable"] is True and title["type"].length == 255
    after = snapshot(db)
    assert [tuple(r) for r in after["users"]] == [(*r, None) for r in before["users"]]
    assert after["blogs"] == before["blogs"]
    # The models and the migrations agree: the planner has nothing to write.
    again = run(app, "-m", "migrate", "generate", "add_user_title", dev_database_url=dev_database_url)
    assert "nothing to generate" in again.stdout
    check = run(app, "-m", "alembic", "check", database_url=database_url)
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.parametrize("jerry_exists", [False, True], ids=["fresh", "jerry-exists"])
def test_step_5_seeds_production_without_touching_who_is_there(
        step, database_url, dev_database_url, db, jerry_exists):
    baselined(step, database_url, dev_database_url, db)
    urls = dict(database_url=database_url, dev_database_url=dev_database_url)
    assert run(step("step-4-new-migration"), "-m", "migrate", "upgrade", **urls).returncode == 0
    if jerry_exists:
        with db.begin() as conn:
            conn.execute(text("INSERT INTO users (name, email, title) "
                              "VALUES ('Jerome Seinfeld', 'jerry@seinfeld.io', 'Dr.')"))
    before_users, before = users(db), snapshot(db)
    app = step("step-5-custom-migration")

    upgrade = run(app, "-m", "migrate", "upgrade", **urls)
    assert upgrade.returncode == 0, upgrade.stderr
    after = users(db)
    assert {e: after[e] for e in before_users} == before_users  # nobody changed
    assert snapshot(db)["blogs"] == before["blogs"]
    added = sorted(set(after) - set(before_users))
    expected = sorted(e for e in SEED if e not in before_users)
    assert added == expected
    assert all(after[e][1:] == SEED[e] for e in added)

    # Downgrade removes what the upgrade added, and nothing that was there before.
    down = run(app, "-m", "alembic", "downgrade", "-1", **urls)
    assert down.returncode == 0, down.stderr
    assert users(db) == before_users
    assert snapshot(db) == before
    assert run(app, "-m", "migrate", "upgrade", **urls).returncode == 0
    assert sorted(set(users(db)) - set(before_users)) == expected


def test_step_5_downgrade_without_a_recorded_upgrade_refuses(step, database_url, db):
    app = step("step-5-custom-migration")
    seed = revision_of(app, "seed_users")
    title = revision_of(app, "add_user_title")
    assert run(app, "-m", "alembic", "upgrade", title, database_url=database_url).returncode == 0
    with db.begin() as conn:  # the seed users, put there by hand, then stamped
        conn.execute(text("INSERT INTO users (name, email, title) VALUES "
                          "('Jerry Seinfeld', 'jerry@seinfeld.io', 'Mr.')"))
    assert run(app, "-m", "alembic", "stamp", seed, database_url=database_url).returncode == 0
    before = users(db)
    result = run(app, "-m", "alembic", "downgrade", "-1", database_url=database_url)
    assert result.returncode == 1
    line = result.stderr.strip().splitlines()[-1]
    assert "Traceback" not in result.stderr
    assert f"revision {seed} (seed_users" in line
    assert "no upgrade of seed_users is recorded in alembic_history" in line
    assert users(db) == before
    with db.connect() as conn:
        assert conn.scalar(text("SELECT version_num FROM alembic_version")) == seed


def test_step_5_new_writes_an_empty_hashed_revision(step, database_url):
    app = step("step-5-custom-migration")
    result = run(app, "-m", "migrate", "new", "backfill_titles")
    assert result.returncode == 0, result.stderr
    [path] = (app / "migrations" / "versions").glob("*_backfill_titles.py")
    assert f"Wrote migrations/versions/{path.name}" in result.stdout
    source = path.read_text()
    assert f"down_revision: Union[str, Sequence[str], None] = '{revision_of(app, 'seed_users')}'" in source
    assert "def upgrade() -> None:\n    \"\"\"Upgrade schema.\"\"\"\n    pass" in source
    last = (app / "migrations" / "revisions.sum").read_text().splitlines()[-1]
    assert last.startswith(f"{path.name} h1:")
    upgrade = run(app, "-m", "migrate", "upgrade", database_url=database_url)
    assert upgrade.returncode == 0, upgrade.stderr  # hashed: nothing to refuse


@pytest.mark.parametrize("args, expected", [
    (["new"], "new needs one NAME"),
    (["new", "Seed-Users"], "'Seed-Users' is not a NAME"),
    (["new", "a", "b"], "new needs one NAME"),
])
def test_step_5_new_bad_input(step, args, expected):
    app = step("step-5-custom-migration")
    before = sorted((app / "migrations" / "versions").iterdir())
    line = assert_clean_failure(run(app, "-m", "migrate", *args))
    assert expected in line
    assert sorted((app / "migrations" / "versions").iterdir()) == before


def test_step_5_new_refuses_a_directory_edited_without_rehashing(step):
    app = step("step-5-custom-migration")
    [seed] = (app / "migrations" / "versions").glob("*_seed_users.py")
    seed.write_text(seed.read_text() + "# edited\n")
    sums = (app / "migrations" / "revisions.sum").read_text()
    line = assert_clean_failure(run(app, "-m", "migrate", "new", "more"))
    assert f"{seed.name} was edited" in line
    assert (app / "migrations" / "revisions.sum").read_text() == sums
    assert not list((app / "migrations" / "versions").glob("*_more.py"))
