"""Where a database stands against the revisions in migrations/versions."""

from argparse import Namespace
from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, inspect

VERSION_TABLE = "alembic_version"


def alembic_config(*, quiet: bool = False) -> Config:
    """This folder's alembic.ini, wherever the script is run from."""
    config = Config(Path(__file__).with_name("alembic.ini"), cmd_opts=Namespace(quiet=quiet))
    if quiet:
        config.attributes["configure_logger"] = False
    return config


def scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head() -> str:
    """The one revision the code expects; `alembic heads` lists more only after a fork."""
    return scripts().get_current_head()


def current(connection: Connection) -> str | None:
    """The revision the database is at, or None when no migration ever ran on it."""
    return MigrationContext.configure(connection).get_current_revision()


def pending(at: str | None) -> list[Script]:
    """The revisions after `at` up to the head, oldest first."""
    try:
        newer = list(scripts().walk_revisions(at or "base", head()))  # newest first
    except CommandError:
        # A newer release migrated this database, then older code was deployed.
        raise SystemExit(
            f"error: the database is at revision {at}, which is not in migrations/versions: "
            "deploy the code that has it (see `python -m alembic history`)"
        ) from None
    return [script for script in reversed(newer) if script.revision != at]


def app_tables(connection: Connection) -> list[str]:
    return sorted(t for t in inspect(connection).get_table_names() if t != VERSION_TABLE)


def require_current(engine: Engine) -> None:
    """Exit with one line when the database is not at the revision this code needs."""
    with engine.connect() as connection:
        at = current(connection)
    needed = head()
    if at != needed:
        raise SystemExit(
            f"error: the database is at revision {at or 'none'}, this code needs {needed}: "
            "run `python migrate.py status`, then `python migrate.py upgrade`"
        )
