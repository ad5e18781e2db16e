"""What ran on this database: a history table beside alembic_version, written by env.py.

Alembic keeps only the current revision. Like Atlas's atlas_schema_revisions, this table keeps
one row per revision applied, stamped or failed: when, how long, the statements it ran, a
checksum of the revision file, and for a failure MySQL's error and the statement that failed.
MySQL cannot roll DDL back, so a failed revision can leave part of itself applied: the row says
which part, and `python -m migrate status` shows it.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from alembic.runtime.migration import MigrationInfo
from alembic.script import Script, ScriptDirectory
from sqlalchemy import (
    Column, Connection, DateTime, Integer, MetaData, String, Table, Text, event, insert, inspect,
    select, text,
)
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from .sql import commits_implicitly, reads_only, tables

VERSION_TABLE = "alembic_version"
HISTORY_TABLE = "alembic_history"
BOOKKEEPING = (VERSION_TABLE, HISTORY_TABLE)

# Not in the models' metadata: the migrations do not create it, env.py does, like alembic_version.
history = Table(
    HISTORY_TABLE,
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("revision", String(64), nullable=False),
    Column("description", String(255), nullable=False),
    Column("kind", String(16), nullable=False),  # upgrade, downgrade, baseline or failed
    Column("executed_at", DateTime, nullable=False),  # UTC
    Column("execution_ms", Integer, nullable=False),
    Column("statements", Integer, nullable=False),  # how many ran (for a failure: before it)
    Column("checksum", String(64), nullable=False),  # sha256 of the revision file
    Column("applied_sql", Text, nullable=False),  # what ran and stayed applied
    Column("failed_sql", Text),
    Column("error", Text),
)


def checksum(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def rows(connection: Connection) -> list:
    """The history, oldest first; empty when no migration has run here."""
    if HISTORY_TABLE not in inspect(connection).get_table_names():
        return []
    return connection.execute(select(history).order_by(history.c.id)).all()


def last_failure(connection: Connection):
    """The newest history row when it is a failure nothing has followed, else None."""
    found = rows(connection)
    return found[-1] if found and found[-1].kind == "failed" else None


def unrepaired(connection: Connection):
    """The last failure, when it left statements applied: running its revision again could
    repeat them (an INSERT twice). A failure that left nothing applied can simply be rerun."""
    failure = last_failure(connection)
    return failure if failure is not None and failure.statements else None


def shorten(sql: str, limit: int = 160) -> str:
    sql = " ".join(sql.split())
    return sql if len(sql) <= limit else sql[: limit - 3] + "..."


class Unresolved(Exception):
    """Raised before a revision's first statement when the last attempt failed half-way."""


