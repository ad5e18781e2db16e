"""Run the steps' `python ...` commands in processes forked from one that has imported SQLAlchemy.

Each `python migrate.py upgrade` spends about 0.35 s of CPU importing SQLAlchemy, Alembic and
PyMySQL before it does anything, and the tests and `make tutorial` run some 800 such commands
on two cores. So the kit starts one preloader per process (a "zygote", as Android calls it):
a Python that imports those libraries once, then forks a child for each command. The child is
a real, separate process that sets itself up as `python ARGS...` would (its own working
folder, environment, arguments, sys.path, standard streams, exit status, signals) and runs the
script; it only skips the imports.

What runs preloaded, and what does not:
- `python SCRIPT ARGS`, `python -m MODULE ARGS` and `python -c CODE ARGS`, when the command's
  PYTHON* and locale variables are the preloader's (they shape how Python starts). Anything
  else (other flags, `python -`, another PYTHONPATH) is refused, and the caller runs the real
  interpreter, as it always may.
- Linux only (it waits on children with pidfds); elsewhere, and with TUTORIAL_PRELOAD=0, every
  command runs the plain way.
- A child differs from a fresh `python` in two ways nobody relies on: the libraries above are
  already in sys.modules, and every child has the preloader's hash seed.

The preloader listens on an abstract Unix socket (no file anywhere: a killed kernel or test
run leaves nothing behind), answers only its own user, and exits with its parent, killing the
commands still running. This file imports only the standard library at the top: it is also
the `python` that `make tutorial` puts first on bash's PATH (see `write_shim`).
"""

from __future__ import annotations

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
           "logging.config", "argparse", "ctypes")
# Variables that change how Python starts: a command must share the preloader's. (The two
# that only set a flag, PYTHONUNBUFFERED and PYTHONDONTWRITEBYTECODE, each child sets itself.)
SET_BY_CHILD = {"PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE"}
_HEADER = struct.Struct("!I")


def startup_variables(env: dict[str, str]) -> dict[str, str]:
    return {
        k: v for k, v in env.items()
        if (k.startswith("PYTHON") and k not in SET_BY_CHILD) or k == "LANG" or k.startswith("LC_")
    }


def supported(argv: list[str]) -> bool:
    """Whether `python *argv` is a form the preloader runs: a script, -m or -c."""
    if not argv:
        return False
    if argv[0] in ("-m", "-c"):
        return len(argv) > 1
    return not argv[0].startswith("-")


# --- the client side: ask the preloader to run a command ------------------------------------


class Refused(Exception):
    """The preloader cannot run this command as `python` would: run the real interpreter."""


class Child:
    """A command running in a child of the preloader; `wait()` gives its exit status."""

    def __init__(self, conn: socket.socket, answers, pid: int):
        self.conn, self.answers, self.pid = conn, answers, pid
        self.returncode: int | None = None

    def wait(self) -> int:
        if self.returncode is None:
            status = self.answers.readline().decode().strip()
            self.answers.close()
            self.conn.close()
            kind, _, value = status.partition(" ")
            if kind not in ("exit", "signal"):
                raise RuntimeError("the preloader stopped before its command ended")
            self.returncode = int(value) if kind == "exit" else -int(value)
        return self.returncode

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.returncode is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass


def spawn(address: str, argv: list[str], *, cwd: str, env: dict[str, str],
          fds: tuple[int, int, int]) -> Child:
    """Start `python *argv` in `cwd` with `env`, its stdin/stdout/stderr on `fds`.

    Raises Refused when the command must run the plain way instead.
    """
    if not supported(argv):
        raise Refused("not a script, -m or -c")
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    answers = conn.makefile("rb")  # "pid N", then "exit N" or "signal N": a line each
    try:
        conn.connect("\0" + address)
        payload = json.dumps({"argv": argv, "cwd": os.fspath(cwd), "env": env}).encode()
        socket.send_fds(conn, [_HEADER.pack(len(payload)) + payload], list(fds))
        answer = answers.readline().decode().strip()
    except OSError as exc:
        answers.close()
        conn.close()
        raise Refused(f"no preloader at {address}: {exc}") from None
    kind, _, value = answer.partition(" ")
    if kind != "pid":
        answers.close()
        conn.close()
        raise Refused(value or "the preloader did not answer")
    return Child(conn, answers, int(value))


