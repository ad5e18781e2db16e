"""Connect to the MySQL named by DATABASE_URL, or exit with one line saying what to fix."""

import os

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError

EXAMPLE = "mysql+pymysql://USER:PASSWORD@HOST:3306/DATABASE"


def connect(variable: str = "DATABASE_URL") -> Engine:
    """An engine for the database in `variable`, checked by connecting once."""
    text = os.environ.get(variable, "").strip()
    if not text:
        raise SystemExit(f"error: {variable} is not set; set it to {EXAMPLE}")
    try:
        url = make_url(text)
    except (ArgumentError, ValueError):
        # Never print the URL itself: it holds the password.
        raise SystemExit(f"error: {variable} is not a valid URL; expected {EXAMPLE}")
    if url.drivername != "mysql+pymysql":
        raise SystemExit(
            f"error: {variable} uses '{url.drivername}'; this app needs {EXAMPLE}"
        )
    if not url.database:
        raise SystemExit(f"error: {variable} names no database; expected {EXAMPLE}")

    engine = create_engine(url, pool_pre_ping=True)
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        engine.dispose()
        raise SystemExit(f"error: {explain(exc, url, variable)}") from None
    return engine


def explain(exc: OperationalError, url, variable: str) -> str:
    """Turn a PyMySQL connection error into what the reader should do about it."""
    code = exc.orig.args[0] if exc.orig and exc.orig.args else None
    where = f"{url.host}:{url.port or 3306}"
    if code in (1044, 1045):
        return (
            f"MySQL at {where} refused user '{url.username}': "
            f"check the user name and password in {variable}"
        )
    if code == 1049:
        return (
            f"database '{url.database}' does not exist on {where}: "
            f"create it (CREATE DATABASE `{url.database}`) or fix {variable}"
        )
    if code in (2002, 2003, 2005, 2006, 2013):
        return (
            f"cannot reach MySQL at {where}: start the server "
            f"(docker compose up -d --wait db) or fix the host and port in {variable}"
        )
    return f"cannot connect to MySQL at {where} (error {code}): check {variable}"
