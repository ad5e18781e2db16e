"""What ran on this database, statement by statement: a history table beside alembic_version.

Alembic keeps only the current revision, and MySQL commits every DDL statement on its own, so a
revision can be cut off between two statements. Like Atlas's executor (atlas_schema_revisions),
env.py writes a row before a revision's first statement and, after each statement, counts it
and adds it to a running SHA-256 of the statements applied:

- a data statement (INSERT, UPDATE...) and its bookkeeping UPDATE run in one transaction, so
  they commit together (at the next DDL or at the revision's end) or not at all;
- before a DDL statement the row says, committed, that it is starting; after it, that it is done.

A rerun of the revision then skips, hash-checked, every statement recorded as applied and goes
on from the first one that is not: no statement runs twice. Only a DDL statement cut off between
"starting" and "done" is unknown; `python -m migrate upgrade` settles it on the dev database
(see resolve.py) before anything runs.
"""

from __future__ import annotations

import hashlib
import signal
import sys
import threading
import time
from collections import namedtuple
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from alembic.runtime.migration import MigrationContext, MigrationInfo
from alembic.script import Script, ScriptDirectory
from sqlalchemy import (
    BigInteger, Column, Connection, DateTime, Integer, MetaData, String, Table, Text, event,
    inspect, select,
)
from sqlalchemy.dialects.mysql import LONGTEXT
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from .online import ONLINE_TABLE, REFUSED, Online, ToolFailed, is_mariadb, online_forms
from .sql import IMPLICIT_COMMIT, READS, keyword, parse, tables

VERSION_TABLE = "alembic_version"
HISTORY_TABLE = "alembic_history"
BOOKKEEPING = (VERSION_TABLE, HISTORY_TABLE, ONLINE_TABLE)
UNFINISHED = ("running", "failed", "interrupted")  # kinds a rerun continues from
LOCK_WAIT_TIMEOUT = 5  # seconds a DDL statement waits for a metadata lock (alembic.ini, -x)
LOCK_WAIT_RETRIES = 3  # then it is tried again, after 1, 2, 4... seconds

# Not in the models' metadata: the migrations do not create it, env.py does, like alembic_version.
history = Table(
    HISTORY_TABLE,
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("revision", String(64), nullable=False),
    Column("description", String(255), nullable=False),
    Column("operation", String(16), nullable=False),  # upgrade, downgrade or baseline
    # running (so far), then upgrade, downgrade or baseline; or failed, interrupted
    Column("kind", String(16), nullable=False),
    Column("executed_at", DateTime, nullable=False),  # UTC
    Column("execution_ms", Integer, nullable=False),
    Column("statements", Integer, nullable=False),  # how many are applied (Atlas's `applied`)
    # LONGTEXT: a data revision of thousands of statements outgrows TEXT's 64 KB.
    Column("hashes", LONGTEXT, nullable=False),  # the running SHA-256 after each, space apart
    Column("checksum", String(64), nullable=False),  # sha256 of the revision file
    Column("applied_sql", LONGTEXT, nullable=False),  # the statements applied, ";\n" apart
    Column("running_sql", LONGTEXT),  # a DDL statement started and not (yet) confirmed done
    Column("running_hash", String(64)),  # the running hash once it is done
    Column("connection_id", BigInteger),  # the MySQL connection that ran it
    Column("failed_sql", LONGTEXT),
    Column("error", Text),
)


