"""Apply the migrations: `python migrate.py status | upgrade | baseline REV | lint`.

The counterpart of `atlas migrate status`, `atlas migrate apply` and
`atlas migrate apply --baseline REV`. Plain `python -m alembic ...` works too; this script adds
what production needs: a lock across processes, a refusal to upgrade a database that
create_all() made, and a baseline that checks the schema before trusting it.
"""

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from alembic import command
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, text

from database import connect
from devdb import dev_database
from lint import main as lint
from revisions import alembic_config, app_tables, current, head, pending, scripts
from schema_compare import describe, differences

USAGE = "usage: python migrate.py status | upgrade | baseline REV | lint [--latest N | REV] [--strict]"
LOCK_TIMEOUT = 300  # seconds to wait for another process's migration


@contextmanager
def migration_lock(engine: Engine) -> Iterator[Connection]:
    """A MySQL named lock, so that replicas deploying at once migrate one at a time."""
    name = f"migrate:{engine.url.database}"[:64]
    with engine.connect() as connection:
        got = connection.scalar(text("SELECT GET_LOCK(:name, :timeout)"),
                                {"name": name, "timeout": LOCK_TIMEOUT})
        connection.commit()
        if got != 1:
            raise SystemExit(
                f"error: another process has held the migration lock for {LOCK_TIMEOUT} s; "
                "wait for it to finish, then run this again"
            )
        try:
            yield connection
        finally:
            connection.rollback()
            connection.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": name})
            connection.commit()


def status(engine: Engine) -> None:
    with engine.connect() as connection:
        at, tables = current(connection), app_tables(connection)
    waiting = pending(at)
    if at is None and tables:
        print(f"Current revision: none. The database holds tables ({', '.join(tables)}) but no")
        print("migration history: automatic migration made it. Check it and mark it with")
        print("`python migrate.py baseline REV`, REV being the revision that built this schema.")
    else:
        print(f"Current revision: {at or 'none (empty database)'}")
    print(f"Head revision:    {head()}")
    print(f"Pending:          {len(waiting)}")
    for script in waiting:
        print(f"  {script.revision}  {script.doc}")


def upgrade(engine: Engine) -> None:
    with migration_lock(engine) as connection:
        at, tables = current(connection), app_tables(connection)
        if at is None and tables:
            raise SystemExit(
                f"error: the database holds tables ({', '.join(tables)}) but no migration "
                "history; it was made by create_all(): run `python migrate.py baseline REV`"
            )
        waiting = pending(at)
        if not waiting:
            print(f"Already at {at}: nothing to apply.")
            return
        for script in waiting:
            print(f"Applying {script.revision}  {script.doc}")
        config = alembic_config(quiet=True)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        connection.commit()
        print(f"Upgraded from {at or 'an empty database'} to {current(connection)}.")


def baseline(engine: Engine, revision: str) -> None:
    try:
        script = scripts().get_revision(revision)
    except CommandError:
        script = None
    if script is None:
        raise SystemExit(
            f"error: unknown revision '{revision}'; see `python -m alembic history`"
        )
    revision = script.revision
    with migration_lock(engine) as connection:
        at, tables = current(connection), app_tables(connection)
        if at is not None:
            raise SystemExit(f"error: the database is already at revision {at}; nothing to baseline")
        if not tables:
            raise SystemExit("error: the database is empty; run `python migrate.py upgrade` instead")
        # What the revision builds, on a throwaway database, against what production holds.
        with dev_database() as dev, dev.connect() as dev_connection:
            config = alembic_config(quiet=True)
            config.attributes["connection"] = dev_connection
            command.upgrade(config, revision)
            expected = describe(dev_connection)
        found = differences(expected, describe(connection), revision)
        if found:
            for difference in found:
                print(f"  {difference}")
            raise SystemExit(
                f"error: the database differs from revision {revision} in {len(found)} "
                "place(s), listed above; nothing was stamped"
            )
        config = alembic_config(quiet=True)
        config.attributes["connection"] = connection
        command.stamp(config, revision)
        connection.commit()
    print(f"The schema matches revision {revision}: stamped it as the current revision.")
    print("From now on, `python migrate.py upgrade` applies the revisions after it.")


def main(argv: list[str]) -> None:
    match argv:
        case ["status"]:
            status(connect())
        case ["upgrade"]:
            upgrade(connect())
        case ["baseline", revision]:
            baseline(connect(), revision)
        case ["lint", *rest]:
            raise SystemExit(lint(rest))
        case ["baseline"]:
            raise SystemExit(f"error: baseline needs the revision that built the schema; {USAGE}")
        case _:
            raise SystemExit(f"error: {USAGE}")


if __name__ == "__main__":
    main(sys.argv[1:])
