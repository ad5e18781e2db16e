"""Ctrl-C, as a terminal sends it (SIGINT to the whole process group), on `make tutorial`,
`make server` and the step commands: one line, out, and nothing left behind; and `--help` on
every command prints its usage and exits 0."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import CancelledError
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tutorial_kit.steps import REPO, STEPS, step_env, url_text

HANG_GUARD = 60  # no timing is asserted: this only keeps a hung command from hanging the run


def start(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    """In a session of its own, as a terminal runs a command: its process group gets the Ctrl-C."""
    return subprocess.Popen(args, cwd=cwd, env=env, start_new_session=True, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def ctrl_c(process: subprocess.Popen) -> tuple[str, str]:
    os.killpg(process.pid, signal.SIGINT)
    return process.communicate(timeout=HANG_GUARD)


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + HANG_GUARD
    while not condition():
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.05)


def processes_with(variable: str, value: str, started_after: float = 0.0) -> list[str]:
    """The processes whose environment has variable=value: what a run could leave running.
    `started_after`: only those started after that moment (seconds since boot, see `now`)."""
    mark = f"{variable}={value}".encode()
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if mark in (proc / "environ").read_bytes().split(b"\0"):
                stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                if int(stat[19]) / os.sysconf("SC_CLK_TCK") >= started_after:  # field 22
                    found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:120])
        except (OSError, IndexError, ValueError):
            pass
    return found


def now() -> float:
    """Seconds since boot, the clock of /proc/PID/stat's start times."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