def checksum(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def chain(previous: str, statement: str, parameters=None) -> str:
    """The running hash after `statement`: it covers every statement applied before it."""
    own = hashlib.sha256(f"{statement.strip()}\0{parameters!r}".encode()).hexdigest()
    return hashlib.sha256(f"{previous}{own}".encode()).hexdigest()


def rows(connection: Connection) -> list:
    """The history, oldest first; empty when no migration has run here."""
    if HISTORY_TABLE not in inspect(connection).get_table_names():
        return []
    return connection.execute(select(history).order_by(history.c.id)).all()


def last_failure(connection: Connection):
    """The newest history row when it is an attempt that did not finish, else None."""
    found = rows(connection)
    return found[-1] if found and found[-1].kind in UNFINISHED else None


def unfinished(found: list, revision: str, operation: str):
    """The last attempt at `revision` when it did not finish: the rerun continues from it."""
    last = found[-1] if found else None
    if last is not None and last.kind in UNFINISHED and last.revision == revision \
            and last.operation == operation:
        return last
    return None


def applied_revisions(found: list) -> dict:
    """{revision: row} of what the history says is applied (or stamped) and not undone."""
    applied = {}
    for row in found:
        if row.kind in ("upgrade", "baseline"):
            applied[row.revision] = row  # the latest one counts
        elif row.kind == "downgrade":
            applied.pop(row.revision, None)
    return applied


def statements_of(row) -> list[str]:
    return row.applied_sql.split(";\n") if row.applied_sql else []


def shorten(sql: str, limit: int = 160) -> str:
    sql = " ".join(sql.split())
    return sql if len(sql) <= limit else sql[: limit - 3] + "..."


class Refused(Exception):
    """Raised before a statement runs when running it could repeat or skip work: one line."""


class Interrupted(Exception):
    """Ctrl-C or SIGTERM, acted on between two statements."""


class Recorder:
    """Counts, hashes and records each statement of each revision (see the module's text)."""

    def __init__(self, connection: Connection, script: ScriptDirectory, target: str | None,
                 repaired: bool, lock_wait_timeout: int = LOCK_WAIT_TIMEOUT,
                 lock_wait_retries: int = LOCK_WAIT_RETRIES, online: Online | None = None):
        self.connection = connection
        self.script = script
        self.target = target  # where the command goes (see target_revision in env.py)
        self.repaired = repaired
        self.lock_wait_timeout = lock_wait_timeout
        self.lock_wait_retries = lock_wait_retries
        self.online = online  # routes a big table's copying ALTER to pt-online-schema-change
        self.order = list(reversed(list(script.walk_revisions())))  # oldest first (one head)
        self.ids = [s.revision for s in self.order]
        self.signal: str | None = None  # SIGINT or SIGTERM, once received
        self.cancelled = False  # the running statement was cancelled with KILL QUERY
        self._new_revision()

    def _new_revision(self) -> None:
        self.started = time.monotonic()
        self.revision: Script | None = None  # the revision running now
        self.row_id: int | None = None
        self.skip = 0  # statements a previous attempt applied: checked and skipped
        self.hashes: list[str] = []
        self.applied: list[str] = []
        self.position = 0  # statements of it seen in this run
        self.action: tuple | None = None  # what the statement being executed is: see _before

    # -- the run ---------------------------------------------------------------------------

    @contextmanager
    def recording(self) -> Iterator[None]:
        if self.target is None:  # a command that moves nothing (`alembic check`)
            yield
            return
        conn = self.connection
        self.at = MigrationContext.configure(conn).get_current_revision()
        self.direction = self._direction()
        self._check_plan()
        # On the driver's connection: these are not SQLAlchemy's to see (nor its listeners').
        with self._cursor() as cursor:
            cursor.execute("SELECT CONNECTION_ID(), @@session.lock_wait_timeout")
            self.connection_id, previous = cursor.fetchone()
            cursor.execute(f"SET SESSION lock_wait_timeout = {int(self.lock_wait_timeout)}")
        try:
            history.create(conn, checkfirst=True)
        except DBAPIError as exc:  # a missing privilege, said as MySQL says it
            raise SystemExit(
                f"error: could not create or read the history table {HISTORY_TABLE} ({exc.orig}): "
                f"grant the migration's user CREATE, SELECT, INSERT and UPDATE on database "
                f"'{conn.engine.url.database}'"
            ) from None
        listeners = [(conn, "before_cursor_execute", self._before),
                     (conn, "after_cursor_execute", self._after),
                     (conn.engine, "do_execute", self._execute),
                     (conn.engine, "do_execute_no_params", self._execute_no_params),
                     (conn.engine, "do_executemany", self._execute)]
        for target, name, fn in listeners:
            event.listen(target, name, fn)
        handlers = self._catch_signals()
        try:
            yield
        except Refused as exc:
            self._rollback()
            raise SystemExit(str(exc)) from None
        except (Exception, KeyboardInterrupt) as exc:
            raise SystemExit(self.failed(exc, getattr(exc, "statement", None) or "")) from None
        else:
            if self.signal:  # it came during the last statement, which was let finish
                raise SystemExit(
                    f"error: stopped by {self.signal} once the statement then running had "
                    "finished; it was the last one: every revision that ran is applied and "
                    "recorded (see `python -m migrate status`)"
                )
        finally:
            for target, name, fn in listeners:
                event.remove(target, name, fn)
            for number, handler in handlers.items():
                signal.signal(number, handler)
            try:
                with self._cursor() as cursor:
                    cursor.execute(f"SET SESSION lock_wait_timeout = {int(previous)}")
            except Exception:
                pass  # the connection is gone, and its session with it

    def _direction(self) -> str:
        here = self.ids.index(self.at) if self.at in self.ids else -1
        if self.target == "base":
            return "downgrade"
        there = self.ids.index(self.target) if self.target in self.ids else len(self.ids)
        return "upgrade" if there > here else "downgrade"

    def _check_plan(self) -> None:
        if self.at is not None and self.at not in self.ids:
            raise SystemExit(
                f"error: the database is at revision {self.at}, which is not in "
                "migrations/versions: deploy the code that has it (see `python -m alembic "
                "history`)"
            )

    def _refuse_reapplying(self, script: Script) -> None:
        """Never run again what the history says is applied, whatever alembic_version says."""
        with self._cursor() as cursor:
            cursor.execute(f"SELECT revision, kind, executed_at FROM {HISTORY_TABLE} "
                           "WHERE kind IN ('upgrade', 'baseline', 'downgrade') ORDER BY id")
            applied = {}
            for revision, kind, executed_at in cursor.fetchall():
                if kind == "downgrade":
                    applied.pop(revision, None)
                else:
                    applied[revision] = (kind, executed_at)
        if script.revision not in applied:
            return
        kind, executed_at = applied[script.revision]
        last = [r for r in self.ids if r in applied][-1]
        raise Refused(
            f"error: alembic_version says {self.at or 'nothing'}, but the history records "
            f"revision {script.revision} as applied here ({kind}, "
            f"{executed_at:%Y-%m-%d %H:%M:%S} UTC): the version was set back (alembic stamp?). "
            f"Set it forward again with `python -m alembic stamp {last}`; if you undid "
            f"revision {script.revision} by hand, run `python -m migrate upgrade --repaired`"
        )

    def _next_script(self) -> Script:
        here = self.ids.index(self.at) if self.at in self.ids else -1
        return self.order[here + 1] if self.direction == "upgrade" else self.order[here]

    def _start(self) -> None:
        """Before the revision's first statement: its row, committed, or the unfinished
        attempt's, whose statements this run checks and skips."""
        self.revision = script = self._next_script()
        found = last_row(self._cursor())
        if self.direction == "upgrade" and not self.repaired:
            self._refuse_reapplying(script)
        previous = None if self.repaired else unfinished(found, script.revision, self.direction)
        if previous is not None and previous.running_sql:
            raise Refused(
                f"error: revision {script.revision} was cut off during "
                f"`{shorten(previous.running_sql, 100)}` and whether that took effect is "
                "unknown: run `python -m migrate upgrade`, which checks it on the dev database "
                "(DEV_DATABASE_URL)"
            )
        if previous is not None:
            self.skip = previous.statements
            self.hashes = previous.hashes.split() if previous.hashes else []
            self.applied = statements_of(previous)
            if previous.kind == "running":  # its process was killed
                self._save(previous.id, kind="interrupted", error=previous.error or
                           "killed: the process or the server stopped without a word")
        self.row_id = self._insert(script, "running")
        self._commit()

    def applied_revision(self, ctx, step: MigrationInfo, heads, run_args) -> None:
        """Alembic's on_version_apply hook: runs in the revision's own transaction, which
        commits its version row and its history row together."""
        script = self.script.get_revision(step.up_revision_id)
        if step.is_stamp:
            self._insert(script, "baseline", operation="baseline")
        else:
            if self.revision is None:  # it ran no statement
                self.revision = self._next_script()
                self.row_id = self._insert(self.revision, "running")
            if self.position < self.skip:
                raise Refused(
                    f"error: revision {script.revision} ran {self.position} statement(s) "
                    f"where {self.skip} were applied before: the revision changed; restore it"
                )
            kind = "upgrade" if step.is_upgrade else "downgrade"
            self._save(self.row_id, kind=kind, **self._progress())
        self.at = (step.destination_revision_ids or (None,))[0]
        self._new_revision()

    # -- each statement ----------------------------------------------------------------------

    def _before(self, conn, cursor, statement, parameters, context, executemany) -> None:
        self.action = None
        changing, ddl = classify(statement)
        if not changing:
            return
        if self.signal:
            raise Interrupted()
        if self.revision is None:
            self._start()
        position, self.position = self.position, self.position + 1
        if position < self.skip:
            # Applied by the attempt that did not finish: the same statement, skipped, or refuse.
            if chain(self.hashes[position - 1] if position else "", statement, parameters) \
                    != self.hashes[position]:
                raise Refused(
                    f"error: statement {position + 1} of revision {self.revision.revision} "
                    f"changed since it was applied here: now `{shorten(statement, 80)}`, "
                    f"applied `{shorten(self.applied[position], 80)}`; restore the revision "
                    "file (git checkout) and put the change in a new revision"
                )
            self.action = ("skip", statement)
            return
        running = chain(self.hashes[-1] if self.hashes else "", statement, parameters)
        if ddl:  # record, committed, that it starts: MySQL commits it whenever it is done
            self._save(self.row_id, running_sql=statement.strip(), running_hash=running)
            self._commit()
        self.action = ("run", running, statement.strip(), ddl)

    def _after(self, conn, cursor, statement, parameters, context, executemany) -> None:
        action, self.action = self.action, None
        if action is None or action[0] != "run":
            return
        _, running, sql, ddl = action
        self.hashes.append(running)
        self.applied.append(sql)
        # A data statement: this UPDATE commits with it. A DDL statement: committed now.
        # Appended on the server: the statements so far are not sent again each time.
        with self._cursor() as cursor:
            cursor.execute(
                f"UPDATE {HISTORY_TABLE} SET statements = %s, running_sql = NULL, "
                "running_hash = NULL, hashes = CONCAT(hashes, IF(hashes = '', '', ' '), %s), "
                "applied_sql = CONCAT(applied_sql, IF(applied_sql = '', '', ';\n'), %s) "
                "WHERE id = %s", [len(self.hashes), running, sql, self.row_id])
        if ddl:
            self._commit()

    def _execute(self, cursor, statement, parameters, context) -> bool | None:
        if self.action is None:
            return None
        if self.action[0] == "skip":
            if self.online is not None:  # the tool may have been stopped right after its swap
                self.online.finish(cursor, self.action[1])
            return True  # applied already: nothing is sent
        if not self.action[3]:
            return None  # a data statement: as SQLAlchemy would
        return self._run_ddl(cursor, statement, parameters)

    def _execute_no_params(self, cursor, statement, context) -> bool | None:
        return self._execute(cursor, statement, None, context)

    def _run_ddl(self, cursor, statement, parameters) -> bool:
        """An ALTER of a big table runs online: as an online ALGORITHM the server accepts, else
        by pt-online-schema-change (online.py); any other DDL statement as written."""
        route = self.online.route(cursor, statement) if self.online and not parameters else None
        if route is None:
            return self._run_waiting(cursor, statement, parameters)
        for form in online_forms(statement, is_mariadb(cursor)):
            try:
                return self._run_waiting(cursor, form, parameters)
            except Exception as exc:
                if not exc.args or exc.args[0] not in REFUSED:
                    raise
        if route.tool is None:
            self.online.no_tool(route)
            return self._run_waiting(cursor, statement, parameters)
        self.online.hand_off(cursor, route, statement.strip(), self.revision.revision, self.row_id)
        return True

    def _run_waiting(self, cursor, statement, parameters) -> bool:
        """A DDL statement waits `lock_wait_timeout` seconds at most for a metadata lock (while
        it waits, every other query on the table waits behind it), then tries again."""
        for attempt in range(self.lock_wait_retries + 1):
            try:
                cursor.execute(statement, parameters)
                return True
            except Exception as exc:
                code = exc.args[0] if exc.args else None
                if code != 1205 or attempt == self.lock_wait_retries or self.signal:
                    raise  # not a metadata lock's timeout, the last try, or Ctrl-C meanwhile
            pause = 2 ** attempt
            print(f"Waited {self.lock_wait_timeout} s for a metadata lock on "
                  f"{', '.join(sorted(tables(statement))) or 'the table'}, held by "
                  f"{lock_holders(cursor.connection, self.connection_id)}; trying again in "
                  f"{pause} s ({attempt + 1}/{self.lock_wait_retries})", file=sys.stderr)
            time.sleep(pause)
        return True

    # -- signals -------------------------------------------------------------------------------

    def _catch_signals(self) -> dict:
        if threading.current_thread() is not threading.main_thread():
            return {}
        handlers = {}
        for number in (signal.SIGINT, signal.SIGTERM):
            handlers[number] = signal.signal(number, self._on_signal)
        return handlers

    def _on_signal(self, number, frame) -> None:
        """The first Ctrl-C (or SIGTERM) lets a DDL statement finish and cancels a data
        statement, whose transaction rolls back; a second one cancels a DDL statement too.
        Either way the run ends at the next statement, with a true record."""
        second = self.signal is not None
        if second and self.cancelled:  # a third: the reader insists
            signal.signal(number, signal.SIG_DFL)
            raise KeyboardInterrupt
        self.signal = signal.Signals(number).name
        action = self.action
        if action is None or action[0] != "run":
            self.cancelled = second
            return  # between statements: the next one stops the run
        if self.online is not None and self.online.forward(number):
            print(f"{self.signal}: passed on to pt-online-schema-change; once it stops, what "
                  "it leaves (triggers, a new table) is removed", file=sys.stderr)
            return
        if action[3] and not second:
            print(f"{self.signal}: stopping once `{shorten(action[2], 60)}` has finished; "
                  "press Ctrl-C again to cancel it", file=sys.stderr)
            return
        self.cancelled = True
        threading.Thread(target=self._kill_query, daemon=True).start()

    def _kill_query(self) -> None:
        try:
            with self.connection.engine.connect() as other:
                other.exec_driver_sql(f"KILL QUERY {int(self.connection_id)}")
        except SQLAlchemyError:
            pass

    # -- failures ------------------------------------------------------------------------------

    def failed(self, exc: BaseException, statement: str) -> str:
        """Record the failed or interrupted revision, and say in one line what happened."""
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the record is being written: let it be
        code = exc.orig.args[0] if isinstance(exc, DBAPIError) and exc.orig and exc.orig.args else None
        interrupted = isinstance(exc, (Interrupted, KeyboardInterrupt)) or (
            self.signal is not None and code in (1317, 1927)) or (
            isinstance(exc, ToolFailed) and exc.interrupted)
        if isinstance(exc, DBAPIError) and exc.orig is not None:
            reason = str(exc.orig)  # MySQL's code and message, without SQLAlchemy's notes
        elif isinstance(exc, ToolFailed):
            reason = exc.line
        elif interrupted:
            reason = f"stopped by {self.signal or 'SIGINT'}"
        else:
            reason = f"{type(exc).__name__}: {exc}"
        reason = reason.splitlines()[0] if reason else type(exc).__name__
        action = self.action
        ddl = bool(action and action[0] == "run" and action[3])
        lost = isinstance(exc, DBAPIError) and exc.connection_invalidated
        # A DDL statement that ended with an error did not happen (MySQL's DDL is atomic); one
        # cancelled, or whose connection was lost, may have: the rerun checks it.
        unknown = ddl and (lost or (interrupted and code is not None))
        try:
            if lost:
                with self.connection.engine.connect() as fresh:
                    script, count, kept = self._record_failure(
                        fresh, exc, interrupted, unknown, statement, reason)
            else:
                script, count, kept = self._record_failure(
                    self.connection, exc, interrupted, unknown, statement, reason)
        except SQLAlchemyError as record_error:
            orig = getattr(record_error, "orig", None) or record_error
            return (f"error: a revision stopped ({reason}) and its record could not be completed "
                    f"({str(orig).splitlines()[0] if str(orig) else type(orig).__name__}); what "
                    "it committed before is recorded: once MySQL answers, run "
                    "`python -m migrate status`")
        applied = "; ".join(shorten(sql, 80) for sql in kept) if kept else "nothing"
        at = f"`{shorten(statement, 100)}`" if statement else "its Python code"
        if isinstance(exc, ToolFailed):  # it said what happened; the history adds where it was
            return (f"error: revision {script.revision} ({script.doc}): {exc.line}; {count} "
                    f"statement(s) of it applied before and kept; recorded in {HISTORY_TABLE}: "
                    "see `python -m migrate status`")
        if interrupted:
            name = self.signal or "SIGINT"
            done = (f"{count} statement(s) of it are applied and recorded; `python -m migrate "
                    "upgrade` goes on after them")
            if not statement:  # acted on between two statements
                return (f"error: stopped by {name} between two statements of revision "
                        f"{script.revision} ({script.doc}), the running one finished: {done}")
            fate = ("it may or may not have taken effect, which `python -m migrate upgrade` "
                    "checks" if unknown else "it was cancelled (KILL QUERY) and rolled back")
            return (f"error: stopped by {name} while revision {script.revision} ({script.doc}) "
                    f"ran {at}: {fate}; {done}")
        what = (f"lost the connection to MySQL while revision {script.revision} "
                f"({script.doc}) ran {at}, which may or may not have completed" if lost else
                f"revision {script.revision} ({script.doc}) failed at {at}")
        return (
            f"error: {what}: {reason}. Applied before it and kept (MySQL cannot roll back "
            f"DDL): {applied}. Recorded in {HISTORY_TABLE}: see `python -m migrate status`"
        )

    def _record_failure(self, connection: Connection, exc, interrupted: bool, unknown: bool,
                        statement: str, reason: str) -> Script:
        dbapi = connection.connection.dbapi_connection
        if interrupted and not isinstance(exc, DBAPIError):
            dbapi.commit()  # stopped between statements: those that finished are kept
        else:
            dbapi.rollback()  # a data statement's bookkeeping goes with it
        connection.rollback()
        script = self.revision or self._next_script()
        self._dbapi = dbapi
        values = dict(kind="interrupted" if interrupted else "failed", error=reason,
                      failed_sql=statement.strip() or None,
                      execution_ms=round((time.monotonic() - self.started) * 1000))
        if not unknown:
            values.update(running_sql=None, running_hash=None)
        if self.row_id is None:
            self.row_id = self._insert(script, values.pop("kind"))
        self._save(self.row_id, **values)
        dbapi.commit()
        [row] = last_row(self._cursor())  # what is applied: what committed
        return script, row.statements, statements_of(row)

    def _rollback(self) -> None:
        try:
            self.connection.connection.dbapi_connection.rollback()
            self.connection.rollback()
        except SQLAlchemyError:
            pass

    # -- the row -------------------------------------------------------------------------------

    _dbapi = None  # after a lost connection: the fresh one's

    def _cursor(self):
        return (self._dbapi or self.connection.connection.dbapi_connection).cursor()

    def _commit(self) -> None:
        (self._dbapi or self.connection.connection.dbapi_connection).commit()

    def _progress(self) -> dict:
        return dict(statements=len(self.hashes), hashes=" ".join(self.hashes),
                    applied_sql=";\n".join(self.applied),
                    execution_ms=round((time.monotonic() - self.started) * 1000))

    def _insert(self, script: Script, kind: str, operation: str | None = None) -> int:
        values = dict(
            revision=script.revision, description=(script.doc or "")[:255],
            operation=operation or self.direction, kind=kind,
            executed_at=datetime.now(timezone.utc).replace(tzinfo=None),
            checksum=checksum(script.path), connection_id=self.connection_id,
            **self._progress(),
        )
        with self._cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {HISTORY_TABLE} ({', '.join(values)}) "
                f"VALUES ({', '.join(['%s'] * len(values))})", list(values.values()))
            return cursor.lastrowid

    def _save(self, row_id: int, **values) -> None:
        with self._cursor() as cursor:
            cursor.execute(
                f"UPDATE {HISTORY_TABLE} SET {', '.join(f'{k} = %s' for k in values)} "
                "WHERE id = %s", [*values.values(), row_id])


