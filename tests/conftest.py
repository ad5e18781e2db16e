"""Fixtures: one MySQL-family server for the whole run, a fresh database per test."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pymysql
import pytest
from sqlalchemy import create_engine, inspect, text

from tutorial_kit import NoServerError, find_server, preload
from tutorial_kit.reaper import watch
from tutorial_kit.steps import copy_step, lazy_ca_certificates, url_text


def pytest_configure(config):
    """Find (or start) MySQL once, in the process that runs or hands out the tests.

    Its URL goes into DATABASE_URL, which the test workers (pytest -n) inherit: they all share
    one server instead of each starting its own.
    """
    lazy_ca_certificates()  # every connection's TLS set-up, 20 times cheaper (see there)
    if hasattr(config, "workerinput"):
        return
    # One preloader (tutorial_kit/preload.py) for the whole run: the workers inherit its
    # address, as they inherit DATABASE_URL, instead of each importing SQLAlchemy into one more.
    # It starts while the server does.
    preloading = threading.Thread(target=preload.address)
    preloading.start()
    if not os.environ.get("DATABASE_URL"):
        try:
            config.mysql_server = find_server()
        except NoServerError as exc:
            pytest.exit(f"error: {exc}", returncode=2)
        watch(config.mysql_server)  # stopped and removed even if this run is killed
        os.environ.update(config.mysql_server.environ)
    preloading.join()


def pytest_report_header(config):
    """The server the run is on, with its version: .ci/run runs the suite on two."""
    server = getattr(config, "mysql_server", None)
    try:
        server = server or find_server()  # DATABASE_URL's, here: nothing is started
        with server.connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT VERSION()")
            return f"MySQL server: {server.source}, {cur.fetchone()[0]}"
    except (NoServerError, pymysql.MySQLError):
        return None


def pytest_xdist_auto_num_workers(config):
    """-n auto: one worker more than the cores. Many tests spend part of their time waiting
    (for MySQL, for a command's timeout), and the extra worker uses that time."""
    return (os.cpu_count() or 1) + 1


def pytest_collection_modifyitems(config, items):
    """The tests that share the tutorial run (the longest piece of work) go first, so that one
    worker starts on it while the others share out the rest, and nobody waits for it at the end."""
    first = lambda item: item.get_closest_marker("xdist_group") is None
    items.sort(key=first)  # stable: the order within each part is kept


def pytest_unconfigure(config):
    server = getattr(config, "mysql_server", None)
    if server is not None:
        os.environ.pop("DATABASE_URL", None)
        server.stop()


@pytest.fixture(scope="session")
def server():
    """The run's server: DATABASE_URL's, the compose service, a container or a local one."""
    with find_server() as found:
        yield found


@pytest.fixture(scope="session")
def mariadb(server) -> bool:
    """Whether the run's server is MariaDB (else MySQL). Where the two answer differently, a
    test says which answer each gives; the suite runs on both (.ci/run)."""
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT VERSION()")
        return "MariaDB" in cur.fetchone()[0]


@pytest.fixture
def database_url(server):
    """A fresh, empty database, dropped after the test."""
    with server.database("test") as url:
        yield url


@pytest.fixture
def dev_database_url(server):
    """An empty scratch database for planning, as the compose file's `dev` database."""
    with server.database("dev") as url:
        yield url


@pytest.fixture
def step(tmp_path):
    """Copy a step folder to a temporary directory: step("start") -> Path."""
    return lambda name: copy_step(name, tmp_path)


@pytest.fixture
def db(database_url):
    """An engine on the test database, for looking at what the app did."""
    engine = create_engine(url_text(database_url))
    yield engine
    engine.dispose()


def tables(engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def count(engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.scalar(text(f"SELECT COUNT(*) FROM `{table}`"))


def assert_clean_failure(result, *, password: str | None = None) -> str:
    """A bad-input run: non-zero exit, one line on stderr, no traceback, no password."""
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    if password:
        assert password not in result.stderr + result.stdout
    return lines[0]


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


@pytest.fixture
def short_tmp():
    """A temporary folder with a short path: a server's socket in it must fit in 107 bytes."""
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="tk-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)
