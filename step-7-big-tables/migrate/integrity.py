"""migrations/revisions.sum: the checksum file of the revisions, like Atlas's atlas.sum.

One line per revision file, in file-name order (names start with the time, so that is the order
they were planned in), with a hash that covers that file and every file before it, names and
contents; a first line sums them all. A revision added, edited or removed without re-hashing
then shows up, and two branches that each add a revision both change the first line and add a
line after the same last one: git reports a conflict instead of merging two heads quietly.
"""

import base64
import hashlib
from pathlib import Path

from . import APP_DIR

MIGRATIONS = APP_DIR / "migrations"
SUM_FILE = MIGRATIONS / "revisions.sum"


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def compute(migrations: Path = MIGRATIONS) -> list[tuple[str, str]]:
    """(file name, chained hash) for each revision file, oldest first."""
    running = hashlib.sha256()
    entries = []
    for path in sorted((migrations / "versions").glob("*.py")):
        running.update(path.name.encode())
        running.update(path.read_bytes())
        entries.append((path.name, _b64(running.copy().digest())))
    return entries


def render(entries: list[tuple[str, str]]) -> str:
    total = hashlib.sha256()
    for name, digest in entries:
        total.update(name.encode())
        total.update(digest.encode())
    lines = [f"h1:{_b64(total.digest())}"] + [f"{name} h1:{digest}" for name, digest in entries]
    return "\n".join(lines) + "\n"


def write(migrations: Path = MIGRATIONS) -> None:
    """Re-hash: record the revision files as they are now."""
    (migrations / SUM_FILE.name).write_text(render(compute(migrations)))


def mismatches(migrations: Path = MIGRATIONS) -> list[str]:
    """How the revision files differ from what revisions.sum recorded, as Atlas says it:
    "L3: 20261127093000_seed_users.py was edited". Empty when they agree."""
    path = migrations / SUM_FILE.name
    if not path.exists():
        return [f"{path.name} is missing"]
    lines = path.read_text().splitlines()
    recorded = {}
    for number, line in enumerate(lines[1:], start=2):
        name, _, digest = line.rpartition(" h1:")
        recorded[name] = (number, digest)
    found = []
    computed = compute(migrations)
    names = [name for name, _ in computed]
    for name, (number, _) in recorded.items():
        if name not in names:
            found.append(f"L{number}: {name} was removed")
    for name, digest in computed:
        if name not in recorded:
            found.append(f"{name} was added")
        elif recorded[name][1] != digest and not found:
            # Each hash covers the files before it: only the first changed file can be named.
            found.append(f"L{recorded[name][0]}: {name} was edited")
    if not found and lines[:1] != [render(computed).splitlines()[0]]:
        found.append(f"L1: the sum of {path.name} was edited")
    return found
