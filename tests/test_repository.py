"""The repository's promises: small step diffs, matching pins, self-contained step folders."""

import re
import subprocess
from pathlib import Path

import pytest

from conftest import repo_root
from tutorial_kit.diff import changes
from tutorial_kit.steps import STEPS

ROOT = repo_root()
def _revision(step: str, name: str = "initialize") -> str:
    [path] = (ROOT / step / "migrations" / "versions").glob(f"*_{name}.py")
    return f"migrations/versions/{path.name}"


EXPECTED = {
    ("start", "step-1-versioned"): lambda: {
        "added": {
            "alembic.ini",
            "migrations/env.py",
            "migrations/script.py.mako",
            "migrations/versions/.gitkeep",
        },
        "removed": set(),
        "changed": {"README.md", "requirements.txt"},
    },
    ("step-1-versioned", "step-2-generate"): lambda: {
        "added": {"migrate/__init__.py", "migrate/__main__.py", "migrate/generate.py",
                  "migrate/devdb.py", "migrate/integrity.py", "migrations/revisions.sum",
                  _revision("step-2-generate")},
        "removed": {"migrations/versions/.gitkeep"},
        "changed": {"README.md", "requirements.txt"},
    },
    ("step-2-generate", "step-3-apply"): lambda: {
        "added": {"migrate/revisions.py", "migrate/schema_compare.py", "migrate/history.py",
                  "migrate/lock.py", "migrate/sql.py", "migrate/resolve.py"},
        "removed": set(),
        "changed": {"README.md", "main.py", "migrations/env.py", "migrate/__main__.py",
                    "migrate/integrity.py", "requirements.txt", "alembic.ini"},
    },
    ("step-3-apply", "step-4-new-migration"): lambda: {
        "added": {_revision("step-4-new-migration", "add_user_title")},
        "removed": set(),
        "changed": {"README.md", "models.py", "main.py", "migrations/revisions.sum"},
    },
    ("step-4-new-migration", "step-5-custom-migration"): lambda: {
        "added": {_revision("step-5-custom-migration", "seed_users")},
        "removed": set(),
        "changed": {"README.md", "migrate/__main__.py", "migrations/revisions.sum"},
    },
    ("step-5-custom-migration", "step-6-verify-safety"): lambda: {
        "added": {_revision("step-6-verify-safety", "user_title_required"), "migrate/lint.py",
                  "migrate/lint_checks.py", "migrate/lint_sql.py", "migrate/sandbox.py",
                  ".github/workflows/migrations.yml"},
        "removed": set(),
        "changed": {"README.md", "models.py", "main.py", "migrate/__main__.py",
                    "migrations/revisions.sum"},
    },
    ("step-6-verify-safety", "step-7-big-tables"): lambda: {
        "added": {_revision("step-7-big-tables", "widen_user_email"), "migrate/online.py"},
        "removed": set(),
        "changed": {"README.md", "models.py", "alembic.ini", "migrations/env.py",
                    "migrations/revisions.sum", "migrate/__main__.py", "migrate/history.py",
                    "migrate/lint.py", "migrate/lint_checks.py", "migrate/revisions.py"},
    },
}


@pytest.mark.parametrize("old, new", EXPECTED)
def test_each_step_changes_only_what_it_teaches(old, new):
    assert changes(ROOT / old, ROOT / new) == EXPECTED[old, new]()


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            name, _, version = line.partition("==")
            assert version, f"{path}: {line!r} is not pinned with =="
            found[re.sub(r"\[.*\]", "", name).lower()] = line
    return found


@pytest.mark.parametrize("step", STEPS)
def test_step_requirements_are_pinned_like_the_top_level(step):
    top = pins(ROOT / "requirements.txt")
    for name, line in pins(ROOT / step / "requirements.txt").items():
        assert top.get(name) == line, f"{step}/requirements.txt: {line} vs {top.get(name)}"


@pytest.mark.parametrize("step", STEPS)
def test_step_folders_read_only_environment_variables(step):
    for path in (ROOT / step).rglob("*.py"):
        source = path.read_text()
        assert "tutorial_kit" not in source, path
        assert "../" not in source, path
        # Only the tool's package looks up, once, to the app's folder it sits in.
        if path == ROOT / step / "migrate" / "__init__.py":
            source = source.replace("APP_DIR = Path(__file__).resolve().parent.parent", "", 1)
        assert "parent.parent" not in source and "parents[" not in source, path
        assert set(re.findall(r"environ\.get\(\"(\w+)\"", source)) <= {"DATABASE_URL", "DEV_DATABASE_URL"}


@pytest.mark.parametrize("readme", [ROOT / "README.md", *sorted(ROOT.glob("step-*/README.md"))])
def test_revisions_named_in_readmes_exist(readme):
    folder = readme.parent if readme.parent != ROOT else ROOT / STEPS[-1]
    versions = folder / "migrations" / "versions"
    for revision in set(re.findall(r"\b(20\d{12})\b", readme.read_text())):
        if revision == "20261127093000":  # the READMEs' example of a revision
            continue
        assert list(versions.glob(f"{revision}_*.py")), f"{readme}: {revision}"


def readme_diff_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"^(diff -ruN .*)$", text, flags=re.MULTILINE)


def test_readme_diff_commands_show_what_each_step_teaches():
    commands = readme_diff_commands()
    assert len(commands) == len(STEPS) - 1
    for command, (old, new) in zip(commands, zip(STEPS, STEPS[1:])):
        assert command.split()[-2:] == [old, new]
        for extra in ([], ["-x", "README.md"]):
            args = [*command.split()[:-2], *extra, old, new]
            result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
            assert result.returncode == 1, result.stderr  # 1: the folders differ
            for added in sorted(changes(ROOT / old, ROOT / new)["added"]):
                lines = (ROOT / new / added).read_text().splitlines()
                shown = [l[1:] for l in result.stdout.splitlines() if l.startswith("+")]
                assert all(line in shown for line in lines), f"{new}/{added} is not shown in full"
            assert (f"+++ {new}/README.md" in result.stdout) == (not extra)
