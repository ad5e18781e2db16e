"""The notebooks: each .py/.ipynb pair agrees, each runs top to bottom against MySQL on its
own, and the README's main command runs every step, then every notebook, in order."""

import os
import subprocess
import sys

import jupytext
import nbformat
import pytest

from tutorial_kit.diff import file_changes
from tutorial_kit.notebooks import NOTEBOOKS, execute, sources
from tutorial_kit.steps import REPO, STEPS

NAMES = [p.stem for p in sources()]


# The longest test first, so that parallel workers do not wait for it at the end.
def test_tutorial_runs_every_step_and_notebook_in_order(server, tmp_path):
    env = {**os.environ, **server.environ, "TUTORIAL_BUILD_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "tutorial_kit.tutorial"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout

    # Steps in order, each reported ok; the transcript holds what was printed.
    positions = [out.index(f"=== {step}: ok in ") for step in STEPS]
    assert positions == sorted(positions)
    transcript = (tmp_path / "transcript.txt").read_text()
    assert "[step-3-apply]$ python migrate.py baseline " in transcript
    assert "The schema matches revision" in transcript

    # Then the notebooks, in order, each with its time, as .ipynb with outputs and HTML.
    positions = [out.index(f"notebook {name} ... ") for name in NAMES]
    assert positions == sorted(positions) and positions[0] > out.index("=== step-3-apply: ok")
    for name in NAMES:
        executed = nbformat.read(tmp_path / "notebooks" / f"{name}.ipynb", as_version=4)
        text, _ = outputs(executed)
        assert [e for e in EXPECTED[name] if e not in text] == [], name
        assert "<html" in (tmp_path / "notebooks" / f"{name}.html").read_text()[:500].lower()


def cells(notebook) -> list[tuple[str, str]]:
    return [(cell.cell_type, cell.source) for cell in notebook.cells]


def test_every_step_has_a_notebook():
    assert NAMES == ["00-start", "01-versioned", "02-generate", "03-apply"]


@pytest.mark.parametrize("name", NAMES)
def test_pair_is_in_sync(name):
    source = jupytext.read(NOTEBOOKS / f"{name}.py")
    paired = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    assert cells(paired) == cells(source), f"run `make sync` after editing {name}.py"
    assert all(not cell.get("outputs") for cell in paired.cells), f"{name}.ipynb holds outputs"
    assert paired.metadata["kernelspec"]["name"] == "python3"
    assert "py:percent" in paired.metadata["jupytext"]["formats"]


def outputs(notebook) -> tuple[str, str]:
    """(all text the notebook printed, all HTML it displayed)."""
    text, html = [], []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                text.append(output.text)
            elif output.output_type in ("display_data", "execute_result"):
                text.append(output.data.get("text/plain", ""))
                html.append(output.data.get("text/html", ""))
    return "\n".join(text), "\n".join(html)


# What each notebook must show: the diff it narrates, the commands it runs, what MySQL holds.
EXPECTED = {
    "00-start": [
        "start$ python main.py",
        "- Ada Lovelace <ada@example.com>: 1 post(s)",
        "mysql> SHOW CREATE TABLE users;",
        "UNIQUE KEY `uq_users_email` (`email`)",
        "FOREIGN KEY (`author_id`) REFERENCES `users` (`id`) ON DELETE SET NULL",
        "Unknown column 'users.title'",  # create_all() did not add the new column
        "lines of traceback left out",  # only the line that says what went wrong
    ],
    "01-versioned": [
        "+++ step-1-versioned/alembic.ini",
        "+target_metadata = Base.metadata",
        "step-1-versioned$ python -m alembic history",
        "mysql> SHOW TABLES;",
    ],
    "02-generate": [
        "+++ step-2-generate/generate.py",
        "_initialize.py",
        "+    op.create_table('users',",  # the revision, shown in full
        "Wrote migrations/versions/",
        "nothing to generate",
        "ALTER TABLE users ADD COLUMN title VARCHAR(255)",
        "warning: column 'users.name' is dropped and 'full_name' added",
        "mysql> SHOW TABLES;",
    ],
    "03-apply": [
        "+++ step-3-apply/migrate.py",
        "-    Base.metadata.create_all(engine)",
        "holds tables (blogs, users) but no migration history",
        "index users.uq_users_email is missing",
        "nothing was stamped",
        "stamped it as the current revision",
        "mysql> SELECT * FROM alembic_version;",
        "ALTER TABLE users ADD COLUMN title VARCHAR(255)",  # planned on the dev database
        "_add_user_title.py",
        "  add_user_title",  # status: one revision pending
        "Upgraded from ",
        "`title` varchar(255) DEFAULT NULL",  # production has the column
        "Every row is still there, unchanged: 1001 users, 1002 posts.",
        "No new upgrade operations detected",
    ],
}


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_and_shows_its_step(name, server, tmp_path):
    # Each notebook on its own, in a fresh kernel; it makes its own databases.
    environ = {**server.environ, "TUTORIAL_BUILD_DIR": str(tmp_path)}
    notebook = execute(NOTEBOOKS / f"{name}.py", environ=environ)
    text, html = outputs(notebook)
    for expected in EXPECTED[name]:
        assert expected in text, f"{name}: {expected!r} not shown"
    if name != "00-start":
        assert "<span" in html, f"{name}: the diff is not colored in Jupyter"
    assert "Traceback" not in text, f"{name}: a traceback is shown where one line would do"
    narrated = unnarrated(name, text)
    assert narrated == [], f"{name}: changed, but never shown file by file: {narrated}"


def step_pair(name: str) -> tuple[str, str] | None:
    """The two step folders notebook NN-... narrates: STEPS[NN-1] -> STEPS[NN]."""
    number = int(name[:2])
    return (STEPS[number - 1], STEPS[number]) if number else None


def unnarrated(name: str, text: str) -> list[str]:
    """The files that notebook's step changes whose hunks it never showed."""
    pair = step_pair(name)
    if pair is None:
        return []
    old, new = (REPO / step for step in pair)
    return [c.name for c in file_changes(old, new) if c.header not in text]
