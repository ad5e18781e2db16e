"""Plan the next migration: `python -m migrate generate NAME`, like `atlas migrate diff NAME`.

On a throwaway dev database (devdb.py), never the app's: replay the existing migrations,
compare the result with the models, write what differs as a new revision, then apply it there
to show the SQL it runs and to prove that it does.

Autogenerate cannot tell a rename from a drop and an add; applied, a drop loses the data. So,
as Django's makemigrations does, the planner asks "Did you rename ...?" on a terminal, and in a
script writes nothing until told: `--rename users.name=full_name` (`--rename blogs=posts` for
a table) or, to really drop it, `--drop users.name`.
"""

import argparse
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

from alembic import command
from alembic.autogenerate import produce_migrations, renderers
from alembic.config import Config
from alembic.operations import Operations, ops
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, inspect
from sqlalchemy.exc import SQLAlchemyError

from . import APP_DIR, integrity
from .devdb import dev_database

USAGE = (
    "usage: python -m migrate generate NAME [--rename TABLE[.COLUMN]=NEW]... [--drop TABLE[.COLUMN]]..., "
    "with NAME in lower case, e.g. add_user_title"
)
IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_$]*"


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not argparse's usage block
        raise SystemExit(f"error: {message}; {USAGE}")


def rename_option(value: str) -> tuple[str, str]:
    """`users.name=full_name` -> ("users.name", "full_name"); `blogs=posts` for a table."""
    match = re.fullmatch(rf"({IDENTIFIER}(?:\.{IDENTIFIER})?)=({IDENTIFIER})", value)
    if not match:
        raise argparse.ArgumentTypeError(
            f"'{value}' is not TABLE.COLUMN=NEW_NAME or TABLE=NEW_NAME"
        )
    return match[1], match[2]


def drop_option(value: str) -> str:
    if not re.fullmatch(rf"{IDENTIFIER}(?:\.{IDENTIFIER})?", value):
        raise argparse.ArgumentTypeError(f"'{value}' is not TABLE.COLUMN or TABLE")
    return value


def qualified(old: str, new: str) -> str:
    """The full new name: users.name renamed to full_name is users.full_name."""
    table, dot, _ = old.rpartition(".")
    return f"{table}{dot}{new}"


def candidates(upgrade: ops.UpgradeOps) -> Iterator[tuple[str, ops.MigrateOperation, list[str]]]:
    """Each table or column the plan drops: (its name, the drop, what it may be renamed to).

    Autogenerate writes a renamed table as a dropped one and a created one, and a renamed
    column as a dropped column and an added one in the same table.
    """
    created = [op.table_name for op in upgrade.ops if isinstance(op, ops.CreateTableOp)]
    for op in upgrade.ops:
        if isinstance(op, ops.DropTableOp):
            yield op.table_name, op, created
        elif isinstance(op, ops.ModifyTableOps):
            added = [add.column.name for add in op.ops if isinstance(add, ops.AddColumnOp)]
            for drop in op.ops:
                if isinstance(drop, ops.DropColumnOp):
                    yield f"{op.table_name}.{drop.column_name}", drop, added


def rename(drop: ops.MigrateOperation, new: str) -> tuple[ops.MigrateOperation, ops.MigrateOperation]:
    """The operation that renames what `drop` drops to `new`, and the one that renames it back."""
    if isinstance(drop, ops.DropTableOp):
        old = drop.table_name
        return ops.RenameTableOp(old, new), ops.RenameTableOp(new, old)
    column = drop.to_column()  # as reflected from the dev database
    # MySQL renames with CHANGE, which restates the whole column: give it all it had.
    kept = dict(
        existing_type=column.type,
        existing_nullable=column.nullable,
        existing_server_default=column.server_default,
        existing_comment=column.comment,
    )
    if column.autoincrement is True:
        kept["autoincrement"] = True
    table, old = drop.table_name, drop.column_name
    return (
        ops.AlterColumnOp(table, old, modify_name=new, **kept),
        ops.AlterColumnOp(table, new, modify_name=old, **kept),
    )


