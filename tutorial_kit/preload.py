"""Run the steps' `python ...` commands in processes forked from one that has imported SQLAlchemy.

Each `python -m migrate upgrade` spends about 0.35 s of CPU importing SQLAlchemy, Alembic and
PyMySQL before it does anything, and the tests and `make tutorial` run some 800 such commands
on two cores. So the kit starts one preloader per process (a "zygote", as Android calls it):
a Python that imports those libraries once, then forks a child for each command. The child is
a real, separate process that sets itself up as `python ARGS...` would (its own working
folder, environment, TZ, umask, arguments, sys.path, standard streams, ignored signals, exit
status) and runs the script; it only skips the imports. tests/test_preload.py compares the
two on each of these.

What runs preloaded, and what does not:
- `python SCRIPT ARGS`, `python -m MODULE ARGS` and `python -c CODE ARGS`, when the command's
  PYTHON* and locale variables are the preloader's (they shape how Python starts). Anything
  else (other flags, `python -`, another PYTHONPATH, a folder or zip to run, a missing
  script, `-m` of a module already preloaded, a shell command with files open beyond 0-2) is
  refused, and the caller runs the real interpreter, as it always may.
- Linux only (pidfds, /proc); elsewhere, and with TUTORIAL_PRELOAD=0, every command runs the
  plain way.
- Where a child still differs from a fresh `python`: the libraries above are already in
  sys.modules and are not torn down at exit (the command's own objects are finalized); every
  child has the preloader's hash seed and resource limits; the shim passes on INT, TERM, HUP,
  QUIT, USR1, USR2, ALRM and WINCH, not Ctrl-Z.

The preloader listens on an abstract Unix socket (no file anywhere: a killed kernel or test
run leaves nothing behind). It and its clients check that the other end is their own user. It
runs in a session of its own (a Ctrl-C reaches the commands, not it), exits with its parent,
killing the commands still running, and a command dies with it if it is killed. This file
imports only the standard library at the top: it is also the `python` that `make tutorial`
puts first on bash's PATH (see `write_shim`).
"""

from __future__ import annotations  # the commands are compiled without it (dont_inherit)

import atexit
import json
import os
import selectors
import signal
import socket
import struct
import sys

ADDRESS_VARIABLE = "TUTORIAL_PRELOAD_ADDRESS"
PRELOAD = ("sqlalchemy", "sqlalchemy.orm", "sqlalchemy.dialects.mysql", "pymysql", "alembic",
           "alembic.config", "alembic.command", "alembic.autogenerate", "alembic.op", "mako.template",
           "logging.config", "argparse", "ctypes", "sqlglot", "sqlglot.dialects.mysql")
# Variables that change how Python starts: a command must share the preloader's. (The two
# that only set a flag, PYTHONUNBUFFERED and PYTHONDONTWRITEBYTECODE, each child sets itself.)
SET_BY_CHILD = {"PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE"}
_HEADER = struct.Struct("!I")


def startup_variables(env: dict[str, str]) -> dict[str, str]:
    return {
        k: v for k, v in env.items()
        if (k.startswith("PYTHON") and k not in SET_BY_CHILD) or k == "LANG" or k.startswith("LC_")
    }


def supported(argv) -> bool:
    """Whether `python *argv` is a form the preloader runs: a script, -m or -c."""
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        return False
    if argv[0] in ("-m", "-c"):
        return len(argv) > 1
    return not argv[0].startswith("-")


def caller_state() -> dict[str, object]:
    """What a process started from here inherits besides its environment: umask, and the
    signals it ignores (but SIGPIPE and SIGXFSZ, which subprocess resets and Python ignores)."""
    with open("/proc/self/status") as f:
        status = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
    ignored = int(status.get("SigIgn", "0").strip(), 16)
    numbers = [n for n in range(1, 32) if ignored >> (n - 1) & 1
               and n not in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGKILL, signal.SIGSTOP)]
    if "Umask" in status:
        umask = int(status["Umask"].strip(), 8)
    else:  # before Linux 4.7: read it by setting it (briefly)
        umask = os.umask(0o22)
        os.umask(umask)
    return {"umask": umask, "ignored": numbers}


