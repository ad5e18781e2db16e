"""`python -m migrate lint [--latest N | REV] [--strict]`: Atlas's `migrate lint`, for Alembic.

For each revision linted, on a throwaway dev database (devdb.py), as a MySQL user allowed into
that database only (sandbox.py): upgrade to its parent, then run its upgrade one statement at a
time (SQLAlchemy's cursor events). Each statement is read with sqlglot (lint_sql.py): one that
names another database is refused before it runs; a rename is one when the statement says so.
The schema before and after each statement, and what the revision did before it, give the
findings (lint_checks.py). So the findings come from what the revision does on MySQL, not from
the text of the Python file alone. Then:

- what each ALTER will cost: the server is asked, on the dev database, with an explicit
  ALGORITHM=INSTANT, then NOCOPY (MariaDB), INPLACE, COPY. A server refuses an algorithm it
  cannot honour and changes nothing, so the first one it accepts is also the statement applied;
- with DATABASE_URL set, each data-dependent finding is checked against the real data with
  lint's own SELECTs in a READ ONLY transaction ("412 rows of users have a NULL title: this
  revision will fail"), and the size of a table beside a rebuild. No statement of a revision
  is ever sent there.

A finding is silenced only in the revision, next to the operation, with a reason:
    op.alter_column("users", "title", nullable=False)  # lint: ignore MF104 -- back-filled by the app
(or the comment on the line above). Exit 1 on a destructive change, a data check that proves the
revision will fail, or a revision that fails (or is refused) on the dev database; `--strict`
also on warnings.
"""

import ast
import io
import os
import re
import signal
import sys
import tokenize
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pymysql
from alembic import command
from alembic.script import Script
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import SQLAlchemyError
from sqlglot import exp
from sqlglot import tokenize as sql_tokens

from database import connect
from . import APP_DIR
from .devdb import dev_database
from .lint_checks import Finding, Revision, compare, data_changes, finish, snapshot
from .lint_sql import data_change, read
from .online import TOOL, Settings, altered_table, count_rows, find_tool, settings_from
from .revisions import alembic_config, current, scripts
from .sandbox import sandbox
from .sql import keyword

USAGE = "usage: python -m migrate lint [--latest N | REV] [--strict]"
# The server refused the ALGORITHM asked for; 4092: MySQL refuses INSTANT once a table has had
# 64 (8.4) or 255 (9.x) instant ADD/DROP COLUMNs ("... cannot be added or dropped instantly").
REFUSED = (1845, 1846, 4092)
SCHEMA = {"ALTER", "CREATE", "DROP", "RENAME", "TRUNCATE"}
IGNORE = re.compile(r"#\s*lint:\s*ignore\s+([A-Z]{2}\d{3}(?:\s*,\s*[A-Z]{2}\d{3})*)\s*(?:--\s*(.*))?$")


class Refused(Exception):
    """A statement lint will not run anywhere: it reaches outside the throwaway database."""


@dataclass
class Statement:
    sql: str
    line: int
    table: str | None = None  # the table an ALTER changes
    algorithm: str | None = None  # the first one the server accepted
    refused: list[str] = field(default_factory=list)  # why the cheaper ones were refused
    size: str | None = None  # the table's size in the app's database
    rows: int | None = None  # its rows there, counted up to online_min_rows


@dataclass
class Report:
    script: Script
    statements: list[Statement] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    silenced: int = 0
    failure: str | None = None  # the revision fails on the dev database


def guard(conn, cursor, sql, parameters, context, executemany):
    """Before any statement of any revision: refuse what names another database."""
    statement = read(sql, conn.engine.url.database)
    if statement.refusal or statement.dropped_database:
        what = statement.refusal or f"DROP DATABASE {statement.dropped_database}"
        raise Refused(f"refused, not run: {what}")
    return sql, parameters


