"""database.py and migrate/devdb.py (the same in every step): connections fail fast, in one clear line,
and never show any part of a password."""

import secrets
import socket
import subprocess
import sys
import threading
import time
from urllib.parse import quote

import pytest
from sqlalchemy import inspect

from conftest import assert_clean_failure
from tutorial_kit.steps import run, step_env

SECRET = "s3cret-Pa55word"


@pytest.fixture
def listener():
    """A local port where something that is not MySQL listens: start(mode) -> port.

    "silent" accepts and never says a word (a TLS or HTTP server waiting for the client);
    "banner" greets in its own protocol (an SSH server)."""
    sockets = []

    def start(mode: str) -> int:
        server = socket.create_server(("127.0.0.1", 0))
        sockets.append(server)

        def serve() -> None:
            while True:
                try:
                    client, _ = server.accept()
                except OSError:
                    return
                sockets.append(client)
                if mode == "banner":
                    client.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")

        threading.Thread(target=serve, daemon=True).start()
        return server.getsockname()[1]

    yield start
    for sock in sockets:
        sock.close()


@pytest.mark.parametrize(
    "mode, expected",
    [("silent", "no MySQL answered at 127.0.0.1:{port} within 1 s"),
     ("banner", "what answers at 127.0.0.1:{port} is not MySQL")],
)
def test_a_port_where_something_else_listens_fails_in_one_line(step, database_url, listener, mode, expected):
    port = listener(mode)
    # Before, a silent listener kept main.py waiting forever: the timeout here catches that.
    # (1 s rather than the default 10, which test_the_default_wait_is_10_s checks.)
    url = database_url.set(port=port, password=SECRET).update_query_dict({"connect_timeout": "1"})
    result = run(step("start"), "main.py", database_url=url, timeout=60)
    line = assert_clean_failure(result, password=SECRET)
    assert line.startswith("error: ") and expected.format(port=port) in line, line
    assert "fix the host and port in DATABASE_URL" in line


@pytest.mark.parametrize("step_name", ["step-1-versioned", "step-5-custom-migration"])
def test_plain_alembic_on_a_silent_port_fails_in_one_line(step, database_url, listener, step_name):
    """env.py connects through database.py too: before, `alembic current` waited forever.

    The URL's own connect_timeout is the wait (before, database.py overrode it with 10 s)."""
    port = listener("silent")
    url = database_url.set(port=port, password=SECRET).update_query_dict({"connect_timeout": "1"})
    result = run(step(step_name), "-m", "alembic", "current", database_url=url, timeout=60)
    line = assert_clean_failure(result, password=SECRET)
    assert f"no MySQL answered at 127.0.0.1:{port} within 1 s" in line


def test_the_dev_database_on_a_silent_port_fails_in_one_line(step, dev_database_url, listener):
    app = step("step-2-generate")
    (app / "models.py").write_text((app / "models.py").read_text().replace(
        "    name: Mapped[str]", "    full_name: Mapped[str]"))
    port = listener("silent")
    url = dev_database_url.set(port=port).update_query_dict({"connect_timeout": "1"})
    result = run(app, "-m", "migrate", "generate", "x", dev_database_url=url, timeout=60)
    line = assert_clean_failure(result)
    assert f"no MySQL answered at 127.0.0.1:{port} within 1 s" in line and "DEV_DATABASE_URL" in line


@pytest.mark.parametrize("step_name", ["start", "step-6-verify-safety"])
def test_the_default_wait_is_10_s(step, step_name):
    code = ("import database; from sqlalchemy.engine import make_url; "
            "print(database.connect_timeout(make_url('mysql+pymysql://u:p@h/d')))")
    assert run(step(step_name), "-c", code).stdout == "10\n"


@pytest.mark.parametrize("value", ["soon", "0", "-1", "1.5", "99999999999"])
def test_a_connect_timeout_that_is_no_whole_number_fails_in_one_line(step, database_url, value):
    url = database_url.set(password=SECRET).update_query_dict({"connect_timeout": value})
    result = run(step("start"), "main.py", database_url=url)
    line = assert_clean_failure(result, password=SECRET)
    assert line == "error: DATABASE_URL's connect_timeout must be a whole number of seconds, 1 or more"


def test_a_connect_timeout_in_the_url_is_kept(step, database_url):
    """A reader's ?connect_timeout=30 reaches PyMySQL, on the app's engine too."""
    app = step("start")
    (app / "timeout.py").write_text(
        "import database\nengine = database.connect()\n"
        "print(engine.connect().connection.dbapi_connection.connect_timeout)\n")
    result = run(app, "timeout.py", database_url=database_url.update_query_dict({"connect_timeout": "30"}))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["30"]


SCRIPT_LONG_QUERY = """
import database
from sqlalchemy import text
database.TIMEOUT = 1  # a second for the server to answer; the query below takes two
engine = database.connect()
with engine.connect() as conn:
    print(conn.scalar(text("SELECT SLEEP(2) + 42")))
"""


