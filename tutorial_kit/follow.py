"""Follow the tutorial in a copy of your own: `my-app/`, which you take from `start/` to step 7.

Each step folder ships the revisions its commands wrote. In `my-app/` you write them yourself:
at each step, `python -m tutorial_kit follow STEP` brings in only what a developer writes by
hand (models, the app's code, configuration, the migration tool), never a revision or
`revisions.sum`; the step README then has you run `python -m migrate generate NAME`,
`new NAME`, `hash`, `lint`, `upgrade` in `my-app/`, against your own `app` database, which
lives through the whole tutorial like a production database.

    python -m tutorial_kit follow STEP    start my-app/ (STEP=start), or bring in STEP's changes
    python -m tutorial_kit check          are my-app's revisions those of its step? (same operations)
    python -m tutorial_kit fill NAME      write the step's hand-written body into your revision NAME
    python -m tutorial_kit reset          remove my-app/, empty the app and dev databases

`my-app/` sits at the repository's root (ignored by git), or where TUTORIAL_MY_APP says.
"""

from __future__ import annotations

import ast
import difflib
import os
import shutil
import sys
from pathlib import Path

from tutorial_kit.diff import file_change, files
from tutorial_kit.steps import REPO, STEPS

STATE = ".tutorial"  # in my-app/: the step it is at, and the patches brought in
VERSIONS = "migrations/versions"


class FollowError(Exception):
    """What is wrong, and what to do, in one line."""


def my_app() -> Path:
    return Path(os.environ.get("TUTORIAL_MY_APP") or REPO / "my-app").resolve()


def shown(path: Path) -> str:
    """A path as the reader knows it: from my-app's parent (the repository's root)."""
    return path.relative_to(my_app().parent).as_posix()


def hand_written(name: str) -> bool:
    """A file a developer writes: not a revision, not the checksum file, not the step's page."""
    return not (name == "README.md" or name.startswith(VERSIONS + "/")
                or name == "migrations/revisions.sum" or name.startswith(STATE + "/"))


def step_at(app: Path) -> str:
    try:
        return (app / STATE / "step").read_text().strip()
    except FileNotFoundError:
        raise FollowError(
            f"{shown(app)}/ is not a copy the kit made; start one with "
            "`python -m tutorial_kit follow start` (after `python -m tutorial_kit reset`)"
        ) from None


# --- revisions: the reader's against the step's ------------------------------------------

def revisions(folder: Path) -> dict[str, Path]:
    """NAME -> file, in file-name order (ids are timestamps)."""
    found = {}
    for path in sorted((folder / VERSIONS).glob("*.py")):
        _, _, name = path.stem.partition("_")
        found[name] = path
    return found


def operations(path: Path) -> list[str]:
    """What a revision does: its statements but its docstring, imports and identifiers."""
    tree = ast.parse(path.read_text())
    header = {"revision", "down_revision", "branch_labels", "depends_on"}
    kept = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # the docstring
        target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
        if isinstance(target, ast.Name) and target.id in header:
            continue
        if isinstance(node, ast.FunctionDef):  # without its own docstring
            body = node.body[1:] if (node.body and isinstance(node.body[0], ast.Expr)
                                     and isinstance(node.body[0].value, ast.Constant)) else node.body
            kept += [f"{node.name}(): {ast.unparse(statement)}" for statement in body]
            continue
        kept.append(ast.unparse(node))
    return kept


def compare(app: Path, step: str) -> list[str]:
    """One line per revision of `step`: how the reader's compares. FollowError when it differs."""
    shipped, theirs = revisions(REPO / step), revisions(app)
    lines = []
    for name, path in shipped.items():
        mine = theirs.get(name)
        if mine is None:
            raise FollowError(
                f"{shown(app)}/{VERSIONS} has no revision {name} yet, which {step} has: "
                f"run what {step}/README.md says (`python -m migrate generate {name}` or `new {name}`)"
            )
        ours, yours = operations(path), operations(mine)
        if ours != yours:
            missing = [s for s in ours if s not in yours]
            extra = [s for s in yours if s not in ours]
            what = "; ".join([f"the step's has {s}" for s in missing[:2]]
                             + [f"yours has {s}" for s in extra[:2]]) or "the order differs"
            raise FollowError(f"{mine.name} differs from {step}/{VERSIONS}/{path.name}: {what}")
        lines.append(f"  {mine.name}: the same operations as {step}/{VERSIONS}/{path.name}")
    extra = [name for name in theirs if name not in shipped]
    if extra:
        raise FollowError(
            f"{shown(app)}/{VERSIONS} has revisions {step} does not: {', '.join(extra)}; "
            "the next steps will not know them (`python -m tutorial_kit reset` starts over)"
        )
    return lines