class Recorder:
    """Cursor events on the dev connection while one revision's upgrade() runs."""

    def __init__(self, report: Report, looker: Engine, revision: Revision, mariadb: bool):
        self.report, self.looker, self.revision = report, looker, revision
        self.path = str(Path(report.script.path).resolve())
        # NOCOPY (in place, without rebuilding the table) exists on MariaDB only.
        self.algorithms = ["INSTANT", "NOCOPY", "INPLACE", "COPY"] if mariadb else \
            ["INSTANT", "INPLACE", "COPY"]
        self.statement: Statement | None = None
        self.read = None

    def before_execute(self, conn, cursor, sql, parameters, context, executemany):
        # The line of the operation in the revision file; None for Alembic's own statements
        # (alembic_version), which run after the revision's upgrade() has returned.
        line = line_in(self.path, traceback.walk_stack(None))
        if line is None:
            return sql, parameters
        statement = read(sql, conn.engine.url.database)
        if statement.dropped_database:  # never run, not even here: DS101 from the text
            self.report.findings.append(Finding(
                "DS101", f'Dropping schema "{statement.dropped_database}"',
                "dump the schema first; drop it by hand, outside the migrations", line=line))
            return "DO 0", parameters
        if statement.refusal:
            raise Refused(f"refused, not run: {statement.refusal}; lint runs nothing outside "
                          "its throwaway database")
        change = data_change(statement.tree)
        if change is not None:
            for finding in data_changes(change, self.revision):
                finding.line = line
                self.report.findings.append(finding)
        if statement.tree is None or keyword(statement.tree) not in SCHEMA:
            return sql, parameters
        self.statement = Statement(" ".join(sql.split()), line)
        self.read = statement
        self.report.statements.append(self.statement)
        if self.probe(cursor, sql, statement.tree):
            return "DO 0", parameters  # already applied by the probe
        return sql, parameters

    def probe(self, cursor, sql: str, tree: exp.Expression) -> bool:
        """Ask the server for the cheapest ALGORITHM it allows; True once one was applied."""
        if any(t.text.upper() == "ALGORITHM" for t in sql_tokens(sql, read="mysql")):
            return False  # the revision chose one itself
        sql = sql.strip().rstrip(";")
        if isinstance(tree, exp.Drop) and str(tree.args.get("kind")).upper() == "INDEX":
            # MariaDB takes no ALGORITHM on DROP INDEX; the ALTER form is the same
            on = tree.args.get("cluster")
            if not tree.args.get("tables") or on is None:
                return False
            table, index = on.this, tree.args["tables"][0]
            sql, separator = f"ALTER TABLE {table.sql('mysql')} DROP INDEX {index.sql('mysql')}", ", "
            self.statement.table = table.name
        elif isinstance(tree, exp.Alter) and tree.this is not None:
            self.statement.table, separator = tree.this.name, ", "
        elif isinstance(tree, exp.Create) and str(tree.args.get("kind")).upper() == "INDEX":
            self.statement.table, separator = tree.this.args["table"].name, " "
        elif isinstance(tree, exp.Command) and str(tree.this).upper() == "ALTER":
            # An ALTER sqlglot keeps whole (a POINT column, PARTITION BY): its tokens name the table.
            tokens = list(sql_tokens(sql, read="mysql"))
            if len(tokens) < 3 or tokens[1].text.upper() != "TABLE":
                return False
            self.statement.table, separator = tokens[2].text, ", "
        else:
            return False
        for algorithm in self.algorithms:
            try:
                cursor.execute(f"{sql}{separator}ALGORITHM={algorithm}")
            except pymysql.err.MySQLError as exc:
                code, message = exc.args[0], str(exc.args[-1])
                if code in REFUSED:
                    reason = re.search(r"Reason: (.*?)\.? Try", message)
                    self.statement.refused.append(
                        f"{algorithm} refused" + (f" ({reason[1]})" if reason else ""))
                    continue
                self.statement.table = None
                self.statement.refused = []
                return False  # not a question of algorithm: let the statement fail as written
            self.statement.algorithm = algorithm
            return True
        return False

    def after_execute(self, conn, cursor, sql, parameters, context, executemany):
        if self.statement is None:
            return
        before = self.revision.schema
        for finding in compare(before, snapshot_of(self.looker), self.read, self.revision):
            finding.line = self.statement.line
            self.report.findings.append(finding)
        self.statement = None


def line_in(path: str, frames) -> int | None:
    """The line of `path` that the innermost of these (frame, line) pairs is running."""
    for frame, line in frames:
        if str(Path(frame.f_code.co_filename).resolve()) == path:
            return line
    return None


def snapshot_of(looker: Engine):
    # A connection of its own: the revision's connection is busy running the statement.
    with looker.connect() as connection:
        return snapshot(connection)


def failure(exc: BaseException, path: str) -> str:
    """MySQL's error, or the revision's Python's, on the line of the revision that raised it."""
    # env.py turns a failed revision into a SystemExit that speaks of the app's database (its
    # history, `python -m migrate status`); the error itself is its context.
    if isinstance(exc, SystemExit) and exc.__context__ is not None:
        exc = exc.__context__
    reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    if not isinstance(exc, (SQLAlchemyError, SystemExit, Refused)):
        reason = f"{type(exc).__name__}: {reason}"
    frames = reversed(list(traceback.walk_tb(exc.__traceback__)))  # innermost first
    line = line_in(path, frames)
    return (f"L{line}: " if line else "") + f"the revision fails on the dev database: {reason}"


