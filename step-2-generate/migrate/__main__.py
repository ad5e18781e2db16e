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
    main(sys.argv[1:])
