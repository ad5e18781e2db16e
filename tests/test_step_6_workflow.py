"""step-6-verify-safety's CI recipe: valid for GitHub, and its `run:` steps work, in order.

GitHub's runner cannot run here, so the test plays it: a git repository made of the step folder
(the base branch, as `origin/main`), a pull request that adds a revision, the job's environment
with the local server in place of the MySQL service, each `run:` step in bash as GitHub runs it.
"""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sqlalchemy import create_engine, text

from conftest import repo_root
from tutorial_kit.revisions import write_revision
from tutorial_kit.steps import python_on_path, run, step_env, url_text

STEP = "step-6-verify-safety"
WORKFLOW = Path(".github/workflows/migrations.yml")


def test_workflow_is_valid_for_github():
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
         str(repo_root() / STEP / WORKFLOW)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=CI", "-c", "user.email=ci@example.com", *args],
                          cwd=repo, check=True, capture_output=True, text=True).stdout


def change_models(old: str, new: str):
    """A pull request that changes the models and adds the revision `generate` plans for it."""
    def change(app: Path, dev_database_url) -> None:
        models = app / "models.py"
        models.write_text(models.read_text().replace(old, new))
        planned = run(app, "-m", "migrate", "generate", "change", dev_database_url=dev_database_url)
        assert planned.returncode == 0, planned.stderr
    return change


def add_by_hand_without_rehashing(app: Path, dev_database_url) -> None:
    """A pull request that adds a hand-written revision but forgot `python -m migrate hash`."""
    write_revision(app, "change", "op.execute(\"UPDATE users SET title = 'Mx.' WHERE title = ''\")",
                   rehash=False)


def add_a_second_head(app: Path, dev_database_url) -> None:
    """A pull request whose revision follows the same one as the base branch's newest."""
    versions = sorted((app / "migrations" / "versions").glob("*.py"))
    parent = versions[-2].stem.split("_")[0]
    write_revision(app, "change", "pass", down=parent)  # re-hashed: only the heads are wrong


# The pull request; the step that must refuse it and what it must say (stdout + stderr).
PULL_REQUESTS = {
    "optional nickname": (change_models(
        "    name: Mapped[str]",
        "    nickname: Mapped[str | None] = mapped_column(String(40))\n    name: Mapped[str]"),
        None, ()),
    "blog body dropped": (change_models("    body: Mapped[str] = mapped_column(Text)\n", ""),
                          "Lint the revisions this pull request adds",
                          ("DS103 error", "Lint failed.")),
    "revision added without re-hashing": (
        add_by_hand_without_rehashing, "Verify the migration directory",
        ("error: checksum mismatch in migrations/revisions.sum: ", "_change.py was added",
         "`python -m migrate hash`")),
    "second head": (add_a_second_head, "Verify the migration directory",
                    ("error: migrations/versions has 2 heads", "python -m alembic merge")),
}


EVERY_STEP = "optional nickname"  # the pull request that passes: the job runs every step


@pytest.mark.parametrize("change", PULL_REQUESTS)
def test_workflow_steps_run_in_order(step, server, dev_database_url, change):
    make_change, failing_step, said = PULL_REQUESTS[change]
    app = step(STEP)
    git(app, "init", "-q", "-b", "main")
    git(app, "add", "-A")
    git(app, "commit", "-qm", "base")
    git(app, "update-ref", "refs/remotes/origin/main", "HEAD")
    git(app, "checkout", "-qb", "pull-request")
    make_change(app, dev_database_url)
    git(app, "add", "-A")
    git(app, "commit", "-qm", "pull request")

    job = yaml.safe_load((app / WORKFLOW).read_text())["jobs"]["migrations"]
    fresh = server.url.set(database=f"ci_{secrets.token_hex(4)}")  # the step creates it
    # The job's URLs name the service; here, the local server.
    assert set(job["env"]) == {"DEV_DATABASE_URL", "DATABASE_URL"}
    env = step_env(database_url=fresh, dev_database_url=dev_database_url)
    env["PATH"] = f"{python_on_path(app.parent / 'bin')}{os.pathsep}{env['PATH']}"
    env["GITHUB_BASE_REF"] = "main"
    outputs = {}
    try:
        for item in job["steps"]:
            if "run" not in item:
                continue  # checkout and setup-python: done above, and by the test's Python
            if item["name"] == "Install" and change != EVERY_STEP:
                continue  # the same in every case (pip finds the pins installed): played once
            result = subprocess.run(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", item["run"]],
                cwd=app, env={**env, **item.get("env", {})}, capture_output=True, text=True,
                timeout=300)
            outputs[item["name"]] = result.stdout
            if item["name"] == failing_step:  # the job stops here
                assert result.returncode == 1, result.stdout + result.stderr
                for words in said:
                    assert words in result.stdout + result.stderr, result.stdout + result.stderr
                assert "Traceback" not in result.stderr, result.stderr
                return
            assert result.returncode == 0, f"{item['name']}: {result.stdout}{result.stderr}"
    finally:
        engine = create_engine(url_text(server.url))
        with engine.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{fresh.database}`"))
        engine.dispose()
    assert failing_step is None
    lint = outputs["Lint the revisions this pull request adds"]
    assert "_change.py" in lint and "1 revision(s)" in lint and "Lint passed." in lint, lint
    assert "Applying" in outputs["Upgrade the fresh database"]
    assert list(outputs) == [s["name"] for s in job["steps"] if "run" in s]