def run_captured(address: str, argv: list[str], *, cwd, env: dict[str, str], merged: bool,
                 timeout: float) -> tuple[int, bytes, bytes]:
    """`python *argv` with stdin empty and its output captured: (exit status, stdout, stderr).

    As subprocess.run(..., timeout=) does, a command still running after `timeout` seconds is
    killed and subprocess.TimeoutExpired raised. Refused: run it the plain way.
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
    with selectors.DefaultSelector() as selector:
        for fd in captured:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            ready = selector.select(max(0.0, deadline - time.monotonic()))
            if not ready:
                child.kill()
                child.wait()
                for fd in captured:
                    os.close(fd)
                raise subprocess.TimeoutExpired(["python", *argv], timeout, bytes(captured[out_r]),
                                                None if merged else bytes(captured[err_r]))
            for key, _ in ready:
                chunk = os.read(key.fd, 1 << 16)
                if chunk:
                    captured[key.fd] += chunk
                else:
                    selector.unregister(key.fd)
    for fd in captured:
        os.close(fd)
    code = child.wait()
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
            )
            # Its stdin stays open as long as this process lives; when it closes, it exits.
            ready = process.stdout.readline() == b"ready\n"
            if not ready:
                process.kill()
                process.wait()
            _started.update(address=name if ready else None, process=process)
            if ready:
                os.environ[ADDRESS_VARIABLE] = name  # for bash and notebook kernels started from here
    return _started["address"]


# --- the shim: `python` on bash's PATH during `make tutorial` ------------------------------


def write_shim(folder, real_python: str) -> None:
    """Make `folder`/python a command that runs preloaded when it can, else `real_python`."""
    from pathlib import Path

    shim = Path(folder) / "python"
    quote = lambda s: "'" + str(s).replace("'", "'\\''") + "'"
    text = (
        "#!/bin/sh\n"
        "# The kit's python: asks the preloader (tutorial_kit/preload.py) first.\n"
        f"exec {quote(real_python)} -IS {quote(Path(__file__).resolve())} run "
        f"{quote(real_python)} \"$@\"\n"
    )
    if shim.exists() and shim.read_text() == text:
        return
    # Several walks share the folder: each sees the old file or the whole new one.
    partial = shim.with_name(f".python.{os.getpid()}.{os.urandom(4).hex()}")
    partial.write_text(text)
    partial.chmod(0o755)
    os.replace(partial, shim)


def shim_main(real_python: str, argv: list[str]) -> int:
    """Run `python *argv` through the preloader named in the environment, or exec the real one."""
    address = os.environ.get(ADDRESS_VARIABLE)
    # Signals that arrive before the command has started are passed on once it has.
    started: list[Child] = []
    pending: list[int] = []
    forward = lambda number, _frame: started[0].kill(number) if started else pending.append(number)
    # Those this process was started ignoring (a shell's background job ignores SIGINT) stay so.
    signals = [sig for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
               if signal.getsignal(sig) != signal.SIG_IGN]
    for sig in signals:
        signal.signal(sig, forward)
    try:
        if not address:
            raise Refused("no preloader")
        started.append(spawn(address, argv, cwd=os.getcwd(), env=dict(os.environ), fds=(0, 1, 2)))
    except Refused:
        for sig in signals:
            signal.signal(sig, signal.SIG_DFL)
        for sig in pending:
            os.kill(os.getpid(), sig)
        os.execv(real_python, [real_python, *argv])
    for sig in pending:
        started[0].kill(sig)
    code = started[0].wait()
    if code < 0:  # end the way the command ended: killed by the same signal
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return code


# --- the preloader -------------------------------------------------------------------------


def serve(address: str) -> None:
    """Listen on `address`; fork a child per request; exit when stdin (the parent) closes."""
    del sys.path[0]  # this folder: its modules are no child's business
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind("\0" + address)
    listener.listen(64)
    import gc
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
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
        started = _start(conn, startup, close_all)
        if started is not None:
            pid, pidfd = started
            running[pid] = (conn, pidfd)
            selector.register(pidfd, selectors.EVENT_READ, ("ended", pid))
            selector.register(conn, selectors.EVENT_READ, ("client", pid))

    def client_spoke(conn: socket.socket, pid: int) -> None:
        """A client says nothing after its request: what it sends is its going away."""
        try:
            gone = not conn.recv(4096)
        except OSError:
            gone = True
        if gone:
            selector.unregister(conn)
            _kill(pid)

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


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _start(conn: socket.socket, startup: dict[str, str], close_all) -> tuple[int, int] | None:
    """Read one request and fork its child; None (after answering why) when refused."""
    fds: list[int] = []
    try:
        conn.settimeout(10)
        data, fds, _, _ = socket.recv_fds(conn, 1 << 16, 3)
        uid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[1]
        if uid != os.getuid():
            raise Refused("another user's request")
        while len(data) < _HEADER.size or len(data) < _HEADER.size + _HEADER.unpack_from(data)[0]:
            chunk = conn.recv(1 << 16)
            if not chunk:
                raise Refused("incomplete request")
            data += chunk
        request = json.loads(data[_HEADER.size:])
        if len(fds) != 3:
            raise Refused("expected stdin, stdout and stderr")
        if not supported(request["argv"]):
            raise Refused("not a script, -m or -c")
        if startup_variables(request["env"]) != startup:
            raise Refused("PYTHON* or locale variables differ from the preloader's")
        conn.settimeout(None)
        preloader = os.getpid()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                conn.close()
                close_all()
                _end_with(preloader)
                code = _child(request, fds)
            finally:
                os._exit(code)
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
    except (Refused, OSError, ValueError, KeyError) as exc:
        try:
            conn.sendall(f"refused {exc}\n".encode())
        except OSError:
            pass
        conn.close()
        return None
    finally:  # the parent's copies (a child never gets here: it ends in os._exit)
        for fd in fds:
            os.close(fd)


def _end_with(preloader: int) -> None:
    """Be killed if the preloader is (it ends its commands itself when it exits normally)."""
    import ctypes

    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != preloader:  # it was gone before that took effect
        os._exit(1)


def _child(request: dict, fds: list[int]) -> int:
    """Become `python *argv`: streams, folder, environment, arguments, sys.path; run; exit code."""
    import atexit
    import builtins
    import io
    import threading
    import types

    for number, fd in enumerate(fds):
        os.dup2(fd, number)
    for fd in fds:
        if fd > 2:
            os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    unbuffered = bool(os.environ.get("PYTHONUNBUFFERED"))
    sys.dont_write_bytecode = bool(os.environ.get("PYTHONDONTWRITEBYTECODE"))
    encoding, errors = sys.stdout.encoding, sys.stdout.errors
    sys.stdin = sys.__stdin__ = io.TextIOWrapper(
        io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding, errors)

    def output(fd: int, errors: str, line_buffering: bool):
        raw = io.FileIO(fd, "w", closefd=False)
        stream = raw if unbuffered else io.BufferedWriter(raw)
        return io.TextIOWrapper(stream, encoding, errors, line_buffering=line_buffering,
                                write_through=unbuffered)

    sys.stdout = sys.__stdout__ = output(1, errors, os.isatty(1))
    sys.stderr = sys.__stderr__ = output(2, "backslashreplace", True)

    argv = request["argv"]
    main = types.ModuleType("__main__")
    main.__builtins__ = builtins
    sys.modules["__main__"] = main  # not the preloader's: -m runs in __main__'s namespace too
    code = 0
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
                main.__loader__ = importlib.machinery.SourceFileLoader("__main__", filename)
                with open(filename, "rb") as f:
                    source = f.read()
            main.__spec__ = None
            exec(compile(source, filename, "exec"), main.__dict__)
    except SystemExit as exc:
        code = _exit_code(exc)
    except BaseException as exc:  # noqa: BLE001 -- reported as Python reports it, then exit 1
        exc.__traceback__ = _script_frames(exc.__traceback__)  # the hook prints this one
        sys.excepthook(type(exc), exc, exc.__traceback__)
        code = 1
        if isinstance(exc, KeyboardInterrupt):
            code = -signal.SIGINT
    # What the interpreter does on its way out: wait for threads, atexit, flush.
    try:
        threading._shutdown()
        atexit._run_exitfuncs()
    except SystemExit as exc:
        code = _exit_code(exc)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            code = code or 120  # as Python exits when it cannot flush stdout
    if code < 0:
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return code


def _exit_code(exc: SystemExit) -> int:
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
        serve(sys.argv[2])
    elif sys.argv[1:2] == ["run"]:
        sys.exit(shim_main(sys.argv[2], sys.argv[3:]))
    else:
        sys.exit("usage: preload.py serve ADDRESS | run REAL_PYTHON ARGS...")
