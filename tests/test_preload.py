"""tutorial_kit/preload.py: a command forked from the preloader behaves as `python ARGS` does."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tutorial_kit import preload
from tutorial_kit.steps import REPO, run

pytestmark = pytest.mark.skipif(preload.address() is None, reason="no preloader on this platform")

SCRIPT = textwrap.dedent("""\
    import os, sys, threading, atexit, time
    print("argv", sys.argv, "file", __file__, "name", __name__, "spec", getattr(__spec__, "name", None))
    print("path0", sys.path[0], "cwd", os.getcwd(), "GREETING", os.environ.get("GREETING"))
    print("stdin", repr(sys.stdin.read()), "encoding", sys.stdout.encoding)
    print("dont_write_bytecode", sys.dont_write_bytecode, "main is us", sys.modules["__main__"].__dict__ is globals())
    print("on stderr", file=sys.stderr)
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    if what == "thread":  # the interpreter waits for threads, then runs atexit
        atexit.register(print, "atexit")
        threading.Thread(target=lambda: (time.sleep(0.2), print("thread"))).start()
    if what == "raise":
        def inner():
            raise ValueError("boom")
        inner()
    if what == "exit-text":
        sys.exit("a message")
    if what == "interrupt":
        raise KeyboardInterrupt
    if what == "big":
        sys.stdout.write("x" * 300_000)
    sys.exit(int(what) if what.isdigit() else 0)
    """)

CASES = [
    ["script.py"], ["script.py", "thread"], ["script.py", "raise"], ["script.py", "exit-text"],
    ["script.py", "interrupt"], ["script.py", "big"], ["script.py", "3"], ["script.py", "300"],
    ["-c", "import sys; print(sys.argv, repr(sys.path[0]), __name__); sys.exit(4)", "x"],
    ["-c", "print('unclosed'"],  # a SyntaxError, reported as Python does
    ["-m", "alembic", "--version"], ["-m", "alembic", "nonsense"],
    ["-m", "script", "thread"],
    # Compiled as Python compiles them: not with preload.py's `from __future__ import annotations`.
    ["-c", "def f(x: int): pass\nprint(f.__annotations__)"],
    ["-c", "x: undefined_name = 1\nprint('ok')"],
    # The interpreter's own exit: what is still buffered in sys.__stdout__ gets out.
    ["-c", "import sys, io; print('still printed'); sys.stdout = io.StringIO()"],
    ["-c", "import sys; sys.stdout.close()"],
    ["-c", "import sys; sys.stdout = None"],
    ["-c", "import sys; print(sys.stdout.name, sys.stdout.mode, sys.stdin.name, sys.stderr.name, sys.orig_argv[1:])"],
    ["-c", "import sys\nfor i in range(3):\n    print('o' * 3000)\n    print('ERR', i, file=sys.stderr)"],
    ["names.py"], ["missing.py"], ["appdir"], ["-m", "alembic.config", "--version"],
]


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "script.py").write_text(SCRIPT)
    (tmp_path / "names.py").write_text("print(__cached__, __name__)\n")
    (tmp_path / "appdir").mkdir()
    (tmp_path / "appdir" / "__main__.py").write_text("print('a folder with __main__.py')\n")
    return tmp_path


def both(folder, args, **kwargs):
    """The same command run preloaded, then as a plain process (TUTORIAL_PRELOAD=0)."""
    preloaded = run(folder, *args, **kwargs)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TUTORIAL_PRELOAD", "0")
        plain = run(folder, *args, **kwargs)
    return preloaded, plain


@pytest.mark.parametrize("args", CASES, ids=lambda a: " ".join(a)[:40])
def test_a_preloaded_command_prints_and_exits_as_python_does(folder, monkeypatch, args):
    monkeypatch.setenv("GREETING", "hello")
    preloaded, plain = both(folder, args, merged="ERR" in " ".join(args))
    assert (preloaded.returncode, preloaded.stdout, preloaded.stderr) == (
        plain.returncode, plain.stdout, plain.stderr)


def test_what_the_command_inherits_besides_its_environment(folder, monkeypatch):
    """The caller's umask, TZ and ignored signals, not the preloader's."""
    import signal as signals

    code = ("import os, signal, time; print(oct(os.umask(0)), time.tzname, "
            "signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT))")
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    old_umask = os.umask(0o077)
    old_term = signals.signal(signals.SIGTERM, signals.SIG_IGN)
    try:
        preloaded, plain = both(folder, ["-c", code])
    finally:
        os.umask(old_umask)
        signals.signal(signals.SIGTERM, old_term)
    assert preloaded.stdout == plain.stdout
    assert preloaded.stdout.startswith("0o77 ('JST', 'JST') 1 ")  # 1: SIG_IGN


def test_a_file_left_open_is_flushed_at_exit(folder):
    """Python finalizes a command's objects on its way out; before, buffered writes were lost."""
    code = "f = open('out.txt', 'w'); f.write('data')"
    run(folder, "-c", code)
    assert (folder / "out.txt").read_text() == "data"


