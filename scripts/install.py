"""Install the pinned requirements with pip, showing its progress but not its whole log.

`make` runs this with the new virtual environment's Python:
    python scripts/install.py -r requirements.txt -e .
and, first, `python scripts/install.py --check requirements.txt` with the venv's Python when one
exists: a venv made by hand (the README's own commands) that has every pin, and this project,
installed is taken as it is, not made again.
pip's log of a first install is a few hundred lines (every package collected, the build
backend's notes on the editable install). This prints one line per phase instead, kept up to
date in place on a terminal, and the whole log only when pip fails. Standard library only: it
runs before anything is installed.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable, Iterator


def phases(lines: Iterable[str]) -> Iterator[str]:
    """The progress worth showing, from pip's log lines: what it collects, then installs."""
    collected = 0
    for line in lines:
        if line.startswith("Collecting "):
            collected += 1
            name = line.split()[1]
            yield f"collecting the requirements: {collected} ({name})"
        elif line.startswith("Installing collected packages:"):
            count = len(line.split(":", 1)[1].split(","))
            yield f"installing {count} packages"
        elif line.startswith("Successfully installed"):
            yield f"installed {len(line.split()) - 2} packages"


def missing(requirements: str) -> list[str]:
    """The pins of `requirements` (NAME[extras]==VERSION lines) not installed here, and this
    project when it is not installed; [] when everything is."""
    import re
    from importlib.metadata import PackageNotFoundError, version

    wanted = [("versioned-migrations-tutorial", None)]  # pyproject.toml's, from `-e .`
    for line in open(requirements).read().splitlines():
        line = line.split("#", 1)[0].strip()
        found = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^\]]*\])?==(\S+)", line)
        if found:
            wanted.append((found[1], found[3]))
    out = []
    for name, pinned in wanted:
        try:
            installed = version(name)
        except PackageNotFoundError:
            out.append(name)
            continue
        if pinned is not None and installed != pinned:
            out.append(f"{name}=={pinned} ({installed} installed)")
    return out


def main(args: list[str]) -> int:
    if args[:1] == ["--check"]:
        return 1 if missing(args[1]) else 0
    command = [sys.executable, "-m", "pip", "install", "--progress-bar", "off", *args]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    log: list[str] = []

    def lines() -> Iterator[str]:
        for line in process.stdout:
            log.append(line)
            yield line

    tty = sys.stdout.isatty()
    last = ""
    for status in phases(lines()):
        if tty:  # one line, rewritten in place
            print(f"\r\033[K    {status}", end="", flush=True)
        elif status.split(":")[0] != last.split(":")[0]:  # a log: each phase once
            print(f"    {status}", flush=True)
        last = status
    if tty and last:
        print()
    if process.wait() != 0:
        sys.stdout.write("".join(log))
        print(f"error: pip failed (exit {process.returncode}); its log is above", file=sys.stderr)
        return process.returncode
    if not last:
        print("    nothing to install", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
