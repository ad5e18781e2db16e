"""Describe a live schema, and list how two schemas differ: what `baseline` checks.

Compared: tables (engine, collation, comment), columns (type, nullability, default,
auto-increment, collation where it is not the table's, comment), primary keys, indexes (unique or
not), foreign keys (with ON DELETE / ON UPDATE) and CHECK constraints. Everything comes from
SQLAlchemy's reflection, which reads SHOW CREATE TABLE, so MariaDB and MySQL are read alike.
A difference is a difference in what the schema does, not in how a server prints it: INT(11) and
int, now() and CURRENT_TIMESTAMP, DEFAULT 0 and DEFAULT '0' are the same.
"""

from sqlalchemy import Connection, inspect, text

from .history import BOOKKEEPING
from .sql import canonical, column_default, column_type

NOT_COMPARED = (
    "column order, triggers, views, stored routines, partitioning, row format and "
    "AUTO_INCREMENT counters"
)


def match_defaults(dev: Connection, production: Connection) -> None:
    """Give the planning database production's default character set and collation, so that
    the tables a revision creates there get what they got in production."""
    charset, collation = production.execute(text(
        "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME "
        "FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = DATABASE()"
    )).one()
    dev.execute(text(
        f"ALTER DATABASE `{dev.engine.url.database}` CHARACTER SET {charset} COLLATE {collation}"
    ))


def describe(connection: Connection) -> dict[str, str]:
    """Every schema object of the database, as {"column users.email": "VARCHAR(255) NOT NULL"}."""
    schema = inspect(connection)
    found = {}
    for table in schema.get_table_names():
        if table in BOOKKEEPING:
            continue
        options = schema.get_table_options(table)
        collation = options.get("mysql_collate", "")
        found[f"table {table}"] = " ".join(filter(None, [
            f"ENGINE={options.get('mysql_engine', '')}",
            f"COLLATE={collation}",
            _comment(options.get("mysql_comment")),
        ]))
        for column in schema.get_columns(table):
            found[f"column {table}.{column['name']}"] = _column(column, connection, collation)
        pk = schema.get_pk_constraint(table)["constrained_columns"]
        found[f"primary key of {table}"] = f"({', '.join(pk)})"
        for index in schema.get_indexes(table):
            kind = "UNIQUE " if index["unique"] else ""
            found[f"index {table}.{index['name']}"] = f"{kind}({', '.join(index['column_names'])})"
        for fk in schema.get_foreign_keys(table):
            options = "".join(
                f" ON {event} {fk['options'][key].upper()}"
                for key, event in (("ondelete", "DELETE"), ("onupdate", "UPDATE"))
                if fk["options"].get(key)
            )
            found[f"foreign key {table}.{fk['name']}"] = (
                f"({', '.join(fk['constrained_columns'])}) REFERENCES "
                f"{fk['referred_table']} ({', '.join(fk['referred_columns'])}){options}"
            )
        for check in schema.get_check_constraints(table):
            found[f"check {table}.{check['name']}"] = canonical(check["sqltext"])
    return found


def _column(column: dict, connection: Connection, table_collation: str) -> str:
    kind = column["type"]
    # The collation is compared on its own; MariaDB and MySQL 5 report a display width
    # (INTEGER(11)) that MySQL 8 dropped.
    spelled = column_type(kind.compile(dialect=connection.dialect))
    parts = [spelled, "NULL" if column["nullable"] else "NOT NULL"]
    if column["default"] is not None:
        parts.append(f"DEFAULT {column_default(str(column['default']))}")
    if column.get("autoincrement") is True:
        parts.append("AUTO_INCREMENT")
    collation = getattr(kind, "collation", None)
    if collation and collation != table_collation:
        parts.append(f"COLLATE {collation}")
    elif getattr(kind, "charset", None) and not collation:
        parts.append(f"CHARACTER SET {kind.charset}")
    parts.append(_comment(column.get("comment")))
    return " ".join(filter(None, parts))


def _comment(comment: str | None) -> str:
    return f"COMMENT {comment!r}" if comment else ""


def differences(expected: dict[str, str], actual: dict[str, str], revision: str) -> list[str]:
    """What the live schema (`actual`) has that revision `revision` (`expected`) does not."""
    found = []
    for name in sorted(expected.keys() | actual.keys()):
        want, have = expected.get(name), actual.get(name)
        if have is None:
            found.append(f"{name} is missing (revision {revision} has {want})")
        elif want is None:
            found.append(f"{name} is not in revision {revision} (database has {have})")
        elif want != have:
            found.append(f"{name}: database has {have}, revision {revision} has {want}")
    return found
