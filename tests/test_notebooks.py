"""`make tutorial` and the notebooks: every step README's commands run as written, then every
notebook, in order; each notebook narrates every file its step changes, in a monospace font;
each .py/.ipynb pair agrees.

The tutorial runs once (the `tutorial` fixture); the tests that read what it made run on one
worker (xdist_group), so that it runs once per test session.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from tutorial_kit.diff import file_changes
from tutorial_kit.notebooks import NOTEBOOKS, pair_differences, sources
from tutorial_kit.readme import parse
from tutorial_kit.steps import REPO, STEPS

NAMES = [p.stem for p in sources()]
READMES = [step for step in STEPS if (REPO / step / "README.md").is_file()]
on_the_tutorial = pytest.mark.xdist_group("tutorial")


@dataclass
class Run:
    stdout: str
    build: Path

    @property
    def transcript(self) -> str:
        return (self.build / "transcript.txt").read_text()

    def notebook(self, name: str):
        return nbformat.read(self.build / "notebooks" / f"{name}.ipynb", as_version=4)


@pytest.fixture(scope="session")
def tutorial(server, tmp_path_factory) -> Run:
    """`make tutorial`, run once, into a build folder of its own."""
    build = tmp_path_factory.mktemp("tutorial")
    env = {**os.environ, **server.environ, "TUTORIAL_BUILD_DIR": str(build)}
    result = subprocess.run(
        [sys.executable, "-m", "tutorial_kit.tutorial"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return Run(result.stdout, build)


# The longest test first, so that parallel workers do not wait for it at the end.
@on_the_tutorial
def test_tutorial_runs_every_step_then_every_notebook_in_order(tutorial):
    out = tutorial.stdout
    positions = [out.index(f"=== {step}: ok in ") for step in READMES]
    assert positions == sorted(positions)
    # Then the notebooks, in order, each with its time, as .ipynb with outputs and HTML.
    positions = [out.index(f"notebook {name} ... ") for name in NAMES]
    assert positions == sorted(positions) and positions[0] > out.index(f"=== {READMES[-1]}: ok")
    for name in NAMES:
        assert "<html" in (tutorial.build / "notebooks" / f"{name}.html").read_text()[:500].lower()


@on_the_tutorial
@pytest.mark.parametrize("step", READMES)
def test_every_command_of_the_step_readme_ran(tutorial, step):
    # Each runnable command of the README, in order, in that step's part of the transcript.
    # The `<!-- follow along -->` blocks in the my-app/ route's part, the others in the step's.
    transcript = tutorial.transcript
    parts = {
        False: transcript.split(f"=== {step}: the commands of")[1].split(f"=== {step}: ok")[0],
        True: transcript.split("=== follow along:")[1].split("=== follow along: ok")[0],
    }
    position = {False: 0, True: 0}
    for block in parse(REPO / step / "README.md"):
        for command in [] if block.not_run else block.commands:
            # [step]$, [step/dir]$, [step/my-app]$
            found = parts[block.follow].find(f"]$ {command.text}\n", position[block.follow])
            assert found >= 0, f"{step}/README.md:{command.line}: {command.text!r} did not run"
            position[block.follow] = found + 1


@on_the_tutorial
def test_step_3_readme_baselines_a_database_that_create_all_made(tutorial):
    transcript = tutorial.transcript
    assert "holds tables (blogs, users) but no migration history" in transcript
    assert "The schema matches revision" in transcript


def test_every_step_has_a_notebook():
    # NN-name narrates STEPS[NN], compared with STEPS[NN - 1].
    assert [int(name[:2]) for name in NAMES] == list(range(len(STEPS)))


@pytest.mark.parametrize("name", NAMES)
def test_pair_is_in_sync(name):
    # Outputs that Jupyter saved are no edit (tests/test_jupyter.py); a cell not synced is.
    assert pair_differences(NOTEBOOKS / f"{name}.py") == []


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
        "NULL",  # SHOW COLUMNS: the columns without a default
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
        "+++ step-2-generate/migrate/generate.py",
        "_initialize.py",
        "+    op.create_table('users',",  # the revision, shown in full
        "Wrote migrations/versions/",
        "nothing to generate",
        "ALTER TABLE users ADD COLUMN title VARCHAR(255)",
        "users.name is dropped and users.full_name added: a rename? Nothing was written.",
        "ALTER TABLE users CHANGE name full_name VARCHAR(255) NOT NULL",
        "mysql> SHOW TABLES;",
    ],
    "03-apply": [
        "+++ step-3-apply/migrate/__main__.py",
        "+++ step-3-apply/migrate/history.py",
        "-    Base.metadata.create_all(engine)",
        "holds tables (blogs, users) but no migration history",
        "index users.uq_users_email is missing",
        "nothing was stamped",
        "stamped it as the current revision",
        "Not compared: column order",
        "mysql> SELECT * FROM alembic_version;",
        "History (oldest first, times in UTC):",
        "Every row is still there, unchanged: 1001 users, 1002 posts.",
        # A revision that fails half-way: said in one line, recorded, fixed, continued.
        "failed at `UPDATE users SET nick_name = name`",
        "Applied before it and kept (MySQL cannot roll back DDL): ALTER TABLE users ADD COLUMN nickname",
        "Migration status: FAILED",
        "Last migration attempt had errors:",
        "going on after the 1 statement(s) applied before (the last attempt failed)",
    ],
    "04-new-migration": [
        "+++ step-4-new-migration/models.py",
        "+    op.add_column('users', sa.Column('title', sa.String(length=255), nullable=True))",
        "this code needs",  # the new code refuses the old schema
        "  add_user_title",  # status: one revision pending
        "Upgraded from ",
        "`title` varchar(255) DEFAULT NULL",  # production has the column
        "Every row is still there, unchanged: 1001 users, 1002 posts.",
        "nothing to generate",
        "No new upgrade operations detected",
    ],
    "05-custom-migration": [
        "+++ step-5-custom-migration/migrate/__main__.py",
        "+SEED = [",
        "Jerome Seinfeld  jerry@seinfeld.io   Dr.",  # production's own Jerry, unchanged
        "George Costanza  george@costanza.io  Mr.",
        "Every user who was there is unchanged (1002); added: 1.",
        "VALUES ('George Costanza', 'george@costanza.io', 'Mr.')",  # what the history recorded
        "After the downgrade, the users are exactly those from before the upgrade.",
        "Wrote migrations/versions/",
        "error: checksum mismatch in migrations/revisions.sum:",
        "_add_more_users.py was edited",
        "Re-hashed migrations/versions into migrations/revisions.sum.",
    ],
    "06-verify-safety": [
        "+++ step-6-verify-safety/migrate/lint.py",
        "MF104 warning: Modifying nullable column \"title\" to non-nullable might fail",
        "data: 1001 rows of users have a NULL title: this revision will fail",
        "Lint failed.",
        "no findings",
        "INPLACE",  # what the ALTER costs, asked of the server
        "Upgraded from ",
        "Every user is still there, unchanged but for the title: 1003.",
    ],
    "07-big-tables": [
        "+++ step-7-big-tables/migrate/online.py",
        "route: pt-online-schema-change: users holds at least online_min_rows=1000 rows",
        "every email of users is written in characters ascii holds",
        "1 row of users has an email with characters ascii cannot hold: this revision will fail",
        # The tool's copy fails on a row: production as it was, said in one line, recorded.
        "pt-online-schema-change did not alter users",
        "the table is as it was, 5003 rows (before: 5003)",
        "Migration status: FAILED",
        "users: altered by pt-online-schema-change in",
        "online: users altered by pt-online-schema-change 3.",  # status, from the record
        "`email` varchar(320) CHARACTER SET ascii COLLATE ascii_general_ci NOT NULL",
        "Every user is still there, unchanged: 5003.",
    ],
}


# Alembic logs to stderr, the SQL goes to stdout: shown in the order they were printed.
IN_ORDER = {"02-generate": [("Generating static SQL", "CREATE TABLE alembic_version")]}


@on_the_tutorial
@pytest.mark.parametrize("name", NAMES)
def test_notebook_shows_its_step(tutorial, name):
    # Each notebook ran in a kernel of its own, making its own databases.
    text, html = outputs(tutorial.notebook(name))
    assert name in EXPECTED, f"say in EXPECTED what {name} must show"
    for expected in EXPECTED[name]:
        assert expected in text, f"{name}: {expected!r} not shown"
    if name != "00-start":
        assert "<span" in html, f"{name}: the diff is not colored in Jupyter"
    assert "Traceback" not in text, f"{name}: a traceback is shown where one line would do"
    for first, then in IN_ORDER.get(name, []):  # stderr and stdout, as a terminal shows them
        assert text.index(first) < text.index(then), f"{name}: {first!r} after {then!r}"
    narrated = unnarrated(name, text)
    assert narrated == [], f"{name}: changed, but never shown file by file: {narrated}"
    # What MySQL answers, as the mysql client prints it: SQL's NULL, not Python's None.
    for block in re.findall(r"^mysql> SELECT.*?^\(\d+ rows?\)$|^mysql> SHOW COLUMNS.*?^\(\d+ rows?\)$",
                            text, flags=re.MULTILINE | re.DOTALL):
        assert not re.search(r"\bNone\b", block), f"{name}: {block}"


def browser() -> str | None:
    for name in ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


# The exported pages, each in a frame of one page, so that Chromium starts once for all of them
# (0.4 s of CPU a start): whether each <pre> of each page renders in a monospace font, and
# breaks its lines at spaces. Each frame as wide as a narrow browser window.
FONT_CHECK = r"""<script>
window.addEventListener("load", () => {  // after every frame has loaded
  const canvas = document.createElement("canvas").getContext("2d");
  const reports = {};
  for (const frame of document.querySelectorAll("iframe")) {
    const proportional = [];
    const checked = frame.contentDocument.querySelectorAll("pre");
    for (const element of checked) {
      canvas.font = frame.contentWindow.getComputedStyle(element).font;
      if (canvas.measureText("iiiiiiiiii").width !== canvas.measureText("MMMMMMMMMM").width)
        proportional.push(element.textContent.slice(0, 80));
    }
    // Lines wrap at spaces: a word split over two lines, though it would fit on one, was
    // broken mid-word (JupyterLab's own style does that: word-break: break-all).
    const split = [];
    for (const element of checked) {
      // The element's text, across the spans of its highlighting, and where each piece is.
      const doc = frame.contentDocument;
      const walker = doc.createTreeWalker(element, NodeFilter.SHOW_TEXT);
      const nodes = [], starts = [];
      let text = "";
      for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        nodes.push(node); starts.push(text.length); text += node.data;
      }
      const at = (k) => {  // the text node and offset of character k
        let i = starts.length - 1;
        while (starts[i] > k) i--;
        return [nodes[i], k - starts[i]];
      };
      const range = doc.createRange();
      const span = (from, to) => {
        range.setStart(...at(from));
        range.setEnd(...at(to - 1)); range.setEnd(range.endContainer, range.endOffset + 1);
        return range;
      };
      for (const word of text.matchAll(/\S{2,}/g)) {
        const rects = Array.from(span(word.index, word.index + word[0].length).getClientRects())
          .filter((rect) => rect.width > 0);
        const wide = rects.reduce((sum, rect) => sum + rect.width, 0);
        const lines = new Set(rects.map((rect) => Math.round(rect.top))).size;
        if (lines < 2 || wide >= element.clientWidth) continue;  // fits nowhere: may break
        // Where it breaks: between two letters or digits is mid-word; after a hyphen or
        // other punctuation is where a browser may break a line, as a typesetter would.
        let top = span(word.index, word.index + 1).getBoundingClientRect().top;
        for (let i = 1; i < word[0].length; i++) {
          const next = span(word.index + i, word.index + i + 1).getBoundingClientRect().top;
          if (next > top && /\w/.test(word[0][i - 1]) && /\w/.test(word[0][i]))
            split.push(word[0].slice(0, 60));
          top = next;
        }
      }
    }
    // A folded block's triangle on the same line as its caption, not alone above it.
    const lone = Array.from(frame.contentDocument.querySelectorAll("summary")).filter(
      (summary) => Array.from(summary.children).some(
        (child) => frame.contentWindow.getComputedStyle(child).display === "block"))
      .map((summary) => summary.textContent.slice(0, 60));
    reports[frame.name] = {checked: checked.length, proportional, split, lone};
  }
  const out = document.createElement("div");
  out.id = "font-check";
  out.textContent = JSON.stringify(reports);
  document.body.appendChild(out);
});
</script>"""


@pytest.fixture(scope="module")
def fonts(tutorial, tmp_path_factory) -> dict[str, dict]:
    """Each exported page as headless Chromium renders it: {name: {checked, proportional}}."""
    chromium = browser()
    if chromium is None:
        pytest.skip("no headless Chromium here (.ci/run installs chromium-headless-shell)")
    page = tmp_path_factory.mktemp("rendered") / "all.html"
    frames = "".join(f'<iframe name="{name}" width="720" height="400" src="'
                     f'{(tutorial.build / "notebooks" / name).as_uri()}.html"></iframe>' for name in NAMES)
    page.write_text(f"<!DOCTYPE html><html><body>{frames}{FONT_CHECK}</body></html>")
    result = subprocess.run(
        # Frames read from file:// are another origin unless file access is allowed.
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
         "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    found = re.search(r'<div id="font-check">(.*?)</div>', result.stdout)
    assert found, result.stderr[-2000:]
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))


@on_the_tutorial
@pytest.mark.parametrize("name", NAMES)
def test_html_export_shows_code_diffs_and_sql_in_monospace(fonts, name):
    report = fonts[name]
    assert report["checked"] > 5 and report["proportional"] == [], report


@on_the_tutorial
@pytest.mark.parametrize("name", NAMES)
def test_html_export_wraps_output_lines_at_spaces(fonts, name):
    assert fonts[name]["split"] == [], fonts[name]["split"][:10]
    assert fonts[name]["lone"] == []  # and a folded file's caption is beside its triangle


HANDS_ON = ("t.sh(", "t.production(")  # the cells where the reader's commands run
LISTING_BEFORE_HANDS_ON = 150  # lines of output, at most, before the first of them


def listing_before_hands_on(notebook) -> int:
    """How many lines the cells before the first hands-on cell printed; -1: no such cell."""
    lines = 0
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        if any(call in cell.source for call in HANDS_ON):
            return lines
        for output in cell.get("outputs", []):
            text = output.get("text") or output.get("data", {}).get("text/plain", "")
            lines += len(text.splitlines())
    return -1


@on_the_tutorial
@pytest.mark.parametrize("name", NAMES)
def test_the_hands_on_part_comes_first(tutorial, name):
    # A reader meets a command to run before a long listing: how it works comes after.
    lines = listing_before_hands_on(tutorial.notebook(name))
    assert 0 <= lines <= LISTING_BEFORE_HANDS_ON, f"{name}: {lines} lines of listing first"


def test_a_notebook_that_lists_first_fails_the_hands_on_check():
    cell = lambda source, text="": nbformat.v4.new_code_cell(
        source, outputs=[nbformat.v4.new_output("stream", text=text)] if text else [])
    listing = "\n".join(f"line {i}" for i in range(LISTING_BEFORE_HANDS_ON + 1))
    late = nbformat.v4.new_notebook(cells=[cell("step.show('lint.py')", listing), cell("t.sh(app, 'x')")])
    early = nbformat.v4.new_notebook(cells=[cell("t.sh(app, 'x')"), cell("step.show('lint.py')", listing)])
    assert listing_before_hands_on(late) > LISTING_BEFORE_HANDS_ON
    assert listing_before_hands_on(early) == 0


def test_no_notebook_has_an_empty_cell():
    for source in sources():
        notebook = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
        empty = [i for i, cell in enumerate(notebook.cells) if not cell.source.strip()]
        assert empty == [], f"{source.name}: empty cell(s) {empty}"


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


@pytest.mark.parametrize("preloaded", [True, False])
def test_the_tutorials_kernels_start_from_the_preloader(tmp_path, monkeypatch, preloaded):
    """As bash's `python` does: a kernel forked with SQLAlchemy imported, unless turned off."""
    from tutorial_kit.notebooks import execute

    monkeypatch.setenv("TUTORIAL_BUILD_DIR", str(tmp_path / "build"))  # where the shim goes
    if not preloaded:
        monkeypatch.setenv("TUTORIAL_PRELOAD", "0")
    probe = tmp_path / "probe.py"
    probe.write_text("# %%\nimport sys\nprint('sqlalchemy' in sys.modules, sys.argv[0])\n")
    [cell] = execute(probe).cells
    imported, launcher = cell.outputs[0]["text"].split()
    assert imported == str(preloaded) and launcher.endswith("ipykernel_launcher.py")