# --- the client side: ask the preloader to run a command ------------------------------------


class Refused(Exception):
    """The preloader cannot run this command as `python` would: run the real interpreter."""


class _Lines:
    """The preloader's answers, a line each, read with a timeout."""

    def __init__(self, conn: socket.socket):
        self.conn, self.buffer = conn, b""

    def readline(self, timeout: float | None = None) -> str:
        import select
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self.buffer:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self.conn], [], [], left)[0]:
                    raise TimeoutError
            try:
                chunk = self.conn.recv(256)
            except OSError:
                chunk = b""
            if not chunk:
                line, self.buffer = self.buffer, b""
                return line.decode().strip()
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode().strip()


class Child:
    """A command running in a child of the preloader; `wait()` gives its exit status."""

    def __init__(self, conn: socket.socket, answers: _Lines, pid: int):
        self.conn, self.answers, self.pid = conn, answers, pid
        self.returncode: int | None = None

    def wait(self, timeout: float | None = None) -> int:
        """Its exit status (-N: killed by signal N); TimeoutError after `timeout` seconds."""
        if self.returncode is None:
            status = self.answers.readline(timeout)
            self.conn.close()
            kind, _, value = status.partition(" ")
            if kind not in ("exit", "signal"):
                raise RuntimeError("the preloader stopped before its command ended")
            self.returncode = int(value) if kind == "exit" else -int(value)
        return self.returncode

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send the command `sig`: through the preloader, which knows whether it still runs."""
        if self.returncode is None:
            try:
                self.conn.sendall(f"signal {int(sig)}\n".encode())
            except OSError:
                pass


def spawn(address: str, argv: list[str], *, cwd, env: dict[str, str],
          fds: tuple[int, int, int], timeout: float = 10) -> Child:
    """Start `python *argv` in `cwd` with `env`, its stdin/stdout/stderr on `fds`.

    Raises Refused when the command must run the plain way instead (also when the preloader
    does not answer within `timeout` seconds).
    """
    if not supported(argv):
        raise Refused("not a script, -m or -c")
    cwd = os.path.abspath(cwd)
    if not os.path.isdir(cwd):
        raise Refused(f"no folder {cwd}")  # the plain way says so as Python does
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    answers = _Lines(conn)  # "pid N", then "exit N" or "signal N"
    try:
        conn.settimeout(timeout)
        conn.connect("\0" + address)
        # The name is visible to every user: make sure this preloader is ours.
        if _peer_uid(conn) != os.getuid():
            raise OSError("another user's socket")
        request = {"argv": argv, "cwd": cwd, "env": env, **caller_state()}
        payload = json.dumps(request).encode()
        socket.send_fds(conn, [_HEADER.pack(len(payload)) + payload], list(fds))
        conn.settimeout(None)
        answer = answers.readline(timeout)
    except OSError as exc:  # TimeoutError included
        conn.close()
        raise Refused(f"no preloader at {address}: {exc}") from None
    kind, _, value = answer.partition(" ")
    if kind != "pid":
        conn.close()
        raise Refused(value or "the preloader did not answer")
    return Child(conn, answers, int(value))


def _peer_uid(conn: socket.socket) -> int:
    return struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[1]


def run_captured(address: str, argv: list[str], *, cwd, env: dict[str, str], merged: bool,
                 timeout: float) -> tuple[int, bytes, bytes]:
    """`python *argv` with stdin empty and its output captured: (exit status, stdout, stderr).

    As subprocess.run(..., timeout=) does, a command still running after `timeout` seconds is
    killed and subprocess.TimeoutExpired raised; so is it when this call is interrupted.
    Refused: run it the plain way.
    """
    import subprocess
    import time

    out_r, out_w = os.pipe()
    err_r, err_w = (out_r, out_w) if merged else os.pipe()
    stdin = os.open(os.devnull, os.O_RDONLY)
    try:
        child = spawn(address, argv, cwd=cwd, env=env, fds=(stdin, out_w, err_w))
    except BaseException:
        for fd in {out_r, err_r}:
            os.close(fd)
        raise
    finally:
        for fd in {stdin, out_w, err_w}:
            os.close(fd)
    captured = {out_r: bytearray(), err_r: bytearray()}
    deadline = time.monotonic() + timeout
    try:
        with selectors.DefaultSelector() as selector:
            for fd in captured:
                selector.register(fd, selectors.EVENT_READ)
            while selector.get_map():
                ready = selector.select(max(0.0, deadline - time.monotonic()))
                if not ready:
                    raise TimeoutError
                for key, _ in ready:
                    chunk = os.read(key.fd, 1 << 16)
                    if chunk:
                        captured[key.fd] += chunk
                    else:
                        selector.unregister(key.fd)
        code = child.wait(max(0.0, deadline - time.monotonic()))
    except TimeoutError:
        child.kill()
        child.wait()
        raise subprocess.TimeoutExpired(["python", *argv], timeout, bytes(captured[out_r]),
                                        None if merged else bytes(captured[err_r])) from None
    except BaseException:  # interrupted (Ctrl-C): the command does not run on
        child.kill()
        raise
    finally:
        for fd in captured:
            os.close(fd)
    return code, bytes(captured[out_r]), b"" if merged else bytes(captured[err_r])


_started: dict[str, object] = {}  # the preloader this process started: {"address": ..., "process": ...}


def address() -> str | None:
    """The preloader commands go to: inherited, or started on first use; None: run them plainly."""
    if os.environ.get("TUTORIAL_PRELOAD") == "0" or not hasattr(os, "pidfd_open"):
        return None
    if os.environ.get(ADDRESS_VARIABLE):
        return os.environ[ADDRESS_VARIABLE]
    import secrets
    import subprocess
    import threading

    with _started.setdefault("lock", threading.Lock()):
        if "address" not in _started:
            name = f"tutorial-kit-preload-{os.getpid()}-{secrets.token_hex(4)}"
            process = subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "serve", name],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                # Out of the terminal's process group: a Ctrl-C, or Jupyter's "interrupt the
                # kernel", goes to the commands (through the shim, or run_captured), not to it.
                start_new_session=True,
            )
            # Its stdin stays open as long as this process lives; when it closes, it exits.
            ready = process.stdout.readline() == b"ready\n"
            if not ready:
                process.kill()
                process.wait()
            _started.update(address=name if ready else None, process=process)
            if ready:
                os.environ[ADDRESS_VARIABLE] = name  # for bash and notebook kernels started from here
                atexit.register(_stop, process)
    return _started["address"]


def own_pid() -> int | None:
    """The preloader this process started, if it did."""
    process = _started.get("process")
    return process.pid if process is not None else None


def stop() -> None:
    """End the preloader this process started, with the commands it runs, and wait for it."""
    process = _started.get("process")
    if process is not None and process.poll() is None:
        _stop(process)


def _stop(process) -> None:
    """At exit: end the preloader and wait for it, so that it is not left to init to reap (and
    its CPU time is counted where it was spent: `make bench` reads it)."""
    import subprocess

    process.stdin.close()  # what it waits for: it ends its commands, then itself
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- the shim: `python` on bash's PATH during `make tutorial` ------------------------------


def write_shim(folder, real_python: str) -> None:
    """Make `folder`/python a command that runs preloaded when it can, else `real_python`."""
    from pathlib import Path

    shim = Path(folder) / "python"
    quote = lambda s: "'" + str(s).replace("'", "'\\''") + "'"
    # preload.py imported, not run as a script: Python compiles a script every time it runs
    # it (5 ms here), and reads an imported module's bytecode from __pycache__.
    main = (f"import sys; sys.path[:0] = [{str(Path(__file__).resolve().parent)!r}]; "
            "import preload; sys.exit(preload.shim_main(sys.argv[1], sys.argv[2:]))")
    text = (
        "#!/bin/sh\n"
        "# The kit's python: asks the preloader (tutorial_kit/preload.py) first.\n"
        f"exec {quote(real_python)} -IS -c {quote(main)} {quote(real_python)} \"$@\"\n"
    )
    if shim.exists() and shim.read_text() == text:
        return
    # Several walks share the folder: each sees the old file or the whole new one.
    partial = shim.with_name(f".python.{os.getpid()}.{os.urandom(4).hex()}")
    partial.write_text(text)
    partial.chmod(0o755)
    os.replace(partial, shim)


FORWARDED = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGWINCH")


def shim_main(real_python: str, argv: list[str]) -> int:
    """Run `python *argv` through the preloader named in the environment, or exec the real one."""
    address = os.environ.get(ADDRESS_VARIABLE)
    # Signals that arrive before the command has started are passed on once it has. Those this
    # process was started ignoring (a shell's background job ignores SIGINT) stay ignored.
    started: list[Child] = []
    pending: list[int] = []
    forward = lambda number, _frame: started[0].kill(number) if started else pending.append(number)
    signals = [getattr(signal, name) for name in FORWARDED]
    signals = [sig for sig in signals if signal.getsignal(sig) != signal.SIG_IGN]
    for sig in signals:
        signal.signal(sig, forward)
    try:
        if not address:
            raise Refused("no preloader")
        # Only 0, 1 and 2 are passed on: `python <(...)` or `3>&1` need the real one.
        if [fd for fd in map(int, os.listdir("/proc/self/fd")) if fd > 2 and _is_open(fd)]:
            raise Refused("other open files")
        try:
            cwd = os.getcwd()
        except OSError:
            raise Refused("no working folder") from None
        started.append(spawn(address, argv, cwd=cwd, env=dict(os.environ), fds=(0, 1, 2)))
    except Refused:
        for sig in signals:
            signal.signal(sig, signal.SIG_DFL)
        for sig in pending:
            os.kill(os.getpid(), sig)
        os.execv(real_python, [real_python, *argv])
    for sig in pending:
        started[0].kill(sig)
    try:
        code = started[0].wait()
    except RuntimeError as exc:  # the preloader was killed, and the command with it
        print(f"error: {exc}; run it again (or with TUTORIAL_PRELOAD=0)", file=sys.stderr)
        return 1
    if code < 0:  # end the way the command ended: killed by the same signal
        try:
            signal.signal(-code, signal.SIG_DFL)
        except (OSError, ValueError):
            pass  # SIGKILL, SIGSTOP: no handler to reset
        os.kill(os.getpid(), -code)
    return code


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


# --- the preloader -------------------------------------------------------------------------


class _Become(BaseException):
    """Raised in a fresh child: unwinds the preloader's loop, to run `request` at top level,
    with none of the preloader's frames around it."""

    def __init__(self, request: dict):
        self.request = request


