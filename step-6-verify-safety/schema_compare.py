"""Describe a live schema, and list how two schemas differ: what `baseline` checks.

Compared: tables, columns (type, nullability, default, auto-increment), primary keys, indexes
(unique or not) and foreign keys (with their ON DELETE / ON UPDATE). Not compared: table options
(engine, charset, collation) and column comments.
"""

import re

from sqlalchemy import Connection, inspect

from revisions import VERSION_TABLE


def describe(connection: Connection) -> dict[str, str]:
    """Every schema object of the database, as {"column users.email": "VARCHAR(255) NOT NULL"}."""
    schema = inspect(connection)
    found = {}
    for table in schema.get_table_names():
        if table == VERSION_TABLE:
            continue
        found[f"table {table}"] = "present"
        for column in schema.get_columns(table):
            found[f"column {table}.{column['name']}"] = _column(column, connection)
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
    return found


def _column(column: dict, connection: Connection) -> str:
    kind = column["type"].compile(dialect=connection.dialect)
    # MariaDB and MySQL 5 report a display width (INTEGER(11)) that MySQL 8 dropped.
    kind = re.sub(r"^(TINYINT|SMALLINT|MEDIUMINT|INTEGER|BIGINT)\(\d+\)", r"\1", kind)
    text = f"{kind} {'NULL' if column['nullable'] else 'NOT NULL'}"
    if column["default"] is not None:
        # MariaDB says current_timestamp(), MySQL CURRENT_TIMESTAMP: the same default.
        default = re.sub(r"\(\)$", "", str(column["default"]).strip("()")).upper()
        text += f" DEFAULT {default}"
    if column.get("autoincrement") is True:
        text += " AUTO_INCREMENT"
    return text


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