def test_the_answer_timeout_does_not_cut_off_a_long_query(step, database_url):
    # A migration's ALTER TABLE on a big table takes minutes: only connecting is timed.
    app = step("start")
    (app / "long_query.py").write_text(SCRIPT_LONG_QUERY)
    result = run(app, "long_query.py", database_url=database_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "42"


@pytest.fixture
def mysql_user(server):
    """make(password, grants) -> user name: a MySQL user of this test's, dropped afterwards."""
    made = []

    def make(password: str, *grants: str) -> str:
        name = f"t_{secrets.token_hex(4)}"
        with server.connect() as conn, conn.cursor() as cur:
            # Also at localhost: an anonymous ''@localhost would otherwise take 127.0.0.1.
            for host in ("%", "localhost"):
                quoted = host.replace("%", "%%")  # PyMySQL formats the statement with the arguments
                cur.execute(f"CREATE USER '{name}'@'{quoted}' IDENTIFIED BY %s", (password,))
                made.append(f"'{name}'@'{host}'")
                for grant in grants:
                    cur.execute(f"GRANT {grant} TO '{name}'@'{host}'")
        return name

    yield make
    with server.connect() as conn, conn.cursor() as cur:
        for user in made:
            cur.execute(f"DROP USER IF EXISTS {user}")


# Every character a URL gives a meaning to, and pieces that must never be printed.
PIECES = ["Tr0ub4dor", "Xyzzy9", "Plugh7", "Quux3", "Frob5"]
PASSWORD = "Tr0ub4dor@Xyzzy9:Plugh7/Quux3#Frob5%41"


def url_with(database_url, user: str, password: str) -> str:
    """DATABASE_URL with the password written in as given, encoded or not."""
    host = f"{database_url.host}:{database_url.port or 3306}"
    return f"mysql+pymysql://{user}:{password}@{host}/{database_url.database}"


@pytest.mark.parametrize(
    "password, expected",
    [
        (PASSWORD, "DATABASE_URL holds more than one @: in the user name and password, percent-encode"),
        ("Tr0ub4dor@127.0.0.1", "DATABASE_URL holds more than one @"),  # was "cannot reach MySQL at 127.0.0.1@..."
        ("Frob5%41Xyzzy9", "refused user"),  # %41 reads as "A": a % must be encoded too
    ],
)
def test_an_unencoded_password_gets_one_line_and_shows_no_part_of_it(
    step, database_url, db, mysql_user, password, expected
):
    user = mysql_user(password, f"ALL ON `{database_url.database}`.*")
    result = run(step("start"), "main.py", database_url=url_with(database_url, user, password))
    line = assert_clean_failure(result)
    assert line.startswith("error: ") and expected in line, line
    assert "percent-encode" in line and "% as %25" in line
    output = result.stdout + result.stderr
    assert [piece for piece in PIECES if piece in output] == [], output
    assert inspect(db).get_table_names() == []  # nothing half-done


@pytest.mark.parametrize("password", [PASSWORD, "Plugh7:Quux3/Frob5#"])
def test_an_encoded_password_connects(step, database_url, mysql_user, password):
    app = step("start")
    user = mysql_user(password, f"ALL ON `{database_url.database}`.*")
    result = run(app, "main.py", database_url=url_with(database_url, user, quote(password, safe="")))
    assert result.returncode == 0, result.stderr
    # SQLAlchemy reads an unencoded : / # right when no @ follows; it works too.
    if "@" not in password:
        result = run(app, "main.py", database_url=url_with(database_url, user, password))
        assert result.returncode == 0, result.stderr


def test_a_user_without_access_to_the_database_gets_one_line(step, database_url, mysql_user):
    user = mysql_user(SECRET)  # may log in, and nothing more
    result = run(step("start"), "main.py", database_url=url_with(database_url, user, SECRET))
    line = assert_clean_failure(result, password=SECRET)
    assert f"user '{user}' may not use database '{database_url.database}'" in line, line
    assert f"GRANT ALL ON `{database_url.database}`.* TO" in line


@pytest.mark.parametrize("name", ["step-2-generate", "step-3-apply"])
def test_a_dev_user_who_may_not_create_databases_gets_one_line(step, server, dev_database_url, mysql_user, name):
    app = step(name)
    (app / "models.py").write_text((app / "models.py").read_text().replace(
        "    name: Mapped[str]", "    full_name: Mapped[str]"))
    before = sorted((app / "migrations" / "versions").glob("*.py"))
    user = mysql_user(SECRET, f"ALL ON `{dev_database_url.database}`.*")  # its database only
    result = run(app, "-m", "migrate", "generate", "x", dev_database_url=url_with(dev_database_url, user, SECRET))
    line = assert_clean_failure(result, password=SECRET)
    dev = dev_database_url.database
    assert f"DEV_DATABASE_URL's user '{user}' may not create databases beside '{dev}'" in line, line
    assert f"GRANT ALL ON `{dev}%`.* TO '{user}'" in line
    assert sorted((app / "migrations" / "versions").glob("*.py")) == before


SCRIPT_LOST = """
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from database import connect, connection_lost

engine = connect()
try:
    with engine.connect() as conn:
        print(conn.scalar(text("SELECT CONNECTION_ID()")), flush=True)
        conn.execute(text("SELECT SLEEP(120)"))  # a long migration step
except DBAPIError as exc:
    line = connection_lost(exc, engine.url)
    if line is None:
        raise
    raise SystemExit(f"error: {line}")
"""


@pytest.mark.parametrize("name", ["start", "step-3-apply"])
def test_a_connection_lost_while_working_is_one_line(step, server, database_url, name):
    app = step(name)
    (app / "lost.py").write_text(SCRIPT_LOST)
    env = step_env(database_url)
    process = subprocess.Popen([sys.executable, "lost.py"], cwd=app, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    connection_id = int(process.stdout.readline())
    with server.connect() as conn, conn.cursor() as cur:
        while not cur.execute("SELECT 1 FROM information_schema.PROCESSLIST "
                              "WHERE ID = %s AND INFO LIKE 'SELECT SLEEP%%'", (connection_id,)):
            time.sleep(0.05)  # until the long statement runs
        cur.execute(f"KILL {connection_id}")  # as a server restart or a network cut would
    out, err = process.communicate(timeout=60)
    result = subprocess.CompletedProcess(process.args, process.returncode, out, err)
    line = assert_clean_failure(result)
    assert f"lost the connection to MySQL at {database_url.host}:{database_url.port}" in line, line
    assert "what ran before that stays applied" in line

