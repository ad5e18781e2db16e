"""The tutorial kit finds a server the documented way, and says what to do when it cannot."""

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from conftest import assert_clean_failure

import tutorial_kit.mysql as kit
from tutorial_kit import NoServerError, find_server
from tutorial_kit.steps import url_text


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
    binary = kit.find_server_binary()
    if binary is None:
        pytest.skip("no mysqld or mariadbd on this machine")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("MYSQL_PORT", "1")  # no compose service there
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")  # no engine
    server = find_server()
    assert server.source.startswith(f"local {binary.name}")
    with server.database("kit") as url:
        with server.connect(url.database) as conn, conn.cursor() as cur:
            cur.execute("SELECT @@character_set_server")
            assert cur.fetchone()[0] == "utf8mb4"
    server.stop()
    with pytest.raises(Exception):
        server.connect().close()


def _no_way_to_a_server(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
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


def test_local_server_moves_on_when_its_port_is_taken(monkeypatch):
    binary = kit.find_server_binary()
    if binary is None:
        pytest.skip("no mysqld or mariadbd on this machine")
    # Something that is not MySQL holds the first port the kit picks: it must neither hang
    # on it nor give up, but start the server on another port.
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        ports = iter([taken])
        real = kit._free_port
        monkeypatch.setattr(kit, "_free_port", lambda: next(ports, None) or real())
        server = kit.start_local_server(binary)
        try:
            assert server.url.port != taken
            server.connect().close()
        finally:
            server.stop()


def _local_only_env(tmp: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": "",
        "MYSQL_PORT": "1",
        "DOCKER_HOST": "unix:///nonexistent/docker.sock",
        "TMPDIR": str(tmp),
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


@pytest.mark.parametrize("args, message", [
    (["serve"], f"error: no MySQL server found: {kit.HOW_TO_GET_ONE}"),
    (["start"], "error: argument command: invalid choice: 'start' (choose from serve)"),
])
def test_serve_explains_in_one_line(tmp_path, args, message):
    env = {**_local_only_env(tmp_path), "PATH": "/nonexistent"}
    script = (
        "import tutorial_kit.mysql as m; m.EXTRA_BIN_DIRS = ();"
        f"import sys; from tutorial_kit.__main__ import main; sys.exit(main({args!r}))"
    )
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert assert_clean_failure(result).startswith(message.split(" (choose")[0])
