"""Find a MySQL-family server, in this order, and hand out fresh databases on it.

1. DATABASE_URL, when set: the server it names.
2. TUTORIAL_MYSQLD, when set: that mysqld or mariadbd executable, started as in 5. A way to
   choose among several servers (e.g. the MySQL 9.7 that scripts/mysql-root.sh prints).
3. The compose service (`docker compose up -d --wait db`), when it answers on 127.0.0.1.
4. A throwaway MySQL container, started with the docker SDK, when a Docker engine answers.
5. A mysqld or mariadbd binary found on this machine, initialised in a fresh folder under
   /tmp (see server_workdir_parent) and started on a free loopback port.

A server the kit started is stopped and removed by Server.stop() (or `with server:`).
"""

from __future__ import annotations

import itertools
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
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
    # Homebrew's mysql@8.4 is keg-only: not linked into bin/.
    "/opt/homebrew/opt/mysql@8.4/bin",
    "/usr/local/opt/mysql@8.4/bin",
)
HOW_TO_GET_ONE = (
    "set DATABASE_URL=mysql+pymysql://root:PASSWORD@HOST:3306/, "
    "or start the compose service (docker compose up -d --wait db), "
    "or install a MySQL or MariaDB server (e.g. apt-get install mariadb-server, "
    "brew install mysql) so that the kit can start one"
)
# Names the server executable the kit starts, instead of the one it would find (see above).
BINARY_VARIABLE = "TUTORIAL_MYSQLD"


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
    command: list[str] | None = field(default=None, repr=False)  # how it was started

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
        """Create an empty database with a unique name; return its URL.

        The name carries TUTORIAL_RUN_TAG, when set: `make tutorial` sets it for itself and
        its kernels, and drops every database with its tag when Ctrl-C stops it.
        """
        name = f"{prefix}_{os.environ.get('TUTORIAL_RUN_TAG', '')}{secrets.token_hex(4)}"
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}`")
        return self.url.set(database=name)

    def drop_database(self, url: URL | str) -> None:
        name = make_url(url).database if isinstance(url, str) else url.database
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")

    def insert_rows(
        self, url: URL, table: str, columns: Sequence[str], rows: Iterable[Sequence[object]],
        *, batch: int = 1000,
    ) -> int:
        """Insert `rows` (tuples in `columns` order) into `table`; return how many went in.

        Made in Python and sent `batch` rows to a statement, so any number works the same on
        MySQL and MariaDB; a recursive CTE, SQL's usual row generator, stops at 1,000 rows
        (MySQL's cte_max_recursion_depth raises an error, MariaDB's max_recursive_iterations
        silently returns the first 1,001).
        """
        names = ", ".join(f"`{c}`" for c in columns)
        statement = f"INSERT INTO `{table}` ({names}) VALUES ({', '.join(['%s'] * len(columns))})"
        done = 0
        rows = iter(rows)
        with self.connect(url.database) as conn, conn.cursor() as cur:
            # PyMySQL sends an executemany of INSERT ... VALUES as one multi-row INSERT.
            while chunk := list(itertools.islice(rows, batch)):
                done += cur.executemany(statement, chunk)
        return done

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
    if allow_start and os.environ.get(BINARY_VARIABLE, "").strip():
        # A binary chosen by name is what the caller wants, not whatever else answers.
        return start_local_server(find_server_binary())
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
    """The executable TUTORIAL_MYSQLD names, or else a mariadbd or mysqld executable on PATH or
    in the usual install folders; None when there is none. NoServerError when TUTORIAL_MYSQLD
    names no executable (a typo should not quietly start another server)."""
    chosen = os.environ.get(BINARY_VARIABLE, "").strip()
    if chosen:
        path = Path(chosen).expanduser().absolute()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise NoServerError(
                f"{BINARY_VARIABLE}={chosen} is not an executable file; point it at a mysqld or "
                f"mariadbd (e.g. the path scripts/mysql-root.sh prints), or unset it"
            )
        return path
    search = os.pathsep.join([os.environ.get("PATH", ""), *EXTRA_BIN_DIRS])
    for name in ("mariadbd", "mysqld"):
        found = shutil.which(name, path=search)
        if found:
            return Path(found)
    return None


@dataclass(frozen=True)
class ServerBinary:
    """A server executable, what its `--version` prints, and the installation it belongs to.

    `version_text` as the servers print it:
        mysqld  Ver 8.4.3 for Linux on x86_64 (MySQL Community Server - GPL)
        mariadbd  Ver 10.11.19-MariaDB-0+deb12u1 for debian-linux-gnu on x86_64 (Debian 12)
    """

    path: Path
    version_text: str
    # The installation's top folder (`bin/` or `sbin/` is in it), where the server finds its
    # plugins, error messages and character sets.
    basedir: Path

    @classmethod
    def inspect(cls, path: Path) -> ServerBinary:
        try:
            out = subprocess.run(
                [str(path), "--version"], capture_output=True, text=True, timeout=10
            ).stdout
        except (OSError, subprocess.TimeoutExpired):
            out = ""
        # Homebrew links bin/mysqld to Cellar/mysql/<version>/bin/mysqld: its basedir is the
        # Cellar folder, the `--basedir=#{prefix}` Homebrew's own formula passes.
        return cls(path, out.strip(), path.resolve().parent.parent)

    @property
    def mariadb(self) -> bool:
        # Debian's MariaDB also installs itself as `mysqld`: trust what it prints.
        return "MariaDB" in self.version_text or "mariadb" in self.path.name

    @property
    def version(self) -> tuple[int, ...]:
        """(8, 4, 3) from "Ver 8.4.3 ..."; () when the text says no version."""
        match = re.search(r"\bVer\s+(\d+)\.(\d+)\.(\d+)", self.version_text)
        return tuple(int(part) for part in match.groups()) if match else ()

    @property
    def label(self) -> str:
        version = ".".join(map(str, self.version)) or "unknown version"
        return f"{self.path.name} ({'MariaDB' if self.mariadb else 'MySQL'} {version})"