# --- the commands --------------------------------------------------------------------------

def follow(step: str) -> None:
    if step not in STEPS:
        raise FollowError(f"no step {step!r}; the steps are {', '.join(STEPS)}")
    app = my_app()
    if step == "start":
        if app.exists():
            raise FollowError(
                f"{shown(app)}/ exists already (at {step_at(app) if (app / STATE).exists() else 'no step'}); "
                "`python -m tutorial_kit reset` removes it and empties the app database"
            )
        tables = app_tables()
        if tables:
            raise FollowError(
                f"the app database already holds tables ({', '.join(tables)}): your copy starts "
                "from an empty one; `python -m tutorial_kit reset` empties it"
            )
        bring_in(app, None, "start")
        print(f"Made {shown(app)}/ from start/. Work there: `cd {os.path.relpath(app)}`.")
        return
    at = step_at(app)
    before = STEPS[STEPS.index(step) - 1]
    if at == step:
        print(f"{shown(app)}/ is at {step} already: nothing to bring in.")
        return
    if at != before:
        ahead = STEPS.index(at) > STEPS.index(step)
        raise FollowError(
            f"{shown(app)}/ is at {at}; {step} comes after {before}"
            + ("" if ahead else f": first `python -m tutorial_kit follow {STEPS[STEPS.index(at) + 1]}`")
            + (" (`python -m tutorial_kit reset` starts over)" if ahead else "")
        )
    try:
        compare(app, before)
    except FollowError as exc:
        raise FollowError(f"finish {before} first: {exc}") from None
    bring_in(app, REPO / before, step)


def bring_in(app: Path, old: Path | None, step: str) -> None:
    """Copy `step`'s hand-written changes into `app`, and print them as a patch."""
    new = REPO / step
    names = sorted(n for n in files(new) | (files(old) if old else set()) if hand_written(n))
    base = old if old is not None else Path("/dev/null")  # start: every file is new
    changes = []
    for name in names:
        if old is not None and _content(app / name) != _content(old / name):
            raise FollowError(
                f"{shown(app)}/{name} is not as {old.name} left it: the changes of {step} would "
                f"overwrite yours; put it back (`diff {shown(app)}/{name} {old.name}/{name}`) or "
                "`python -m tutorial_kit reset`"
            )
        change = file_change(base, new, name)
        if change is not None:
            changes.append(change)
    for change in changes:  # only now: nothing half-copied when a file was in the way
        target = app / change.name
        if change.kind == "removed":
            target.unlink()
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(new / change.name, target)
    if (new / "migrations").is_dir():
        (app / VERSIONS).mkdir(parents=True, exist_ok=True)  # git keeps no empty folder
    (app / STATE).mkdir(parents=True, exist_ok=True)
    patch = app / STATE / f"{step}.patch"
    patch.write_text("".join(c.diff for c in changes))
    (app / STATE / "step").write_text(step + "\n")
    tool = [c for c in changes if c.name.startswith(("migrate/", ".github/"))]
    print(f"{step}: what you write by hand, brought into {shown(app)}/ "
          f"({len(changes)} file(s); the whole patch: {shown(patch)}):")
    for change in changes:
        print(f"  {change.kind:<8} {change.name}  +{change.plus} -{change.minus}")
    # The app's changed files in full: a few lines each, what the step is about. New files
    # and the tool's are in the patch (and the step's notebook walks through them).
    in_full = [c for c in changes if c not in tool and c.kind == "changed"]
    if in_full:
        print()
        for change in in_full:
            print(change.diff, end="")
    print(f"\nNo revision was copied: {step}/README.md has you write them in {shown(app)}/.")


