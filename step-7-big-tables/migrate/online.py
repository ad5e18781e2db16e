"""An ALTER that would copy a big table goes to pt-online-schema-change instead.

Some changes (a column's type or character set, the primary key, a stored generated column)
the server can only make by copying the table, and a COPY blocks every write to it until done:
minutes on millions of rows. Percona's pt-online-schema-change makes the same change while
writes go on: it creates `_<table>_new`, alters it, copies the rows in small chunks while
triggers on the table carry every write across, then swaps the two tables with one RENAME.
This module does none of that itself; it decides when to hand a statement over, runs the tool,
keeps its word in a table of its own, and cleans up what a failed or interrupted run leaves.

For each ALTER TABLE of a revision (history.py's executor sends every DDL statement here):

- on a table with fewer than `online_min_rows` rows, or one that names its own ALGORITHM or
  LOCK: as written;
- else the server is asked first whether it can do it without blocking writes: the statement
  with ALGORITHM=INSTANT, then NOCOPY (MariaDB), then INPLACE with LOCK=NONE. A server refuses
  an algorithm it cannot honour and changes nothing, so the first form it accepts is applied;
- refused every time (a COPY): to the tool, `--dry-run` first, then `--execute`. Without the
  tool: as written, with one line saying the copy blocks writes and how to get the tool.

Settings, in alembic.ini or for one run with `-x name=value`: online_min_rows, online_tool
(a name on PATH or a path), online_tool_options (more options for the tool, e.g. --chunk-size).
"""

from __future__ import annotations