def lint_on_dev(dev: Engine, chain: list[Script]) -> list[Report]:
    """Run each revision of `chain` (oldest first) on the dev database, statement by statement."""
    reports = []
    looker = create_engine(dev.url)
    with dev.connect() as connection:
        version = connection.scalar(text("SELECT VERSION()"))
        mariadb = "mariadb" in version.lower()
        print(f"Linting {len(chain)} revision(s) on a throwaway dev database "
              f"({version if mariadb else 'MySQL ' + version}), statement by statement.")
        config = alembic_config(quiet=True)
        config.attributes["connection"] = connection
        parents = chain[0].down_revision or ()  # None, one revision, or several (a merge)
        event.listen(connection, "before_cursor_execute", guard, retval=True)
        try:
            for parent in [parents] if isinstance(parents, str) else parents:
                command.upgrade(config, parent)
        except (Exception, SystemExit) as exc:
            reason = failure(exc, "").partition("the revision fails on the dev database: ")[2]
            raise SystemExit(f"error: the revisions before the one(s) linted fail on the dev "
                             f"database: {reason}") from None
        finally:
            event.remove(connection, "before_cursor_execute", guard)
        connection.commit()
        for script in chain:
            report = Report(script)
            reports.append(report)
            start = snapshot_of(looker)
            revision = Revision(existing=set(start.tables), schema=start)
            recorder = Recorder(report, looker, revision, mariadb)
            event.listen(connection, "before_cursor_execute", recorder.before_execute, retval=True)
            event.listen(connection, "after_cursor_execute", recorder.after_execute)
            try:
                command.upgrade(config, script.revision)
                connection.commit()
            except (Exception, SystemExit) as exc:  # MySQL's error, or the revision's Python's
                report.failure = failure(exc, recorder.path)
                break  # the revisions after it cannot run either
            finally:
                event.remove(connection, "before_cursor_execute", recorder.before_execute)
                event.remove(connection, "after_cursor_execute", recorder.after_execute)
                report.findings = finish(report.findings, revision)
    looker.dispose()
    return reports


def apply_ignores(report: Report) -> None:
    """Drop the findings that a `# lint: ignore CODE -- reason` next to their operation covers."""
    source = Path(report.script.path).read_text()
    comments: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string
    lines = source.splitlines()
    ignores: dict[int, set[str]] = {}
    for number, comment in comments.items():
        if not re.match(r"#\s*lint:", comment):
            continue
        match = IGNORE.match(comment)
        if not match or not (match[2] or "").strip():
            report.findings.append(Finding(
                "IG101", "a lint comment without a reason silences nothing",
                "write it as `# lint: ignore CODE -- why this is safe`", line=number))
            continue
        ignores[number] = {code.strip() for code in match[1].split(",")}
    statements = [node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.stmt)
                  and not isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.With, ast.If,
                                            ast.For, ast.While, ast.Try))]
    kept = []
    for finding in report.findings:
        if finding.line is None or finding.code == "IG101":
            kept.append(finding)
            continue
        # The operation's lines, and the comment lines directly above it.
        node = min((n for n in statements if n.lineno <= finding.line <= n.end_lineno),
                   key=lambda n: n.end_lineno - n.lineno, default=None)
        first, last = (node.lineno, node.end_lineno) if node else (finding.line, finding.line)
        while first > 1 and lines[first - 2].strip().startswith("#"):
            first -= 1
        if any(finding.code in ignores.get(n, ()) for n in range(first, last + 1)):
            report.silenced += 1
        else:
            kept.append(finding)
    report.findings = kept


