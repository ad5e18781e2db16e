"""Following along in a copy of your own (tutorial_kit.follow), and walking the READMEs by hand
in a clone of the repository: `git status` stays clean."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pymysql
import pytest
from sqlalchemy.engine import make_url

from conftest import assert_clean_failure
from tutorial_kit.readme import Handoff, ReadmeRun, parse
from tutorial_kit.steps import REPO, STEPS, step_env, url_text


def clone(tmp_path: Path) -> Path:
    """A fresh clone of the working tree as it is (committed or not), without ../shared."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO,
        capture_output=True, text=True, check=True,
    ).stdout.split("\0")
    root = tmp_path / "clone"
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / name)
    git = lambda *args: subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)
    git("init", "-q")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "clone")
    return root


def git_status(root: Path) -> str:
    return subprocess.run(["git", "status", "--porcelain", "--ignored=no"], cwd=root,
                          capture_output=True, text=True, check=True).stdout


def revision_of(url) -> str | None:
    url = make_url(url_text(url))
    with pymysql.connect(host=url.host, port=url.port, user=url.username,
                         password=url.password or "", database=url.database) as conn:
        with conn.cursor() as cur:
            cur.execute("SHOW TABLES LIKE 'alembic_version'")
            if cur.fetchone() is None:
                return None
            cur.execute("SELECT version_num FROM alembic_version")
            row = cur.fetchone()
    return row[0] if row else None


def test_walking_every_readme_by_hand_leaves_the_clone_clean_and_the_tutorial_passing(server, tmp_path):
    root = clone(tmp_path)
    out: list[str] = []
    steps = [s for s in STEPS if (root / s / "README.md").is_file()]
    # Each step's own blocks, in the step folders themselves (not copies), one after the other,
    # each going on from the databases the step before left, as in `make tutorial`.
    handoff = Handoff(b.run_after[0] for s in steps for b in parse(root / s / "README.md")
                      if len(b.run_after) == 1)
    run = ReadmeRun(server, tmp_path / "work", out.append, root=root, handoff=handoff, in_place=True)
    for name in steps:
        run.step(name)
        if handoff.wants(name):
            # No step ends with the database at a revision the next step does not have.
            left = handoff._left[name].result()
            at = revision_of(left.urls["app"])
            following = steps[min(steps.index(name) + 1, len(steps) - 1)]
            if at is not None:
                found = list((root / following / "migrations" / "versions").glob(f"{at}_*.py"))
                assert found, f"{name} leaves the database at {at}, which {following} does not have"
    handoff.drop_leftovers()
    # The my-app/ route, from the clone's root, as one reader in one terminal.
    walked = len(out)
    run.follow_along(steps, root)
    transcript = "\n".join(out[walked:])
    mine = sorted(p.name for p in (root / "my-app" / "migrations" / "versions").glob("*.py"))
    shipped = sorted(p.name for p in (root / steps[-1] / "migrations" / "versions").glob("*.py"))
    assert [n.split("_", 1)[1] for n in mine] == [n.split("_", 1)[1] for n in shipped]
    assert not set(mine) & set(shipped)  # written by the walk's own hand, not copied
    assert f"Wrote migrations/versions/{mine[-1]}" in transcript
    failed, passed = transcript.index("Lint failed."), transcript.rindex("Lint passed.")
    [filled] = [name for name in mine if name.endswith("_user_title_required.py")]  # step 6's
    assert failed < transcript.index(f"Filled in migrations/versions/{filled}") < passed
    assert "1 row of users has a NULL title: this revision will fail" in transcript
    assert git_status(root) == ""
    # What git ignores is only what Python caches and the reader's own copy, which `make
    # tutorial` never reads (it copies step folders without __pycache__; its my-app is in
    # build/): the tree it runs on is the one committed, which the tutorial test runs.
    ignored = subprocess.run(["git", "status", "--porcelain", "--ignored"], cwd=root,
                             capture_output=True, text=True, check=True).stdout.splitlines()
    assert ignored and all(line.startswith("!! ") for line in ignored)
    assert {line[3:] for line in ignored if not line.endswith("__pycache__/")} == {"my-app/"}