import ctypes
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from sqlalchemy import (
    BigInteger, Boolean, Column, Connection, DateTime, Integer, MetaData, String, Table, Text,
    inspect, select,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.dialects.mysql import LONGTEXT
from sqlalchemy.engine import URL
from sqlalchemy.schema import CreateTable
from sqlglot import exp
from sqlglot import tokenize as sql_tokens
from sqlglot.errors import TokenError
from sqlglot.tokens import TokenType

from .sql import parse

ONLINE_TABLE = "alembic_online_alters"
MIN_ROWS = 100_000  # alembic.ini's online_min_rows; a copy of fewer rows is over in seconds
TOOL = "pt-online-schema-change"
REFUSED = (1845, 1846, 4092)  # the server will not do it with that ALGORITHM or LOCK
CHOICES = {"DEFAULT", "INSTANT", "NOCOPY", "INPLACE", "COPY", "NONE", "SHARED", "EXCLUSIVE"}
INSTALL = "apt-get install percona-toolkit (or Percona's packages)"

# What each hand-off did, beside the history's row for its revision (env.py's tables).
online_alters = Table(
    ONLINE_TABLE,
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("history_id", Integer),  # the alembic_history row of the revision
    Column("revision", String(64), nullable=False),
    Column("table_name", String(64), nullable=False),
    Column("statement", LONGTEXT, nullable=False),
    Column("tool", String(255), nullable=False),
    Column("tool_version", String(64), nullable=False),
    Column("started_at", DateTime, nullable=False),  # UTC
    Column("duration_ms", Integer, nullable=False),
    Column("outcome", String(16), nullable=False),  # done, failed or interrupted
    Column("swapped", Boolean, nullable=False),  # the new table took the old one's place
    Column("rows_before", BigInteger),
    Column("rows_after", BigInteger),
    Column("cleaned_up", Text),  # what the tool left behind and we removed
    Column("output", LONGTEXT),  # the tool's own words
)


@dataclass
class Settings:
    min_rows: int = MIN_ROWS
    tool: str = TOOL
    options: list[str] = field(default_factory=list)


class ToolFailed(Exception):
    """The tool did not make the change; `line` says what happened, in one line."""

    def __init__(self, line: str, statement: str, interrupted: bool):
        super().__init__(line)
        self.line, self.statement, self.interrupted = line, statement, interrupted


@dataclass
class Route:
    """An ALTER TABLE of a big table: tried online, then handed to the tool (if found)."""
    table: str
    clauses: str  # what follows the table's name: the tool's --alter
    db: str = ""  # the database the statement names, if it names one
    # Why the tool must not take it: it copies the columns both tables share by name, so a
    # renamed column would come out empty, and it cannot rename the table.
    cannot: str | None = None
    tool: str | None = None  # the tool's path, when found


def altered_table(statement: str) -> Route | None:
    """An ALTER TABLE's table and the text after its name (from sqlglot's tokens, so a quoted
    or schema-qualified name, or a comment before the statement, is read as MySQL reads it);
    None for any other statement, and for one that chooses its own ALGORITHM or LOCK."""
    try:
        trees = parse(statement)
        tokens = list(sql_tokens(statement, read="mysql"))
    except (ValueError, TokenError):
        return None
    if len(trees) != 1 or not isinstance(trees[0], exp.Alter):
        return None
    tree = trees[0]
    if str(tree.args.get("kind")).upper() != "TABLE" or tree.this is None:
        return None
    # ALGORITHM [=] x or LOCK [=] x as options: not a column named `algorithm`, nor a string.
    words = ["" if t.token_type in (TokenType.STRING, TokenType.IDENTIFIER) else t.text.upper()
             for t in tokens if t.token_type != TokenType.EQ]
    if any(w in ("ALGORITHM", "LOCK") and n in CHOICES for w, n in zip(words, words[1:])):
        return None  # the revision decided how it runs
    # ALTER [ONLINE|IGNORE] TABLE [db .] name <clauses>
    at = next(i for i, t in enumerate(tokens) if t.text.upper() == "TABLE")
    name = at + 3 if at + 2 < len(tokens) and tokens[at + 2].text == "." else at + 1
    if name >= len(tokens):
        return None
    clauses = statement[tokens[name].end + 1:].strip().rstrip(";").strip()
    if not clauses:
        return None
    actions = tree.args.get("actions") or []
    cannot = next((f"{TOOL} cannot {what}" for kind, what in (
        (exp.RenameColumn, "rename a column (the column would come out empty)"),
        (exp.AlterRename, "rename the table")) if any(isinstance(a, kind) for a in actions)), None)
    return Route(table=tree.this.name, clauses=clauses, db=tree.this.db, cannot=cannot)


def find_tool(settings: Settings) -> str | None:
    return shutil.which(settings.tool)


def count_rows(cursor, table: str, limit: int) -> int:
    """Rows of `table`, counted up to `limit` at most: enough to compare with the threshold
    without reading a billion rows."""
    cursor.execute(f"SELECT COUNT(*) FROM (SELECT 1 FROM `{table}` LIMIT {int(limit)}) AS x")
    return cursor.fetchone()[0]


def online_forms(statement: str, mariadb: bool) -> list[str]:
    """The statement asking for each algorithm that lets writes go on, cheapest first."""
    sql = statement.strip().rstrip(";")
    forms = ["ALGORITHM=INSTANT"] + (["ALGORITHM=NOCOPY, LOCK=NONE"] if mariadb else []) + \
        ["ALGORITHM=INPLACE, LOCK=NONE"]
    return [f"{sql}, {form}" for form in forms]


class Online:
    """Routes the ALTERs of one upgrade run (see the module's text)."""

    def __init__(self, settings: Settings, url: URL):
        self.settings = settings
        self.url = url
        self.handing = False  # in hand_off(): a Ctrl-C stops the hand-off
        self.process: subprocess.Popen | None = None  # the tool, while it runs
        self.signal: str | None = None  # forwarded to it

    def route(self, cursor, statement: str) -> Route | None:
        """None: run the statement as written (a line says why when the table is big);
        else the Route of an ALTER to try online, then to hand to the tool."""
        route = altered_table(statement)
        if route is None:
            return None
        if route.db not in ("", self.url.database):  # the tool is given DATABASE_URL's
            say(f"{route.db}.{route.table}: not in database {self.url.database}: running the "
                "ALTER as written")
            return None
        try:
            rows = count_rows(cursor, route.table, self.settings.min_rows)
        finally:
            # End the read's transaction now: its metadata lock on the table would make the
            # ALTER (or the tool's triggers and swap) wait for this very connection.
            cursor.connection.commit()
        if rows < self.settings.min_rows:
            say(f"{route.table}: {rows} rows, fewer than online_min_rows={self.settings.min_rows}: "
                "running the ALTER as written")
            return None
        route.tool = None if route.cannot else find_tool(self.settings)
        return route

    def no_tool(self, route: Route) -> None:
        why, what = (route.cannot, "put the RENAME in an ALTER of its own, which needs no "
                     "copy") if route.cannot else (f"{self.settings.tool} is not found",
                     f"install it: {INSTALL}; or set online_tool in alembic.ini")
        say(f"{route.table}: at least {self.settings.min_rows} rows and the server can only "
            f"copy the table, but {why}: running the ALTER as written, which blocks writes to "
            f"{route.table} until the copy is done ({what})")

    # -- the hand-off --------------------------------------------------------------------------

    def hand_off(self, cursor, route: Route, statement: str, revision: str,
                 history_id: int | None) -> None:
        """Run the tool: dry run, then execute. Returns when the change is made; raises
        ToolFailed, after cleaning up and recording, when it is not."""
        self.handing = True
        try:
            self._hand_off(cursor, route, statement, revision, history_id)
        finally:
            self.handing = False

    def _hand_off(self, cursor, route: Route, statement: str, revision: str,
                  history_id: int | None) -> None:
        db = self.url.database
        table = route.table
        version = tool_version(route.tool)
        started, clock = datetime.now(timezone.utc).replace(tzinfo=None), time.monotonic()
        # An earlier run stopped before it could clean up (its process killed): its triggers
        # would make the tool refuse to start. We hold the migration lock; the tool that
        # earlier run started died with it (die_with_us).
        earlier = cleanup(cursor, db, table, swapped=False)
        if earlier:
            say(f"{table}: removed what an earlier run of the tool left: {', '.join(earlier)}")
        names = foreign_keys(cursor, db, table)
        before = exact_rows(cursor, table)
        say(f"{table}: {before} rows, and the server can only copy the table, which would block "
            f"writes: handing the ALTER to {version}")
        output: list[str] = []
        code = None
        with defaults_file(self.url) as defaults:
            command = [route.tool, *([f"--defaults-file={defaults}"] if defaults else []),
                       "--alter", route.clauses,
                       # No replicas to look for here; replicas would need a DSN table.
                       "--recursion-method=none",
                       # Children's foreign keys (blogs.author_id) are re-pointed at the new
                       # table by ALTER TABLE blogs, never by dropping the old one first.
                       "--alter-foreign-keys-method=rebuild_constraints",
                       # MariaDB refuses that ALTER of the child while checking foreign keys.
                       "--set-vars", "foreign_key_checks=0" + traditional_explain(cursor),
                       *self.settings.options, self.dsn(table)]
            if not self.signal:
                code = self._run([*command, "--dry-run"], output)
            if code == 0 and not self.signal:
                code = self._run([*command, "--execute"], output)
        text = "".join(output)
        swapped = "Swapped original and new tables OK" in text
        cleaned = earlier + cleanup(cursor, db, table, swapped)
        after = exact_rows(cursor, table)
        # Done once the new table took the old one's place, and only then: an exit code of 0
        # without the swap (--no-swap-tables in online_tool_options) changed nothing.
        outcome = "done" if swapped else \
            "interrupted" if self.signal else "failed"
        record(cursor, dict(
            history_id=history_id, revision=revision, table_name=table, statement=statement,
            tool=route.tool, tool_version=version, started_at=started,
            duration_ms=round((time.monotonic() - clock) * 1000), outcome=outcome,
            swapped=swapped, rows_before=before, rows_after=after,
            cleaned_up="; ".join(cleaned) or None, output=text))
        left = f"; removed what it left: {', '.join(cleaned)}" if cleaned else ""
        if outcome == "done":
            left += restore_names(cursor, db, table, names)
            say(f"{table}: altered by {TOOL} in {time.monotonic() - clock:.1f} s; "
                f"{after} rows before and after{left}" if after == before else
                f"{table}: altered by {TOOL}; {before} rows before, {after} after (writes went "
                f"on meanwhile){left}")
            return
        why = f"stopped by {self.signal}" if self.signal else \
            f"killed by {signal.Signals(-code).name}" if code is not None and code < 0 else \
            f"exit {code}: {last_error(text)}" if code else f"exit {code}, without the swap"
        raise ToolFailed(
            f"{TOOL} did not alter {table} ({why}); the table is as it was, {after} rows "
            f"(before: {before}){left}", statement, interrupted=self.signal is not None)

    def finish(self, cursor, statement: str) -> None:
        """A rerun skips an ALTER that took effect before the run was killed. If that was the
        tool's swap, killed right after it (it gets SIGTERM: die_with_us) the tool did not
        finish: the children's foreign keys still point at `_<table>_old` (a new row of theirs
        would be checked against the old table), and its triggers and the old table are left.
        Finish its work: re-point them, then remove what it left."""
        route = altered_table(statement)
        if route is None or route.db not in ("", self.url.database):
            return
        db, table, old = self.url.database, route.table, f"_{route.table}_old"
        keys = {key: value for key, value in foreign_keys(cursor, db, old).items()
                if key[2] == old and key[0] != old}
        if not keys and not leftovers(cursor, db, table)[0]:
            return  # no sign of the tool's swap: nothing of ours to finish
        quote = lambda names: ", ".join(f"`{n}`" for n in names)
        cursor.execute("SET @previous_checks = @@foreign_key_checks, foreign_key_checks = 0")
        try:
            for (child, columns, _, referenced), (name, on_delete, on_update) in keys.items():
                cursor.execute(f"ALTER TABLE `{child}` DROP FOREIGN KEY `{name}`")
                cursor.execute(
                    f"ALTER TABLE `{child}` ADD CONSTRAINT `{name}` FOREIGN KEY "
                    f"({quote(columns)}) REFERENCES `{table}` ({quote(referenced)}) "
                    f"ON DELETE {on_delete} ON UPDATE {on_update}")
        finally:
            cursor.execute("SET foreign_key_checks = @previous_checks")
        done = [f"foreign key {child}.{name} re-pointed at {table}"
                for (child, *_), (name, *_) in keys.items()] + cleanup(cursor, db, table, True)
        say(f"{table}: finished what the tool left after its swap: {', '.join(done)}")

    def dsn(self, table: str) -> str:
        url = self.url
        parts = [f"D={url.database}", f"t={table}", f"h={url.host or 'localhost'}",
                 f"P={url.port or 3306}"]
        if url.username:
            parts.append(f"u={url.username}")
        return ",".join(parts)  # never the password: that goes in the defaults file

    def _run(self, command: list[str], output: list[str]) -> int:
        """Run the tool, keep what it says, and show the reader its progress lines."""
        # Its own session: a Ctrl-C in the terminal reaches us, and we forward it (forward()).
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            text=True, start_new_session=True, preexec_fn=die_with_us)
        if self.signal:  # it came while the tool was being started
            self.process.send_signal(getattr(signal, self.signal))
        try:
            for line in self.process.stdout:
                output.append(line)
                if "Copying `" in line or "Copying approximately" in line \
                        or "Exiting on SIG" in line:
                    say(f"  {TOOL}: {line.strip()}")
            return self.process.wait()
        finally:
            self.process = None

    def forward(self, number: int) -> bool:
        """A Ctrl-C or SIGTERM during a hand-off: the tool gets it and stops (3.2.1 exits at
        once, leaving its triggers and new table: cleanup() removes them), or is not started;
        False outside a hand-off."""
        if not self.handing:
            return False
        self.signal = signal.Signals(number).name
        process = self.process
        if process is not None:
            try:
                process.send_signal(number)
            except ProcessLookupError:
                pass
        return True