@renderers.dispatch_for(ops.RenameTableOp)
def render_rename_table(autogen_context, op: ops.RenameTableOp) -> str:
    """Autogenerate never writes a table rename itself, so it has no renderer for one."""
    return f"op.rename_table({op.table_name!r}, {op.new_table_name!r})"


def ask(question: str) -> bool:
    try:
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
    except (EOFError, KeyboardInterrupt):
        print()
        raise SystemExit("error: no answer; nothing was written") from None


def refusal(name: str, undecided: list[tuple[str, str]]) -> str:
    """One line: what looks like a rename, and the two ways to say what it is."""
    shapes = ", ".join(
        f"{old} is dropped and {qualified(old, new)} added" if "." in old
        else f"table {old} is dropped and {new} created"
        for old, new in undecided
    )
    renames = " ".join(f"--rename {old}={new}" for old, new in undecided)
    drops = " ".join(f"--drop {old}" for old, _ in undecided)
    return (
        f"error: {shapes}: a rename? Nothing was written. If so, run `python -m migrate generate "
        f"{name} {renames}`; to drop the data for good, `python -m migrate generate {name} {drops}`"
    )


def settle_renames(
    context: MigrationContext, script: ops.MigrationScript, name: str,
    renames: dict[str, str], drops: set[str],
) -> None:
    """Turn each drop that is a rename into a rename, as told by --rename or on a terminal.

    An accepted rename is applied to the dev database and the models are compared again, so
    that whatever else changed (a type, an index or a foreign key named after the table) is
    planned after it. The renames are undone there afterwards; the revision runs for real later.
    """
    metadata = context.opts["target_metadata"]
    known = set(inspect(context.connection).get_table_names()) | set(metadata.tables)
    for old in [*renames, *drops]:
        if old.split(".")[0] not in known:
            raise SystemExit(
                f"error: no table {old.split('.')[0]} in the models or the migrations "
                f"(from --rename or --drop {old}); nothing was written"
            )
    operations = Operations(context)
    done: list[tuple[ops.MigrateOperation, ops.MigrateOperation]] = []
    dropped: set[str] = set()

    def refuse_unmatched(tables: set[str] | None = None) -> None:
        """--rename and --drop must name what the plan drops: a typo must not pass.

        With `tables`, only names on those tables (the ones the dev database has now) are
        judged; a column of a table not renamed yet is only known later."""
        named = [(old, f"--rename {old}={new}") for old, new in renames.items()]
        named += [(old, f"--drop {old}") for old in sorted(drops - dropped)]
        for old, option in named:
            if tables is None or old.split(".")[0] in tables:
                raise SystemExit(
                    f"error: {option} names nothing the plan drops, which is: "
                    f"{', '.join(sorted(dropped)) or 'nothing'}; nothing was written"
                )

    plan = script
    while True:
        accepted, undecided, taken = [], [], set()
        for old, drop, new_names in candidates(plan.upgrade_ops):
            dropped.add(old)
            choices = [new for new in new_names if qualified(old, new) not in taken]
            if old in drops:
                continue
            if old in renames:
                new = renames.pop(old)
                if new not in choices:
                    adds = ", ".join(qualified(old, c) for c in choices) or "nothing there"
                    raise SystemExit(
                        f"error: --rename {old}={new}: the plan adds no {qualified(old, new)}; "
                        f"it adds {adds}; nothing was written"
                    )
            elif not choices:  # dropped, and nothing added that it could have become
                continue
            elif sys.stdin.isatty():
                what = "" if "." in old else "table "
                new = next((c for c in choices if ask(
                    f"Did you rename {what}{old} to {qualified(old, c)}?")), None)
                if new is None:
                    drops.add(old)  # a real drop: do not ask again
                    continue
            else:  # suggest a different new name for each
                suggested = {qualified(o, n) for o, n in undecided}
                fresh = [c for c in choices if qualified(old, c) not in suggested]
                undecided.append((old, (fresh or choices)[0]))
                continue
            taken.add(qualified(old, new))
            accepted.append(rename(drop, new))
        if undecided:
            refuse_unmatched(set(inspect(context.connection).get_table_names()))
            raise SystemExit(refusal(name, undecided))
        if not accepted:
            break
        for forward, _ in accepted:
            operations.invoke(forward)
        done += accepted
        plan = produce_migrations(context, metadata)

    refuse_unmatched()
    if done:
        for _, back in reversed(done):
            operations.invoke(back)  # the dev database as the migrations leave it, again
        script.upgrade_ops = ops.UpgradeOps([f for f, _ in done] + plan.upgrade_ops.ops)
        script.downgrade_ops = ops.DowngradeOps(
            plan.downgrade_ops.ops + [b for _, b in reversed(done)]
        )


