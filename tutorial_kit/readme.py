"""Run the shell blocks of a step's README.md exactly as a reader would type them.

`make tutorial` and the tests run every step this way: the READMEs are the one source of truth
for the terminal walk. Each step runs in a fresh copy of its folder, against a fresh `app` and
`dev` database on the kit's server, its blocks in order, one line at a time.

The convention a README follows (write new blocks to it):

Which blocks run
    Fenced blocks whose language is `sh` or `bash`. Put `<!-- not run: REASON -->` on the line
    just before the fence to leave a block out (one that needs Docker, say). Other languages
    (`text`, `python`, ...) are never run.

Where a block starts from
    The first block of a step starts from empty databases; each next block goes on from where
    the previous one left them. `<!-- run after: STEP [STEP ...] -->` just before the fence
    gives that block fresh databases and first runs the blocks of the named step folders
    against them, each in a fresh copy (as a reader who followed those steps has them):
    step-3's "a database that create_all() made" says `<!-- run after: start -->`. In
    `make tutorial`, which walks every step anyway, a block after one step takes over the
    databases that step's own walk left instead (see Handoff).

The other route: your own copy
    `<!-- follow along -->` just before the fence marks a block of the route where the reader
    keeps one copy of the app, my-app/, from start to step 7 (tutorial_kit.follow). The step's
    walk leaves these blocks out; `follow_along()` walks them, every step's in order, as one
    reader in one terminal: from the repository's root (or a folder standing for it, where
    my-app/ is made), with one `app` database from the first block to the last.

How each line runs
    - Blank lines and `# comment` lines are skipped; a line ending in `\\` goes on on the next.
    - `python -m pip install ...` (or `pip install ...`) is skipped: .venv has the pins.
    - DATABASE_URL and DEV_DATABASE_URL are set from the start to this run's `app` and `dev`
      databases, as the reader exported them once for their server's route (the README's "A
      MySQL server to follow along with"): a step README's blocks do not export them. Where a block does,
      `export DATABASE_URL=...` and `export DEV_DATABASE_URL=...` point the variable at this
      run's `app` and `dev` database instead of the URL written. Any other
      `export NAME=VALUE` is set as written.
    - `cd DIR` changes the folder for the lines after it.
    - Anything else runs in bash, in the copied folder, where `python` is the kit's Python; it
      must exit 0. It reads nothing from the terminal (stdin is empty): a command that asks a
      question gets its answer the way the reader would pipe it, `echo y | python -m migrate generate x`.
    - A trailing comment that starts with `# error` marks a command the README shows failing
      (`python -m migrate upgrade   # error: ... run baseline`): it must exit non-zero, and
      cleanly, without a Python traceback.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import URL

from tutorial_kit.mysql import Server
from tutorial_kit.online_tool import tool_folder
from tutorial_kit.steps import REPO, copy_step, python_on_path, step_env, url_text

RUN_LANGUAGES = {"sh", "bash"}
DATABASE_VARIABLES = {"DATABASE_URL": "app", "DEV_DATABASE_URL": "dev"}
_PIP = re.compile(r"^(python3? -m )?pip3? install\b")
_DIRECTIVE = re.compile(r"^<!--\s*(not run|run after)\s*:\s*(.*?)\s*-->$", re.DOTALL)
_FOLLOW = re.compile(r"^<!--\s*follow along\s*-->$")


class ReadmeError(Exception):
    """A README that breaks the convention, or a command that did not do what it shows."""


@dataclass(frozen=True)
class Command:
    line: int  # where it starts in the README, for messages
    text: str  # as written, without its trailing comment
    comment: str  # the trailing comment, without '#'

    @property
    def expects_failure(self) -> bool:
        return self.comment.lower().startswith("error")

    @property
    def expected_status(self) -> int | None:
        """`# exit 3: ...`: the command must end with that exit status (a deploy gate's)."""
        found = re.match(r"exit (\d+)\b", self.comment.strip().lower())
        return int(found.group(1)) if found else None

    @property
    def skipped(self) -> str | None:
        """Why the runner does not run this line, or None."""
        return "the pinned requirements are in .venv" if _PIP.match(self.text) else None


@dataclass(frozen=True)
class Block:
    line: int
    commands: tuple[Command, ...]
    not_run: str | None = None  # the reason, when `<!-- not run: ... -->`
    run_after: tuple[str, ...] = ()  # the steps of `<!-- run after: ... -->`
    follow: bool = False  # `<!-- follow along -->`: a block of the my-app/ route


def split_comment(line: str) -> tuple[str, str]:
    """(command, trailing comment): a `#` that starts a word outside quotes starts a comment."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            if char == quote:
                quote = None
            elif char == "\\" and quote == '"':
                continue
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip(), line[i + 1 :].strip()
    return line.rstrip(), ""


def parse(readme: Path) -> list[Block]:
    """The shell blocks of a README, with their directives and commands."""
    from markdown_it import MarkdownIt

    text = readme.read_text()
    tokens = MarkdownIt("commonmark").parse(text)
    blocks: list[Block] = []
    for index, token in enumerate(tokens):
        if token.type != "fence" or (token.info.split() or [""])[0] not in RUN_LANGUAGES:
            continue
        start = token.map[0] + 1  # 1-based line of the fence
        not_run, run_after, follow = None, (), False
        before = tokens[index - 1] if index else None
        comment = before.content.strip() if before is not None and before.type == "html_block" else ""
        if comment and before.map[1] == token.map[0] and _FOLLOW.match(comment):
            follow = True
        elif comment and before.map[1] == token.map[0] and re.search(r"\b(run|follow)\b", comment):
            found = _DIRECTIVE.match(comment)
            if found is None:
                raise ReadmeError(
                    f"{readme}:{before.map[0] + 1}: unknown directive {comment!r}; use "
                    "<!-- not run: REASON -->, <!-- run after: STEP ... --> or <!-- follow along -->"
                )
            kind, value = found.groups()
            if kind == "not run":
                not_run = value or "no reason given"
            else:
                run_after = tuple(value.split())
                root = readme.parent.parent  # the step folders sit side by side
                missing = [s for s in run_after if not (root / s / "README.md").is_file()]
                if missing or not run_after:
                    raise ReadmeError(f"{readme}:{before.map[0] + 1}: no step folder {missing}")
        blocks.append(
            Block(start, tuple(_commands(token.content, start + 1)), not_run, run_after, follow)
        )
    return blocks


def _commands(content: str, first_line: int) -> list[Command]:
    commands: list[Command] = []
    pending, pending_line = "", 0
    for offset, raw in enumerate(content.splitlines()):
        if not pending:
            pending_line = first_line + offset
        text, comment = split_comment(raw)
        if text.endswith("\\"):  # continued on the next line; a comment cannot precede `\`
            pending += text[:-1] + " "
            continue
        text = (pending + text).strip()
        pending = ""
        if text:
            commands.append(Command(pending_line, text, comment))
    if pending.strip():
        commands.append(Command(pending_line, pending.strip(), ""))
    return commands


@dataclass
class Databases:
    """The run's `app` and `dev` databases; `fresh()` replaces both."""

    server: Server
    urls: dict[str, URL] = field(default_factory=dict)
    made: list[URL] = field(default_factory=list)

    def fresh(self) -> None:
        for name in ("app", "dev"):
            self.urls[name] = self.server.create_database(name)
            self.made.append(self.urls[name])

    def drop(self) -> None:
        for url in self.made:
            self.server.drop_database(url)
        self.made.clear()

    def hand_over(self) -> Databases:
        """The current `app` and `dev`, for another walk to go on from; the rest dropped."""
        current = list(self.urls.values())
        self.made = [url for url in self.made if url not in current]
        self.drop()
        return Databases(self.server, dict(self.urls), current)

    def take_over(self, other: Databases) -> None:
        self.urls = dict(other.urls)
        self.made.extend(other.made)


class Handoff:
    """The databases a step's walk leaves, for the walk that goes on from them.

    `make tutorial` walks every step once. Step 4's README goes on from where step 3's leaves
    (`<!-- run after: step-3-apply -->`): instead of walking step 3 again, step 4's walk waits
    for step 3's and takes over the databases it left, as a reader does who follows one step
    after the other. Walks run alone (the tests) walk the steps they go on from again.
    """

    def __init__(self, steps):
        self._left: dict[str, Future[Databases]] = {name: Future() for name in steps}
        self._taken: set[str] = set()

    def wants(self, name: str) -> bool:
        return name in self._left

    def give(self, name: str, databases: Databases) -> None:
        self._left[name].set_result(databases.hand_over())

    def fail(self, name: str) -> None:
        self._left[name].set_exception(ReadmeError(f"the walk of {name} failed"))

    def take(self, name: str) -> Databases:
        self._taken.add(name)
        return self._left[name].result()

    def drop_leftovers(self) -> None:
        """Drop what nobody took (a walk that failed before taking it over)."""
        for name, future in self._left.items():
            if name not in self._taken and future.done() and future.exception() is None:
                future.result().drop()


class ReadmeRun:
    """Runs step READMEs; `say` gets the transcript, one line at a time."""

    def __init__(
        self, server: Server, work: Path, say: Callable[[str], None] = print, root: Path = REPO,
        handoff: Handoff | None = None, *, in_place: bool = False,
        environ: dict[str, str] | None = None,
    ):
        self.server = server
        self.work = work
        self.say = say
        self.root = root  # where the step folders are
        self.bin = python_on_path(work / ".bin")
        # Step 7's pt-online-schema-change: the one that works with this server.
        if (tools := tool_folder(server, work / ".tool")) is not None:
            self.bin += f"{os.pathsep}{tools}"
        self.handoff = handoff
        self.in_place = in_place  # run in the step folders themselves, not in copies
        self.environ = environ or {}  # more variables for every command

    def follow_along(self, steps: Iterable[str], where: Path) -> None:
        """The `<!-- follow along -->` blocks of every step, in order, as one reader types them
        in one terminal: starting in `where` (the repository's root, for a reader), with one
        `app` database from the first block to the last, and my-app/ in `where`."""
        databases = Databases(self.server)
        where.mkdir(parents=True, exist_ok=True)
        env: dict[str, str] = {"TUTORIAL_MY_APP": str(where / "my-app")}
        cwd = where
        try:
            databases.fresh()
            for name in steps:
                readme = self.root / name / "README.md"
                for block in parse(readme):
                    if block.follow:
                        for command in block.commands:
                            cwd = self._run(name, where, cwd, command, env, databases, readme)
        finally:
            databases.drop()

    def step(self, name: str) -> None:
        """Every runnable block of `name`/README.md, in a fresh copy, on fresh databases."""
        databases = Databases(self.server)
        wanted = self.handoff is not None and self.handoff.wants(name)
        try:
            databases.fresh()
            self._walk(name, self.work / name, databases, depth=0)
            if wanted:
                self.handoff.give(name, databases)
                wanted = False
        finally:
            if wanted:
                self.handoff.fail(name)
            databases.drop()

    def _walk(self, name: str, dest: Path, databases: Databases, depth: int) -> None:
        readme = self.root / name / "README.md"
        if self.in_place:
            folder = self.root / name
        else:
            shutil.rmtree(dest / name, ignore_errors=True)
            folder = copy_step(name, dest, root=self.root)
        env: dict[str, str] = {}  # what the README exported so far
        cwd = folder
        for number, block in enumerate(parse(readme), 1):
            where = f"{name}/README.md:{block.line}"
            if block.not_run:
                self.say(f"# {where}: not run ({block.not_run})")
                continue
            if block.follow:
                continue  # the my-app/ route: follow_along() walks it
            if block.run_after and self._handed(block.run_after, depth):
                [other] = block.run_after
                self.say(f"# {where}: the databases {other}'s walk left (its commands are above)")
                databases.take_over(self.handoff.take(other))
            elif block.run_after:
                databases.fresh()
                self.say(f"# {where}: fresh databases, after {', '.join(block.run_after)}")
                for other in block.run_after:
                    self._walk(other, dest / f"after-{depth}-{number}", databases, depth + 1)
            for command in block.commands:
                cwd = self._run(name, folder, cwd, command, env, databases, readme)

    def _handed(self, steps: tuple[str, ...], depth: int) -> bool:
        return (self.handoff is not None and depth == 0 and len(steps) == 1
                and self.handoff.wants(steps[0]))

    def _run(self, name, folder, cwd, command, env, databases, readme) -> Path:
        where = f"{readme.parent.name}/README.md:{command.line}"
        prompt = f"[{name}{'' if cwd == folder else '/' + cwd.relative_to(folder).as_posix()}]$"
        self.say(f"{prompt} {command.text}")
        if command.skipped:
            self.say(f"    (not run: {command.skipped})")
            return cwd
        words = shlex.split(command.text)
        if words[0] == "export":
            for assignment in words[1:]:
                variable, _, value = assignment.partition("=")
                env[variable] = DATABASE_VARIABLES.get(variable, value)
                if variable in DATABASE_VARIABLES:
                    self.say(f"    ({variable}: this run's `{env[variable]}` database)")
            return cwd
        if words[0] == "cd":
            target = (cwd / (words[1] if len(words) > 1 else ".")).resolve()
            if not target.is_dir():
                raise ReadmeError(f"{where}: no folder {words[1]!r}")
            return target
        # The reader has exported the two URLs of their server's route once (the README's "A
        # MySQL server"): they are this run's `app` and `dev`, unless a block exports others.
        values = {
            k: url_text(databases.urls[v]) if k in DATABASE_VARIABLES else v
            for k, v in {**DATABASE_VARIABLES, **env}.items()
        }
        process_env = {**step_env(), **self.environ, **values,
                       "PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}"}
        result = subprocess.run(
            ["bash", "-c", command.text], cwd=cwd, env=process_env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300,
        )
        for line in result.stdout.rstrip().splitlines():
            self.say(f"    {line}")
        if command.expected_status is not None:
            if result.returncode != command.expected_status:
                raise ReadmeError(f"{where}: `{command.text}` exited {result.returncode}; the "
                                  f"README shows exit status {command.expected_status}")
            if "Traceback (most recent call last)" in result.stdout:
                raise ReadmeError(f"{where}: `{command.text}` failed with a traceback")
        elif command.expects_failure:
            if result.returncode == 0:
                raise ReadmeError(f"{where}: `{command.text}` succeeded; the README shows it failing")
            if "Traceback (most recent call last)" in result.stdout:
                raise ReadmeError(f"{where}: `{command.text}` failed with a traceback")
            self.say(f"    [exit status {result.returncode}, as the README shows]")
        elif result.returncode != 0:
            raise ReadmeError(f"{where}: `{command.text}` exited {result.returncode}")
        return cwd