def die_with_us() -> None:
    """In the tool's process, before it starts (Linux): when `upgrade` is killed, the tool gets
    SIGTERM instead of going on alone, unrecorded, under nobody's migration lock."""
    if sys.platform == "linux":
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def say(line: str) -> None:
    print(line, flush=True)


def exact_rows(cursor, table: str) -> int | None:
    try:
        cursor.execute(f"SELECT COUNT(*) FROM `{table}`")
        return cursor.fetchone()[0]
    finally:
        cursor.connection.commit()  # no metadata lock held while the tool works


def tool_version(tool: str) -> str:
    try:
        found = subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=30)
        return found.stdout.strip().splitlines()[0] or TOOL
    except (OSError, IndexError, subprocess.SubprocessError):
        return TOOL


# The tool's lines that say how it goes, not what went wrong.
ROUTINE = ("Starting a dry run", "No foreign keys reference", "Will use", "Dry run complete",
           "Operation, tries")


def last_error(output: str) -> str:
    """The tool's reason, in one line: its last error line, with MySQL's message if it gave one;
    else the first line that is not its routine (a refusal, such as a table without a primary
    key or with triggers of its own: the tool then drops its new table and ends its dry run)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower() or "failed" in line.lower()]
    said = [line.strip() for line in output.splitlines() if line[:1].isalpha()
            and not line.strip().endswith((":", "...", "OK.")) and not line.startswith(ROUTINE)]
    reason = (errors[-1:] or said[:1] or lines[-1:] or ["no output"])[0]
    reason = " ".join(word for word in reason.split() if not word[:4].isdigit())  # no times
    message = [line for line in lines if line.startswith("Message:")]
    return (reason + (f" {message[-1]}" if message else ""))[:300]


class defaults_file:
    """A MySQL option file holding the password, readable by us only, removed afterwards:
    on the command line any user of the machine would see it (ps)."""

    def __init__(self, url: URL):
        self.password = url.password
        self.path: str | None = None

    def __enter__(self) -> str | None:
        if not self.password:
            return None
        descriptor, self.path = tempfile.mkstemp(prefix="pt-osc-", suffix=".cnf")  # mode 0600
        quoted = str(self.password).replace("\\", "\\\\").replace('"', '\\"')
        with os.fdopen(descriptor, "w") as file:
            file.write(f'[client]\npassword="{quoted}"\n')
        return self.path

    def __exit__(self, *exc) -> None:
        if self.path:
            os.unlink(self.path)


def leftovers(cursor, db: str, table: str) -> tuple[list[str], list[str]]:
    """The tool's triggers and tables for `table` still there."""
    cursor.execute(
        "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s "
        "AND TRIGGER_NAME IN (%s, %s, %s)",
        [db, *(f"pt_osc_{db}_{table}_{kind}" for kind in ("ins", "upd", "del"))])
    triggers = [row[0] for row in cursor.fetchall()]
    cursor.execute(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
        "AND TABLE_NAME IN (%s, %s)", [db, f"_{table}_new", f"_{table}_old"])
    tables = sorted(row[0] for row in cursor.fetchall())
    return triggers, tables


