"""The migration tool's command line: `python -m migrate generate NAME`."""

import sys

from .generate import main as generate

USAGE = "usage: python -m migrate generate NAME [--rename OLD=NEW]... [--drop OLD]..."


def main(argv: list[str]) -> None:
    match argv:
        case ["generate", *rest]:
            generate(rest)
        case ["-h" | "--help"]:
            print(USAGE)
        case _:
            raise SystemExit(f"error: {USAGE}")


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except KeyboardInterrupt:  # Ctrl-C: one line; what it made is gone (`finally` blocks)
        print("python -m migrate: interrupted", file=sys.stderr)
        sys.exit(130)
