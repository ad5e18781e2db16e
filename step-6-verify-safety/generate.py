"""Plan the next migration: `python generate.py NAME`, like `atlas migrate diff NAME`.

On a throwaway dev database (devdb.py), never the app's: replay the existing migrations,
compare the result with the models, write what differs as a new revision, then apply it there
to show the SQL it runs and to prove that it does.
"""

import re
import sys
import time
from argparse import Namespace
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.operations import ops
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.exc import SQLAlchemyError

from devdb import dev_database

USAGE = "usage: python generate.py NAME, with NAME in lower case, e.g. add_user_title"


def rename_warnings(upgrade: ops.UpgradeOps) -> list[str]:
    """Autogenerate writes a rename as drop + add, which loses the data: say so."""
    found = []
    dropped = [op for op in upgrade.ops if isinstance(op, ops.DropTableOp)]
    created = [op for op in upgrade.ops if isinstance(op, ops.CreateTableOp)]
    for old in dropped:
        for new in created:
            found.append(
                f"table '{old.table_name}' is dropped and '{new.table_name}' created: if this "
                f"is a rename, its rows would be lost. Write instead:\n"
                f"    op.rename_table({old.table_name!r}, {new.table_name!r})"
            )
    for table in upgrade.ops:
        if not isinstance(table, ops.ModifyTableOps):
            continue
        drops = [op for op in table.ops if isinstance(op, ops.DropColumnOp)]
        adds = [op for op in table.ops if isinstance(op, ops.AddColumnOp)]
        for drop in drops:
            old = drop.to_column()  # as reflected from the dev database
            for add in adds:
                found.append(
                    f"column '{table.table_name}.{drop.column_name}' is dropped and "
                    f"'{add.column.name}' added: if this is a rename, its data would be lost. "
                    "Write instead (MySQL needs the existing type):\n"
                    f"    op.alter_column({table.table_name!r}, {drop.column_name!r}, "
                    f"new_column_name={add.column.name!r}, existing_type=sa.{old.type!r}, "
                    f"existing_nullable={old.nullable})"
                )
    return found


def new_revision_id(config: Config) -> str:
    """The time, as Atlas names versions; one later if a plan this second took it."""
    taken = {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}
    stamp = int(time.strftime("%Y%m%d%H%M%S"))
    while str(stamp) in taken:
        stamp += 1
    return str(stamp)


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit(f"error: NAME is missing; {USAGE}")
    if len(argv) > 1 or not re.fullmatch(r"[a-z][a-z0-9_]*", argv[0]):
        raise SystemExit(f"error: '{' '.join(argv)}' is not a NAME; {USAGE}")
    name = argv[0]
    # Quiet: this script says what happened itself, without Alembic's log lines.
    config = Config(Path(__file__).with_name("alembic.ini"), cmd_opts=Namespace(quiet=True))
    config.attributes["configure_logger"] = False
    warnings: list[str] = []

    def keep_if_changed(context, revision, directives) -> None:
        script = directives[0]
        if script.upgrade_ops.is_empty():
            directives[:] = []  # nothing to do: write no file
        else:
            warnings.extend(rename_warnings(script.upgrade_ops))

    with dev_database() as engine, engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")  # the dev database as the migrations leave it
        script = command.revision(
            config,
            message=name,
            autogenerate=True,
            rev_id=new_revision_id(config),
            process_revision_directives=keep_if_changed,
        )
        if not script:
            print("The models and the migrations agree: nothing to generate.")
            return

        statements: list[str] = []

        def record(conn, cursor, statement, parameters, context, executemany) -> None:
            if "alembic_version" not in statement:
                statements.append(statement.strip())

        event.listen(engine, "before_cursor_execute", record)
        try:
            command.upgrade(config, "head")  # apply it to the dev database: does it run?
        except SQLAlchemyError as exc:
            Path(script.path).unlink()  # keep no revision that does not run
            reason = str(exc.orig if getattr(exc, "orig", None) else exc).splitlines()[0]
            raise SystemExit(
                f"error: the planned revision fails on MySQL ({reason}); nothing was "
                "written: fix the model and plan again"
            ) from None

    print(f"Wrote {Path(script.path).relative_to(Path(__file__).parent)}, which runs:")
    for statement in statements:
        print(f"\n{statement};")
    for warning in warnings:
        print(f"\nwarning: {warning}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