def settled(cursor, db: str, table: str, seconds: int = 60) -> None:
    """Wait until no statement of the tool's still runs on the server: a client killed in the
    middle of a CREATE TRIGGER leaves the server finishing it, and a trigger made after the
    cleanup looked would stay. Its statements name its triggers and tables."""
    for _ in range(seconds * 10):
        cursor.execute(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() "
            "AND (INSTR(INFO, %s) > 0 OR INSTR(INFO, %s) > 0 OR INSTR(INFO, %s) > 0)",
            [f"pt_osc_{db}_{table}_", f"_{table}_new", f"_{table}_old"])
        if cursor.fetchone()[0] == 0:
            return
        time.sleep(0.1)


def cleanup(cursor, db: str, table: str, swapped: bool) -> list[str]:
    """Remove what the tool left: its triggers first (while they exist every write to the
    table is also written to `_<table>_new`), then the new table, or after a swap the old one
    (unless a foreign key still points at it)."""
    settled(cursor, db, table)
    triggers, tables = leftovers(cursor, db, table)
    removed = []
    for trigger in triggers:
        cursor.execute(f"DROP TRIGGER IF EXISTS `{trigger}`")
        removed.append(f"trigger {trigger}")
    for name in tables:
        if name == f"_{table}_old" and not swapped:
            continue  # not the tool's: we never drop a table we cannot account for
        cursor.execute(
            "SELECT COUNT(*) FROM information_schema.KEY_COLUMN_USAGE WHERE "
            "REFERENCED_TABLE_SCHEMA = %s AND REFERENCED_TABLE_NAME = %s", [db, name])
        if cursor.fetchone()[0]:
            removed.append(f"not {name}: a foreign key still refers to it, drop it by hand")
            continue
        cursor.execute(f"DROP TABLE IF EXISTS `{name}`")
        removed.append(f"table {name}")
    cursor.connection.commit()
    return removed