def serve(address: str) -> None:
    """Listen on `address`; fork a child per request; exit when stdin (the parent) closes.

    In a child it raises _Become instead of returning.
    """
    del sys.path[0]  # this folder: its modules are no child's business
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind("\0" + address)
    listener.listen(64)
    import gc
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
    _warm()
    gc.collect()
    gc.freeze()  # children share these pages instead of copying them when they collect
    startup = startup_variables(dict(os.environ))

    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "accept")
    selector.register(0, selectors.EVENT_READ, "parent")
    running: dict[int, tuple[socket.socket, int]] = {}  # pid: (conn, pidfd)
    print("ready", flush=True)

    def close_all() -> None:  # in a child: nothing of the preloader's stays open
        selector.close()
        listener.close()
        for conn, pidfd in running.values():
            conn.close()
            os.close(pidfd)

    def accept() -> None:
        conn, _ = listener.accept()
        if _peer_uid(conn) != os.getuid():  # before reading a byte of it
            conn.close()
            return
        started = _start(conn, startup, close_all)
        if started is not None:
            pid, pidfd = started
            running[pid] = (conn, pidfd)
            selector.register(pidfd, selectors.EVENT_READ, ("ended", pid))
            selector.register(conn, selectors.EVENT_READ, ("client", pid))

    def client_spoke(conn: socket.socket, pid: int) -> None:
        """After its request a client sends only "signal N" lines; or it goes away."""
        try:
            data = conn.recv(4096)
        except OSError:
            data = b""
        pidfd = running[pid][1]
        if not data:  # gone: so is its command
            selector.unregister(conn)
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            return
        for line in data.decode(errors="replace").splitlines():
            kind, _, number = line.partition(" ")
            if kind == "signal" and number.isdigit():
                # Through the pidfd: it cannot reach another process that took the pid.
                signal.pidfd_send_signal(pidfd, int(number))

    def ended(pid: int) -> None:
        conn, pidfd = running.pop(pid)
        selector.unregister(pidfd)
        os.close(pidfd)
        if selector.get_map().get(conn) is not None:
            selector.unregister(conn)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        try:
            conn.sendall(f"exit {code}\n".encode() if code >= 0 else f"signal {-code}\n".encode())
        except OSError:
            pass  # its client is gone
        conn.close()

    while True:
        for key, _ in selector.select():
            if key.data == "parent":
                if not os.read(0, 1024):
                    for pid in running:
                        _kill(pid)
                    for pid in running:  # reaped here, not left to init as zombies
                        os.waitpid(pid, 0)
                    return
                continue
            try:  # one client's trouble must not end the preloader, and its commands with it
                if key.data == "accept":
                    accept()
                elif key.data[0] == "client":
                    if key.data[1] in running:  # else: ended earlier in this same round
                        client_spoke(key.fileobj, key.data[1])
                else:
                    ended(key.data[1])
            except OSError:
                pass