def check_data(reports: list[Report], app: Engine, online: Settings) -> str:
    """Read-only: each data check, and the size of each table an ALTER rebuilds. The queries
    are lint's own SELECTs (a back-fill's SET and WHERE become one); no statement of a
    revision is ever sent there."""
    with app.connect() as connection:
        # Belt and braces beside a SELECT-only user: the server refuses any write here.
        connection.exec_driver_sql("START TRANSACTION READ ONLY")
        at = current(connection)
        version = connection.scalar(text("SELECT VERSION()")) or ""
        mysql = None if "mariadb" in version.lower() else \
            tuple(int(part) for part in version.split("-")[0].split(".")[:2])
        earlier: dict[str, int] = {}  # INSTANT ALTERs of each table before this one
        tables = set(connection.scalars(text(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()")))
        for report in reports:
            starts = report.script.down_revision
            for finding in report.findings:
                if finding.check is None:
                    continue
                if at != starts:  # the data this revision will meet is not there (yet)
                    finding.data = f"not checked: the database is not at {starts or 'none'}, " \
                                   "where this revision starts"
                elif finding.table not in tables:
                    finding.data = f"{finding.table} is not in the database: nothing to check"
                else:
                    try:
                        finding.data, finding.fails = finding.check(connection)
                    except SQLAlchemyError as exc:  # e.g. no SELECT privilege on that table
                        finding.data = f"could not check: {str(exc.orig or exc).splitlines()[0]}"
            for statement in report.statements:
                if statement.table in tables and statement.algorithm != "INSTANT":
                    statement.size = table_size(connection, statement.table)
                if statement.table in tables and statement.algorithm == "COPY":
                    with connection.connection.dbapi_connection.cursor() as cursor:
                        statement.rows = count_rows(cursor, statement.table, online.min_rows)
                elif statement.table in tables and statement.algorithm == "INSTANT" and mysql:
                    earlier[statement.table] = earlier.get(statement.table, -1) + 1
                    statement.size, full = row_versions(
                        connection, statement.table, mysql, earlier[statement.table])
                    if full:
                        report.findings.append(Finding(
                            "IN101", f'Table "{statement.table}" has no instant ADD/DROP COLUMN '
                            "left: on production this ALTER rebuilds it", "rebuild it once in "
                            f"a quiet hour (OPTIMIZE TABLE {statement.table}), which resets the count",
                            line=statement.line))
        connection.rollback()
    where = f"database '{app.url.database}' at revision {at or 'none'}"
    parent = reports[0].script.down_revision
    if at != parent:  # e.g. the revisions were applied already: the NULLs may be gone by now
        where += f", not at {parent or 'none'} where the first revision linted starts"
    return where


def row_versions(connection: Connection, table: str, version: tuple[int, ...],
                 earlier: int) -> tuple[str, bool]:
    """MySQL 8.0.29+ counts a table's instant ADD/DROP COLUMNs (64 allowed, 255 from 9.1);
    past the limit an INSTANT ALTER is refused, and one without ALGORITHM rebuilds the table,
    which a fresh dev database cannot show. (The count needs the PROCESS privilege.)"""
    limit = 255 if version >= (9, 1) else 64
    try:
        used = connection.scalar(text(
            "SELECT TOTAL_ROW_VERSIONS FROM information_schema.INNODB_TABLES "
            "WHERE NAME = CONCAT(DATABASE(), '/', :t)"), {"t": table})
    except SQLAlchemyError:
        used = None
    if used is None:
        return f"{table}: instant row versions used unknown (reading them needs PROCESS)", False
    used += earlier  # counted as if each INSTANT ALTER linted before it added one
    return f"{table}: {used} of {limit} instant row versions used", used >= limit


def table_size(connection: Connection, table: str) -> str:
    rows = connection.scalar(text(f"SELECT COUNT(*) FROM `{table}`"))
    size = connection.scalar(text(
        "SELECT DATA_LENGTH + INDEX_LENGTH FROM information_schema.TABLES "
        "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :t"), {"t": table})
    return f"{table} holds {rows} rows, {size / 2**20:.1f} MiB"


COST = {
    "INSTANT": "metadata only, no rebuild",
    "NOCOPY": "in place, no rebuild",
    "INPLACE": "in place: rebuilds or scans the table, writes allowed meanwhile",
    "COPY": "copies the whole table, blocking writes until done",
}


def route(statement: Statement, online: Settings) -> str:
    """Which way `python -m migrate upgrade` will run this ALTER (see online.py)."""
    if statement.algorithm != "COPY":
        return "without the tool: the server does it without copying the table"
    handed = altered_table(statement.sql)
    if handed is not None and handed.cannot:
        return (f"as written, blocking writes during the copy: {handed.cannot} (put the RENAME "
                "in an ALTER of its own, which needs no copy)")
    tool = find_tool(online)
    found = f"{TOOL} found ({tool})" if tool else f"{online.tool} not found, so as written, " \
        "blocking writes during the copy"
    if statement.rows is None:
        return (f"to {TOOL} if {statement.table} holds at least online_min_rows="
                f"{online.min_rows} rows on production (not checked: DATABASE_URL unset), else "
                f"as written; {found}")
    if statement.rows < online.min_rows:
        return (f"as written: {statement.table} holds {statement.rows} rows, fewer than "
                f"online_min_rows={online.min_rows}")
    return (f"{TOOL if tool else 'as written'}: {statement.table} holds at least "
            f"online_min_rows={online.min_rows} rows; {found}")


def print_report(reports: list[Report], strict: bool, where: str | None,
                 online: Settings) -> int:
    errors = warnings = silenced = 0
    for report in reports:
        # A back-fill lint proved complete from its text stays silent unless the data says otherwise.
        report.findings = [f for f in report.findings if not f.unless_data or f.fails]
        script = report.script
        path = Path(script.path).relative_to(APP_DIR)
        print(f"\n{path}  ({script.revision} {script.doc})")
        if report.failure:
            print(f"  {report.failure}")
            errors += 1
        # Per operation, in the order of the file: its findings, then what its ALTER costs.
        items = [(f.line or 0, 0, f) for f in report.findings] + \
                [(s.line, 1, s) for s in report.statements if s.algorithm]
        for line, _, item in sorted(items, key=lambda i: i[:2]):
            if isinstance(item, Finding):
                kind = "error" if item.error else "warning"
                errors, warnings = errors + item.error, warnings + (not item.error)
                print(f"  L{line}: {item.code} {kind}: {item.message}")
                if item.data:
                    print(f"      data: {item.data}")
                print(f"      fix:  {item.fix}")
            else:
                verdict = "; ".join([*item.refused, f"{item.algorithm}: {COST[item.algorithm]}"])
                print(f"  L{line}: cost: {item.sql}")
                print(f"      {verdict}" + (f"; {item.size}" if item.size else ""))
                print(f"      route: {route(item, online)}")
        if not report.findings and not report.failure:
            print("  no findings")
        silenced += report.silenced
    failed = errors > 0 or (strict and warnings > 0)
    statements = sum(len(r.statements) for r in reports)
    data = f"; data checked in {where}" if where else "; data not checked (DATABASE_URL unset)"
    print(f"\n{len(reports)} revision(s), {statements} schema statement(s): {errors} error(s), "
          f"{warnings} warning(s), {silenced} silenced{data}. "
          + ("Lint failed." if failed else "Lint passed."))
    return 1 if failed else 0


def choose(args: list[str]) -> tuple[list[Script], bool]:
    """The revisions to lint, oldest first, and --strict."""
    strict = "--strict" in args
    rest = [a for a in args if a != "--strict"]
    directory = scripts()
    try:
        directory.get_current_head()
        every = list(reversed(list(directory.walk_revisions("base", "heads"))))
    except CommandError:
        raise SystemExit("error: the revisions have more than one head; merge them "
                         "(python -m alembic merge heads) before linting") from None
    except Exception as exc:  # a revision file that Python cannot load
        raise SystemExit(f"error: cannot read migrations/versions: {type(exc).__name__}: "
                         f"{str(exc).splitlines()[0]}") from None
    if not every:
        raise SystemExit("error: migrations/versions holds no revision to lint")
    match rest:
        case []:
            return every[-1:], strict
        case ["--latest", number]:
            if not number.isdigit() or int(number) < 1:
                raise SystemExit(f"error: --latest needs a positive whole number, not '{number}'; {USAGE}")
            if int(number) > len(every):
                raise SystemExit(f"error: --latest {number}, but there are only {len(every)} revision(s)")
            return every[-int(number):], strict
        case ["--latest"]:
            raise SystemExit(f"error: --latest needs a number; {USAGE}")
        case [revision] if not revision.startswith("-"):
            try:
                script = directory.get_revision(revision)
            except CommandError:
                script = None
            if script is None:
                raise SystemExit(f"error: unknown revision '{revision}'; see `python -m alembic history`")
            return [script], strict
        case _:
            raise SystemExit(f"error: {USAGE}")


@contextmanager
def urls_hidden() -> Iterator[None]:
    """While revisions run, their Python finds no URL to connect with on its own
    (`database.connect()` in a revision): only the sandboxed connection lint hands Alembic."""
    saved = {name: os.environ.pop(name) for name in ("DATABASE_URL", "DEV_DATABASE_URL")
             if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def main(args: list[str]) -> int:
    chain, strict = choose(args)
    # The app's database is optional: without it, lint judges the revision alone.
    app = connect() if os.environ.get("DATABASE_URL", "").strip() else None
    # Killed politely (CI's timeout, Ctrl-C), lint still drops its user and database.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("error: lint was stopped (SIGTERM)"))
    with dev_database() as dev, sandbox(dev) as replay, urls_hidden():
        reports = lint_on_dev(replay, chain)
    for report in reports:
        apply_ignores(report)
    # Where upgrade would send each ALTER: alembic.ini's online_* settings.
    online = settings_from(alembic_config().get_main_option)
    where = check_data(reports, app, online) if app is not None else None
    return print_report(reports, strict, where, online)