def foreign_keys(cursor, db: str, table: str) -> dict[tuple, tuple]:
    """The foreign keys of `table` and those of other tables that refer to it: {(child,
    columns, parent, referenced columns): (name, ON DELETE, ON UPDATE)}."""
    cursor.execute(
        "SELECT k.TABLE_NAME, k.CONSTRAINT_NAME, k.COLUMN_NAME, k.REFERENCED_TABLE_NAME, "
        "k.REFERENCED_COLUMN_NAME, r.DELETE_RULE, r.UPDATE_RULE FROM "
        "information_schema.KEY_COLUMN_USAGE k JOIN information_schema.REFERENTIAL_CONSTRAINTS "
        "r ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.TABLE_NAME = k.TABLE_NAME AND "
        "r.CONSTRAINT_NAME = k.CONSTRAINT_NAME WHERE k.CONSTRAINT_SCHEMA = %s AND "
        "(k.REFERENCED_TABLE_NAME = %s OR k.TABLE_NAME = %s) "
        "ORDER BY k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION", [db, table, table])
    grouped: dict[tuple, list] = {}
    for child, name, column, parent, referenced, on_delete, on_update in cursor.fetchall():
        grouped.setdefault((child, name, parent, on_delete, on_update), []).append(
            (column, referenced))
    cursor.connection.commit()
    return {(child, tuple(c for c, _ in pairs), parent, tuple(r for _, r in pairs)):
            (name, on_delete, on_update)
            for (child, name, parent, on_delete, on_update), pairs in grouped.items()}