def server_workdir_parent() -> Path:
    """Where the kit puts a server's data directory, socket and log: /tmp, whatever TMPDIR says.

    The AppArmor profile that MySQL's own Debian and Ubuntu packages install for /usr/sbin/mysqld
    lets the server write to its folders under /var/lib/mysql and, through the `user-tmp`
    abstraction, to files its user owns under /tmp and /var/tmp; a data directory anywhere else
    (a TMPDIR in the home folder, /run/user/...) is refused and `--initialize-insecure` fails.
    /tmp also keeps the socket path short (Unix sockets allow about 100 characters; macOS's
    TMPDIR alone takes 50). Where there is no /tmp (Windows), the temporary folder.
    TUTORIAL_SERVER_DIR, when set, says where instead (the tests give each run its own).
    """
    if os.environ.get("TUTORIAL_SERVER_DIR"):
        return Path(os.environ["TUTORIAL_SERVER_DIR"])
    tmp = Path("/tmp")
    if os.name == "posix" and tmp.is_dir() and os.access(tmp, os.W_OK | os.X_OK):
        return tmp
    return Path(tempfile.gettempdir())


def initialise_command(
    binary: ServerBinary, workdir: Path, *, as_root: bool, install_db: Path | None = None
) -> list[str]:
    """The command that creates an empty data directory in `workdir`/data, root without password.

    MariaDB ships a script for it (`install_db`: mariadb-install-db); MySQL 5.7.6 and later do it
    themselves, `mysqld --initialize-insecure`, as Homebrew's formula does.
    """
    # mysqld refuses to run as root unless told to; --no-defaults must come first.
    as_user = ["--user=root"] if as_root else []
    if binary.mariadb:
        if install_db is None:
            raise ValueError("MariaDB needs mariadb-install-db to initialise a data directory")
        return [
            str(install_db),
            "--no-defaults",
            f"--datadir={workdir / 'data'}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            # Passed on to the server it bootstraps, whose temporary tables would otherwise be
            # files in /tmp itself (#sql-temptable-*), open to whatever else cleans /tmp: seen
            # failing "Error on delete of '/tmp/#sql-temptable-...'" beside other test runs.
            f"--tmpdir={workdir / 'tmp'}",
            *as_user,
        ]
    return [
        str(binary.path),
        "--no-defaults",
        "--initialize-insecure",
        f"--basedir={binary.basedir}",
        f"--datadir={workdir / 'data'}",
        # MySQL writes its temporary files where TMPDIR says, unless told: keep them in the
        # folder the AppArmor profile allows (see server_workdir_parent).
        f"--tmpdir={workdir / 'tmp'}",
        *as_user,
    ]