Row = namedtuple("Row", [c.name for c in history.columns])


def last_row(cursor) -> list:
    """The newest history row (a list of none or one), read on the migration's own connection,
    which sees its own bookkeeping before it commits."""
    with cursor:
        cursor.execute(f"SELECT {', '.join(Row._fields)} FROM {HISTORY_TABLE} ORDER BY id DESC LIMIT 1")
        return [Row(*r) for r in cursor.fetchall()]


def lock_holders(dbapi, own_id: int | None) -> str:
    """Who, on this database, holds a transaction open (and with it metadata locks on the
    tables it read): connection, query, for how long. information_schema.INNODB_TRX and
    PROCESSLIST, on MariaDB and MySQL alike."""
    sql = (
        "SELECT p.ID, p.USER, p.TIME, p.INFO, TIMESTAMPDIFF(SECOND, t.trx_started, NOW()) "
        "FROM information_schema.INNODB_TRX t JOIN information_schema.PROCESSLIST p "
        "ON p.ID = t.trx_mysql_thread_id WHERE p.ID <> %s AND p.DB = DATABASE() "
        "ORDER BY t.trx_started"
    )
    try:
        with dbapi.cursor() as cursor:
            cursor.execute(sql, [own_id or 0])
            found = cursor.fetchall()
    except Exception:
        return "another connection (seeing which needs the PROCESS privilege)"
    if not found:
        return "another connection (none with an open transaction now)"
    return "; ".join(
        f"connection {id_} ({user}), in a transaction for {age} s, "
        + (f"running `{shorten(info, 60)}`" if info else "idle")
        for id_, user, _, info, age in found[:3])


def classify(statement: str) -> tuple[bool, bool]:
    """(whether the statement is one of the revision's changes, whether MySQL commits
    implicitly around it), from one parse. A change is not a read, not a SET of a session
    variable (it must run again in a rerun's session), not Alembic's bookkeeping."""
    try:
        trees = parse(statement)
    except ValueError:  # not SQL at all: MySQL will say so; count it as the revision's
        trees = []
    word = keyword(trees[0]) if trees else ""
    named = {name for tree in trees for name in tables(tree)}
    changing = word not in READS and word != "SET" and not named & set(BOOKKEEPING)
    return changing, word in IMPLICIT_COMMIT


def changes(statement: str) -> bool:
    return classify(statement)[0]
