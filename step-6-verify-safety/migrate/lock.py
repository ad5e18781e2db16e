"""A MySQL named lock per database, so that processes deploying at once migrate one at a time.

Alembic takes no lock of its own. migrations/env.py takes this one for every alembic command;
`python -m migrate` takes it first to look at the database, then hands its connection to Alembic (the
same session may take a named lock it already holds).
"""

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, text

LOCK_TIMEOUT = 300  # seconds to wait for another process's migration


@contextmanager
def migration_lock(connection: Connection) -> Iterator[None]:
    name = f"migrate:{connection.engine.url.database}"[:64]
    lock = text("SELECT GET_LOCK(:name, :timeout)")
    if connection.scalar(lock, {"name": name, "timeout": 0}) != 1:
        print("Waiting for another process's migration to finish...", file=sys.stderr)
        if connection.scalar(lock, {"name": name, "timeout": LOCK_TIMEOUT}) != 1:
            raise SystemExit(
                f"error: another process has held the migration lock for {LOCK_TIMEOUT} s; "
                "wait for it to finish, then run this again"
            )
    try:
        yield
    finally:
        connection.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": name})