@pytest.fixture
def kit_env(short_tmp, tmp_path):
    """No DATABASE_URL: the kit starts a server of its own, in `short_tmp`; temporary files
    in a folder of the test's own, to see that nothing is left there either."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DEV_DATABASE_URL")}
    env.update(TUTORIAL_SERVER_DIR=str(short_tmp), TMPDIR=str(scratch),
               TUTORIAL_BUILD_DIR=str(tmp_path / "build"), PYTHONUNBUFFERED="1")
    for variable in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS"):  # as from a terminal, not from `make test`
        env.pop(variable, None)
    return env


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc")
def test_ctrl_c_ends_make_tutorial_with_one_line_and_leaves_nothing(kit_env, short_tmp, tmp_path):
    process = start(["make", "-s", "tutorial"], REPO, kit_env)
    runtime = tmp_path / "build" / "tmp"
    # While notebooks run: a kernel has written its connection file.
    wait_for(lambda: any(runtime.glob("*.json")), "a notebook's kernel start")
    interrupted_at = now()
    out, err = ctrl_c(process)
    # Nothing of the run was started after the Ctrl-C and outlived it: a queued job started
    # then (a kernel holding make's output open) kept a CI run waiting for over 60 s.
    assert processes_with("TUTORIAL_BUILD_DIR", kit_env["TUTORIAL_BUILD_DIR"], interrupted_at) == []
    assert err == "make tutorial: interrupted; stopped.\n", err  # and no line from make
    assert process.returncode == -signal.SIGINT  # make, interrupted, says so by its status
    assert list(short_tmp.iterdir()) == []  # the server is stopped, its folder removed
    assert list((tmp_path / "tmp").iterdir()) == [] and not runtime.exists()
    wait_for(lambda: not processes_with("TUTORIAL_BUILD_DIR", kit_env["TUTORIAL_BUILD_DIR"]),
             "the run's processes end")


def test_no_queued_job_starts_after_ctrl_c(tmp_path):
    """What `make tutorial`'s Ctrl-C does first (tutorial.interrupted): with one job running
    and three queued, none of the three starts, even once the running one ends."""
    from types import SimpleNamespace

    from tutorial_kit import tutorial

    running, release, ran = threading.Event(), threading.Event(), []

    def first() -> list[str]:
        running.set()
        release.wait(HANG_GUARD)
        return []

    jobs = [("step", first), *(("step", lambda i=i: ran.append(i) or []) for i in range(3))]
    server = SimpleNamespace(source="a test's")

    def drive() -> None:
        with contextlib.suppress(CancelledError):  # what run_jobs meets after Ctrl-C
            tutorial.run_jobs(jobs, 1, server, tmp_path)

    threading.Thread(target=drive, daemon=True).start()
    wait_for(running.is_set, "the first job's start")
    pool = tutorial._pools[-1]
    # The first job may start before the others are queued: wait until all three are.
    wait_for(lambda: pool._work_queue.qsize() == 3, "the other jobs queued")
    try:
        tutorial.stop_jobs()
        release.set()
        pool.shutdown(wait=True)  # its thread has done all it would do
    finally:
        tutorial._stopping.clear()  # for whatever else this worker runs
    assert ran == []


def test_a_database_still_being_made_is_dropped_too(server):
    """What Ctrl-C on a server of yours drops (tutorial.drop_tagged), when a killed command's
    CREATE DATABASE still waits on the server: here behind a global read lock, so that it would
    make its database once the lock goes, after the drop (seen in CI, without the lock)."""
    from tutorial_kit.tutorial import drop_tagged

    tag = "rtest02"
    name = f"dev_{tag}{secrets.token_hex(3)}_plan"
    locker, creator = server.connect(), server.connect()
    try:
        with locker.cursor() as cur:
            cur.execute("FLUSH TABLES WITH READ LOCK")
        failed = []
        waiting = threading.Thread(target=lambda: _create(creator, name, failed))
        waiting.start()
        wait_for(lambda: _running(server, name), "the CREATE DATABASE waiting")
        dropping = threading.Thread(target=drop_tagged, args=(server, tag))
        dropping.start()
        waiting.join(HANG_GUARD)  # ended by drop_tagged, before the lock goes
        assert failed, "the waiting CREATE DATABASE was not ended"
    finally:
        with locker.cursor() as cur:
            cur.execute("UNLOCK TABLES")
        locker.close()
    dropping.join(HANG_GUARD)
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("SHOW DATABASES")
        assert [n for (n,) in cur.fetchall() if tag in n] == []
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")  # whatever the outcome, not left here


def _create(conn, name: str, failed: list) -> None:
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}`")
    except Exception as exc:  # killed: the connection is lost
        failed.append(exc)


def _running(server, name: str) -> bool:
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE %s",
                    [f"CREATE DATABASE `{name}`%"])
        return cur.fetchone()[0] > 0


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc")
def test_ctrl_c_on_a_server_of_yours_drops_every_database_the_run_made(server, kit_env, tmp_path):
    env = {**kit_env, **server.environ, "TUTORIAL_RUN_TAG": "rtest01"}
    process = start([sys.executable, "-m", "tutorial_kit.tutorial"], REPO, env)

    def tagged() -> list[str]:
        with server.connect() as conn, conn.cursor() as cur:
            cur.execute("SHOW DATABASES")
            return [name for (name,) in cur.fetchall() if "_rtest01" in name]

    # While a notebook works on a production database of its kernel's.
    wait_for(lambda: any(name.startswith("production_") for name in tagged()), "a notebook's database")
    out, err = ctrl_c(process)
    assert err == "make tutorial: interrupted; stopped.\n" and process.returncode == 130
    assert tagged() == []
    wait_for(lambda: not processes_with("TUTORIAL_BUILD_DIR", env["TUTORIAL_BUILD_DIR"]),
             "the run's processes end")


def test_ctrl_c_while_the_tutorial_loads_is_one_line_too(kit_env):
    process = start([sys.executable, "-m", "tutorial_kit.tutorial"], REPO, kit_env)
    time.sleep(0.2)  # about when Python imports SQLAlchemy, or before: never a traceback
    out, err = ctrl_c(process)
    assert (err, process.returncode) in (
        ("make tutorial: interrupted; stopped.\n", 130),
        ("", -signal.SIGINT),  # so early that Python had not yet set up its own handler
    ), err


def test_ctrl_c_ends_make_server_with_one_line_and_leaves_nothing(kit_env, short_tmp, tmp_path):
    process = start(["make", "-s", "server"], REPO, kit_env)
    lines = []
    reading = threading.Thread(target=lambda: lines.extend(process.stdout))
    reading.start()
    wait_for(lambda: any("runs until Ctrl-C" in line for line in lines), "the server's export lines")
    os.killpg(process.pid, signal.SIGINT)
    process.wait(timeout=HANG_GUARD)
    reading.join()
    err = process.stderr.read()
    assert lines[-1] == "Stopping MySQL.\n" and err == "", err
    assert list(short_tmp.iterdir()) == [] and list((tmp_path / "tmp").iterdir()) == []
    wait_for(lambda: not processes_with("TUTORIAL_SERVER_DIR", str(short_tmp)), "the server's end")


def test_ctrl_c_on_an_upgrade_waiting_for_the_lock_is_one_line(server, step, database_url, dev_database_url):
    folder = step("step-4-new-migration")
    env = step_env(database_url, dev_database_url)
    engine = create_engine(url_text(database_url))
    with engine.connect() as holder:
        holder.execute(text("SELECT GET_LOCK(:n, 0)"), {"n": f"migrate:{database_url.database}"})
        process = start([sys.executable, "-m", "migrate", "upgrade"], folder, env)

        def waiting() -> bool:
            rows = holder.execute(text(
                "SELECT COUNT(*) FROM information_schema.processlist WHERE info LIKE 'SELECT GET_LOCK(%'"
                " AND id <> CONNECTION_ID()")).scalar()
            return rows > 0

        wait_for(waiting, "upgrade waiting for the lock")
        out, err = ctrl_c(process)
    # "Waiting for another process's migration...", then the one line of the interruption.
    assert err.splitlines()[-1].startswith("error: stopped by Ctrl-C while no revision was running")
    assert "Traceback" not in err and len(err.splitlines()) == 2, err
    assert process.returncode != 0
    with engine.connect() as conn:  # it applied nothing
        assert "alembic_version" not in {r[0] for r in conn.execute(text("SHOW TABLES"))}
    engine.dispose()


def test_ctrl_c_on_the_app_waiting_for_a_server_is_one_line(step):
    listener = socket.create_server(("127.0.0.1", 0))  # accepts, never answers
    port = listener.getsockname()[1]
    accepted = []
    threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True).start()
    folder = step("start")
    env = step_env(f"mysql+pymysql://root:x@127.0.0.1:{port}/app")
    process = start([sys.executable, "main.py"], folder, env)
    wait_for(lambda: accepted, "main.py connecting")
    out, err = ctrl_c(process)
    listener.close()
    assert err == "main.py: interrupted\n" and process.returncode == 130


@pytest.mark.parametrize("name", STEPS)
def test_main_py_help(step, name):
    folder = step(name)
    result = subprocess.run([sys.executable, "main.py", "--help"], cwd=folder, env=step_env(),
                            capture_output=True, text=True, timeout=HANG_GUARD)
    assert result.returncode == 0 and result.stdout.startswith("usage: python main.py")
    wrong = subprocess.run([sys.executable, "main.py", "--verbose"], cwd=folder, env=step_env(),
                           capture_output=True, text=True, timeout=HANG_GUARD)
    assert wrong.returncode == 1 and wrong.stderr.count("\n") == 1 and wrong.stderr.startswith("error:")


@pytest.mark.parametrize("name", STEPS[2:])
def test_migrate_help(step, name):
    result = subprocess.run([sys.executable, "-m", "migrate", "--help"], cwd=step(name),
                            env=step_env(), capture_output=True, text=True, timeout=HANG_GUARD)
    assert result.returncode == 0 and result.stdout.startswith("usage: python -m migrate")


@pytest.mark.parametrize("args", [
    ["-m", "tutorial_kit", "--help"],
    *(["-m", "tutorial_kit", command, "--help"] for command in ("serve", "follow", "check", "fill", "reset")),
    ["-m", "tutorial_kit.tutorial", "--help"],
])
def test_kit_help(args):
    result = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True,
                            timeout=HANG_GUARD)
    assert result.returncode == 0 and result.stdout.startswith("usage: "), result.stderr


def test_ctrl_c_at_the_planners_question_is_one_line_and_leaves_no_throwaway_database(
    server, step, dev_database_url
):
    import pexpect

    from test_step_2_renames import edit, revisions, terminal_env, throwaways

    app = step("step-2-generate")
    edit(app / "models.py", "    name: Mapped[str]", "    full_name: Mapped[str]")
    before = revisions(app)
    child = pexpect.spawn("python", ["-m", "migrate", "generate", "rename"], cwd=str(app),
                          env=terminal_env(app, dev_database_url), encoding="utf-8",
                          timeout=HANG_GUARD)
    child.expect_exact("[y/N] ")  # the planner waits on its throwaway database
    assert throwaways(server, dev_database_url)
    child.sendintr()  # Ctrl-C, as typed on the terminal
    child.expect(pexpect.EOF)
    child.close()
    # The planner takes a Ctrl-C at its question as no answer, in one line of its own.
    assert child.before.strip().splitlines()[-1] == "error: no answer; nothing was written"
    assert "Traceback" not in child.before and child.exitstatus != 0
    assert throwaways(server, dev_database_url) == set()
    assert revisions(app) == before
