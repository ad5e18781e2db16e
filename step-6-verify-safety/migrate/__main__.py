"""The migration tool's command line. Plan a revision: `python -m migrate generate NAME`;
apply them: `python -m migrate status | upgrade [--repaired] | baseline REV | hash`;
write one by hand: `python -m migrate new NAME`; check one before it ships: `lint`.

The counterpart of `atlas migrate status`, `atlas migrate apply` and
`atlas migrate apply --baseline REV`. The lock and the history live in migrations/env.py, so
plain `python -m alembic upgrade head` is as safe; this script adds what a deploy needs: a
refusal to upgrade a database that create_all() made, a baseline that checks the schema before
trusting it, and a status that shows what ran and what failed.
"""

import os
import re
import sys
from pathlib import Path

from alembic import command
from alembic.util import CommandError
from sqlalchemy import Connection, Engine

from database import connect
from . import APP_DIR
from .devdb import dev_database
from .generate import main as generate, new_revision_id
from .history import checksum, rows, shorten, unrepaired
from .integrity import SUM_FILE, mismatches, write
from .lint import main as lint
from .lock import migration_lock
from .revisions import alembic_config, app_tables, current, head, made_by_create_all, pending, scripts
from .schema_compare import NOT_COMPARED, describe, differences, match_defaults

USAGE = (
    "usage: python -m migrate generate NAME | status | upgrade [--repaired] | baseline REV"
    " | hash | new NAME | lint [--latest N | REV] [--strict]"
)


def check_directory() -> None:
    """Refuse revision files that changed without re-hashing, and a history that forked."""
    found = mismatches()
    if found:
        raise SystemExit(
            f"error: checksum mismatch in migrations/{SUM_FILE.name}: {'; '.join(found)}. A "
            "revision was added, edited or removed by hand: review it, then run "
            "`python -m migrate hash`"
        )
    heads = scripts().get_heads()
    if len(heads) > 1:
        raise SystemExit(
            f"error: migrations/versions has {len(heads)} heads ({', '.join(sorted(heads))}): "
            "two revisions follow the same one. Merge them (`python -m alembic merge -m merge "
            f"{' '.join(sorted(heads))}`) or make the newer one follow the other (its "
            "down_revision), then run `python -m migrate hash`"
        )


def edited_after_applied(connection: Connection) -> list[str]:
    """Revisions whose file changed since it was applied (or stamped) here."""
    applied = {}
    for row in rows(connection):
        if row.kind in ("upgrade", "baseline"):
            applied[row.revision] = row  # the latest one counts
        elif row.kind == "downgrade":
            applied.pop(row.revision, None)
    found = []
    for revision, row in applied.items():
        try:
            script = scripts().get_revision(revision)
        except CommandError:
            continue  # from newer code: `pending` says so
        if script is not None and checksum(script.path) != row.checksum:
            found.append(f"{revision} ({row.executed_at:%Y-%m-%d %H:%M:%S} UTC)")
    return found


def refuse_unmanaged(connection: Connection) -> None:
    """A database with tables that no migration made: upgrading would create them again."""
    if current(connection) is not None or not app_tables(connection):
        return
    tables = ", ".join(app_tables(connection))
    if made_by_create_all(connection):
        raise SystemExit(
            f"error: the database holds tables ({tables}) but no migration history; it was "
            "made by create_all(): run `python -m migrate baseline REV`"
        )
    raise SystemExit(
        f"error: the database holds tables ({tables}) but no revision was recorded: a first "
        "migration did not finish; see `python -m migrate status`"
    )


def status(engine: Engine) -> None:
    check_directory()
    with engine.connect() as connection:
        at, tables, history = current(connection), app_tables(connection), rows(connection)
        unmanaged = at is None and made_by_create_all(connection)
        edited = edited_after_applied(connection)
    waiting = pending(at)
    failure = history[-1] if history and history[-1].kind == "failed" else None
    state = 'FAILED' if failure else 'EDITED' if edited else 'NOT MANAGED' if unmanaged else 'OK'
    print(f"Migration status: {state}")
    if unmanaged:
        print(f"Current revision: none. The database holds tables ({', '.join(tables)}) but no")
        print("migration history: automatic migration made it. Check it and mark it with")
        print("`python -m migrate baseline REV`, REV being the revision that built this schema.")
    elif at is None and tables:
        print(f"Current revision: none. The database holds tables ({', '.join(tables)}) from a")
        print("first migration that did not finish: see the history below.")
    else:
        print(f"Current revision: {at or 'none (empty database)'}")
    print(f"Head revision:    {head()}")
    print(f"Pending:          {len(waiting)}")
    for script in waiting:
        print(f"  {script.revision}  {script.doc}")
    if history:
        print("History (oldest first, times in UTC):")
        for row in history:
            print(f"  {row.executed_at:%Y-%m-%d %H:%M:%S}  {row.kind:<9} {row.revision}  "
                  f"{row.description}  ({row.statements} statement(s), {row.execution_ms} ms)")
    if failure:
        print("Last migration attempt had errors:")
        print(f"  revision: {failure.revision} ({failure.description})")
        failed_sql = failure.failed_sql or "(in the revision's Python code)"
        print(f"  -- SQL: {shorten(failed_sql)}")
        print(f"  -- ERROR: {failure.error}")
        applied = failure.applied_sql.split(";\n") if failure.applied_sql else []
        print(f"  Applied before it and kept ({len(applied)}):")
        for statement in applied:
            print(f"    {shorten(statement)};")
        if applied:
            print("  Repair the database (see README.md, 'When a revision fails'), then run")
            print("  `python -m migrate upgrade --repaired`.")
        else:
            print("  Nothing of it stayed applied: fix it, then run it again.")
    for revision in edited:
        print(f"Edited after it was applied here: {revision}. The database holds what the")
        print("  file said then: restore the file, and put the change in a new revision.")