def _warm() -> None:
    """Build once what most commands would each build again: the 42 regular expressions of
    SQLAlchemy's MySQL reflection (4.5 ms of CPU a command that reflects), which stay in `re`'s
    cache for every child. A private attribute: if it ever goes, commands build them again."""
    from sqlalchemy.dialects.mysql.pymysql import MySQLDialect_pymysql

    try:
        MySQLDialect_pymysql()._tabledef_parser
    except AttributeError:
        pass


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)  # not reaped yet: the pid is still the child's
    except ProcessLookupError:
        pass


def _start(conn: socket.socket, startup: dict[str, str], close_all) -> tuple[int, int] | None:
    """Read one request and fork its child; None (after answering why) when refused."""
    import time

    fds: list[int] = []
    try:
        deadline = time.monotonic() + 5  # a slow client must not hold up the others for long
        conn.settimeout(5)
        data, fds, _, _ = socket.recv_fds(conn, 1 << 16, 3)
        while len(data) < _HEADER.size or len(data) < _HEADER.size + _HEADER.unpack_from(data)[0]:
            conn.settimeout(max(0.001, deadline - time.monotonic()))
            chunk = conn.recv(1 << 16)
            if not chunk:
                raise Refused("incomplete request")
            data += chunk
        request = json.loads(data[_HEADER.size:])
        why = _refusal(request, fds, startup)
        if why:
            raise Refused(why)
        conn.settimeout(None)
        preloader = os.getpid()
        pid = os.fork()
        if pid == 0:
            try:
                conn.close()
                close_all()
                _end_with(preloader)
                for number, fd in enumerate(fds):
                    os.dup2(fd, number)
                for fd in fds:
                    if fd > 2:
                        os.close(fd)
                fds.clear()  # dup'ed: nothing for the finally below to close
            except BaseException:
                os._exit(1)
            raise _Become(request)
        # From here on the child is ours to reap, whatever happens to its client.
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            _kill(pid)
            os.waitpid(pid, 0)
            raise
        try:
            conn.sendall(f"pid {pid}\n".encode())
        except OSError:  # the client is already gone: so is its command
            _kill(pid)
        return pid, pidfd
    except _Become:
        raise
    except Exception as exc:  # noqa: BLE001 -- a bad request is refused; the preloader goes on
        try:
            conn.sendall(f"refused {exc}\n".encode())
        except OSError:
            pass
        conn.close()
        return None
    finally:  # the parent's copies
        for fd in fds:
            os.close(fd)


