"""What the notebooks call: diff two step folders, run a step's commands, look into MySQL.

    from tutorial_kit.notebook import Tutorial
    t = Tutorial("03-apply")          # finds MySQL through the kit
    t.diff("step-2-generate", "step-3-apply")
    app = t.copy("step-3-apply")      # work on a copy: the repository stays as it is
    db = t.database("production")
    t.sh(app, "python main.py", database_url=db)
    t.sql(db, "SHOW CREATE TABLE users")
"""

from __future__ import annotations

import atexit
import difflib
import html
import shlex
import shutil
from pathlib import Path

import pymysql
from sqlalchemy.engine import URL

from tutorial_kit.diff import unified
from tutorial_kit.mysql import find_server
from tutorial_kit.steps import REPO, build_dir, copy_step, run


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


def _highlight(code: str, lexer_name: str) -> str:
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import get_lexer_by_name

    return highlight(code, get_lexer_by_name(lexer_name), HtmlFormatter(noclasses=True))


class Tutorial:
    """One notebook's workspace: a MySQL server, its own databases, copies of step folders."""

    def __init__(self, name: str):
        self.server = find_server()
        self.work = build_dir() / "work" / name
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir(parents=True)
        self._databases: list[URL] = []
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

    def diff(self, old: str, new: str) -> None:
        """Show `diff -ru old new`, computed from the two step folders as they are now."""
        text = unified(REPO / old, REPO / new)
        _display(text, _highlight(text, "diff"))

    def edit(self, path: Path, old: str, new: str) -> None:
        """Replace `old` with `new` in a copied file, and show the change as a diff."""
        before = path.read_text()
        if old not in before:
            raise ValueError(f"{old!r} is not in {path.name}")
        path.write_text(before.replace(old, new))
        text = "".join(difflib.unified_diff(
            before.splitlines(keepends=True), path.read_text().splitlines(keepends=True),
            f"{path.parent.name}/{path.name}", f"{path.parent.name}/{path.name}",
        ))
        _display(text, _highlight(text, "diff"))

    def show(self, path: Path | str, language: str = "python") -> None:
        path = Path(path)
        text = path.read_text()
        _display(f"# {path.name}\n{text}", f"<b>{html.escape(path.name)}</b>" + _highlight(text, language))

    def sh(self, step_dir: Path, command: str, *, expect: int | None = 0, **urls) -> None:
        """Run `command` (python ...) in step_dir as in a terminal; print what it prints."""
        args = shlex.split(command)
        assert args[0] == "python", "the notebooks run Python commands only"
        result = run(step_dir, *args[1:], **urls)
        output = (result.stdout + result.stderr).rstrip()
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

    def sql(self, url: URL, statement: str) -> None:
        """Run one SQL statement and print it with its result, as the mysql client would."""
        names, rows = self.query(url, statement)
        print(f"mysql> {statement};")
        if names == ["Table", "Create Table"]:  # SHOW CREATE TABLE reads best as it is
            for _, create in rows:
                print(create)
        elif names:
            widths = [max(len(str(v)) for v in col) for col in zip(names, *rows)]
            line = lambda values: "  ".join(str(v).ljust(w) for v, w in zip(values, widths))
            print(line(names))
            for row in rows:
                print(line(row))
            print(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")

    def close(self) -> None:
        for url in self._databases:
            try:
                self.server.drop_database(url)
            except pymysql.MySQLError:
                pass
        self._databases.clear()
        self.server.stop()