class Recorder:
    """Collects the statements each revision runs; writes a history row as each one ends."""

    def __init__(self, connection: Connection, script: ScriptDirectory, target: str | None,
                 repaired: bool):
        self.connection = connection
        self.script = script
        self.target = target  # where the command goes (see target_revision in env.py)
        self.repaired = repaired
        self.statements: list[str] = []
        self.started = time.monotonic()

    @contextmanager
    def recording(self) -> Iterator[None]:
        self.unresolved = unrepaired(self.connection)
        event.listen(self.connection, "before_cursor_execute", self._before)
        event.listen(self.connection, "after_cursor_execute", self._after)
        try:
            yield
        except Unresolved as exc:
            raise SystemExit(str(exc)) from None
        except Exception as exc:
            if self.target is None:
                raise  # a command that runs no revision (`alembic check`): nothing to record
            raise SystemExit(self.failed(exc, getattr(exc, "statement", None) or "")) from None
        finally:
            event.remove(self.connection, "before_cursor_execute", self._before)
            event.remove(self.connection, "after_cursor_execute", self._after)

    def _before(self, conn, cursor, statement, parameters, context, executemany) -> None:
        # A revision that failed half-way left the database between two revisions: running
        # revision code again could repeat what it did (an INSERT twice). Stamping stays allowed.
        if self.unresolved is not None and _changes(statement) and not self.repaired:
            failure = self.unresolved
            raise Unresolved(
                f"error: the last attempt, revision {failure.revision} at "
                f"{failure.executed_at:%Y-%m-%d %H:%M:%S} UTC, failed after {failure.statements} "
                "statement(s) stayed applied; see `python -m migrate status`, repair the "
                "database, then run `python -m migrate upgrade --repaired`"
            )

    def _after(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if _changes(statement):
            self.statements.append(statement.strip())

    def applied(self, ctx, step: MigrationInfo, heads, run_args) -> None:
        """Alembic's on_version_apply hook: runs in the revision's own transaction."""
        script = self.script.get_revision(step.up_revision_id)
        kind = "baseline" if step.is_stamp else "upgrade" if step.is_upgrade else "downgrade"
        self._write(script, kind)

    def failed(self, exc: Exception, statement: str) -> str:
        """Record the failed revision, and say in one line what happened."""
        if isinstance(exc, DBAPIError) and exc.orig is not None:
            reason = str(exc.orig)  # MySQL's code and message, without SQLAlchemy's notes
        else:
            reason = f"{type(exc).__name__}: {exc}"
        reason = reason.splitlines()[0] if reason else type(exc).__name__
        kept = self._kept(statement)
        # Killed, or the server went away: record it on a new connection, if one can be had.
        lost = isinstance(exc, DBAPIError) and exc.connection_invalidated
        try:
            if lost:
                with self.connection.engine.connect() as fresh:
                    script = self._record_failure(fresh, kept, statement, reason)
            else:
                script = self._record_failure(self.connection, kept, statement, reason)
        except SQLAlchemyError:
            return (f"error: a revision failed ({reason}) and MySQL could not be reached to "
                    "record it; once it can, run `python -m migrate status` to see where the "
                    "database stands")
        applied = "; ".join(shorten(sql, 80) for sql in kept) if kept else "nothing"
        at = f"`{shorten(statement, 100)}`" if statement else "its Python code"
        what = (f"lost the connection to MySQL while revision {script.revision} "
                f"({script.doc}) ran {at}, which may or may not have completed" if lost else
                f"revision {script.revision} ({script.doc}) failed at {at}")
        return (
            f"error: {what}: {reason}. Applied before it and kept (MySQL cannot roll back "
            f"DDL): {applied}. Recorded in {HISTORY_TABLE}: see `python -m migrate status`"
        )

    def _record_failure(self, connection: Connection, kept, statement, reason) -> Script:
        connection.rollback()
        script = self._failing_revision(connection)
        self._write(script, "failed", kept, statement, reason, connection=connection)
        connection.commit()
        return script

    def _kept(self, failed_sql: str) -> list[str]:
        """What stays applied: everything up to the last DDL, since MySQL commits before each."""
        ran = list(self.statements)
        if commits_implicitly(failed_sql):
            return ran  # the failed DDL's implicit commit kept all that ran before it
        ddl = [i for i, sql in enumerate(ran) if commits_implicitly(sql)]
        return ran[: ddl[-1] + 1] if ddl else []

    def _failing_revision(self, connection: Connection) -> Script:
        """The revision Alembic was running: each one before it committed its version row."""
        at = connection.scalar(select(text("version_num")).select_from(text(VERSION_TABLE)))
        order = list(reversed(list(self.script.walk_revisions())))  # oldest first
        ids = [script.revision for script in order]
        here = ids.index(at) if at in ids else -1
        there = -1 if self.target == "base" else ids.index(self.target) if self.target in ids else len(ids)
        # Upgrading, it failed on the revision after `at`; downgrading, on `at` itself.
        return order[here + 1] if there > here else order[here]

    def _write(self, script, kind: str, applied=None, failed_sql=None, error=None,
               connection: Connection | None = None) -> None:
        connection = connection or self.connection
        applied = self.statements if applied is None else applied
        history.create(connection, checkfirst=True)  # on the first migration only
        connection.execute(insert(history).values(
            revision=script.revision,
            description=(script.doc or "")[:255],
            kind=kind,
            executed_at=datetime.now(timezone.utc).replace(tzinfo=None),
            execution_ms=round((time.monotonic() - self.started) * 1000),
            statements=len(applied),
            checksum=checksum(script.path),
            applied_sql=";\n".join(applied),
            failed_sql=failed_sql,
            error=error,
        ))
        self.statements = []
        self.started = time.monotonic()


def _changes(statement: str) -> bool:
    """A statement of the revision itself, not a read or Alembic's bookkeeping."""
    return not reads_only(statement) and not tables(statement) & set(BOOKKEEPING)