def _refusal(request, fds: list[int], startup: dict[str, str]) -> str | None:
    """Why `request` cannot run as `python` would run it here; None when it can."""
    if not isinstance(request, dict) or len(fds) != 3:
        return "expected a request, and stdin, stdout and stderr"
    argv, cwd, env = request.get("argv"), request.get("cwd"), request.get("env")
    if not supported(argv) or not isinstance(cwd, str) or not isinstance(env, dict):
        return "not a script, -m or -c"
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        return "the environment is not text"
    if not isinstance(request.get("umask"), int) or not isinstance(request.get("ignored"), list):
        return "no umask or signals"
    if startup_variables(env) != startup:
        return "PYTHON* or locale variables differ from the preloader's"
    if argv[0] == "-m":
        module = sys.modules.get(argv[1])
        if module is not None and not hasattr(module, "__path__"):
            return f"{argv[1]} is preloaded; runpy would warn"
    elif argv[0] != "-c":
        script = os.path.join(cwd, argv[0])
        if not os.path.isfile(script):
            return "not a file: Python says why"
        with open(script, "rb") as f:
            if f.read(4) == b"PK\x03\x04":
                return "a zip application"
    return None


def _end_with(preloader: int) -> None:
    """Be killed if the preloader is (it ends its commands itself when it exits normally)."""
    import ctypes

    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != preloader:  # it was gone before that took effect
        os._exit(1)


