"""Find a MySQL-family server, in this order, and hand out fresh databases on it.

1. DATABASE_URL, when set: the server it names.
2. The compose service (`docker compose up -d --wait db`), when it answers on 127.0.0.1.
3. A throwaway MySQL container, started with the docker SDK, when a Docker engine answers.
4. A mysqld or mariadbd binary found on this machine, initialised in a temporary data
   directory and started on a free loopback port.

A server the kit started is stopped and removed by Server.stop() (or `with server:`).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pymysql
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

MYSQL_IMAGE = "mysql:8.4"
# Where servers are installed besides PATH: Debian puts mariadbd in /usr/sbin, which
# is not on a normal user's PATH; Homebrew and the MySQL installers use the others.
EXTRA_BIN_DIRS = (
    "/usr/sbin",
    "/usr/local/sbin",
    "/usr/local/mysql/bin",
    "/opt/homebrew/bin",
    "/opt/homebrew/opt/mysql/bin",
    "/usr/local/opt/mysql/bin",
)
HOW_TO_GET_ONE = (
    "set DATABASE_URL=mysql+pymysql://root:PASSWORD@HOST:3306/, "
    "or start the compose service (docker compose up -d --wait db), "
    "or install a MySQL or MariaDB server (e.g. apt-get install mariadb-server, "
    "brew install mysql) so that the kit can start one"
)


class NoServerError(RuntimeError):
    """No MySQL server could be found or started; the message says what to do."""


@dataclass
class Server:
    """A MySQL-family server: `url` names it without a database."""

    url: URL
    source: str
    _stop: Callable[[], None] | None = field(default=None, repr=False)
    # A server the kit started on this machine: its process id and its temporary folder.
    pid: int | None = None
    workdir: Path | None = None

    @property
    def environ(self) -> dict[str, str]:
        """The server URL as DATABASE_URL, for child processes that look for a server."""
        return {"DATABASE_URL": self.url.render_as_string(hide_password=False)}

    def connect(self, database: str | None = None, *, timeout: float = 60) -> pymysql.Connection:
        """A plain PyMySQL connection; `timeout` bounds the wait for any answer."""
        return pymysql.connect(
            host=self.url.host,
            port=self.url.port or 3306,
            user=self.url.username,
            password=self.url.password or "",
            database=database,
            autocommit=True,
            connect_timeout=5,
            # Something on the port that is not MySQL would otherwise keep us waiting forever.
            read_timeout=timeout,
            write_timeout=timeout,
        )

    def create_database(self, prefix: str = "tutorial") -> URL:
        """Create an empty database with a unique name; return its URL."""
        name = f"{prefix}_{secrets.token_hex(4)}"
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}`")
        return self.url.set(database=name)

    def drop_database(self, url: URL | str) -> None:
        name = make_url(url).database if isinstance(url, str) else url.database
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")

    @contextmanager
    def database(self, prefix: str = "tutorial") -> Iterator[URL]:
        """A fresh database, dropped afterwards."""
        url = self.create_database(prefix)
        try:
            yield url
        finally:
            self.drop_database(url)

    def stop(self) -> None:
        if self._stop is not None:
            self._stop()
            self._stop = None

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def find_server(*, allow_start: bool = True) -> Server:
    """The first server that answers, in the order of this module's docstring."""
    if os.environ.get("DATABASE_URL", "").strip():
        return _from_database_url(os.environ["DATABASE_URL"])
    compose = _compose_service()
    if compose is not None:
        return compose
    if allow_start:
        container = _docker_container()
        if container is not None:
            return container
        binary = find_server_binary()
        if binary is not None:
            return start_local_server(binary)
    raise NoServerError(f"no MySQL server found: {HOW_TO_GET_ONE}")


def _from_database_url(text: str) -> Server:
    try:
        url = make_url(text.strip())
    except (ArgumentError, ValueError):
        raise NoServerError(
            "DATABASE_URL is not a valid URL; expected mysql+pymysql://USER:PASSWORD@HOST:3306/"
        ) from None
    if url.get_backend_name() != "mysql":
        raise NoServerError(f"DATABASE_URL must name a MySQL server, not '{url.drivername}'")
    # URL.set() ignores None, so clear the database with _replace.
    server = Server(url._replace(drivername="mysql+pymysql", database=None), "DATABASE_URL")
    try:
        server.connect().close()
    except pymysql.MySQLError as exc:
        where = f"{url.host}:{url.port or 3306}"
        raise NoServerError(
            f"DATABASE_URL names a server at {where} that does not accept the connection "
            f"(MySQL error {exc.args[0]}): check it, or unset DATABASE_URL to let the kit find one"
        ) from None
    return server


def _compose_service() -> Server | None:
    """The compose file's `db` service, with the documented development defaults."""
    url = URL.create(
        "mysql+pymysql",
        username="root",
        password=os.environ.get("MYSQL_ROOT_PASSWORD", "pass"),
        host="127.0.0.1",
        port=int(os.environ.get("MYSQL_PORT", "3306")),
    )
    if not _port_open("127.0.0.1", url.port):
        return None
    server = Server(url, "docker compose service on 127.0.0.1")
    try:
        server.connect(timeout=2).close()
    except pymysql.MySQLError:
        return None
    return server


