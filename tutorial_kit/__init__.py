"""Shared tooling for the tutorial: find a MySQL server, hand out databases, run steps.

The step folders never import this package; they only read DATABASE_URL and
DEV_DATABASE_URL. The notebooks, the tests and `make tutorial` use it.
"""

from tutorial_kit.mysql import NoServerError, Server, find_server

__all__ = ["NoServerError", "Server", "find_server"]