def _run(request: dict) -> int:
    """Become `python *argv`, run it, and end as it ends (see _finish)."""
    import builtins
    import io
    import time
    import types

    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    time.tzset()  # TZ as the command's environment says
    os.umask(request["umask"])
    # Dispositions as `python` started by the caller would have them: what the caller ignores
    # stays ignored; otherwise Python's own (KeyboardInterrupt on SIGINT; SIGPIPE, SIGXFSZ
    # ignored); SIG_DFL for the rest.
    for number in range(1, signal.NSIG):
        if number in (signal.SIGKILL, signal.SIGSTOP, signal.SIGPIPE, signal.SIGXFSZ):
            continue
        try:
            if number in request["ignored"]:
                signal.signal(number, signal.SIG_IGN)
            elif number == signal.SIGINT:
                signal.signal(number, signal.default_int_handler)
            else:
                signal.signal(number, signal.SIG_DFL)
        except (OSError, ValueError):
            pass  # a number that is no signal here
    unbuffered = bool(os.environ.get("PYTHONUNBUFFERED"))
    sys.dont_write_bytecode = bool(os.environ.get("PYTHONDONTWRITEBYTECODE"))
    encoding, errors = sys.stdout.encoding, sys.stdout.errors

    def stream(fd: int, mode: str, name: str, errors: str, line_buffering: bool = False):
        raw = io.FileIO(fd, mode, closefd=False)
        raw.name = name  # as Python names its own: <stdin>, <stdout>, <stderr>
        if mode == "r":
            buffered = io.BufferedReader(raw)
        else:
            size = os.fstat(fd).st_blksize or io.DEFAULT_BUFFER_SIZE
            buffered = raw if unbuffered else io.BufferedWriter(raw, size)
        text = io.TextIOWrapper(buffered, encoding, errors, line_buffering=line_buffering,
                                write_through=unbuffered and mode == "w")
        text.mode = mode
        return text

    sys.stdin = sys.__stdin__ = stream(0, "r", "<stdin>", errors)
    sys.stdout = sys.__stdout__ = stream(1, "w", "<stdout>", errors, os.isatty(1))
    sys.stderr = sys.__stderr__ = stream(2, "w", "<stderr>", "backslashreplace", True)

    argv = request["argv"]
    sys.orig_argv = [sys.executable, *argv]
    main = types.ModuleType("__main__")
    main.__builtins__ = builtins
    sys.modules["__main__"] = main  # not the preloader's: -m runs in __main__'s namespace too
    try:
        if argv[0] == "-m":
            import runpy

            sys.argv = ["-m", *argv[2:]]
            sys.path.insert(0, os.getcwd())
            runpy._run_module_as_main(argv[1])  # what `python -m` itself calls
        else:
            if argv[0] == "-c":
                sys.argv = ["-c", *argv[2:]]
                sys.path.insert(0, "")
                filename, source = "<string>", argv[1]
            else:
                import importlib.machinery

                sys.argv = list(argv)
                filename = os.path.abspath(argv[0])
                sys.path.insert(0, os.path.dirname(os.path.realpath(filename)))
                main.__file__ = filename
                main.__cached__ = None
                main.__loader__ = importlib.machinery.SourceFileLoader("__main__", filename)
                with open(filename, "rb") as f:
                    source = f.read()
            main.__spec__ = None
            # dont_inherit: not this file's `from __future__ import annotations`.
            exec(compile(source, filename, "exec", dont_inherit=True), main.__dict__)
    except SystemExit as exc:
        return _finish(_exit_code(exc), main)
    except BaseException as exc:  # noqa: BLE001 -- reported as Python reports it
        exc.__traceback__ = _script_frames(exc.__traceback__)  # the hook prints this one
        sys.excepthook(type(exc), exc, exc.__traceback__)
        return _finish(-signal.SIGINT if isinstance(exc, KeyboardInterrupt) else 1, main)
    return _finish(0, main)


