"""migrations/revisions.sum (Atlas's atlas.sum) and the other checks of the migration directory,
on step-3-apply, where revisions are first applied, against a real server."""

import subprocess

import pytest
from sqlalchemy import text

from conftest import assert_clean_failure
from test_step_3_apply import initialize_revision, snapshot
from test_step_3_history import ADD_NICKNAME, history, managed_production
from tutorial_kit.revisions import write_revision
from tutorial_kit.steps import run


def versions(app):
    return app / "migrations" / "versions"


@pytest.mark.parametrize("change", ["added", "edited", "removed"])
def test_a_revision_changed_without_rehashing_is_refused(step, database_url, db, change):
    app = managed_production(step, database_url, db)
    first = initialize_revision(app)
    write_revision(app, "add_nickname", ADD_NICKNAME, rev="30000101000000", down=first)  # re-hashed
    name = "30000101000000_add_nickname.py"
    if change == "added":
        write_revision(app, "by_hand", "pass", rev="30000101000001", down="30000101000000",
                       rehash=False)
        expected = "30000101000001_by_hand.py was added"
    elif change == "edited":
        path = versions(app) / name
        path.write_text(path.read_text().replace("String(40)", "String(80)"))
        expected = f"L3: {name} was edited"
    else:
        (versions(app) / name).unlink()
        expected = f"L3: {name} was removed"
    before = snapshot(db)

    for command in ("status", "upgrade"):
        line = assert_clean_failure(run(app, "-m", "migrate", command, database_url=database_url))
        assert line.startswith("error: checksum mismatch in migrations/revisions.sum: ")
        assert expected in line and "`python -m migrate hash`" in line
    assert snapshot(db) == before and len(history(db)) == 1  # nothing ran

    assert run(app, "-m", "migrate", "hash").returncode == 0
    upgrade = run(app, "-m", "migrate", "upgrade", database_url=database_url)
    assert upgrade.returncode == 0, upgrade.stderr
    assert [tuple(r)[:3] for r in snapshot(db)["users"]] == [tuple(r)[:3] for r in before["users"]]


def git(repo, *args, check=True):
    result = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def two_branches(app, *, with_sum: bool):
    """Two branches of the app that each plan a revision after `initialize`; merge them."""
    if not with_sum:
        (app / "migrations" / "revisions.sum").unlink()
    git(app, "init", "-q", "-b", "main")
    git(app, "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A")
    git(app, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "start")
    first = initialize_revision(app)
    for branch, rev, column in (("alice", "30000101000000", "nickname"), ("bob", "30000101000001", "title")):
        git(app, "checkout", "-q", "-b", branch, "main")
        write_revision(app, f"add_{column}",
                       f'op.add_column("users", sa.Column("{column}", sa.String(40)))',
                       rev=rev, down=first)
        if not with_sum:
            (app / "migrations" / "revisions.sum").unlink()
        git(app, "add", "-A")
        git(app, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", f"add {column}")
    git(app, "checkout", "-q", "alice")
    return git(app, "-c", "user.name=t", "-c", "user.email=t@t", "merge", "bob", "-m", "merge", check=False)


def test_two_branches_that_each_add_a_revision_conflict_in_git(step):
    app = step("step-3-apply")
    merge = two_branches(app, with_sum=True)
    assert merge.returncode != 0
    conflicted = git(app, "diff", "--name-only", "--diff-filter=U").stdout.split()
    assert conflicted == ["migrations/revisions.sum"]


def test_without_the_checksum_file_they_merge_quietly_into_two_heads(step, database_url):
    """What the checksum file prevents; the two heads are still refused, in one line."""
    app = step("step-3-apply")
    merge = two_branches(app, with_sum=False)
    assert merge.returncode == 0, merge.stdout + merge.stderr
    assert run(app, "-m", "migrate", "hash").returncode == 0
    for command in (["status"], ["upgrade"]):
        line = assert_clean_failure(run(app, "-m", "migrate", *command, database_url=database_url))
        assert "migrations/versions has 2 heads (30000101000000, 30000101000001)" in line
        assert "python -m alembic merge -m merge 30000101000000 30000101000001" in line
    line = assert_clean_failure(run(app, "main.py", database_url=database_url))
    assert "more than one head" in line


def test_a_revision_edited_after_it_was_applied_is_flagged(step, database_url, db):
    app = managed_production(step, database_url, db)
    first = initialize_revision(app)
    write_revision(app, "add_nickname", ADD_NICKNAME, rev="30000101000000", down=first)
    assert run(app, "-m", "migrate", "upgrade", database_url=database_url).returncode == 0
    path = versions(app) / "30000101000000_add_nickname.py"
    path.write_text(path.read_text().replace("String(40)", "String(80)"))
    assert run(app, "-m", "migrate", "hash").returncode == 0  # re-hashing does not hide it
    write_revision(app, "add_title", 'op.add_column("users", sa.Column("title", sa.String(40)))',
                   rev="30000101000001", down="30000101000000")
    before = snapshot(db)

    status = run(app, "-m", "migrate", "status", database_url=database_url)
    assert status.returncode == 5, status.stderr
    assert "Migration status: EDITED" in status.stdout
    assert "Edited after it was applied here: 30000101000000 (" in status.stdout
    line = assert_clean_failure(run(app, "-m", "migrate", "upgrade", database_url=database_url))
    assert "revision 30000101000000 (" in line and "was edited after it was applied" in line
    assert snapshot(db) == before
    with db.connect() as conn:
        assert conn.scalar(text("SELECT version_num FROM alembic_version")) == "30000101000000"


@pytest.mark.parametrize("command", ["status", "upgrade"])
def test_a_database_newer_code_migrated_is_named_in_one_line(step, database_url, command):
    """Its history names revisions this code does not have: say so, no traceback."""
    newer = step("step-5-custom-migration")
    assert run(newer, "-m", "migrate", "upgrade", database_url=database_url).returncode == 0
    line = assert_clean_failure(run(step("step-3-apply"), "-m", "migrate", command, database_url=database_url))
    assert "which is not in migrations/versions" in line
