"""Where lint runs a revision: as a MySQL user of its own, allowed into the throwaway database only.

A revision is Python and may send any SQL. lint refuses, before running it, a statement that
names another database (lint_sql.py), but the wall is the server's: the user that replays the
revision is created for the run with privileges on the throwaway database and nowhere else, so
`DELETE FROM app.blogs`, `CREATE DATABASE x` or a statement assembled at run time is refused by
MySQL itself, even with the app's database on the same server. The user is dropped afterwards.
"""

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError

from database import error_code


@contextmanager
def sandbox(dev: Engine) -> Iterator[Engine]:
    """An engine on `dev`'s database as a user that may do anything there, and nothing else."""
    database = dev.url.database
    user, password = f"lint_{secrets.token_hex(6)}", secrets.token_hex(16)
    with dev.connect() as conn:
        # The host part the admin itself was matched with: the new user connects from there too.
        host = conn.scalar(text("SELECT CURRENT_USER()")).rpartition("@")[2]
        account = f"'{user}'@'{host}'"
        try:
            conn.execute(text(f"CREATE USER {account} IDENTIFIED BY :password"),
                         {"password": password})
        except DBAPIError as exc:
            if error_code(exc) not in (1044, 1045, 1227):  # access denied
                raise
            admin = dev.url.username
            raise SystemExit(
                f"error: DEV_DATABASE_URL's user '{admin}' may not create users; lint runs "
                "each revision as a user of its own that can reach the throwaway database "
                f"only: as an admin, GRANT CREATE USER ON *.* TO '{admin}'@'{host}'") from None
        try:
            try:
                conn.execute(text(f"GRANT ALL PRIVILEGES ON `{database}`.* TO {account}"))
            except DBAPIError as exc:
                if error_code(exc) not in (1044, 1045, 1227):
                    raise
                raise SystemExit(
                    f"error: DEV_DATABASE_URL's user '{dev.url.username}' may not grant "
                    f"privileges on '{database}', where lint replays revisions: as an admin, "
                    f"GRANT ALL ON `{database.rpartition('_plan_')[0] or database}%`.* TO "
                    f"'{dev.url.username}'@'{host}' WITH GRANT OPTION") from None
            conn.commit()
            engine = create_engine(dev.url.set(username=user, password=password))
            try:
                yield engine
            finally:
                engine.dispose()
        finally:
            conn.rollback()
            conn.execute(text(f"DROP USER IF EXISTS {account}"))
            conn.commit()
