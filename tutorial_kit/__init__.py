"""Shared tooling for the tutorial: find a MySQL server, hand out databases, run steps.

The step folders never import this package; they only read DATABASE_URL and
DEV_DATABASE_URL. The notebooks, the tests and `make tutorial` use it.
"""

__all__ = ["NoServerError", "Server", "find_server"]


def __getattr__(name: str):
    # Loaded on first use, not with the package: `python -m tutorial_kit.tutorial` takes
    # Ctrl-C (tutorial_kit.interrupt) before SQLAlchemy is imported.
    if name in __all__:
        from tutorial_kit import mysql

        return getattr(mysql, name)
    raise AttributeError(f"module 'tutorial_kit' has no attribute {name!r}")