def _docker_container() -> Server | None:
    """A throwaway MySQL container, when the docker SDK reaches an engine."""
    try:
        import docker
        from docker.errors import DockerException

        client = docker.from_env()
        client.ping()
    except Exception:  # no SDK, no engine, no permission: try the next way
        return None
    password = secrets.token_hex(8)
    try:
        container = client.containers.run(
            MYSQL_IMAGE,
            detach=True,
            remove=True,
            environment={"MYSQL_ROOT_PASSWORD": password},
            ports={"3306/tcp": ("127.0.0.1", None)},
        )
        container.reload()
        port = int(container.ports["3306/tcp"][0]["HostPort"])
    except DockerException as exc:
        raise NoServerError(f"could not start a {MYSQL_IMAGE} container: {exc}") from None
    url = URL.create(
        "mysql+pymysql", username="root", password=password, host="127.0.0.1", port=port
    )
    server = Server(url, f"{MYSQL_IMAGE} container", lambda: container.stop(timeout=5))
    try:
        _wait_until_ready(server, timeout=120)
    except NoServerError:
        server.stop()
        raise
    return server


def find_server_binary() -> Path | None:
    """A mariadbd or mysqld executable on PATH or in the usual install folders."""
    search = os.pathsep.join([os.environ.get("PATH", ""), *EXTRA_BIN_DIRS])
    for name in ("mariadbd", "mysqld"):
        found = shutil.which(name, path=search)
        if found:
            return Path(found)
    return None


def start_local_server(binary: Path, *, timeout: float = 30) -> Server:
    """Initialise a data directory in a temporary folder and start `binary` on it."""
    workdir = Path(tempfile.mkdtemp(prefix="tutorial-mysql-"))
    datadir, sock, log = workdir / "data", workdir / "mysql.sock", workdir / "error.log"
    # mysqld refuses to run as root unless told to.
    as_user = ["--user=root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    mariadb = "mariadb" in binary.name or "MariaDB" in _version(binary)
    try:
        _initialise(binary, datadir, mariadb, as_user)
    except (OSError, subprocess.CalledProcessError) as exc:
        shutil.rmtree(workdir, ignore_errors=True)
        detail = getattr(exc, "stderr", "") or str(exc)
        last = detail.strip().splitlines()[-1] if detail.strip() else "no output"
        raise NoServerError(f"could not initialise {binary}: {last}") from None

    version = _version(binary)
    attempts = 3
    for attempt in range(1, attempts + 1):
        port = _free_port()
        args = [
            str(binary),
            "--no-defaults",
            f"--datadir={datadir}",
            f"--socket={sock}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            f"--log-error={log}",
            f"--pid-file={workdir / 'mysqld.pid'}",
            # A throwaway server: trade durability for speed.
            "--innodb-flush-log-at-trx-commit=0",
            "--innodb-buffer-pool-size=64M",
            # MySQL 8's defaults, which MariaDB does not share.
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_unicode_ci",
            *as_user,
        ]
        if not mariadb:
            args += ["--mysqlx=OFF", "--skip-log-bin"]
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = URL.create("mysql+pymysql", username="root", password="", host="127.0.0.1", port=port)
        server = Server(
            url, f"local {binary.name} ({version})", partial(_stop, process, workdir),
            pid=process.pid, workdir=workdir,
        )
        try:
            _wait_until_ready(server, timeout=timeout, log=log, process=process)
            return server
        except NoServerError:
            exited_early = process.poll() is not None
            _terminate(process)
            # The free port may have been taken before the server bound it: try another.
            if not exited_early or attempt == attempts:
                shutil.rmtree(workdir, ignore_errors=True)
                raise
    raise AssertionError("unreachable")


def _terminate(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _stop(process: subprocess.Popen, workdir: Path) -> None:
    _terminate(process)
    shutil.rmtree(workdir, ignore_errors=True)


def _initialise(binary: Path, datadir: Path, mariadb: bool, as_user: list[str]) -> None:
    if mariadb:
        search = os.pathsep.join([str(binary.parent), os.environ.get("PATH", ""), *EXTRA_BIN_DIRS])
        install_db = shutil.which("mariadb-install-db", path=search) or shutil.which(
            "mysql_install_db", path=search
        )
        if install_db is None:
            raise OSError("mariadb-install-db not found next to the server")
        cmd = [
            install_db,
            "--no-defaults",
            f"--datadir={datadir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            *as_user,
        ]
    else:
        cmd = [str(binary), "--no-defaults", "--initialize-insecure", f"--datadir={datadir}", *as_user]
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120)


def _wait_until_ready(server, *, timeout, log=None, process=None) -> None:
    """Return once the server accepts a connection; raise NoServerError if it never does."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            server.connect(timeout=2).close()
            return
        except pymysql.MySQLError:
            pass
        if process is not None and process.poll() is not None or time.monotonic() > deadline:
            tail = ""
            if log is not None and log.exists():
                lines = log.read_text(errors="replace").strip().splitlines()
                tail = f": {lines[-1]}" if lines else ""
            raise NoServerError(f"{server.source} did not start{tail}")
        time.sleep(0.1)


def _version(binary: Path) -> str:
    try:
        out = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, timeout=10
        ).stdout
    except OSError:
        return "unknown version"
    # "mariadbd  Ver 10.11.19-MariaDB-0+deb12u1 for debian-linux-gnu on x86_64"
    words = out.split()
    return words[words.index("Ver") + 1] if "Ver" in words else out.strip()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False