def kit(*args: str, app: Path, database_url=None, dev_database_url=None, cwd: Path | None = None):
    env = {**step_env(database_url, dev_database_url), "TUTORIAL_MY_APP": str(app)}
    return subprocess.run([sys.executable, "-m", "tutorial_kit", *args], cwd=cwd or app.parent,
                          env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def app_database(server):
    with server.database("app") as url:
        yield url


def test_follow_brings_in_only_what_is_written_by_hand(tmp_path, app_database):
    app = tmp_path / "my-app"
    assert kit("follow", "start", app=app, database_url=app_database).returncode == 0
    for step in STEPS[1:]:
        result = kit("follow", step, app=app, database_url=app_database)
        if step == "step-3-apply":  # step 2's revision was never generated
            line = assert_clean_failure(result)
            assert "finish step-2-generate first" in line and "generate initialize" in line
            break
        assert result.returncode == 0, result.stderr
        assert "No revision was copied" in result.stdout
    assert (app / "migrate" / "generate.py").is_file() and (app / "models.py").is_file()
    assert not list((app / "migrations" / "versions").iterdir())
    assert not (app / "migrations" / "revisions.sum").exists() and not (app / "README.md").exists()
    patch = (app / ".tutorial" / "step-2-generate.patch").read_text()
    assert "+++ step-2-generate/migrate/generate.py" in patch and "_initialize" not in patch


def test_follow_says_in_one_line_what_is_out_of_order(tmp_path, app_database):
    app = tmp_path / "my-app"
    line = assert_clean_failure(kit("follow", "step-2-generate", app=app, database_url=app_database))
    assert "follow start" in line
    assert kit("follow", "start", app=app, database_url=app_database).returncode == 0
    line = assert_clean_failure(kit("follow", "start", app=app, database_url=app_database))
    assert "exists already (at start)" in line and "reset" in line
    line = assert_clean_failure(kit("follow", "step-2-generate", app=app, database_url=app_database))
    assert "is at start" in line and "follow step-1-versioned" in line
    line = assert_clean_failure(kit("follow", "step-9", app=app, database_url=app_database))
    assert "no step 'step-9'" in line
    # An edit of the reader's in the way of the next step's changes: nothing is copied.
    (app / "requirements.txt").write_text("mine\n")
    line = assert_clean_failure(kit("follow", "step-1-versioned", app=app, database_url=app_database))
    assert "requirements.txt is not as start left it" in line
    assert not (app / "alembic.ini").exists()


def test_follow_start_wants_an_empty_app_database(tmp_path, app_database):
    from sqlalchemy import create_engine, text

    engine = create_engine(url_text(app_database))
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE users (id INT PRIMARY KEY)"))
    engine.dispose()
    line = assert_clean_failure(kit("follow", "start", app=tmp_path / "my-app", database_url=app_database))
    assert "already holds tables (users)" in line and "reset" in line
    assert not (tmp_path / "my-app").exists()
    url = make_url(url_text(app_database))
    line = assert_clean_failure(kit("follow", "start", app=tmp_path / "my-app",
                                    database_url=url.set(port=1, password="s3cret!")))
    assert "cannot reach MySQL" in line and "s3cret!" not in line


def test_check_and_fill_compare_with_the_step(tmp_path, app_database, dev_database_url):
    app = tmp_path / "my-app"
    for step in STEPS[:3]:
        assert kit("follow", step, app=app, database_url=app_database).returncode == 0
    line = assert_clean_failure(kit("check", app=app))
    assert "has no revision initialize yet" in line
    generated = subprocess.run([sys.executable, "-m", "migrate", "generate", "initialize"], cwd=app,
                               env=step_env(app_database, dev_database_url), capture_output=True,
                               text=True, timeout=120)
    assert generated.returncode == 0, generated.stderr
    assert "the same operations as step-2-generate" in kit("check", app=app).stdout
    [mine] = (app / "migrations" / "versions").glob("*_initialize.py")
    mine.write_text(mine.read_text().replace("op.drop_table('users')", "pass"))
    line = assert_clean_failure(kit("check", app=app))
    assert f"{mine.name} differs" in line and "op.drop_table('users')" in line
    line = assert_clean_failure(kit("fill", "seed_users", app=app))
    assert "step-2-generate has no revision seed_users" in line
    assert "Filled in" in kit("fill", "initialize", app=app).stdout  # the step's, back
    assert "nothing to fill in" in kit("fill", "initialize", app=app).stdout
    assert kit("check", app=app).returncode == 0


def test_reset_removes_the_copy_and_empties_the_tutorials_databases(server, tmp_path, app_database):
    app = tmp_path / "my-app"
    assert kit("follow", "start", app=app, database_url=app_database).returncode == 0
    run = subprocess.run([sys.executable, "main.py"], cwd=app, env=step_env(app_database),
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    result = kit("reset", app=app, database_url=app_database)
    assert result.returncode == 0, result.stderr
    assert not app.exists()
    assert kit("follow", "start", app=app, database_url=app_database).returncode == 0  # empty again
    with server.database("mine") as other:
        line = assert_clean_failure(kit("reset", app=app, database_url=other))
        assert "names the database 'mine_" in line
    # A folder the kit did not make is not removed.
    shutil.rmtree(app)
    app.mkdir()
    (app / "precious.txt").write_text("mine")
    line = assert_clean_failure(kit("reset", app=app))
    assert "was not made by the kit" in line and (app / "precious.txt").exists()
