"""Copy a step folder somewhere and run its commands the way a reader does in a terminal."""

from __future__ import annotations

import importlib.util
import os
import py_compile
import shutil
import subprocess
import sys
from pathlib import Path

from sqlalchemy.engine import URL

from tutorial_kit import preload

REPO = Path(__file__).resolve().parent.parent
STEPS = (
    "start",
    "step-1-versioned",
    "step-2-generate",
    "step-3-apply",
    "step-4-new-migration",
    "step-5-custom-migration",
    "step-6-verify-safety",
    "step-7-big-tables",
)


def build_dir() -> Path:
    """Where the tutorial writes: build/, or TUTORIAL_BUILD_DIR (the tests use their own)."""
    return Path(os.environ.get("TUTORIAL_BUILD_DIR") or REPO / "build")
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")


def copy_step(name: str, dest: Path, *, root: Path = REPO) -> Path:
    """A copy of step folder `name` at dest/name, as a reader who copied it would have, with
    the bytecode its first command would otherwise compile (see add_bytecode)."""
    target = Path(dest) / name
    shutil.copytree(root / name, target, ignore=_IGNORE)
    add_bytecode(target)
    return target


_bytecode: dict[tuple[str, bytes], bytes] = {}  # (file name, source): its .pyc, once per process


def add_bytecode(folder: Path) -> None:
    """Write the __pycache__/*.pyc of every module in `folder`, compiled once per process.

    Nearly every test works in a fresh copy of a step, whose first command would compile the
    step's modules and revisions again: 18 ms of CPU for step 6 (measured), in hundreds of
    copies a run. These .pyc files are checked against the source's hash (PEP 552), not its
    time stamp, so a file edited after the copy is compiled again, even within the same second.
    """
    if sys.pycache_prefix:  # Python looks for bytecode elsewhere (PYTHONPYCACHEPREFIX)
        return
    for source in folder.rglob("*.py"):
        pyc = Path(importlib.util.cache_from_source(str(source)))
        key = (source.name, source.read_bytes())
        if key in _bytecode:
            pyc.parent.mkdir(exist_ok=True)
            pyc.write_bytes(_bytecode[key])
            continue
        try:
            py_compile.compile(str(source), cfile=str(pyc), doraise=True,
                               invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
        except py_compile.PyCompileError:
            continue  # its command will say what is wrong with it, as it would in the reader's copy
        _bytecode[key] = pyc.read_bytes()


def url_text(url: URL | str | None) -> str | None:
    if url is None or isinstance(url, str):
        return url
    return url.render_as_string(hide_password=False)


def lazy_ca_certificates(environ: dict[str, str] | os._Environ = os.environ) -> None:
    """Have OpenSSL look CA certificates up one by one instead of parsing the whole bundle.

    PyMySQL offers TLS on every connection (its "preferred" mode) and, for that, builds an SSL
    context that parses the system's CA bundle (some 140 certificates, 20 ms of CPU), then does
    not verify the server's certificate anyway. The tests and `make tutorial` open thousands of
    connections, two per command: that was a third of their CPU. Where the system also has the
    hashed CA folder (Debian's /etc/ssl/certs), SSL_CERT_FILE is pointed at no file, so OpenSSL
    reads only that folder, lazily; a connection that verifies still finds its CA there. Only
    when SSL_CERT_FILE is unset or names the system's own bundle (whose certificates are the
    folder's), and the folder exists; otherwise nothing changes.
    """
    import ssl

    paths = ssl.get_default_verify_paths()
    own = environ.get(paths.openssl_cafile_env)
    if own and os.path.realpath(own) != os.path.realpath(paths.openssl_cafile):
        return  # somebody's own bundle: theirs to keep
    # The folders OpenSSL will search in a process that has `environ`.
    folders = (environ.get(paths.openssl_capath_env) or paths.openssl_capath).split(os.pathsep)
    hashed = next((f for f in folders if f and next(Path(f).glob("*.0"), None)), None)
    if hashed is None:
        return
    environ[paths.openssl_cafile_env] = str(Path(hashed) / "no-bundle-see-tutorial_kit-steps.py")


def step_env(database_url=None, dev_database_url=None) -> dict[str, str]:
    """The environment a step runs with: the two variables it reads set or cleared."""
    env = dict(os.environ)
    lazy_ca_certificates(env)
    # Python caches what it compiles in __pycache__, as on most readers' machines: a step's
    # second command in the same copy does not compile its modules and revisions again (some
    # machines, this one among them, turn that off for every process).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("DATABASE_URL", None)
    env.pop("DEV_DATABASE_URL", None)
    env["PYTHONUNBUFFERED"] = "1"
    if database_url is not None:
        env["DATABASE_URL"] = url_text(database_url)
    if dev_database_url is not None:
        env["DEV_DATABASE_URL"] = url_text(dev_database_url)
    return env


def run(
    step_dir: Path,
    *args: str,
    database_url=None,
    dev_database_url=None,
    env: dict[str, str] | None = None,
    timeout: float = 300,
    merged: bool = False,
) -> subprocess.CompletedProcess[str]:
    """`python ARGS...` in step_dir, as a script runs it; output captured as text.

    `env` adds to (or overrides) the environment, e.g. DOCKER_HOST. No terminal: a command
    that would ask a question answers it from its arguments or refuses. `merged` puts stderr
    into stdout, in the order a terminal shows them (Alembic logs to stderr).
    """
    env = {**step_env(database_url, dev_database_url), **(env or {})}
    where = preload.address()
    if where is not None:  # the same command, without importing SQLAlchemy again (preload.py)
        try:
            code, out, err = preload.run_captured(
                where, list(args), cwd=step_dir, env=env, merged=merged, timeout=timeout
            )
        except preload.Refused:
            pass
        else:
            text = lambda data: data.decode().replace("\r\n", "\n").replace("\r", "\n")
            return subprocess.CompletedProcess(
                [sys.executable, *args], code, text(out), None if merged else text(err)
            )
    return subprocess.run(
        [sys.executable, *args],
        cwd=step_dir,
        env=env,
        stdin=subprocess.DEVNULL,  # nobody at a terminal to answer a question
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merged else subprocess.PIPE,
        text=True,
        timeout=timeout,
    )


def run_at_once(step_dir: Path, *args: str, copies: int, **kwargs) -> list[subprocess.CompletedProcess[str]]:
    """`copies` processes of the same command, started together (as six deploys racing)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(copies) as pool:
        return list(pool.map(lambda _: run(step_dir, *args, **kwargs), range(copies)))


def preloaded_python(folder: Path) -> Path | None:
    """A `python` made in `folder` that runs commands preloaded (preload.py's shim); None when
    there is no preloader (TUTORIAL_PRELOAD=0, or not Linux)."""
    if preload.address() is None:
        return None
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    preload.write_shim(folder, sys.executable)
    return folder / "python"


def python_on_path(folder: Path) -> str:
    """What to put first on PATH so that bash's `python` is the kit's: the preloader's shim
    (made in `folder`), else the venv's bin/, else a link to this Python in `folder`.

    The venv's bin/ comes along either way, for its other commands (pip, alembic).
    """
    here = Path(sys.executable).parent
    folder = Path(folder)
    if preloaded_python(folder) is not None:
        return f"{folder}{os.pathsep}{here}"
    if (here / "python").exists():
        return str(here)
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "python").exists():
        (folder / "python").symlink_to(sys.executable)
    return str(folder)