def new_revision_id(config: Config) -> str:
    """The time, as Atlas names versions; one later if a plan this second took it."""
    taken = {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}
    stamp = int(time.strftime("%Y%m%d%H%M%S"))
    while str(stamp) in taken:
        stamp += 1
    return str(stamp)


def main(argv: list[str]) -> None:
    parser = Parser(prog="python -m migrate generate")
    parser.add_argument("name", nargs="*", metavar="NAME", help="e.g. add_user_title")
    parser.add_argument("--rename", action="append", default=[], type=rename_option,
                        metavar="OLD=NEW", help="a rename: users.name=full_name, blogs=posts")
    parser.add_argument("--drop", action="append", default=[], type=drop_option,
                        metavar="OLD", help="a real drop, its data lost: users.name, blogs")
    args = parser.parse_intermixed_args(argv)
    if not args.name:
        raise SystemExit(f"error: NAME is missing; {USAGE}")
    if len(args.name) > 1 or not re.fullmatch(r"[a-z][a-z0-9_]*", args.name[0]):
        raise SystemExit(f"error: '{' '.join(args.name)}' is not a NAME; {USAGE}")
    name = args.name[0]
    renames, drops = dict(args.rename), set(args.drop)
    named = [old for old, _ in args.rename] + args.drop
    twice = sorted({old for old in named if named.count(old) > 1})
    if twice:
        raise SystemExit(f"error: {twice[0]} is named twice in --rename and --drop; name it once")
    # Quiet: this script says what happened itself, without Alembic's log lines.
    config = Config(APP_DIR / "alembic.ini", cmd_opts=argparse.Namespace(quiet=True))
    config.attributes["configure_logger"] = False

    def plan(context, revision, directives) -> None:
        script = directives[0]
        settle_renames(context, script, name, renames, drops)
        if script.upgrade_ops.is_empty():
            directives[:] = []  # nothing to do: write no file

    with dev_database() as engine, engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")  # the dev database as the migrations leave it
        script = command.revision(
            config,
            message=name,
            autogenerate=True,
            rev_id=new_revision_id(config),
            process_revision_directives=plan,
        )
        if not script:
            print("The models and the migrations agree: nothing to generate.")
            return

        statements: list[str] = []

        def record(conn, cursor, statement, parameters, context, executemany) -> None:
            # The revision's statements, not the reads and the bookkeeping around them
            # (alembic_version; from step 3 on, env.py's lock and alembic_history).
            reads = statement.lstrip().upper().startswith(("SELECT", "SHOW", "DESCRIBE"))
            if not reads and "alembic_" not in statement:
                statements.append(statement.strip())

        event.listen(engine, "before_cursor_execute", record)
        # Recorded in migrations/revisions.sum, as `atlas migrate diff` does, before it is tried:
        # from step 3 on, env.py refuses a revision the file does not list.
        integrity.write()
        try:
            command.upgrade(config, "head")  # apply it to the dev database: does it run?
        except (SQLAlchemyError, SystemExit) as exc:
            Path(script.path).unlink()  # keep no revision that does not run
            integrity.write()
            # From step 3 on, env.py reports a failed revision as a SystemExit of its own.
            error = exc.__context__ if isinstance(exc, SystemExit) else exc
            reason = str(getattr(error, "orig", None) or error).splitlines()[0]
            raise SystemExit(
                f"error: the planned revision fails on MySQL ({reason}); nothing was "
                "written: fix the model and plan again"
            ) from None

    print(f"Wrote {Path(script.path).relative_to(APP_DIR)}, which runs:")
    for statement in statements:
        print(f"\n{statement};")

