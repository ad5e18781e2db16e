"""Did a DDL statement cut off mid-way take effect? Asked of the dev database, never guessed.

The history records, committed, that a DDL statement starts, and that it is done. When the run
stopped in between (the process killed, the server crashed, the connection lost), MySQL may have
finished the statement or not. `python -m migrate upgrade` then replays the revision on a
throwaway database (DEV_DATABASE_URL), looks at the tables the statement names just before and
just after it there, and compares them with the live ones: equal to after, it took effect; equal
to before, it did not; anything else, it refuses and says what to check.
"""

from alembic import command
from sqlalchemy import Connection, event, update

from .devdb import dev_database
from .history import changes, history, shorten, statements_of
from .revisions import alembic_config, scripts
from .schema_compare import describe, match_defaults
from .sql import tables


def settle(connection: Connection, row) -> None:
    """Record whether `row.running_sql` took effect, or exit with one line saying what to check."""
    statement, names = row.running_sql, tables(row.running_sql)
    where = (f"revision {row.revision} was cut off during `{shorten(statement, 100)}`, and "
             "whether that took effect is unknown")
    live = only(describe(connection), names)
    try:
        before, after = replay(connection, row.revision, row.statements, statement, names)
    except SystemExit as exc:  # no dev database, or the replay failed
        raise SystemExit(
            f"error: {where}: it could not be replayed on the dev database ({str(exc.code)[7:]}); "
            f"compare table(s) {', '.join(sorted(names))} with what the statement makes, then "
            f"either undo it and run `python -m migrate upgrade --repaired`, or finish the "
            f"revision by hand and `python -m alembic stamp {row.revision}`"
        ) from None
    if live == after and live != before:
        took_effect = True
    elif live == before and live != after:
        took_effect = False
    else:
        changed = sorted(k for k in live.keys() | after.keys() | before.keys()
                         if live.get(k) not in (before.get(k), after.get(k)))
        first = changed[0] if changed else ""
        seen = (f"; {first}: here {live.get(first, 'missing')}, before it "
                f"{before.get(first, 'missing')}, after it {after.get(first, 'missing')}") if first else ""
        raise SystemExit(
            f"error: {where}: table(s) {', '.join(sorted(names))} match neither the schema before "
            f"it nor the one after it (check {', '.join(changed[:3]) or 'them'}{seen}); make them "
            "one or the other by hand, then run `python -m migrate upgrade` again"
        )
    values = dict(running_sql=None, running_hash=None)
    if took_effect:
        values.update(statements=row.statements + 1,
                      hashes=" ".join([*row.hashes.split(), row.running_hash]),
                      applied_sql=";\n".join([*statements_of(row), statement]))
    connection.execute(update(history).where(history.c.id == row.id).values(**values))
    connection.commit()
    print(f"Checked on the dev database: `{shorten(statement, 80)}` "
          + ("took effect before the run stopped; going on after it." if took_effect else
             "had not taken effect; it runs again."))


def only(schema: dict[str, str], names: set[str]) -> dict[str, str]:
    """The entries of describe() about the tables in `names`."""
    def table(key: str) -> str:
        name = key.split(" of ")[-1] if " of " in key else key.split(" ", 1)[-1]
        return name.split(".")[0].lower()
    return {k: v for k, v in schema.items() if table(k.removeprefix("foreign ")) in names}


def look(connection: Connection, names: set[str]) -> dict[str, str]:
    """The tables in `names` as they are now: a fresh transaction, since MySQL's repeatable
    read would otherwise show the data dictionary as the previous look saw it."""
    connection.rollback()
    return only(describe(connection), names)


def replay(production: Connection, revision: str, index: int, statement: str,
           names: set[str]) -> tuple[dict, dict]:
    """The tables in `names`, on the dev database, before and after the revision's statement
    number `index` (counted from 0), which must be `statement`."""
    script = scripts().get_revision(revision)
    seen, found = 0, {}
    with dev_database() as dev, dev.connect() as dev_connection, dev.connect() as looker:
        match_defaults(dev_connection, production)
        config = alembic_config(quiet=True)
        config.attributes["connection"] = dev_connection
        if script.down_revision:
            command.upgrade(config, script.down_revision)

        def before(conn, cursor, sql, parameters, context, executemany):
            nonlocal seen
            if changes(sql):
                if seen == index:
                    if sql.strip() != statement:
                        found["problem"] = f"its statement {index + 1} is now `{shorten(sql, 60)}`"
                        raise ValueError(found["problem"])  # stops the replay
                    found["before"] = look(looker, names)
                seen += 1

        def after(conn, cursor, sql, parameters, context, executemany):
            if seen == index + 1 and "after" not in found and "before" in found:
                found["after"] = look(looker, names)

        event.listen(dev_connection, "before_cursor_execute", before)
        event.listen(dev_connection, "after_cursor_execute", after)
        try:
            command.upgrade(config, revision)
        except SystemExit as exc:
            if "after" not in found:
                raise SystemExit(f"error: {found.get('problem') or str(exc.code)[7:]}") from None
    if "after" not in found:
        raise SystemExit(f"error: it ran fewer than {index + 1} statement(s) there")
    return found["before"], found["after"]
