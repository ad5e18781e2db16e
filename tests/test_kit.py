"""The tutorial kit finds a server the documented way, and says what to do when it cannot."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from conftest import assert_clean_failure

import tutorial_kit.mysql as kit
from tutorial_kit import NoServerError, find_server
from tutorial_kit.steps import REPO, url_text


def test_database_url_is_used_when_set(server, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", url_text(server.url.set(database="anything")))
    found = find_server()
    assert found.source == "DATABASE_URL"
    assert found.url.database is None  # the kit hands out its own databases
    assert (found.url.host, found.url.port) == (server.url.host, server.url.port)
    with found.database("kit") as url:
        with found.connect(url.database) as conn, conn.cursor() as cur:
            cur.execute("SELECT DATABASE()")
            assert cur.fetchone()[0] == url.database
    found.stop()  # a server it did not start is left running
    found.connect().close()


@pytest.mark.parametrize(
    "value, message",
    [
        ("::nonsense::", "DATABASE_URL is not a valid URL"),
        ("postgresql://u:p@127.0.0.1/db", "must name a MySQL server"),
        ("mysql+pymysql://root:topsecret@127.0.0.1:1/", "does not accept the connection"),
    ],
)
def test_bad_database_url_is_explained(monkeypatch, value, message):
    monkeypatch.setenv("DATABASE_URL", value)
    with pytest.raises(NoServerError, match=message) as info:
        find_server()
    assert "topsecret" not in str(info.value)


def test_local_server_is_started_and_stopped(monkeypatch):
    """Nothing else answers, so the kit starts one, in spite of two things in its way (one
    start for the three, 0.6 s of CPU each on MariaDB): something that is not MySQL holds the
    first port it picks (it must neither hang on it nor give up, but use another), and TMPDIR
    points outside /tmp, as on machines that set one per user (AppArmor's profile for mysqld
    would refuse a data directory there). The binary is the one the run uses: mariadbd, or
    the MySQL that TUTORIAL_MYSQLD names (.ci/run runs the suite with each), so the kit's
    start-up of MySQL (--initialize-insecure, then its serve_command) runs for real."""
    binary = kit.find_server_binary()
    if binary is None:
        pytest.skip("no mysqld or mariadbd on this machine")
    mariadb = kit.ServerBinary.inspect(binary).mariadb
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("MYSQL_PORT", "1")  # no compose service there
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")  # no engine
    (REPO / "build").mkdir(exist_ok=True)
    elsewhere = Path(tempfile.mkdtemp(dir=REPO / "build"))
    try:
        monkeypatch.setenv("TMPDIR", str(elsewhere))
        monkeypatch.setattr(tempfile, "tempdir", str(elsewhere))
        with socket.socket() as squatter:
            squatter.bind(("127.0.0.1", 0))
            squatter.listen()
            taken = squatter.getsockname()[1]
            ports = iter([taken])
            real = kit._free_port
            monkeypatch.setattr(kit, "_free_port", lambda: next(ports, None) or real())
            server = find_server()
            try:
                assert server.source.startswith(f"local {binary.name}")
                assert server.url.port != taken
                with server.database("kit") as url:
                    with server.connect(url.database) as conn, conn.cursor() as cur:
                        cur.execute("SELECT @@datadir, @@tmpdir, @@character_set_server, "
                                    "@@collation_server, @@secure_file_priv, @@log_bin")
                        datadir, tmpdir, charset, collation, files, log_bin = cur.fetchone()
                        cur.execute("SELECT COUNT(*) FROM information_schema.PLUGINS "
                                    "WHERE PLUGIN_NAME = 'mysqlx' AND PLUGIN_STATUS = 'ACTIVE'")
                        x_protocol = cur.fetchone()[0]
            finally:
                server.stop()
        workdir = datadir.rstrip("/").rsplit("/", 1)[0]
        assert datadir.startswith("/tmp/tutorial-mysql-"), datadir
        assert tmpdir.startswith(workdir), tmpdir
        assert files == f"{workdir}/files/"  # LOAD DATA, INTO OUTFILE: its own folder only
        assert charset == "utf8mb4" and not log_bin and not x_protocol
        # Each server's own default collation for utf8mb4.
        assert collation == ("utf8mb4_general_ci" if mariadb else "utf8mb4_0900_ai_ci")
        assert list(elsewhere.iterdir()) == []
        assert not Path(datadir).exists()  # its data is gone with it
        with pytest.raises(Exception):
            server.connect().close()
    finally:
        shutil.rmtree(elsewhere, ignore_errors=True)


def _no_way_to_a_server(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv(kit.BINARY_VARIABLE, raising=False)
    monkeypatch.setenv("MYSQL_PORT", "1")
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(kit, "EXTRA_BIN_DIRS", ())


def test_no_server_names_every_way_to_get_one(monkeypatch):
    _no_way_to_a_server(monkeypatch)
    with pytest.raises(NoServerError) as info:
        find_server()
    message = str(info.value)
    assert "DATABASE_URL" in message
    assert "docker compose up" in message
    assert "mariadb-server" in message
    assert "\n" not in message


def test_tutorial_command_reports_no_server_in_one_line(tmp_path):
    # The README's command, where no server can be had: one line, exit 2, no traceback.
    script = (
        "import tutorial_kit.mysql as m; m.EXTRA_BIN_DIRS = ();"
        "import sys; from tutorial_kit.tutorial import main; sys.exit(main([]))"
    )
    env = {
        "PATH": "/nonexistent",
        "MYSQL_PORT": "1",
        "DOCKER_HOST": "unix:///nonexistent/docker.sock",
        "TUTORIAL_BUILD_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: no MySQL server found: {kit.HOW_TO_GET_ONE}"
    ]


# --- The command lines the kit builds, for MySQL 8.4 and 9.x as their manuals document them --

MYSQL_84 = "mysqld  Ver 8.4.3 for Linux on x86_64 (MySQL Community Server - GPL)"
MYSQL_9 = "mysqld  Ver 9.1.0 for macos14.7 on arm64 (Homebrew)"
MARIADB = "mariadbd  Ver 10.11.19-MariaDB-0+deb12u1 for debian-linux-gnu on x86_64 (Debian 12)"

# mysqld options the kit may pass, each checked in the MySQL 8.4 and 9.x reference manuals
# (Server Command Options, the option and variable reference, X Plugin, binary logging).
# Add one here only after checking it there.
MYSQL_DOCUMENTED = {
    "no-defaults", "initialize-insecure", "basedir", "datadir", "tmpdir", "socket", "port",
    "bind-address", "log-error", "pid-file", "innodb-flush-log-at-trx-commit",
    "innodb-buffer-pool-size", "mysqlx", "skip-log-bin", "user", "secure-file-priv",
}
# Removed in MySQL 8.4.0 or 9.0.0 (Option and Variable Changes for MySQL 8.4, 9.0): a server
# given one of these refuses to start.
MYSQL_REMOVED = {
    "default-authentication-plugin", "admin-ssl", "ssl", "skip-ssl", "avoid-temporal-upgrade",
    "mysql-native-password",
}


def option_names(args: list[str]) -> list[str]:
    return [a[2:].split("=")[0].replace("_", "-") for a in args[1:]]


@pytest.mark.parametrize("version_text, version", [(MYSQL_84, (8, 4, 3)), (MYSQL_9, (9, 1, 0))])
@pytest.mark.parametrize("as_root", [False, True])
def test_mysql_command_lines(tmp_path, version_text, version, as_root):
    prefix = tmp_path / "Cellar" / "mysql" / ".".join(map(str, version))
    binary = kit.ServerBinary(prefix / "bin" / "mysqld", version_text, prefix)
    assert not binary.mariadb and binary.version == version
    work = tmp_path / "work"
    init = kit.initialise_command(binary, work, as_root=as_root)
    serve = kit.serve_command(binary, work, 4321, as_root=as_root)

    for args in (init, serve):
        assert args[0] == str(prefix / "bin" / "mysqld")
        assert args[1] == "--no-defaults"  # mysqld accepts it only first
        names = option_names(args)
        assert set(names) <= MYSQL_DOCUMENTED and not set(names) & MYSQL_REMOVED, names
        assert len(names) == len(set(names)), names
        # Homebrew's formula passes its prefix; every file goes to the kit's folder.
        assert f"--basedir={prefix}" in args
        assert f"--datadir={work / 'data'}" in args and f"--tmpdir={work / 'tmp'}" in args
        assert ("--user=root" in args) == as_root
    assert "--initialize-insecure" in init
    for flag in ("--mysqlx=OFF", "--skip-log-bin", "--port=4321", "--bind-address=127.0.0.1",
                 f"--secure-file-priv={work / 'files'}"):
        assert flag in serve
    # MySQL keeps its own character set and collation (utf8mb4, utf8mb4_0900_ai_ci).
    assert not [a for a in serve if "character-set" in a or "collation" in a]
    for arg in serve[1:]:
        if arg.startswith(("--socket=", "--log-error=", "--pid-file=", "--secure-file-priv=")):
            assert arg.split("=", 1)[1].startswith(str(work)), arg


def test_mariadb_command_lines(tmp_path):
    binary = kit.ServerBinary(Path("/usr/sbin/mariadbd"), MARIADB, Path("/usr"))
    assert binary.mariadb and binary.version == (10, 11, 19)
    install_db = Path("/usr/bin/mariadb-install-db")
    init = kit.initialise_command(binary, tmp_path, as_root=False, install_db=install_db)
    assert init[:2] == [str(install_db), "--no-defaults"]
    assert f"--datadir={tmp_path / 'data'}" in init and f"--tmpdir={tmp_path / 'tmp'}" in init
    serve = kit.serve_command(binary, tmp_path, 4321, as_root=False)
    assert serve[:2] == ["/usr/sbin/mariadbd", "--no-defaults"]
    # latin1 is MariaDB 10.11's default; utf8mb4 is MySQL's. No MySQL-only option.
    assert "--character-set-server=utf8mb4" in serve
    assert f"--secure-file-priv={tmp_path / 'files'}" in serve  # MariaDB's default: anywhere
    assert not [a for a in serve if "collation" in a or "mysqlx" in a or "log-bin" in a]
    # Debian's MariaDB installs itself as mysqld too: what it prints decides.
    as_mysqld = MARIADB.replace("mariadbd", "mysqld")
    assert kit.ServerBinary(Path("/usr/sbin/mysqld"), as_mysqld, Path("/usr")).mariadb


def test_the_binary_here_is_inspected():
    path = kit.find_server_binary()
    if path is None:
        pytest.skip("no mysqld or mariadbd on this machine")
    binary = kit.ServerBinary.inspect(path)
    assert binary.version >= ((10, 3) if binary.mariadb else (8, 0)), binary.version_text
    # The basedir the kit passes is where the server's error messages are.
    assert list(binary.basedir.glob("share/*/english/errmsg.sys")), binary.basedir


@pytest.mark.parametrize(
    "output, reason",
    [
        # MySQL 8.4 --initialize-insecure, refused a data directory by AppArmor.
        (
            "2026-11-27T10:00:00.000000Z 0 [System] [MY-013169] [Server] /usr/sbin/mysqld "
            "(mysqld 8.4.3) initializing of server in progress as process 4242\n"
            "2026-11-27T10:00:00.100000Z 0 [ERROR] [MY-010187] [Server] Could not open file "
            "'/home/ada/tmp/x/error.log' for error logging: Permission denied\n"
            "2026-11-27T10:00:00.100000Z 0 [ERROR] [MY-013236] [Server] The designated data "
            "directory /home/ada/tmp/x/data/ is unusable.\n"
            "2026-11-27T10:00:00.100000Z 0 [ERROR] [MY-010119] [Server] Aborting\n",
            "Could not open file '/home/ada/tmp/x/error.log' for error logging: Permission denied",
        ),
        # MariaDB, its port taken.
        (
            "2026-11-27 10:00:00 0 [Note] Starting MariaDB 10.11.19 as process 4242\n"
            "2026-11-27 10:00:00 0 [ERROR] Can't start server: Bind on TCP/IP port. Got error: 98\n"
            "2026-11-27 10:00:00 0 [ERROR] Aborting\n",
            "Can't start server: Bind on TCP/IP port. Got error: 98",
        ),
        ("mysqld: Can't change dir to '/nowhere/' (OS errno 2)\n", "Can't change dir to"),
        ("", "no output"),
    ],
)
def test_failure_reason_is_the_line_that_says_why(output, reason):
    assert reason in kit.failure_reason(output)
    assert "\n" not in kit.failure_reason(output)


# --- Starting a local server for real (the run's server), and stand-ins for what it cannot do


def fake_mysqld(folder: Path, version_text: str, on_initialise: str) -> Path:
    """A stand-in for a MySQL server binary that cannot run here: prints `version_text`, and
    runs the shell code `on_initialise` for --initialize-insecure (after saving its arguments)."""
    bin_dir = folder / "bin"
    bin_dir.mkdir(parents=True)
    script = bin_dir / "mysqld"
    script.write_text(
        "#!/bin/sh\n"
        f'case "$*" in *--version*) echo "{version_text}"; exit 0;; esac\n'
        f'printf "%s\\n" "$@" > "{folder / "args"}"\n'
        f"{on_initialise}\n"
    )
    script.chmod(0o755)
    return script


@pytest.fixture
def kit_folder(tmp_path, monkeypatch):
    """Where the kit makes its server folders during the test; must be empty afterwards."""
    parent = tmp_path / "servers"
    parent.mkdir()
    monkeypatch.setattr(kit, "server_workdir_parent", lambda: parent)
    yield parent
    assert list(parent.iterdir()) == [], "the kit left a server folder behind"


def test_slow_initialise_ends_in_one_line(tmp_path, kit_folder):
    binary = fake_mysqld(tmp_path, MYSQL_84, f"exec {shutil.which('sleep')} 600")
    with pytest.raises(NoServerError) as info:
        kit.start_local_server(binary, init_timeout=1)
    message = str(info.value)
    assert message.startswith(f"could not initialise {binary}: mysqld was still running after 1 s")
    assert "DATABASE_URL" in message and "\n" not in message
    # It was given what initialise_command builds, in the kit's folder.
    args = (tmp_path / "args").read_text().splitlines()
    assert args[:2] == ["--no-defaults", "--initialize-insecure"]
    assert f"--basedir={tmp_path}" in args
    assert [a for a in args if a.startswith("--datadir=")][0].startswith(f"--datadir={kit_folder}/")


def test_failing_initialise_says_why_in_one_line(tmp_path, kit_folder):
    binary = fake_mysqld(
        tmp_path, MYSQL_9,
        "echo '2026-11-27T10:00:00Z 0 [ERROR] [MY-013236] [Server] The designated data directory"
        " is unusable.' >&2\n"
        "echo '2026-11-27T10:00:00Z 0 [ERROR] [MY-010119] [Server] Aborting' >&2\n"
        "exit 1",
    )
    with pytest.raises(NoServerError) as info:
        kit.start_local_server(binary)
    assert str(info.value) == (
        f"could not initialise {binary}: 2026-11-27T10:00:00Z 0 [ERROR] [MY-013236] [Server] "
        "The designated data directory is unusable."
    )


def test_mysql_before_8_is_refused(tmp_path, kit_folder):
    binary = fake_mysqld(
        tmp_path, "mysqld  Ver 5.7.44 for Linux on x86_64 (MySQL Community Server (GPL))", "exit 0"
    )
    with pytest.raises(NoServerError, match=r"is MySQL 5\.7\.44, too old for this tutorial"):
        kit.start_local_server(binary)
    assert not (tmp_path / "args").exists()  # nothing was run


def test_tutorial_command_reports_a_slow_initialise_in_one_line(tmp_path):
    binary = fake_mysqld(tmp_path, MYSQL_84, f"exec {shutil.which('sleep')} 600")
    script = (
        "import functools, sys; import tutorial_kit.mysql as m; m.EXTRA_BIN_DIRS = ();"
        "m.start_local_server = functools.partial(m.start_local_server, init_timeout=1);"
        "from tutorial_kit.tutorial import main; sys.exit(main([]))"
    )
    env = {
        "PATH": str(binary.parent),
        "MYSQL_PORT": "1",
        "DOCKER_HOST": "unix:///nonexistent/docker.sock",
        "TUTORIAL_BUILD_DIR": str(tmp_path / "build"),
    }
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, cwd=REPO
    )
    assert result.returncode == 2
    line = assert_clean_failure(result)
    assert line.startswith(f"error: could not initialise {binary}: mysqld was still running")


def _local_only_env(tmp: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": "",
        "MYSQL_PORT": "1",
        "DOCKER_HOST": "unix:///nonexistent/docker.sock",
        "TUTORIAL_SERVER_DIR": str(tmp),
    }


def test_serve_starts_a_server_prints_the_exports_and_stops_on_ctrl_c(short_tmp):
    tmp_path = short_tmp  # the command's temporary folder
    if kit.find_server_binary() is None:
        pytest.skip("no mysqld or mariadbd on this machine")
    process = subprocess.Popen(
        [sys.executable, "-m", "tutorial_kit", "serve"], env=_local_only_env(tmp_path),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        exports = {}
        for line in process.stdout:  # until the server says it runs
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").strip().partition("=")
                exports[name] = value
            if "Ctrl-C" in line:
                break
        assert set(exports) == {"DATABASE_URL", "DEV_DATABASE_URL"}, exports
        for name, database in (("DATABASE_URL", "app"), ("DEV_DATABASE_URL", "dev")):
            engine = create_engine(exports[name])
            with engine.connect() as conn:  # the URL works as printed, on an empty database
                assert conn.scalar(text("SELECT DATABASE()")) == database
                assert conn.execute(text("SHOW TABLES")).all() == []
            engine.dispose()
        assert len(list(tmp_path.glob("tutorial-mysql-*"))) == 1
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert err == "" and "Stopping MySQL." in out
    assert list(tmp_path.glob("tutorial-mysql-*")) == []  # its data is gone with it


def test_a_killed_tutorial_leaves_no_server_behind(short_tmp):
    """Before, `make tutorial` killed (SIGTERM, SIGKILL) left mariadbd running and its data."""
    if kit.find_server_binary() is None:
        pytest.skip("no mysqld or mariadbd on this machine")
    env = {**_local_only_env(short_tmp), "TUTORIAL_BUILD_DIR": str(short_tmp / "build")}
    process = subprocess.Popen([sys.executable, "-m", "tutorial_kit.tutorial", "--skip-notebooks"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    first = process.stdout.readline()
    assert first.startswith("MySQL: local"), first + process.communicate()[1]  # its own server
    [folder] = short_tmp.glob("tutorial-mysql-*")
    process.kill()  # no clean-up of its own
    process.communicate()
    deadline = time.monotonic() + 30
    while folder.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not folder.exists()


@pytest.mark.parametrize("args, message", [
    (["serve"], f"error: no MySQL server found: {kit.HOW_TO_GET_ONE}"),
    (["start"], "error: argument COMMAND: invalid choice: 'start' (choose from 'serve', 'follow'"),
])
def test_serve_explains_in_one_line(tmp_path, args, message):
    env = {**_local_only_env(tmp_path), "PATH": "/nonexistent"}
    env.pop(kit.BINARY_VARIABLE, None)
    script = (
        "import tutorial_kit.mysql as m; m.EXTRA_BIN_DIRS = ();"
        f"import sys; from tutorial_kit.__main__ import main; sys.exit(main({args!r}))"
    )
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert assert_clean_failure(result).startswith(message.split(" (choose")[0])


# --- TUTORIAL_MYSQLD: the server binary chosen by name -----------------------------------


def test_the_binary_named_is_started_before_any_other(tmp_path, kit_folder, monkeypatch):
    """Named, it is what the kit starts, though mariadbd is on PATH: here a stand-in whose
    --initialize-insecure fails, so that the message shows which binary ran."""
    binary = fake_mysqld(tmp_path, MYSQL_9, "echo '[ERROR] [MY-000000] [Server] chosen' >&2; exit 1")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv(kit.BINARY_VARIABLE, str(binary))
    assert kit.find_server_binary() == binary
    with pytest.raises(NoServerError) as info:
        find_server()
    assert str(info.value) == f"could not initialise {binary}: [ERROR] [MY-000000] [Server] chosen"


def test_a_named_binary_that_is_not_there_gets_one_line(tmp_path):
    env = {**_local_only_env(tmp_path), kit.BINARY_VARIABLE: str(tmp_path / "mysqld")}
    result = subprocess.run([sys.executable, "-m", "tutorial_kit", "serve"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert assert_clean_failure(result) == (
        f"error: {kit.BINARY_VARIABLE}={tmp_path / 'mysqld'} is not an executable file; point it "
        "at a mysqld or mariadbd (e.g. the path scripts/mysql-root.sh prints), or unset it")
    assert list(tmp_path.iterdir()) == []  # no server folder was made
