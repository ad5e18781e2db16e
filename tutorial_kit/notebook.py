"""What the notebooks call: narrate a step's changes, run its commands, look into MySQL.

    from tutorial_kit.notebook import Tutorial
    t = Tutorial("03-apply")          # finds MySQL through the kit (once per kernel)
    step = t.changes("step-2-generate", "step-3-apply")   # a table: file, added/changed, +/-
    step.show("main.py")              # that file's hunks (a new file: its whole listing)
    app = t.copy("step-3-apply")      # work on a copy: the repository stays as it is
    db = t.database("production")
    t.sh(app, "python main.py", database_url=db)
    t.sql(db, "SHOW CREATE TABLE users")

Everything shown is computed live from the step folders, so it cannot go stale. Each output
carries plain text (what tests and terminals read) and HTML in a monospace font.

A kernel finds or starts one server and keeps it: running the first cell again reuses it. A
server the kernel started is stopped, and its data folder removed, when the kernel exits, and
also when the kernel is killed (a watcher process, tutorial_kit.reaper, does it then).
"""

from __future__ import annotations

import atexit
import difflib
import html
import os
import shlex
import shutil
from pathlib import Path

import pymysql
from sqlalchemy.engine import URL

from tutorial_kit.diff import FileChange, file_changes
from tutorial_kit.mysql import Server, find_server
from tutorial_kit.online_tool import tool_folder
from tutorial_kit.reaper import watch
from tutorial_kit.steps import REPO, STEPS, build_dir, copy_step, run

# Code, diffs and SQL read best in a monospace font, whatever the page's own font is.
# Single quotes only: this goes inside style="..." attributes.
MONOSPACE = (
    "font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, 'DejaVu Sans Mono', "
    "'Liberation Mono', monospace"
)