def upgrade(engine: Engine, repaired: bool) -> None:
    check_directory()
    with engine.connect() as connection, migration_lock(connection):
        refuse_unmanaged(connection)
        edited = edited_after_applied(connection)
        if edited:
            raise SystemExit(
                f"error: revision {', '.join(edited)} was edited after it was applied to this "
                "database, which holds what the file said then: restore the file (git "
                "checkout), put the change in a new revision, then upgrade"
            )
        at = current(connection)
        failure = unrepaired(connection)
        waiting = pending(at)
        if not waiting:
            print(f"Already at {at}: nothing to apply.")
            return
        if failure is not None and not repaired:
            raise SystemExit(
                f"error: the last attempt, revision {failure.revision}, failed after "
                f"{failure.statements} statement(s) that stayed applied; see "
                "`python -m migrate status`, repair the database, then run "
                "`python -m migrate upgrade --repaired`"
            )
        for script in waiting:
            print(f"Applying {script.revision}  {script.doc}")
        connection.commit()  # hand Alembic a connection outside a transaction: see env.py
        config = alembic_config(quiet=True, repaired=repaired)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        print(f"Upgraded from {at or 'an empty database'} to {current(connection)}.")


def baseline(engine: Engine, revision: str) -> None:
    check_directory()
    try:
        script = scripts().get_revision(revision)
    except CommandError:
        script = None
    if script is None:
        raise SystemExit(
            f"error: unknown revision '{revision}'; see `python -m alembic history`"
        )
    revision = script.revision
    with engine.connect() as connection, migration_lock(connection):
        at, tables = current(connection), app_tables(connection)
        if at is not None:
            raise SystemExit(f"error: the database is already at revision {at}; nothing to baseline")
        if not tables:
            raise SystemExit("error: the database is empty; run `python -m migrate upgrade` instead")
        # What the revision builds, on a throwaway database made like production's (same
        # character set and collation), against what production holds.
        with dev_database() as dev, dev.connect() as dev_connection:
            match_defaults(dev_connection, connection)
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
        connection.commit()
        config = alembic_config(quiet=True)
        config.attributes["connection"] = connection
        command.stamp(config, revision)
    print(f"The schema matches revision {revision}: stamped it as the current revision.")
    print(f"Not compared: {NOT_COMPARED}.")
    print("From now on, `python -m migrate upgrade` applies the revisions after it.")


def new(name: str) -> None:
    """An empty revision after the head, for what autogenerate cannot write (data, renames):
    `atlas migrate new NAME`. Re-hashed at once; re-hash again after filling it in."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise SystemExit(f"error: '{name}' is not a NAME: lower case, e.g. seed_users; {USAGE}")
    check_directory()  # re-hashing below must not bless someone else's unreviewed edit
    config = alembic_config(quiet=True)
    script = command.revision(config, message=name, rev_id=new_revision_id(config))
    write()
    print(f"Wrote {Path(script.path).relative_to(APP_DIR)}: fill in upgrade() "
          "and downgrade(), run `python -m migrate hash`, then `python -m migrate upgrade`.")


def main(argv: list[str]) -> None:
    match argv:
        case ["generate", *rest]:
            generate(rest)
        case ["status"]:
            status(connect())
        case ["upgrade"]:
            upgrade(connect(), repaired=False)
        case ["upgrade", "--repaired"]:
            upgrade(connect(), repaired=True)
        case ["baseline", revision]:
            baseline(connect(), revision)
        case ["new", name]:
            new(name)
        case ["new", *_]:
            raise SystemExit(f"error: new needs one NAME, e.g. seed_users; {USAGE}")
        case ["lint", *rest]:
            raise SystemExit(lint(rest))
        case ["hash"]:
            write()
            print(f"Re-hashed migrations/versions into migrations/{SUM_FILE.name}.")
        case ["baseline"]:
            raise SystemExit(f"error: baseline needs the revision that built the schema; {USAGE}")
        case ["-h" | "--help"]:
            print(USAGE)
        case _:
            raise SystemExit(f"error: {USAGE}")


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
        sys.stdout.flush()
    except BrokenPipeError:  # `python -m migrate status | head`: the reader has read enough
        # Python's own advice: point stdout at nothing, so the exit does not fail a second time.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