def test_preloaded_commands_really_skip_the_imports(folder):
    """...which also shows that `both` compares a preloaded run with a plain one."""
    preloaded, plain = both(folder, ["-c", "import sys; print('sqlalchemy' in sys.modules)"])
    assert (preloaded.stdout, plain.stdout) == ("True\n", "False\n")


def test_what_the_preloader_cannot_run_as_python_would_runs_plainly(folder):
    where = preload.address()
    fds = (0, 1, 2)
    for argv in (["-u", "script.py"], ["-"], []):
        with pytest.raises(preload.Refused):
            preload.spawn(where, argv, cwd=folder, env=dict(os.environ), fds=fds)
    with pytest.raises(preload.Refused, match="PYTHON"):
        preload.spawn(where, ["script.py"], cwd=folder, env={**os.environ, "PYTHONPATH": "/x"},
                      fds=fds)
    # ... and steps.run runs them the plain way, with the same result.
    result = run(folder, "-c", "import sys; print(sys.path[1])", env={"PYTHONPATH": str(folder)})
    assert result.stdout.strip() == str(folder)


def test_many_commands_at_once_each_get_their_own_output_and_status(folder):
    def one(i):
        result = run(folder, "-c", f"import sys; print({i}); sys.exit({i % 4})")
        return result.returncode, result.stdout

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(200)))
    assert results == [(i % 4, f"{i}\n") for i in range(200)]


def test_a_command_that_closed_its_output_still_times_out(folder):
    started = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        run(folder, "-c", "import os, time; os.close(1); os.close(2); time.sleep(4)", timeout=1)
    assert time.monotonic() - started < 3.5


def test_a_relative_or_missing_folder_is_taken_as_subprocess_takes_it(folder, monkeypatch):
    (folder / "sub").mkdir()
    monkeypatch.chdir(folder)
    preloaded, plain = both(Path("sub"), ["-c", "import os; print(os.getcwd())"])
    assert preloaded.stdout == plain.stdout == f"{folder / 'sub'}\n"
    with pytest.raises(FileNotFoundError):
        run(Path("nowhere"), "-c", "pass")


def test_a_bad_request_is_refused_and_the_preloader_goes_on(folder):
    import json
    import socket

    for request in ({"argv": [1], "cwd": ".", "env": {}}, [], {"argv": ["-c", "pass"], "env": []}):
        payload = json.dumps(request).encode()
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.connect("\0" + preload.address())
        socket.send_fds(client, [preload._HEADER.pack(len(payload)) + payload], [0, 1, 2])
        assert client.recv(100).startswith(b"refused")
        client.close()
    check = run(folder, "-c", "import sys; print('sqlalchemy' in sys.modules)")
    assert check.stdout == "True\n"


def test_a_command_past_its_timeout_is_killed(folder):
    (folder / "slow.py").write_text("import os, time\nprint(os.getpid(), flush=True)\ntime.sleep(60)\n")
    with pytest.raises(subprocess.TimeoutExpired) as caught:
        run(folder, "slow.py", timeout=1)
    pid = int(caught.value.output.split()[0])
    assert not _alive(pid)


def _alive(pid: int, within: float = 5) -> bool:
    """Whether `pid` still runs after `within` seconds (a zombie, ended but not yet reaped by
    whoever inherited it, does not run)."""
    deadline = time.monotonic() + within
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except FileNotFoundError:
            return False
        if state == "Z":
            return False
        if time.monotonic() >= deadline:
            return True
        time.sleep(0.05)