def restore_names(cursor, db: str, table: str, names: dict[tuple, tuple]) -> str:
    """Give the foreign keys their names back, the table's own and its children's: the tool
    re-creates them as `_fk_...` (or strips a `__`), and a later revision that names one
    (op.drop_constraint) would fail on production only. In place, without checking the rows again (they were
    checked when the key was made, and the tool copied every one): no copy of the child."""
    renamed = []
    for key, (name, on_delete, on_update) in foreign_keys(cursor, db, table).items():
        original = names.get(key, (name,))[0]
        if original == name:
            continue
        child, columns, parent, referenced = key
        quote = lambda names_: ", ".join(f"`{n}`" for n in names_)
        try:
            cursor.execute("SET @previous_checks = @@foreign_key_checks, foreign_key_checks = 0")
            cursor.execute(
                f"ALTER TABLE `{child}` DROP FOREIGN KEY `{name}`, ADD CONSTRAINT `{original}` "
                f"FOREIGN KEY ({quote(columns)}) REFERENCES `{parent}` ({quote(referenced)}) "
                f"ON DELETE {on_delete} ON UPDATE {on_update}, ALGORITHM=INPLACE, LOCK=NONE")
            renamed.append(f"{child}.{original}")
        except Exception as exc:  # the change is made; only the name is not the revisions'
            reason = exc.args[-1] if exc.args else exc
            return (f"; {child}'s foreign key is now named {name}, not {original} ({reason}): "
                    "rename it before a revision names it")
        finally:
            cursor.execute("SET foreign_key_checks = @previous_checks")
    return f"; foreign key {', '.join(renamed)} named as before" if renamed else ""


def record(cursor, values: dict) -> None:
    cursor.execute(str(CreateTable(online_alters, if_not_exists=True).compile(
        dialect=mysql.dialect())))
    cursor.execute(
        f"INSERT INTO {ONLINE_TABLE} ({', '.join(values)}) "
        f"VALUES ({', '.join(['%s'] * len(values))})", list(values.values()))
    cursor.connection.commit()


def settings_from(get) -> Settings:
    """Settings from `get(name)`: -x name=value, else alembic.ini, else the default."""
    rows = str(get("online_min_rows") or MIN_ROWS)
    if not (rows.isascii() and rows.isdigit()):  # "²" is a digit to isdigit(), not to int()
        raise SystemExit(f"error: online_min_rows must be a whole number of rows, not '{rows}'")
    try:
        options = shlex.split(get("online_tool_options") or "")
    except ValueError as exc:
        raise SystemExit(f"error: online_tool_options cannot be read: {exc}") from None
    return Settings(min_rows=int(rows), tool=get("online_tool") or TOOL, options=options)


def recorded(connection: Connection) -> list:
    """The hand-offs recorded here, oldest first; empty when none ran."""
    if ONLINE_TABLE not in inspect(connection).get_table_names():
        return []
    return connection.execute(select(online_alters).order_by(online_alters.c.id)).all()


def traditional_explain(cursor) -> str:
    """MySQL 8.3+ may EXPLAIN as a tree (9.x does by default), where the tool finds no row
    estimate: it then copies the whole table in one chunk, every write waiting for it."""
    cursor.execute("SHOW VARIABLES LIKE 'explain_format'")
    return ",explain_format=TRADITIONAL" if cursor.fetchone() else ""


def is_mariadb(cursor) -> bool:
    cursor.execute("SELECT VERSION()")
    return "mariadb" in cursor.fetchone()[0].lower()

