"""`make tutorial`: every step, then every notebook, in order, against one MySQL.

Each step folder is copied into the build folder and run there the way the README tells a
reader to, each against databases of its own; the transcript is printed and saved to
build/transcript.txt. Then the notebooks are executed into build/notebooks/.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
import time
from pathlib import Path

from tutorial_kit.mysql import NoServerError, Server, find_server
from tutorial_kit.steps import REPO, STEPS, build_dir, copy_step, run


class StepFailed(Exception):
    pass


class Walk:
    """Runs a step's commands, echoing them and their output like a terminal session."""

    def __init__(self, server: Server, build: Path):
        self.server = server
        self.build = build
        self.transcript = (build / "transcript.txt").open("w")
        self.databases = []
        self.current = ""  # the step being walked: its copies go to build/steps/<step>/
        shutil.rmtree(build / "steps", ignore_errors=True)

    def say(self, text: str = "") -> None:
        print(text, flush=True)
        self.transcript.write(text + "\n")

    def copy(self, name: str) -> Path:
        return copy_step(name, self.build / "steps" / self.current)

    def database(self, prefix: str):
        url = self.server.create_database(prefix)
        self.databases.append(url)
        return url

    def python(self, step_dir: Path, *args: str, expect: int = 0, **urls) -> str:
        self.say(f"[{step_dir.name}]$ python {shlex.join(args)}")
        result = run(step_dir, *args, **urls)
        output = (result.stdout + result.stderr).rstrip()
        for line in output.splitlines():
            self.say(f"    {line}")
        if result.returncode != expect:
            raise StepFailed(
                f"{step_dir.name}: `python {shlex.join(args)}` exited {result.returncode}, "
                f"expected {expect}"
            )
        return result.stdout

    def close(self) -> None:
        for url in self.databases:
            self.server.drop_database(url)
        self.transcript.close()


def walk_start(w: Walk) -> None:
    app, db = w.copy("start"), w.database("start")
    w.say("# The app creates its tables at start-up. Run it twice: nothing is duplicated.")
    w.python(app, "main.py", database_url=db)
    w.python(app, "main.py", database_url=db)


def walk_step_1(w: Walk) -> None:
    app, db = w.copy("step-1-versioned"), w.database("step1")
    w.say("# Alembic is set up, but there is no revision yet: the app still auto-migrates.")
    w.python(app, "main.py", database_url=db)
    w.python(app, "-m", "alembic", "history", database_url=db)
    w.python(app, "-m", "alembic", "heads", database_url=db)


def walk_step_2(w: Walk) -> None:
    app, dev = w.copy("step-2-generate"), w.database("dev")
    w.say("# How migrations/versions/*_initialize.py was made: remove it from the copy, plan again.")
    for revision in (app / "migrations" / "versions").glob("*.py"):
        revision.unlink()
    w.python(app, "generate.py", "initialize", dev_database_url=dev)
    w.say("# Plan again: the models and the migrations now agree.")
    w.python(app, "generate.py", "initialize", dev_database_url=dev)
    w.python(app, "-m", "alembic", "history", dev_database_url=dev)


def walk_step_3(w: Walk) -> None:
    start, app = w.copy("start"), w.copy("step-3-apply")
    urls = dict(database_url=w.database("production"), dev_database_url=w.database("dev"))
    [first] = sorted((app / "migrations" / "versions").glob("*_initialize.py"))
    revision = first.stem.split("_")[0]
    w.say("# Production, as start/'s create_all() made it.")
    w.python(start, "main.py", **urls)
    w.say("# The new app refuses to run on it, and upgrade refuses to touch it.")
    w.python(app, "main.py", expect=1, **urls)
    w.python(app, "migrate.py", "status", **urls)
    w.python(app, "migrate.py", "upgrade", expect=1, **urls)
    w.say("# Check the schema against the first revision, then stamp it.")
    w.python(app, "migrate.py", "baseline", revision, **urls)
    w.python(app, "migrate.py", "status", **urls)
    w.python(app, "migrate.py", "upgrade", **urls)
    w.python(app, "main.py", **urls)


WALKS = {
    "start": walk_start,
    "step-1-versioned": walk_step_1,
    "step-2-generate": walk_step_2,
    "step-3-apply": walk_step_3,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-notebooks", action="store_true", help="run the steps only")
    args = parser.parse_args(argv)

    build = build_dir()
    build.mkdir(parents=True, exist_ok=True)
    try:
        server = find_server()
    except NoServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with server:
        print(f"MySQL: {server.source}", flush=True)
        walk = Walk(server, build)
        try:
            for name in STEPS:
                if name in WALKS and (REPO / name).is_dir():
                    started = time.perf_counter()
                    walk.say(f"\n=== {name}")
                    walk.current = name
                    WALKS[name](walk)
                    walk.say(f"=== {name}: ok in {time.perf_counter() - started:.1f} s")
        except StepFailed as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        finally:
            walk.close()
        print(f"\nTranscript: {build / 'transcript.txt'}")
        if not args.skip_notebooks:
            from tutorial_kit.notebooks import execute_all

            environ = {**server.environ, "TUTORIAL_BUILD_DIR": str(build)}
            execute_all(build / "notebooks", environ=environ)
    return 0


if __name__ == "__main__":
    sys.exit(main())