def shim_env(folder: Path) -> dict[str, str]:
    preload.write_shim(folder / "bin", sys.executable)
    return {**os.environ, "PATH": f"{folder / 'bin'}{os.pathsep}{os.environ['PATH']}"}


def test_the_shim_runs_bash_commands_preloaded_and_others_plainly(folder):
    (folder / "bin").mkdir()
    env = shim_env(folder)
    script = ("python -c 'import sys; print(\"sqlalchemy\" in sys.modules)'; "
              "python -u -c 'import sys; print(\"sqlalchemy\" in sys.modules)'; "
              "echo piped | python -c 'print(input())'; python script.py 5")
    result = subprocess.run(["bash", "-c", script], cwd=folder, env=env, capture_output=True,
                            text=True)
    assert result.stdout.splitlines()[:3] == ["True", "False", "piped"]
    assert result.returncode == 5


@pytest.mark.parametrize("script", [
    "python -c 'import os; os.write(3, b\"to fd 3\\n\")' 3>&1",  # more than 0, 1 and 2
    "python <(echo 'print(\"from a pipe\")')",
    "python -c 'import os; os.kill(os.getpid(), 9)'; echo status=$?",  # killed: 128 + 9
    "umask 077; python -c 'import os; print(oct(os.umask(0)))'",
    "trap '' TERM; python -c 'import signal; print(signal.getsignal(signal.SIGTERM))'",
], ids=["fd 3", "process substitution", "SIGKILL", "umask", "ignored signal"])
def test_the_shim_behaves_as_python_in_bash(folder, script):
    (folder / "bin").mkdir()
    env = shim_env(folder)
    plain = {**env, preload.ADDRESS_VARIABLE: ""}
    results = [subprocess.run(["bash", "-c", script], cwd=folder, env=e, capture_output=True,
                              text=True, timeout=30) for e in (env, plain)]
    import re

    seen = [(r.returncode, r.stdout, re.sub(r"line 1: +\d+ +Killed +", "line 1: PID Killed ", r.stderr))
            for r in results]  # bash names the killed process
    assert seen[0] == seen[1]
    assert results[0].stdout.strip()


def test_a_ctrl_c_to_the_kits_process_group_spares_the_preloader(folder):
    """Before, it died of the KeyboardInterrupt, and took every running command with it."""
    parent = textwrap.dedent("""\
        import os, signal, sys
        from pathlib import Path
        sys.path.insert(0, "tutorial_kit")
        import preload  # alone: the standard library only, quick to start
        preload.address()  # started while SIGINT is not ignored: it would not inherit that
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # this process lives through it
        print(preload._started["process"].pid, flush=True)
        sys.stdin.readline()  # the test sends SIGINT to the whole group, then a line
        code, out, _ = preload.run_captured(preload.address(), ["-c", "import sys; print('sqlalchemy' in sys.modules)"], cwd=".", env=dict(os.environ), merged=False, timeout=30)
        print(out.decode(), end="")
        print("preloader running:", preload._started["process"].poll() is None)  # until this exits
        """)
    env = {k: v for k, v in os.environ.items() if k != preload.ADDRESS_VARIABLE}
    process = subprocess.Popen([sys.executable, "-c", parent], cwd=REPO, env=env, text=True,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               start_new_session=True)
    process.stdout.readline()
    os.killpg(process.pid, signal.SIGINT)
    out, _ = process.communicate("go\n", timeout=30)
    assert out == "True\npreloader running: True\n"


def shim_running(folder, name: str):
    """A command started through the shim that ends with status 7 on signal `name`."""
    (folder / "bin").mkdir(exist_ok=True)
    (folder / "slow.py").write_text(
        "import os, signal, sys, time\n"
        "def stop(number, frame):\n    print('got', signal.Signals(number).name, flush=True)\n"
        "    sys.exit(7)\n"
        f"signal.signal(signal.{name}, stop)\n"
        "print(os.getpid(), flush=True)\n"
        "while True:\n    time.sleep(0.05)\n")
    shim = subprocess.Popen(["python", "slow.py"], cwd=folder, env=shim_env(folder),
                            stdout=subprocess.PIPE, text=True)
    return shim, int(shim.stdout.readline())