def _display(plain: str, html_text: str | None = None) -> None:
    """Rich output in Jupyter, plain text anywhere else."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        print(plain)
        return
    if get_ipython() is None or html_text is None:
        print(plain)
    else:
        display({"text/plain": plain, "text/html": html_text}, raw=True)


def _highlight(code: str, lexer_name: str | None = None, filename: str | None = None) -> str:
    """`code` as colored HTML, in a monospace font; by language name or by file name."""
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import get_lexer_by_name, get_lexer_for_filename
    from pygments.util import ClassNotFound

    try:
        lexer = get_lexer_by_name(lexer_name) if lexer_name else get_lexer_for_filename(filename)
    except ClassNotFound:
        lexer = get_lexer_by_name("text")
    formatter = HtmlFormatter(noclasses=True, prestyles=f"{MONOSPACE}; margin: 0")
    return highlight(code, lexer, formatter)


def _caption(text: str) -> str:
    return f'<div style="{MONOSPACE}; font-weight: bold; margin: 0.6em 0 0.2em">{text}</div>'


def short_traceback(output: str) -> str:
    """`output` with each Python traceback cut down to the line that says what went wrong."""
    lines = output.splitlines()
    starts = [i for i, line in enumerate(lines) if line == "Traceback (most recent call last):"]
    if not starts:
        return output
    end = starts[-1] + 1
    while end < len(lines) and (lines[end].startswith(" ") or not lines[end]):
        end += 1  # the frames of the last traceback; the exception comes after them
    error = lines[end] if end < len(lines) else ""
    left_out = len(lines) - starts[0] - 1
    note = f"[{left_out} lines of traceback left out; t.sh(..., traceback=True) shows them]"
    return "\n".join([*lines[: starts[0]], error, note])


class StepChanges:
    """What one step changes compared with the one before: a table, then file by file."""

    def __init__(self, old: str, new: str):
        self.old, self.new = old, new
        self.files: dict[str, FileChange] = {
            c.name: c for c in file_changes(REPO / old, REPO / new)
        }

    def __repr__(self) -> str:
        return f"<StepChanges {self.old} -> {self.new}: {len(self.files)} files>"

    def table(self) -> None:
        """Each changed file with how it changed and its line counts, as `diffstat` would."""
        counted = lambda c: f"+{c.plus}" + (f" -{c.minus}" if c.minus else "")
        width = max(len(name) for name in self.files)
        plain = [f"{self.old}/ -> {self.new}/", f"{'file':<{width}}  {'change':<8} lines"]
        rows = []
        for c in self.files.values():
            plain.append(f"{c.name:<{width}}  {c.kind:<8} {counted(c)}")
            rows.append(
                f'<tr><td style="text-align: left; {MONOSPACE}">{html.escape(c.name)}</td>'
                f'<td style="text-align: left">{c.kind}</td>'
                f'<td style="text-align: right; {MONOSPACE}">'
                f'<span style="color: #080">+{c.plus}</span> '
                f'<span style="color: #b00">{"-" + str(c.minus) if c.minus else ""}</span></td></tr>'
            )
        head = (
            f'<caption style="{MONOSPACE}; text-align: left">{html.escape(self.old)}/ &rarr; '
            f'{html.escape(self.new)}/</caption><tr><th style="text-align: left">file</th>'
            '<th style="text-align: left">change</th><th style="text-align: right">lines</th></tr>'
        )
        _display("\n".join(plain), f"<table>{head}{''.join(rows)}</table>")

    def show(self, *names: str, collapsed: bool = False) -> None:
        """Each named file's hunks; a new file in full, highlighted as its language.

        A new file longer than OUTLINE_OVER lines shows its key lines (the docstring's first
        line, each class, function and constant of the module's top level), the whole file
        folded under them. `collapsed` folds all of it under its caption (a long README).
        """
        for name in names:
            if name not in self.files:
                raise ValueError(
                    f"{name} does not differ between {self.old}/ and {self.new}/; "
                    f"these do: {', '.join(self.files)}"
                )
            c = self.files[name]
            path = f"{self.new if c.kind != 'removed' else self.old}/{name}"
            plain = c.diff.rstrip("\n")
            if c.kind == "added":
                what = f"new file, {c.plus} lines" if c.plus else "new empty file"
                listing = (REPO / self.new / name).read_text()
                body = _highlight(listing, filename=name) if listing else ""
                # A revision is the lesson itself: always in full.
                long = c.plus > OUTLINE_OVER and not collapsed and "/versions/" not in name
                outline = key_lines(listing) if long else None
                if outline:
                    what += ": its key lines; the whole file below them"
                    shown = "\n".join(line for _, line in outline)
                    plain = "\n".join([*c.header.splitlines(), *(
                        f"+{line}" if number else line for number, line in outline)])
                    body = (_highlight(shown, filename=name)
                            + _fold(f"the whole file, {c.plus} lines", body))
            else:
                what = f"{c.kind}, +{c.plus} -{c.minus}"
                body = _highlight("".join(c.diff.splitlines(keepends=True)[2:]), "diff")
            caption = f'{html.escape(path)} <span style="font-weight: normal">({what})</span>'
            rich = _fold(caption, body, bold=True) if collapsed else _caption(caption) + body
            _display(plain, rich)


OUTLINE_OVER = 60  # lines: a new file longer than this shows its key lines first


def key_lines(text: str) -> list[tuple[int, str]] | None:
    """A Python module's outline, (line number, line), with ("0", "...") where lines are left
    out: its docstring's first line, and each top-level class, function and constant. None for
    a file that is not Python, or has no such lines."""
    import ast

    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    lines = text.splitlines()
    wanted = []
    if ast.get_docstring(tree) and tree.body:
        wanted.append(tree.body[0].lineno)
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            wanted += range(first, node.lineno + 1)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node.lineno == node.end_lineno:
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            if isinstance(target, ast.Name) and target.id.isupper():
                wanted.append(node.lineno)
    if len(wanted) < 2:
        return None
    outline, last = [], 0
    for number in sorted(set(wanted)):
        if number > last + 1:
            outline.append((0, "..."))
        outline.append((number, lines[number - 1]))
        last = number
    if last < len(lines):
        outline.append((0, "..."))
    return outline


def _fold(summary: str, body: str, *, bold: bool = False) -> str:
    """`body` folded under `summary`: the triangle and the summary on one line."""
    weight = "bold" if bold else "normal"
    return (f'<details><summary style="{MONOSPACE}; font-weight: {weight}; margin: 0.6em 0 0.2em;'
            f' cursor: pointer">{summary}</summary>{body}</details>')


# One server per kernel: running the first cell again must not start a second one.
_server: Server | None = None


def shared_server() -> Server:
    """The kernel's server: found (or started) once, then reused while it answers."""
    global _server
    if _server is not None:
        try:
            _server.connect(timeout=2).close()
            return _server
        except pymysql.MySQLError:
            _server.stop()
    _server = find_server()
    watch(_server)  # stops it and removes its data even if this kernel is killed
    atexit.register(_server.stop)
    return _server


class Tutorial:
    """One notebook's workspace: a MySQL server, its own databases, copies of step folders."""

    _current: dict[str, Tutorial] = {}

    def __init__(self, name: str):
        previous = Tutorial._current.get(name)
        if previous is not None:  # the first cell, run again: start over, on the same server
            previous.close()
        Tutorial._current[name] = self
        self.server = shared_server()
        self.work = build_dir() / "work" / name
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir(parents=True)
        self._databases: list[URL] = []
        # Step 7 hands big ALTERs to pt-online-schema-change: the one that works with this
        # server, first on PATH (tutorial_kit/online_tool.py).
        tools = tool_folder(self.server, self.work / ".tool")
        self.env = {"PATH": f"{tools}{os.pathsep}{os.environ.get('PATH', '')}"} if tools else {}
        atexit.register(self.close)
        print(f"MySQL: {self.server.source}")

    def database(self, label: str) -> URL:
        """A fresh, empty database of this notebook's, dropped when the kernel stops."""
        url = self.server.create_database(label)
        self._databases.append(url)
        return url

    def copy(self, step: str) -> Path:
        """A copy of a step folder to work in, as a reader would clone the repository."""
        return copy_step(step, self.work)

    def changes(self, old: str, new: str) -> StepChanges:
        """Show what `new` changes compared with `old`, as a table; `.show(file)` goes on."""
        step = StepChanges(old, new)
        step.table()
        return step

    def edit(self, path: Path, old: str, new: str) -> None:
        """Replace `old` with `new` in a copied file, and show the change as a diff."""
        before = path.read_text()
        if old not in before:
            raise ValueError(f"{old!r} is not in {path.name}")
        path.write_text(before.replace(old, new))
        name = f"{path.parent.name}/{path.name}"
        text = "".join(difflib.unified_diff(
            before.splitlines(keepends=True), path.read_text().splitlines(keepends=True), name, name,
        ))
        _display(text, _caption(html.escape(name)) + _highlight(text.split("\n", 2)[2], "diff"))

    def show(self, path: Path | str, language: str | None = None) -> None:
        """A file's listing, highlighted as `language` (by default: guessed from its name)."""
        path = Path(path)
        text = path.read_text()
        rich = _caption(html.escape(path.name)) + _highlight(text, language, filename=path.name)
        _display(f"# {path.name}\n{text}", rich)

    def sh(
        self, step_dir: Path, command: str, *, expect: int | None = 0, traceback: bool = False,
        **urls,
    ) -> None:
        """Run `command` (python ...) in step_dir as in a terminal; print what it prints.

        When the command fails as expected, a Python traceback is cut down to its last
        line, the one that says what went wrong (`traceback=True` keeps all of it).
        """
        args = shlex.split(command)
        assert args[0] == "python", "the notebooks run Python commands only"
        result = run(step_dir, *args[1:], merged=True, env=self.env, **urls)
        output = result.stdout.rstrip()
        if result.returncode and result.returncode == expect and not traceback:
            output = short_traceback(output)
        print(f"{step_dir.name}$ {command}")
        if output:
            print(output)
        if result.returncode:
            print(f"[exit status {result.returncode}]")
        if expect is not None and result.returncode != expect:
            raise RuntimeError(f"`{command}` exited {result.returncode}, expected {expect}")

    def query(self, url: URL, statement: str) -> tuple[list[str], list[tuple]]:
        """Run one SQL statement on the database at `url`: (column names, rows)."""
        with self.server.connect(url.database) as conn, conn.cursor() as cur:
            cur.execute(statement)
            if cur.description is None:
                return [], []
            return [d[0] for d in cur.description], list(cur.fetchall())

    def production(self, through: str, users: int = 1000) -> tuple[URL, URL]:
        """Production as the tutorial leaves it after step `through`, and a dev database.

        Made by start/'s create_all(), `users` users with a post each, baselined by step 3 at
        `initialize`, then upgraded by each later step up to `through`: what notebook 03 walks
        through, replayed for the notebooks after it.
        """
        production, dev = self.database("production"), self.database("dev")
        urls = dict(database_url=production, dev_database_url=dev)
        self.sh(self.copy("start"), "python main.py", **urls)
        rows = [(f"User {i}", f"user{i}@example.com") for i in range(1, users + 1)]
        self.server.insert_rows(production, "users", ["name", "email"], rows)
        self.sql(production, "INSERT INTO blogs (title, body, author_id) "
                             "SELECT CONCAT('Post by ', name), 'Hello.', id FROM users")
        step_3 = self.copy("step-3-apply")
        [first] = (step_3 / "migrations" / "versions").glob("*_initialize.py")
        self.sh(step_3, f"python -m migrate baseline {first.stem.split('_')[0]}", **urls)
        for step in STEPS[STEPS.index("step-3-apply") + 1 : STEPS.index(through) + 1]:
            self.sh(self.copy(step), "python -m migrate upgrade", **urls)
        return production, dev

    def sql(self, url: URL, statement: str) -> None:
        """Run one SQL statement and print it with its result, as the mysql client would."""
        names, rows = self.query(url, statement)
        print(f"mysql> {statement};")
        if names == ["Table", "Create Table"]:  # SHOW CREATE TABLE reads best as it is
            for _, create in rows:
                print(create)
        elif names:
            # SQL's NULL as the mysql client prints it, not Python's None.
            rows = [tuple("NULL" if v is None else v for v in row) for row in rows]
            widths = [max(len(str(v)) for v in col) for col in zip(names, *rows)]
            line = lambda values: "  ".join(str(v).ljust(w) for v, w in zip(values, widths))
            print(line(names))
            for row in rows:
                print(line(row))
            print(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")

    def close(self) -> None:
        """Drop this notebook's databases; the kernel's server stays for the next Tutorial."""
        for url in self._databases:
            try:
                self.server.drop_database(url)
            except pymysql.MySQLError:
                pass
        self._databases.clear()