def serve_command(
    binary: ServerBinary, workdir: Path, port: int, *, as_root: bool, durable: bool = False
) -> list[str]:
    """The command that runs the server on the data directory in `workdir`, on 127.0.0.1:`port`.

    `durable`: every commit reaches the disk before it is acknowledged, as in production, so
    that a server killed with SIGKILL restarts with every committed transaction (tests that
    crash it need that); otherwise up to a second of commits may be lost, for speed."""
    args = [
        str(binary.path),
        "--no-defaults",
        f"--datadir={workdir / 'data'}",
        f"--tmpdir={workdir / 'tmp'}",
        f"--socket={workdir / 'mysql.sock'}",
        f"--port={port}",
        "--bind-address=127.0.0.1",
        f"--log-error={workdir / 'error.log'}",
        f"--pid-file={workdir / 'mysqld.pid'}",
        # A throwaway server: trade durability for speed, unless asked not to.
        f"--innodb-flush-log-at-trx-commit={1 if durable else 0}",
        "--innodb-buffer-pool-size=64M",
        # LOAD DATA and SELECT ... INTO OUTFILE only in the server's own folder. The compiled-in
        # default of Debian's and the vendor's MySQL packages is /var/lib/mysql-files, which only
        # their full server package creates: with --no-defaults, a mysqld from Debian's
        # mysql-server-core (or any install without that folder) aborts at start ("Failed to
        # access directory for --secure-file-priv"). MariaDB's default is no limit at all, which
        # for a server run as root, with a root account without password, would let any local
        # user write files as root.
        f"--secure-file-priv={workdir / 'files'}",
    ]
    if binary.mariadb:
        # MariaDB before 11.6 starts in latin1, where MySQL 8 and later start in utf8mb4: the
        # tutorial's tables would be latin1 here and utf8mb4 for readers. The collation is left
        # at the server's default for utf8mb4, as MySQL's (utf8mb4_0900_ai_ci) is.
        args.append("--character-set-server=utf8mb4")
    else:
        args += [
            f"--basedir={binary.basedir}",
            # MySQL 8+ also starts the X Protocol on port 33060 and /tmp/mysqlx.sock, where a
            # second throwaway server, or the reader's own MySQL, would clash with it.
            "--mysqlx=OFF",
            # MySQL 8+ writes a binary log by default (MariaDB does not): nobody replicates this.
            "--skip-log-bin",
        ]
    if as_root:
        args.append("--user=root")
    return args


def failure_reason(output: str) -> str:
    """The line of a server's output that says why it stopped.

    MySQL ends with "[ERROR] [MY-010119] [Server] Aborting" after the error that matters;
    MariaDB with "[ERROR] Aborting". Take the first other error, or else the last line.
    """
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if "ERROR" in line and not line.endswith("Aborting")]
    return (errors or lines or ["no output"])[0 if errors else -1]