# SIGTERM, not SIGINT: a shell's background job (CI's, say) starts with SIGINT ignored.
@pytest.mark.parametrize("name", ["SIGTERM", "SIGUSR1"])
def test_a_signal_to_the_shim_reaches_its_command(folder, name):
    shim, pid = shim_running(folder, name)
    assert pid != shim.pid  # the command runs in the preloader's child, not in the shim
    shim.send_signal(getattr(signal, name))
    assert shim.wait(60) == 7 and shim.stdout.read() == f"got {name}\n"


def test_a_shim_killed_outright_takes_its_command_along(folder):
    """It cannot pass SIGKILL on: the preloader sees it go and ends its command."""
    shim, pid = shim_running(folder, "SIGTERM")
    shim.kill()
    shim.wait()
    assert not _alive(pid)


def gone_client(folder, *, wait: float) -> None:
    """A client that asks for a long command, then goes away after `wait` seconds, unread."""
    import json
    import select
    import socket

    read, write = os.pipe()
    payload = json.dumps({"argv": ["-c", "import os, time; print(os.getpid(), flush=True); "
                                         "time.sleep(60)"],
                          "cwd": str(folder), "env": dict(os.environ)}).encode()
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect("\0" + preload.address())
    socket.send_fds(client, [preload._HEADER.pack(len(payload)) + payload], [0, write, 2])
    time.sleep(wait)
    client.close()
    os.close(write)
    # The command holds the pipe's other end: the pipe ends when the command does.
    output, deadline = b"", time.monotonic() + 10
    while select.select([read], [], [], max(0, deadline - time.monotonic()))[0]:
        chunk = os.read(read, 100)
        if not chunk:
            break
        output += chunk
    else:
        pytest.fail(f"the command ({output.decode().strip()}) still runs after 10 s")
    os.close(read)


@pytest.mark.parametrize("wait", [0, 0.5], ids=["before it hears the pid", "with the pid unread"])
def test_a_client_gone_takes_its_command_along_and_the_preloader_goes_on(folder, wait):
    """Before: gone before the pid, its command ran on, unreaped; gone with the pid unread
    (which resets the connection), the preloader itself stopped."""
    gone_client(folder, wait=wait)
    check = run(folder, "-c", "import sys; print('sqlalchemy' in sys.modules)")
    assert check.stdout == "True\n"  # still preloaded: the preloader answers


def test_the_preloader_ends_with_the_process_that_started_it(folder):
    """Its commands too: a killed test run or notebook kernel leaves nothing running."""
    parent = textwrap.dedent("""\
        import os, sys
        sys.path.insert(0, "tutorial_kit")
        import preload  # alone: the standard library only, quick to start
        read, write = os.pipe()
        child = preload.spawn(preload.address(), ["-c", "import os, time; print(os.getpid(), flush=True); time.sleep(60)"],
                              cwd=".", env=dict(os.environ), fds=(0, write, 2))  # kept: a client that goes away ends its command
        os.close(write)
        command = os.read(read, 100).decode().strip()
        print(command, preload._started["process"].pid, flush=True)
        os._exit(0)  # as a killed process ends: no clean-up of its own
        """)
    env = {k: v for k, v in os.environ.items() if k != preload.ADDRESS_VARIABLE}
    result = subprocess.run([sys.executable, "-c", parent], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=30)
    command_pid, preloader_pid = map(int, result.stdout.split())
    assert not _alive(preloader_pid) and not _alive(command_pid)