def _finish(code: int, main) -> int:
    """End as the interpreter ends `python`: wait for threads, run atexit, flush stdout and
    stderr (120 when stdout cannot take it), finalize what the command made, exit.

    All but one step of Py_FinalizeEx: the modules preloaded before the fork are not torn
    down. That would write to every page the child shares with the preloader (25 ms of CPU a
    command); the command's own objects, its __main__'s, are finalized (open files flushed and
    closed, temporary files removed).
    """
    import atexit
    import gc
    import threading
    import types

    def unraisable(exc: BaseException, where) -> None:
        sys.unraisablehook(types.SimpleNamespace(
            exc_type=type(exc), exc_value=exc, exc_traceback=None, err_msg=None, object=where))

    try:
        threading._shutdown()
    except BaseException as exc:  # noqa: BLE001 -- e.g. Ctrl-C while waiting: Python goes on
        unraisable(exc, threading)
    try:
        atexit._run_exitfuncs()
    except SystemExit as exc:
        code = _exit_code(exc)
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name, None)
        if stream is None or getattr(stream, "closed", False):
            continue
        try:
            stream.flush()
        except Exception as exc:  # noqa: BLE001
            unraisable(exc, stream)
            if name == "stdout":
                code = 120
    main.__dict__.clear()
    gc.collect()
    for stream in (sys.__stdout__, sys.__stderr__):  # a command may have replaced sys.stdout
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 -- reported above, where Python reports it
            pass
    if code < 0:  # an uncaught KeyboardInterrupt: Python ends by SIGINT
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    os._exit(code)


def _exit_code(exc: SystemExit) -> int:
    """The exit status Python gives SystemExit; a message goes to stderr, as it does."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code & 0xFF
    print(exc.code, file=sys.stderr)
    return 1


def _script_frames(tb):
    """The traceback from the command's own first frame: without this file's and runpy's."""
    import runpy

    skip = {os.path.abspath(__file__), os.path.abspath(runpy.__file__)}
    while tb is not None and os.path.abspath(tb.tb_frame.f_code.co_filename) in skip:
        tb = tb.tb_next
    return tb


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        try:
            serve(sys.argv[2])
        except _Become as become:  # a child: what is left of the preloader goes with the stack
            request = become.request
        else:
            sys.exit(0)
        _run(request)
    else:  # the shim imports this module instead (see write_shim)
        sys.exit("usage: preload.py serve ADDRESS")
