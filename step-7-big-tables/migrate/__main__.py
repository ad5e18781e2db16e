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
from .history import (
    HISTORY_TABLE, UNFINISHED, applied_revisions, checksum, last_failure, rows, shorten,
    statements_of,
)
from .integrity import SUM_FILE, write
from .lint import main as lint
from .lock import lock_holder, migration_lock
from .online import recorded
from .resolve import settle
from .revisions import (
    alembic_config, app_tables, check_directory, current, head, made_by_create_all, pending, scripts,
)
from .schema_compare import NOT_COMPARED, describe, differences, match_defaults

USAGE = (
    "usage: python -m migrate generate NAME | status | upgrade [--repaired] [-x NAME=VALUE]"
    " | baseline REV"
    " | hash | new NAME | lint [--latest N | REV] [--strict]"
)


def edited_after_applied(connection: Connection) -> list[str]:
    """Revisions whose file changed since it was applied (or stamped) here."""
    applied = applied_revisions(rows(connection))
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
    if last_failure(connection) is not None:
        return  # a first migration that did not finish: the rerun goes on with it
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


# `python -m migrate status` as a deploy gate: its exit code says where the database stands.
EXIT_CODES = {
    "OK": 0,  # at the head, nothing pending
    "PENDING": 3,  # revisions to apply: run `python -m migrate upgrade`
    "FAILED": 4,  # the last attempt failed, or was interrupted: see the report
    "INTERRUPTED": 4,
    "EDITED": 5,  # a revision file changed after it was applied here
    "NOT MANAGED": 6,  # tables, but no migration history: baseline it
    "INCONSISTENT": 7,  # alembic_version and the history disagree, or the history is gone
    "LOCKED": 8,  # another connection holds the migration lock: a migration is running
}


def inconsistencies(at: str | None, history: list) -> list[str]:
    """How alembic_version and the history disagree, in sentences; empty when they agree."""
    if at is None:
        return []
    if not history:
        return [f"alembic_version says {at}, but the history table {HISTORY_TABLE} is missing "
                "or empty: what ran here is unknown, and neither the edited-after-applied check "
                "nor a safe rerun can work. Restore it from a backup"]
    applied = applied_revisions(history)
    order = [script.revision for script in reversed(list(scripts().walk_revisions()))]
    newest = [revision for revision in order if revision in applied]
    found = []
    if newest and at in order and order.index(newest[-1]) > order.index(at):
        found.append(f"alembic_version says {at}, but the history records {newest[-1]} as "
                     f"applied: the version was set back; `python -m alembic stamp {newest[-1]}` "
                     "sets it forward again")
    elif at not in applied:
        found.append(f"alembic_version says {at}, which the history never recorded as applied "
                     f"(newest applied: {newest[-1] if newest else 'none'}): the version was set "
                     "ahead by hand; check the schema, then stamp what it really is")
    return found


def status(engine: Engine) -> None:
    check_directory()
    with engine.connect() as connection:
        at, tables, history = current(connection), app_tables(connection), rows(connection)
        unmanaged = at is None and made_by_create_all(connection)
        edited = edited_after_applied(connection)
        holder = lock_holder(connection)
        online = recorded(connection)
    waiting = pending(at)
    inconsistent = inconsistencies(at, history)
    failure = history[-1] if history and history[-1].kind in UNFINISHED else None
    if failure is not None and failure.kind == "running" and holder:
        failure = None  # not stopped: running now, under the lock
    states = [
        ("INCONSISTENT", inconsistent), ("FAILED", failure and failure.kind == "failed"),
        ("INTERRUPTED", failure is not None), ("EDITED", edited), ("NOT MANAGED", unmanaged),
        ("LOCKED", holder), ("PENDING", waiting),
    ]
    state = next((name for name, true in states if true), "OK")
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
    if holder:
        print(f"Migration lock:   held by {holder}")
    if history:
        print("History (oldest first, times in UTC):")
        for row in history:
            print(f"  {row.executed_at:%Y-%m-%d %H:%M:%S}  {row.kind:<11} {row.revision}  "
                  f"{row.description}  ({row.statements} statement(s), {row.execution_ms} ms)")
    for alter in online:  # the ALTERs pt-online-schema-change ran (online.py)
        done = "altered" if alter.outcome == "done" else f"not altered ({alter.outcome})"
        print(f"  online: {alter.table_name} {done} "
              f"by {alter.tool_version}, {alter.started_at:%Y-%m-%d %H:%M:%S}, "
              f"{alter.duration_ms} ms, rows {alter.rows_before} before, {alter.rows_after} after"
              + (f"; removed its leftovers: {alter.cleaned_up}" if alter.cleaned_up else ""))
    for sentence in inconsistent:
        print(f"Inconsistent: {sentence}.")
    if failure:
        print("Last migration attempt had errors:" if failure.kind == "failed" else
              "Last migration attempt was interrupted:")
        print(f"  revision: {failure.revision} ({failure.description})")
        if failure.failed_sql or failure.kind == "failed":
            failed_sql = failure.failed_sql or "(in the revision's Python code)"
            print(f"  -- SQL: {shorten(failed_sql)}")
        print(f"  -- ERROR: {failure.error or 'killed: the process or the server stopped without a word'}")
        applied = statements_of(failure)
        print(f"  Applied before it and kept ({len(applied)}):")
        for statement in applied:
            print(f"    {shorten(statement)};")
        if failure.running_sql:
            print(f"  Cut off during: {shorten(failure.running_sql)};")
            print("  Whether that took effect is unknown: `python -m migrate upgrade` checks it on")
            print("  the dev database (DEV_DATABASE_URL), then goes on.")
        if failure.kind == "failed":
            print("  Fix the revision (then `python -m migrate hash`) and run `python -m migrate")
            print(f"  upgrade`: it skips the {len(applied)} statement(s) applied, checking each is unchanged.")
        else:
            print(f"  `python -m migrate upgrade` goes on after the {len(applied)} statement(s) applied.")
    for revision in edited:
        print(f"Edited after it was applied here: {revision}. The database holds what the")
        print("  file said then: restore the file, and put the change in a new revision.")
    sys.stdout.flush()
    raise SystemExit(EXIT_CODES[state])


