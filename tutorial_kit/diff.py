"""Compare two step folders by content, as `diff -ru` does."""

from __future__ import annotations

import difflib
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


def unified(old: Path, new: Path) -> str:
    """`diff -ru old new` as text; a new file is shown in full against /dev/null."""
    chunks: list[str] = []
    for name in sorted(files(old) | files(new)):
        a, b = old / name, new / name
        before = a.read_text().splitlines(keepends=True) if a.exists() else []
        after = b.read_text().splitlines(keepends=True) if b.exists() else []
        if before == after:
            continue
        for line in difflib.unified_diff(
            before,
            after,
            f"{old.name}/{name}" if a.exists() else "/dev/null",
            f"{new.name}/{name}" if b.exists() else "/dev/null",
        ):
            chunks.append(line if line.endswith("\n") else line + "\n")
    return "".join(chunks)