def start_local_server(
    binary: Path, *, timeout: float = 30, init_timeout: float = 120, durable: bool = False
) -> Server:
    """Initialise a data directory in a temporary folder and start `binary` on it.

    Each wait is bounded: `init_timeout` for the data directory, `timeout` for the first answer.
    `durable`: see serve_command; crash_and_restart needs it.
    """
    server_binary = ServerBinary.inspect(binary)
    if not server_binary.mariadb and server_binary.version and server_binary.version < (8, 0):
        raise NoServerError(
            f"{binary} is MySQL {'.'.join(map(str, server_binary.version))}, too old for this "
            f"tutorial (it needs MySQL 8.0 or newer): {HOW_TO_GET_ONE}"
        )
    as_root = hasattr(os, "geteuid") and os.geteuid() == 0
    workdir = Path(tempfile.mkdtemp(prefix="tutorial-mysql-", dir=server_workdir_parent()))
    (workdir / "tmp").mkdir()
    (workdir / "files").mkdir(mode=0o700)  # serve_command's --secure-file-priv
    try:
        _initialise(server_binary, workdir, as_root, init_timeout)
    except NoServerError:
        shutil.rmtree(workdir, ignore_errors=True)
        raise

    attempts = 3
    for attempt in range(1, attempts + 1):
        port = _free_port()
        (workdir / "error.log").unlink(missing_ok=True)  # so that its errors are this attempt's
        args = serve_command(server_binary, workdir, port, as_root=as_root, durable=durable)
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = URL.create("mysql+pymysql", username="root", password="", host="127.0.0.1", port=port)
        server = Server(
            url, f"local {server_binary.label}", partial(_stop, process, workdir),
            pid=process.pid, workdir=workdir, command=args,
        )
        try:
            _wait_until_ready(server, timeout=timeout, log=workdir / "error.log", process=process)
            return server
        except NoServerError:
            exited_early = process.poll() is not None
            _terminate(process)
            # The free port may have been taken before the server bound it: try another.
            if not exited_early or attempt == attempts:
                shutil.rmtree(workdir, ignore_errors=True)
                raise
    raise AssertionError("unreachable")


def crash_and_restart(server: Server, *, timeout: float = 60) -> None:
    """`kill -9` a server start_local_server started, then start it again on the same data
    directory and port, as after a crash: it recovers (InnoDB's redo log, MariaDB's DDL log)."""
    command = server.command
    if command is None or server.pid is None or server.workdir is None:
        raise ValueError("crash_and_restart needs a server that start_local_server started")
    os.kill(server.pid, signal.SIGKILL)
    old = server._stop.args[0] if isinstance(server._stop, partial) else None
    if old is not None:
        old.wait()  # reaped: the port and the data directory are free
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server.pid = process.pid
    server._stop = partial(_stop, process, server.workdir)
    _wait_until_ready(server, timeout=timeout, log=server.workdir / "error.log", process=process)


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


def _initialise(binary: ServerBinary, workdir: Path, as_root: bool, timeout: float) -> None:
    """Run initialise_command; NoServerError with one line if it fails or outlasts `timeout`."""
    install_db = None
    if binary.mariadb:
        search = os.pathsep.join(
            [str(binary.path.parent), os.environ.get("PATH", ""), *EXTRA_BIN_DIRS]
        )
        install_db = shutil.which("mariadb-install-db", path=search) or shutil.which(
            "mysql_install_db", path=search
        )
        if install_db is None:
            raise NoServerError(
                f"could not initialise {binary.path}: mariadb-install-db not found next to it"
            )
    cmd = initialise_command(
        binary, workdir, as_root=as_root, install_db=Path(install_db) if install_db else None
    )
    try:
        # A session of its own, so that a timeout stops whatever the command started too.
        process = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
        )
    except OSError as exc:
        raise NoServerError(f"could not initialise {binary.path}: {exc.strerror}") from None
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_session(process)
        raise NoServerError(
            f"could not initialise {binary.path}: {Path(cmd[0]).name} was still running after "
            f"{timeout:g} s and was stopped; start a server yourself and set "
            "DATABASE_URL=mysql+pymysql://root:PASSWORD@HOST:3306/"
        ) from None
    if process.returncode != 0:
        raise NoServerError(f"could not initialise {binary.path}: {failure_reason(output)}")


def _kill_session(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (AttributeError, ProcessLookupError, PermissionError):  # no killpg on Windows
        process.kill()
    process.communicate()


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
                tail = f": {failure_reason(log.read_text(errors='replace'))}"
            raise NoServerError(f"{server.source} did not start{tail}")
        time.sleep(0.1)


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
