"""Compare two step folders by content, as `diff -ruN` does, file by file."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

# What running a step leaves behind, and is no part of it.
IGNORED = ("__pycache__", ".pyc", ".pytest_cache")


def files(folder: Path) -> set[str]:
    """The step's files, relative to the folder, in posix form."""
    return {
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and not any(part in p.as_posix() for part in IGNORED)
    }


def changes(old: Path, new: Path) -> dict[str, set[str]]:
    """The files `new` adds, removes and changes, compared with `old`."""
    before, after = files(old), files(new)
    return {
        "added": after - before,
        "removed": before - after,
        "changed": {n for n in before & after if (old / n).read_bytes() != (new / n).read_bytes()},
    }


@dataclass(frozen=True)
class FileChange:
    """One file that differs between two step folders, with its `diff -ruN` hunks."""

    name: str  # relative to the step folder, posix form
    kind: str  # "added", "changed" or "removed"
    plus: int  # lines added
    minus: int  # lines removed
    diff: str  # unified diff with its ---/+++ header; a new file is shown in full

    @property
    def header(self) -> str:
        """The diff's first two lines, which name the file on both sides."""
        return "".join(self.diff.splitlines(keepends=True)[:2])


def file_change(old: Path, new: Path, name: str) -> FileChange | None:
    """How `name` differs between the folders `old` and `new`; None when it does not."""
    a, b = old / name, new / name
    if a.exists() and b.exists() and a.read_bytes() == b.read_bytes():
        return None
    if not a.exists() and not b.exists():
        raise FileNotFoundError(f"{name} is in neither {old.name}/ nor {new.name}/")
    before = a.read_text().splitlines(keepends=True) if a.exists() else []
    after = b.read_text().splitlines(keepends=True) if b.exists() else []
    left = f"{old.name}/{name}" if a.exists() else "/dev/null"
    right = f"{new.name}/{name}" if b.exists() else "/dev/null"
    lines = [
        line if line.endswith("\n") else line + "\n"
        for line in difflib.unified_diff(before, after, left, right)
    ]
    if not lines:  # an empty file added or removed: diff -N shows only its name
        lines = [f"--- {left}\n", f"+++ {right}\n"]
    body = lines[2:]
    return FileChange(
        name=name,
        kind="changed" if a.exists() and b.exists() else "added" if b.exists() else "removed",
        plus=sum(1 for line in body if line.startswith("+")),
        minus=sum(1 for line in body if line.startswith("-")),
        diff="".join(lines),
    )


def file_changes(old: Path, new: Path) -> list[FileChange]:
    """Every file that differs, code first and the README last, each with its hunks."""
    names = sorted(files(old) | files(new), key=lambda n: (n == "README.md", n))
    return [c for c in (file_change(old, new, n) for n in names) if c is not None]


def unified(old: Path, new: Path) -> str:
    """`diff -ruN old new` as text; a new file is shown in full against /dev/null."""
    return "".join(c.diff for c in file_changes(old, new))