def _content(path: Path) -> bytes | None:
    return path.read_bytes() if path.exists() else None


def check() -> None:
    app = my_app()
    step = step_at(app)
    lines = compare(app, step)
    print(f"{shown(app)}/ is at {step}; " + (
        "its revisions are the step's:" if lines else "no revision yet, as the step has none."))
    for line in lines:
        print(line)


def fill(name: str) -> None:
    """Write the step's hand-written body (after the revision identifiers) into yours."""
    app = my_app()
    step = step_at(app)
    shipped, theirs = revisions(REPO / step).get(name), revisions(app).get(name)
    if shipped is None:
        raise FollowError(f"{step} has no revision {name} to fill yours in from")
    if theirs is None:
        raise FollowError(
            f"{shown(app)}/{VERSIONS} has no revision {name}: write it first, as "
            f"{step}/README.md says"
        )
    mine = theirs.read_text()
    head, body = _split(mine, theirs), _split(shipped.read_text(), shipped)
    text = mine[: head] + shipped.read_text()[body:]
    if text == mine:
        print(f"{theirs.name} has the step's body already: nothing to fill in.")
        return
    theirs.write_text(text)
    relative = f"{VERSIONS}/{theirs.name}"
    print(f"Filled in {relative} as {step}/{VERSIONS}/{shipped.name} has it, by hand:")
    print("".join(difflib.unified_diff(
        mine.splitlines(keepends=True), text.splitlines(keepends=True), f"a/{relative}", f"b/{relative}"
    )), end="")


def _split(text: str, path: Path) -> int:
    """Where the body starts: after the `depends_on = ...` line, Alembic's last identifier."""
    offset = 0
    for line in text.splitlines(keepends=True):
        offset += len(line)
        if line.startswith("depends_on"):
            return offset
    raise FollowError(f"{path.name} has no `depends_on = ...` line: not a revision Alembic wrote")


def reset() -> None:
    app = my_app()
    if app.exists() and not (app / STATE / "step").exists() and any(app.iterdir()):
        raise FollowError(f"{shown(app)}/ was not made by the kit: remove it yourself if you mean to")
    urls = {v: _url(v) for v in ("DATABASE_URL", "DEV_DATABASE_URL") if _url(v) is not None}
    for variable, url in urls.items():  # all checked before anything goes
        if not url.database or not url.database.startswith(("app", "dev")):
            raise FollowError(
                f"{variable} names the database {url.database!r}: the kit empties only the "
                "tutorial's (`app`, `dev`); empty yours yourself"
            )
    if app.exists():
        shutil.rmtree(app)
        print(f"Removed {shown(app)}/.")
    for variable, url in urls.items():
        with _connect(url) as connection, connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{url.database}`")
            cursor.execute(f"CREATE DATABASE `{url.database}`")
        print(f"Emptied the database {url.database} ({variable}).")


def _url(variable: str):
    from sqlalchemy.engine import make_url

    text = os.environ.get(variable)
    return make_url(text) if text else None


def _connect(url):
    import pymysql

    try:
        return pymysql.connect(
            host=url.host or "127.0.0.1", port=url.port or 3306, user=url.username or "root",
            password=url.password or "", connect_timeout=10,
        )
    except pymysql.err.OperationalError as exc:
        raise FollowError(
            f"cannot reach MySQL at {url.host}:{url.port or 3306} ({exc.args[-1]}); "
            "start it (README: 'A MySQL server to follow along with') and export DATABASE_URL"
        ) from None


def app_tables() -> list[str]:
    url = _url("DATABASE_URL")
    if url is None:
        raise FollowError(
            "DATABASE_URL is not set: export the two lines of your server's route "
            "(README: 'A MySQL server to follow along with') first"
        )
    with _connect(url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
            "ORDER BY table_name", (url.database,),
        )
        return [name for (name,) in cursor.fetchall()]


def run(command: str, argument: str | None) -> int:
    try:
        if command == "follow":
            follow(argument)
        elif command == "check":
            check()
        elif command == "fill":
            fill(argument)
        elif command == "reset":
            reset()
    except FollowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
