"""A MySQL named lock per database, so that processes deploying at once migrate one at a time.

Alembic takes no lock of its own. migrations/env.py takes this one for every alembic command;
`python -m migrate` takes it first to look at the database, then hands its connection to Alembic (the
same session may take a named lock it already holds). MySQL releases it when the session ends,
however it ends: a killed process's lock is held only until the server has finished the
statement it was running.
"""

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, text
from sqlalchemy.exc import SQLAlchemyError

LOCK_TIMEOUT = 300  # seconds to wait for another process's migration


def lock_name(connection: Connection) -> str:
    return f"migrate:{connection.engine.url.database}"[:64]


@contextmanager
def migration_lock(connection: Connection) -> Iterator[None]:
    name = lock_name(connection)
    lock = text("SELECT GET_LOCK(:name, :timeout)")
    if connection.scalar(lock, {"name": name, "timeout": 0}) != 1:
        print(f"Waiting for another process's migration to finish...", file=sys.stderr)
        if connection.scalar(lock, {"name": name, "timeout": LOCK_TIMEOUT}) != 1:
            raise SystemExit(
                f"error: another process has held the migration lock for {LOCK_TIMEOUT} s "
                f"({lock_holder(connection) or 'released since'}); wait for it to finish, "
                "then run this again"
            )
    try:
        yield
    finally:
        try:
            connection.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": name})
        except SQLAlchemyError:
            pass  # the connection is gone: the lock went with its session


def lock_holder(connection: Connection) -> str | None:
    """Who holds the migration lock, if another connection does: its id, user, host, and what
    it has been doing for how long (information_schema.PROCESSLIST); None when nobody does."""
    holder = connection.scalar(text("SELECT IS_USED_LOCK(:name)"), {"name": lock_name(connection)})
    if holder is None or holder == connection.scalar(text("SELECT CONNECTION_ID()")):
        return None
    found = connection.execute(text(
        "SELECT USER, HOST, COMMAND, TIME, INFO FROM information_schema.PROCESSLIST WHERE ID = :id"
    ), {"id": holder}).first()
    if found is None:
        return f"connection {holder}"
    user, host, command, seconds, info = found
    doing = f"running `{' '.join(info.split())[:80]}`" if info else command.lower()
    return f"connection {holder} ({user}@{host}), {doing} for {seconds} s"
