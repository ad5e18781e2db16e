"""Ctrl-C on the kit's commands: one line, and out, from the first moment.

Python turns Ctrl-C into KeyboardInterrupt, with a traceback wherever it lands, the imports of
SQLAlchemy and Jupyter included. `make tutorial` and `python -m tutorial_kit` call
`until_ready()` before those imports: until they take Ctrl-C themselves (`ready()`), it prints
one line and exits, having started nothing yet. Standard library only, so it loads first.
"""

from __future__ import annotations

import os
import signal
import sys


def exit_status() -> int:
    """130, as a shell reports a Ctrl-C; 0 under make, which got the Ctrl-C too and reports it
    by its own status: a non-zero one here would only add make's "*** Error 130" line."""
    return 0 if os.environ.get("MAKELEVEL") else 130


def until_ready(name: str) -> None:
    def stop(signum, frame) -> None:
        print(f"{name}: interrupted; stopped.", file=sys.stderr, flush=True)
        os._exit(exit_status())

    signal.signal(signal.SIGINT, stop)


def ready() -> None:
    """From here on, Ctrl-C is Python's KeyboardInterrupt again, for the command to handle."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
