"""Connect to the MySQL named by DATABASE_URL, or exit with one line saying what to fix."""

import os

from sqlalchemy import URL, Engine, create_engine, pool
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

EXAMPLE = "mysql+pymysql://USER:PASSWORD@HOST:3306/DATABASE"
ENCODE = "percent-encode them (@ as %40, : as %3A, / as %2F, # as %23, % as %25)"
TIMEOUT = 10  # seconds for a MySQL server to answer a new connection, unless the URL says
# otherwise: ...?connect_timeout=30, PyMySQL's own name for it


def connect(variable: str = "DATABASE_URL") -> Engine:
    """An engine for the database in `variable`, checked by connecting once."""
    text = os.environ.get(variable, "").strip()
    if not text:
        raise SystemExit(f"error: {variable} is not set; set it to {EXAMPLE}")
    # SQLAlchemy takes everything up to the first @ as USER:PASSWORD, so a password holding
    # an @ would spill into the host name, and from there into our messages.
    if text.partition("://")[2].count("@") > 1:
        raise SystemExit(
            f"error: {variable} holds more than one @: in the user name and password, {ENCODE}"
        )
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
    timeout = connect_timeout(url)
    if timeout is None:
        raise SystemExit(f"error: {variable}'s connect_timeout must be a whole number of seconds, 1 or more")

    # Check with a timeout on every read, so that a port where something other than MySQL
    # listens fails in seconds instead of waiting forever. Only for this check: on the app's
    # engine a read timeout would also cut off a long query, such as a migration's ALTER TABLE.
    probe = create_engine(
        url,
        poolclass=pool.NullPool,
        connect_args={"connect_timeout": timeout, "read_timeout": timeout},
    )
    try:
        with probe.connect():
            pass
    except DBAPIError as exc:
        raise SystemExit(f"error: {explain(exc, url, variable, text)}") from None
    finally:
        probe.dispose()
    return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": timeout})


def connect_timeout(url: URL) -> int | None:
    """The URL's ?connect_timeout= (seconds), else TIMEOUT; None when it is no whole number."""
    value = url.query.get("connect_timeout", str(TIMEOUT))
    # PyMySQL takes 1 s to a year; a repeated parameter arrives as a tuple.
    if not isinstance(value, str) or not value.isdigit() or not 0 < int(value) <= 31536000:
        return None
    return int(value)


def error_code(exc: DBAPIError) -> int | None:
    code = exc.orig.args[0] if exc.orig is not None and exc.orig.args else None
    return code if isinstance(code, int) else None


def explain(exc: DBAPIError, url: URL, variable: str, raw: str = "") -> str:
    """Turn a PyMySQL connection error into what the reader should do about it."""
    code = error_code(exc)
    where = f"{url.host}:{url.port or 3306}"
    if code == 1045:
        # "p%41ss" reads as "pAss": a % in the password must be encoded too.
        userinfo = raw.partition("://")[2].rpartition("@")[0]
        hint = f"; if the password holds @ : / # %, {ENCODE}" if "%" in userinfo else ""
        return (
            f"MySQL at {where} refused user '{url.username}': "
            f"check the user name and password in {variable}{hint}"
        )
    if code == 1044:
        return (
            f"user '{url.username}' may not use database '{url.database}' on {where}: "
            f"grant it (GRANT ALL ON `{url.database}`.* TO ...) or fix {variable}"
        )
    if code == 1049:
        return (
            f"database '{url.database}' does not exist on {where}: "
            f"create it (CREATE DATABASE `{url.database}`) or fix {variable}"
        )
    if code == 2013 and "timed out" in str(exc.orig):
        return (
            f"no MySQL answered at {where} within {connect_timeout(url)} s; something else may listen "
            f"there: fix the host and port in {variable}"
        )
    if code in (2002, 2003, 2005, 2006, 2013):
        return (
            f"cannot reach MySQL at {where}: start the server "
            f"(docker compose up -d --wait db) or fix the host and port in {variable}"
        )
    if code is None:  # not even a MySQL error: another protocol answered
        return f"what answers at {where} is not MySQL: fix the host and port in {variable}"
    return f"cannot connect to MySQL at {where} (error {code}): check {variable}"


def connection_lost(exc: DBAPIError, url: URL) -> str | None:
    """One line when the connection broke while in use (server stopped, network cut, KILL).

    None for any other error, which the caller reports its own way. MySQL DDL is not
    transactional: what ran before the break stays applied, so the caller should add where
    to look, e.g. "run `python -m migrate status`".
    """
    code = error_code(exc)
    # Gone away, lost during a query, lost on reading, killed, server shut down.
    if code not in (2006, 2013, 2055, 1927, 1053):
        return None
    return (
        f"lost the connection to MySQL at {url.host}:{url.port or 3306} (error {code}) "
        "while working; what ran before that stays applied"
    )
