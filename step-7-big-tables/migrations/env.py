"""How Alembic reaches the database and the models. Run by every alembic command.

Every command (`python -m alembic upgrade head` as much as `python -m migrate upgrade`) first
checks migrations/revisions.sum and that the revisions have one head. Online, it runs under a
MySQL named lock, so that processes deploying at once migrate one at a time, and records each
statement of each revision in the history table, so that a rerun after a failure, a kill or a
crash goes on where it stopped and runs no statement twice (migrate/history.py).
"""

from logging.config import fileConfig

from alembic import context
from alembic.util import CommandError
from sqlalchemy import Connection, Engine

from migrate.history import BOOKKEEPING, LOCK_WAIT_RETRIES, LOCK_WAIT_TIMEOUT, Recorder
from migrate.lock import migration_lock
from migrate.online import Online, settings_from
from migrate.revisions import check_directory
from database import connect
from models import Base

config = context.config
# Scripts that run Alembic from code may set up their own output instead.
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

# What autogenerate compares the database with: the app's models.
target_metadata = Base.metadata


def text_option(name: str) -> str | None:
    """`-x name=value`, else alembic.ini's `name = value`, else None."""
    x = context.get_x_argument(as_dictionary=True) if getattr(config.cmd_opts, "x", None) else {}
    return x.get(name) or config.get_main_option(name)


def option(name: str, default: int) -> int:
    """A whole number from `-x name=N`, else alembic.ini's `name = N`, else `default`."""
    value = str(text_option(name) or default)
    if not value.isdigit():
        raise SystemExit(f"error: {name} must be a whole number of seconds or times, not '{value}'")
    return int(value)


def run_migrations_offline() -> None:
    """`alembic upgrade head --sql`: print the SQL for MySQL without connecting."""
    context.configure(dialect_name="mysql", target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def target_revision() -> str | None:
    """Where upgrade, downgrade or stamp go: a revision, "base", or "" for "up, somewhere";
    None for the commands that move nothing (current, check, revision --autogenerate)."""
    try:
        target = context.get_revision_argument()
    except KeyError:
        return None
    except (TypeError, CommandError):
        return ""
    if target is None or str(target).startswith("-"):  # base, or down by a count: "-1"
        return "base"
    return "" if str(target).startswith("+") else target


def skip_bookkeeping(name, type_, parent_names) -> bool:
    """Autogenerate and `alembic check` compare the app's tables, not alembic_version's kind."""
    return not (type_ == "table" and name in BOOKKEEPING)


def repaired() -> bool:
    """`python -m alembic -x repaired=yes upgrade head`: a failed attempt was repaired by hand."""
    if getattr(config.cmd_opts, "x", None) is None:  # code may pass options without -x
        return False
    return context.get_x_argument(as_dictionary=True).get("repaired") == "yes"


def run_migrations(connection: Connection, online: bool) -> None:
    recorder = Recorder(
        connection, context.script, target_revision(), repaired(),
        # How long each DDL statement waits for a metadata lock, and how many more tries.
        lock_wait_timeout=option("lock_wait_timeout", LOCK_WAIT_TIMEOUT),
        lock_wait_retries=option("lock_wait_retries", LOCK_WAIT_RETRIES),
        # On production, a big table's ALTER that only a copy can do goes to
        # pt-online-schema-change; a dev database's replay (lint, generate) runs it as written.
        online=Online(settings_from(text_option), connection.engine.url) if online else None,
    )
    handed_in_transaction = connection.in_transaction()  # then it stays the caller's to commit
    with migration_lock(connection), recorder.recording():
        if not handed_in_transaction:
            connection.commit()  # end the reads above, so that Alembic commits each revision
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            include_name=skip_bookkeeping,
            # One transaction per revision: its version row and history row commit together.
            transaction_per_migration=True,
            on_version_apply=recorder.applied_revision,
        )
        with context.begin_transaction():
            context.run_migrations()


def run_migrations_online() -> None:
    # Code can hand in an Engine or a Connection (config.attributes["connection"]), as
    # tests and scripts do; the alembic command line hands in neither: use DATABASE_URL.
    # Code that hands one in says whether it is production (config.attributes["online"]).
    connectable = config.attributes.get("connection")
    online = config.attributes.get("online", False)
    if isinstance(connectable, Connection):
        run_migrations(connectable, online)
        return
    engine = connectable if isinstance(connectable, Engine) else None
    if engine is None:
        engine, online = connect(), True  # DATABASE_URL, checked: a bad one gets one line
    with engine.connect() as connection:
        run_migrations(connection, online)


check_directory(context.script)  # the same refusals as `python -m migrate upgrade`
try:
    if context.is_offline_mode():
        run_migrations_offline()
    else:
        run_migrations_online()
except KeyboardInterrupt:  # during a revision the history says what stopped; here none ran
    raise SystemExit("error: stopped by Ctrl-C while no revision was running (waiting for the "
                     "migration lock?): see `python -m migrate status`") from None
