"""A throwaway database to plan migrations on, never the app's own: Atlas's --dev-url.

DEV_DATABASE_URL names an empty scratch database (`dev` in the compose file). The planner
creates a database of its own beside it, works there and drops it, so the scratch database
stays empty and several planners can run at once. Without DEV_DATABASE_URL it starts a MySQL
container through the Docker SDK and removes it afterwards.
"""

import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, OperationalError

from database import connect, error_code

MYSQL_IMAGE = "mysql:8.4"


@contextmanager
def dev_database() -> Iterator[Engine]:
    """An engine on an empty database that is dropped afterwards."""
    if os.environ.get("DEV_DATABASE_URL", "").strip():
        scratch = connect("DEV_DATABASE_URL")
        try:
            tables = inspect(scratch).get_table_names()
            if tables:
                raise SystemExit(
                    f"error: DEV_DATABASE_URL names database '{scratch.url.database}', which "
                    f"holds tables ({', '.join(sorted(tables))}); point it at an empty scratch "
                    "database, never at the app's"
                )
            with throwaway_database(scratch, scratch.url.database) as engine:
                yield engine
        finally:
            scratch.dispose()
    else:
        with mysql_container() as server, throwaway_database(server, "dev") as engine:
            yield engine


@contextmanager
def throwaway_database(server: Engine, beside: str) -> Iterator[Engine]:
    # Named after the scratch database, so that any leftover shows where it came from.
    name = f"{beside[:40]}_plan_{secrets.token_hex(4)}"
    try:
        with server.connect() as conn:
            conn.execute(text(f"CREATE DATABASE `{name}`"))
    except DBAPIError as exc:
        if error_code(exc) not in (1044, 1227):  # access denied: no CREATE privilege
            raise
        user = server.url.username
        raise SystemExit(
            f"error: DEV_DATABASE_URL's user '{user}' may not create databases beside "
            f"'{beside}', where the planner works: as an admin, "
            f"GRANT ALL ON `{beside}%`.* TO '{user}'@'%' (or the user's host)"
        ) from None
    engine = create_engine(server.url.set(database=name))
    try:
        yield engine
    finally:
        engine.dispose()
        with server.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))


@contextmanager
def mysql_container() -> Iterator[Engine]:
    """MySQL in a container that is removed afterwards: `--dev-url docker://mysql/8/dev`."""
    try:
        import docker

        client = docker.from_env()
        client.ping()
    except Exception:
        raise SystemExit(
            "error: DEV_DATABASE_URL is not set and no Docker engine answers; set "
            "DEV_DATABASE_URL=mysql+pymysql://root:pass@127.0.0.1:3306/dev (an empty "
            "scratch database) or start Docker"
        ) from None
    password = secrets.token_hex(8)
    container = client.containers.run(
        MYSQL_IMAGE,
        detach=True,
        remove=True,
        environment={"MYSQL_ROOT_PASSWORD": password},
        ports={"3306/tcp": ("127.0.0.1", None)},
    )
    try:
        container.reload()
        port = int(container.ports["3306/tcp"][0]["HostPort"])
        url = URL.create(
            "mysql+pymysql", username="root", password=password, host="127.0.0.1", port=port
        )
        engine = create_engine(url)
        deadline = time.monotonic() + 120
        while True:  # the image initialises its data directory first
            try:
                with engine.connect():
                    break
            except OperationalError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"error: the {MYSQL_IMAGE} container did not start") from None
                time.sleep(1)
        yield engine
        engine.dispose()
    finally:
        container.stop(timeout=5)