def upgrade(engine: Engine, repaired: bool, options: list[str] | None = None) -> None:
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
        waiting = pending(at)
        if not waiting:
            print(f"Already at {at}: nothing to apply.")
            return
        last = last_failure(connection)
        if last is not None and (last.revision != waiting[0].revision or repaired):
            last = None  # not what runs next, or repaired by hand: run from its start
        if last is not None and last.running_sql:
            settle(connection, last)  # cut off during a DDL statement: did it take effect?
            last = last_failure(connection)
        for script in waiting:
            print(f"Applying {script.revision}  {script.doc}")
            if last is not None and script.revision == last.revision and last.statements:
                print(f"  going on after the {last.statements} statement(s) applied before "
                      f"(the last attempt {'failed' if last.kind == 'failed' else 'was interrupted'})")
        connection.commit()  # hand Alembic a connection outside a transaction: see env.py
        config = alembic_config(quiet=True, repaired=repaired, options=options)
        config.attributes["connection"] = connection
        config.attributes["online"] = True  # production: big tables' ALTERs run online
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


# The settings `-x NAME=VALUE` may change for one run (alembic.ini has them all).
X_OPTIONS = ("lock_wait_timeout", "lock_wait_retries", "online_min_rows", "online_tool",
             "online_tool_options")


def upgrade_command(args: list[str]) -> None:
    """`upgrade [--repaired] [-x NAME=VALUE ...]`, checked before anything connects."""
    repaired, options = False, []
    while args:
        match args:
            case ["--repaired", *args]:
                repaired = True
            case ["-x", setting, *args] if setting.partition("=")[0] in X_OPTIONS and "=" in setting:
                options.append(setting)
            case ["-x", setting, *_]:
                raise SystemExit(f"error: -x takes NAME=VALUE, NAME one of {', '.join(X_OPTIONS)}; "
                                 f"not '{setting}'")
            case _:
                raise SystemExit(f"error: {USAGE}")
    upgrade(connect(), repaired=repaired, options=options)


def main(argv: list[str]) -> None:
    match argv:
        case ["generate", *rest]:
            generate(rest)
        case ["status"]:
            status(connect())
        case ["upgrade", *rest]:
            upgrade_command(rest)
        case ["baseline", ""]:
            raise SystemExit(f"error: baseline needs the revision that built the schema; {USAGE}")
        case ["baseline", revision]:
            baseline(connect(), revision)
        case ["new", name]:
            new(name)
        case ["new", *_]:
            raise SystemExit(f"error: new needs one NAME, e.g. seed_users; {USAGE}")
        case ["lint", *rest] if "" in rest:
            raise SystemExit(f"error: lint got an empty argument; {USAGE}")
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
    except KeyboardInterrupt:  # during a revision env.py says what it stopped; here none ran
        sys.exit("error: stopped by Ctrl-C while no revision was running: see "
                 "`python -m migrate status`")