def test_a_process_that_ends_normally_has_ended_its_preloader_by_then(folder):
    """Not left to init: `make bench` counts the CPU of the processes a command waited for."""
    parent = textwrap.dedent("""\
        import os, sys
        sys.path.insert(0, "tutorial_kit")
        import preload
        child = preload.spawn(preload.address(), ["-c", "pass"], cwd=".", env=dict(os.environ),
                              fds=(0, 1, 2))
        child.wait()
        print(preload._started["process"].pid, flush=True)
        """)
    env = {k: v for k, v in os.environ.items() if k != preload.ADDRESS_VARIABLE}
    result = subprocess.run([sys.executable, "-c", parent], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    preloader = int(result.stdout)
    assert not Path(f"/proc/{preloader}").exists()  # ended and reaped: no waiting here


def test_a_killed_preloader_takes_its_commands_along(folder):
    parent = textwrap.dedent("""\
        import os, sys
        sys.path.insert(0, "tutorial_kit")
        import preload  # alone: the standard library only, quick to start
        read, write = os.pipe()
        child = preload.spawn(preload.address(), ["-c", "import os, time; print(os.getpid(), flush=True); time.sleep(60)"],
                              cwd=".", env=dict(os.environ), fds=(0, write, 2))
        os.close(write)
        print(os.read(read, 100).decode().strip(), preload._started["process"].pid, flush=True)
        sys.stdin.read()  # until the test is done
        """)
    env = {k: v for k, v in os.environ.items() if k != preload.ADDRESS_VARIABLE}
    process = subprocess.Popen([sys.executable, "-c", parent], cwd=REPO, env=env, text=True,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        command_pid, preloader_pid = map(int, process.stdout.readline().split())
        os.kill(preloader_pid, signal.SIGKILL)  # no chance to end its commands itself
        assert not _alive(command_pid)
    finally:
        process.communicate("", timeout=30)


def test_a_shim_whose_preloader_is_killed_says_so_in_one_line(folder):
    """Before, the shim ended in a RuntimeError traceback."""
    parent = textwrap.dedent(f"""\
        import os, signal, subprocess, sys
        sys.path.insert(0, "tutorial_kit")
        import preload  # alone: the standard library only, quick to start
        preload.address()
        preload.write_shim({str(folder)!r}, sys.executable)
        env = {{**os.environ, "PATH": {str(folder)!r} + os.pathsep + os.environ["PATH"]}}
        shim = subprocess.Popen(["python", "-c", "import time; print('up', flush=True); time.sleep(30)"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        shim.stdout.readline()
        os.kill(preload._started["process"].pid, signal.SIGKILL)
        out, err = shim.communicate(timeout=30)
        print(shim.returncode, err, end="")
        """)
    env = {k: v for k, v in os.environ.items() if k != preload.ADDRESS_VARIABLE}
    result = subprocess.run([sys.executable, "-c", parent], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.stdout == ("1 error: the preloader stopped before its command ended; "
                             "run it again (or with TUTORIAL_PRELOAD=0)\n"), result.stdout


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to become another user")
def test_another_user_is_refused():
    """The socket is abstract (no file, no permissions): the preloader checks who asks."""
    where = preload.address()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # a process of user nobody's asks, not checking whose socket it is
        import json
        import socket

        answer = b"ran"
        try:
            os.setgid(65534)
            os.setuid(65534)
            payload = json.dumps({"argv": ["-c", "pass"], "cwd": "/", "env": {}}).encode()
            client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            client.connect("\0" + where)
            try:
                client.sendall(preload._HEADER.pack(len(payload)) + payload)
                answer = client.recv(100)
            except OSError:  # closed on it
                answer = b""
        finally:
            os.write(write, answer)
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read, "rb") as answer:  # closed before a byte of the request was read
        assert answer.read() == b""


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to become another user")
def test_a_name_squatted_by_another_user_gets_nothing(folder):
    """The name is visible to every user: a client checks whose socket it reached, and sends
    nothing (not the environment with DATABASE_URL in it, not its streams) to another's."""
    import socket

    name = f"tutorial-kit-squatted-{os.getpid()}"
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # user nobody takes the name, and reports what it receives
        received = b"nothing"
        try:
            os.setgid(65534)
            os.setuid(65534)
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind("\0" + name)
            listener.listen(1)
            os.write(write, b"listening\n")
            conn, _ = listener.accept()
            conn.settimeout(5)
            received = conn.recv(1 << 16) or b"nothing"
        finally:
            os.write(write, received)
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as report:
        assert report.readline() == b"listening\n"
        with pytest.raises(preload.Refused, match="another user's socket"):
            preload.spawn(name, ["-c", "pass"], cwd=folder, env={"DATABASE_URL": "secret"},
                          fds=(0, 1, 2))
        os.waitpid(pid, 0)
        assert report.read() == b"nothing"
