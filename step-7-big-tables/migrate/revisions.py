"""Where a database stands against the revisions in migrations/versions."""

import warnings
from argparse import Namespace

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, inspect

from . import APP_DIR
from .history import BOOKKEEPING, last_failure
from .integrity import SUM_FILE, mismatches


def alembic_config(*, quiet: bool = False, repaired: bool = False,
                   options: list[str] | None = None) -> Config:
    """This folder's alembic.ini, wherever the script is run from; `options` are -x NAME=VALUE."""
    # -x repaired=yes, as `python -m alembic -x repaired=yes upgrade head` passes it (env.py)
    x = ["repaired=yes"] if repaired else []
    x += options or []
    config = Config(APP_DIR / "alembic.ini", cmd_opts=Namespace(quiet=quiet, x=x))
    if quiet:
        config.attributes["configure_logger"] = False
    return config


def scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def check_directory(script: ScriptDirectory | None = None) -> None:
    """Refuse revision files that changed without re-hashing, and a history that forked: run
    by migrations/env.py, so plain `python -m alembic upgrade head` refuses them too."""
    found = mismatches()
    if found:
        raise SystemExit(
            f"error: checksum mismatch in migrations/{SUM_FILE.name}: {'; '.join(found)}. A "
            "revision was added, edited or removed by hand: review it, then run "
            "`python -m migrate hash`"
        )
    try:
        with warnings.catch_warnings():  # Alembic warns, then fails: one line says it all
            warnings.simplefilter("ignore")
            heads = (script or scripts()).get_heads()
    except (CommandError, KeyError) as exc:  # a revision names a down_revision that is gone
        missing = str(exc).strip("'\"")
        raise SystemExit(
            f"error: migrations/versions does not hold a whole history ({missing}): a revision "
            "was deleted that a later one follows; restore it (git checkout), then run "
            "`python -m migrate hash`"
        ) from None
    if len(heads) > 1:
        raise SystemExit(
            f"error: migrations/versions has {len(heads)} heads ({', '.join(sorted(heads))}): "
            "two revisions follow the same one. Merge them (`python -m alembic merge -m merge "
            f"{' '.join(sorted(heads))}`) or make the newer one follow the other (its "
            "down_revision), then run `python -m migrate hash`"
        )


def head() -> str:
    """The one revision the code expects; `alembic heads` lists more only after a fork."""
    try:
        return scripts().get_current_head()
    except CommandError:
        raise SystemExit(
            "error: migrations/versions has more than one head; run `python -m migrate "
            "status` to see how to join them"
        ) from None


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
    return sorted(t for t in inspect(connection).get_table_names() if t not in BOOKKEEPING)


def made_by_create_all(connection: Connection) -> bool:
    """Tables, and no sign that a migration ever ran here: automatic migration made them."""
    found = inspect(connection).get_table_names()
    return bool(app_tables(connection)) and not any(t in found for t in BOOKKEEPING)


def require_current(engine: Engine) -> None:
    """Exit with one line when the database is not at the revision this code needs."""
    with engine.connect() as connection:
        at, failure = current(connection), last_failure(connection)
        unmanaged = at is None and made_by_create_all(connection)
    needed = head()
    if at == needed:
        return
    if at is not None and at not in {s.revision for s in scripts().walk_revisions()}:
        raise SystemExit(
            f"error: the database is at revision {at}, which this code does not have (it "
            f"needs {needed}): newer code migrated it; deploy that code, not this one"
        )
    if failure is not None:
        raise SystemExit(
            f"error: the database is at revision {at or 'none'}, this code needs {needed}, and "
            f"the last migration attempt failed (revision {failure.revision}): see "
            "`python -m migrate status`"
        )
    if unmanaged:
        raise SystemExit(
            f"error: the database has tables but no migration history (create_all() made "
            f"them), this code needs revision {needed}: check and mark it with "
            "`python -m migrate baseline REV` (see `python -m migrate status`)"
        )
    raise SystemExit(
        f"error: the database is at revision {at or 'none'}, this code needs {needed}: "
        "run `python -m migrate status`, then `python -m migrate upgrade`"
    )
