"""What `python -m migrate lint` looks for, and how it checks a finding against the real data.

lint.py runs a revision on the dev database one statement at a time and hands this module the
schema before and after each statement. The checks below compare the two, so a finding comes
from what the revision does on MySQL, whatever Python wrote it. The codes are Atlas's
(https://atlasgo.io/lint/analyzers); MF105 (a narrowing type change) and IG101 (a lint comment
without a reason) are ours: Atlas has none for them.

Each data-dependent finding carries a `check`: read-only queries against the app's database
that say whether the revision will really fail there.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Connection, inspect, text

from .history import VERSION_TABLE

DESTRUCTIVE = {"DS101", "DS102", "DS103"}


@dataclass(frozen=True)
class Column:
    type: str  # as MySQL spells it: VARCHAR(255), INTEGER(11), DATETIME
    nullable: bool
    default: str | None
    generated: bool  # a generated (computed) column holds no data of its own
    autoincrement: bool


@dataclass(frozen=True)
class Index:
    columns: tuple[str, ...]
    unique: bool


@dataclass
class Table:
    columns: dict[str, Column]
    indexes: dict[str, Index]
    foreign_keys: set[str]


Schema = dict[str, Table]

# A data check: read-only queries on the app's database -> (what the data says, will it fail?)
Check = Callable[[Connection], tuple[str, bool]]


@dataclass
class Finding:
    code: str
    message: str
    fix: str
    table: str | None = None  # the table the data check reads
    check: Check | None = None
    line: int | None = None  # of the operation in the revision file; lint.py fills it in
    data: str | None = None  # what the data check found
    fails: bool = False  # the data check proves that the revision will fail

    @property
    def error(self) -> bool:
        return self.code in DESTRUCTIVE or self.code == "IG101" or self.fails


def snapshot(connection: Connection) -> Schema:
    """The tables of the database, with what the checks compare."""
    schema = inspect(connection)
    tables = {}
    for name in schema.get_table_names():
        if name == VERSION_TABLE:
            continue
        columns = {
            c["name"]: Column(
                type=c["type"].compile(dialect=connection.dialect),
                nullable=c["nullable"],
                default=None if c["default"] is None else str(c["default"]),
                generated="computed" in c,
                autoincrement=c.get("autoincrement") is True,
            )
            for c in schema.get_columns(name)
        }
        indexes = {
            i["name"]: Index(tuple(i["column_names"]), bool(i["unique"]))
            for i in schema.get_indexes(name)
        }
        foreign_keys = {fk["name"] for fk in schema.get_foreign_keys(name)}
        tables[name] = Table(columns, indexes, foreign_keys)
    return tables


@dataclass
class Revision:
    """What earlier statements of the same revision did, which later ones depend on."""

    existing: set[str]  # tables before the revision: a table it creates holds no rows yet
    backfilled: set[tuple[str, str]] = field(default_factory=set)  # (table, column)
    dropped_indexes: set[tuple[str, tuple[str, ...]]] = field(default_factory=set)


UPDATE = re.compile(r"\s*UPDATE\s+`?(\w+)`?\s+SET\s+(.*?)(?:\s+WHERE\s+(.*?))?\s*;?\s*$",
                    re.IGNORECASE | re.DOTALL)
DROP_SCHEMA = re.compile(r"\s*DROP\s+(?:SCHEMA|DATABASE)\s+(?:IF\s+EXISTS\s+)?`?(\w+)`?",
                         re.IGNORECASE)


def note_backfill(statement: str, revision: Revision) -> None:
    """`UPDATE t SET c = ... [WHERE c IS NULL]` fills every NULL of c: MF104 no longer applies."""
    match = UPDATE.match(statement)
    if not match:
        return
    table, assignments, where = match.groups()
    for column in re.findall(r"(?:^|,)\s*(?:`?\w+`?\.)?`?(\w+)`?\s*=", assignments):
        null_only = rf"(?:`?{table}`?\.)?`?{column}`?\s+IS\s+NULL"
        if where is None or re.fullmatch(null_only, where.strip(), re.IGNORECASE):
            revision.backfilled.add((table, column))


def dropped_schema(statement: str) -> Finding | None:
    """DS101 comes from the statement: lint never runs it, not even on the dev server."""
    match = DROP_SCHEMA.match(statement)
    if not match:
        return None
    return Finding("DS101", f'Dropping schema "{match[1]}"',
                   "dump the schema first; drop it by hand, outside the migrations")


def compare(before: Schema, after: Schema, revision: Revision) -> list[Finding]:
    """The findings of one statement, from the schema before and after it."""
    found: list[Finding] = []
    gone, new = before.keys() - after.keys(), after.keys() - before.keys()
    if len(gone) == 1 and len(new) == 1 and _same_columns(before[min(gone)], after[min(new)]):
        found.append(Finding(
            "BC101", f'Renaming table "{min(gone)}" to "{min(new)}"',
            "the app version still running during the deploy queries the old name: keep it "
            f'in the model (__tablename__ = "{min(gone)}") or rename in two releases'))
    else:
        for table in sorted(gone):
            found.append(Finding(
                "DS102", f'Dropping table "{table}"',
                "check that the table is empty, or save its rows first",
                table, lambda c, t=table: _rows_lost(c, t)))
    for table in sorted(before.keys() & after.keys()):
        found += _table_changes(table, before[table], after[table], revision)
    return found


def _same_columns(old: Table, new: Table) -> bool:
    return old.columns == new.columns


def _table_changes(table: str, old: Table, new: Table, revision: Revision) -> list[Finding]:
    found: list[Finding] = []
    existing = table in revision.existing
    lost, added = old.columns.keys() - new.columns.keys(), new.columns.keys() - old.columns.keys()
    if len(lost) == 1 and len(added) == 1 and \
            old.columns[min(lost)].type == new.columns[min(added)].type:
        found.append(Finding(
            "BC102", f'Renaming column "{min(lost)}" to "{min(added)}" of table "{table}"',
            "the app version still running during the deploy uses the old name: keep it in "
            f'the model (mapped_column("{min(lost)}", ...)) or rename in two releases'))
        lost = added = set()
    for name in sorted(lost):
        if not old.columns[name].generated:
            found.append(Finding(
                "DS103", f'Dropping non-virtual column "{name}" of table "{table}"',
                "check that no row holds a value, or save them first",
                table, lambda c, t=table, n=name: _values_lost(c, t, n)))
    for name in sorted(added):
        column = new.columns[name]
        if existing and not (column.nullable or column.default is not None
                             or column.generated or column.autoincrement):
            found.append(_not_null_added(table, name, column))
    for name in sorted(old.columns.keys() & new.columns.keys()):
        was, now = old.columns[name], new.columns[name]
        if existing and was.nullable and not now.nullable and (table, name) not in revision.backfilled:
            found.append(Finding(
                "MF104",
                f'Modifying nullable column "{name}" to non-nullable might fail in case it '
                "contains NULL values",
                f"back-fill it first, in this revision: op.execute(\"UPDATE {table} SET {name} "
                f"= ... WHERE {name} IS NULL\")",
                table, lambda c, t=table, n=name: _nulls(c, t, n)))
        if existing and was.type != now.type:
            finding = _narrowing(table, name, was.type, now.type)
            if finding:
                found.append(finding)
    for fk in sorted(old.foreign_keys - new.foreign_keys):
        found.append(Finding(
            "CD101", f'Dropping foreign-key constraint "{fk}" of table "{table}"',
            "nothing will keep the rows consistent any more: make sure the app does, or keep it"))
    for name, index in sorted(old.indexes.items()):
        if not index.unique and new.indexes.get(name) != index:
            revision.dropped_indexes.add((table, index.columns))
    for name, index in sorted(new.indexes.items()):
        was = old.indexes.get(name)
        if not index.unique or (was and was.unique) or not existing:
            continue  # (a unique index whose column was renamed is still the same index)
        columns = ", ".join(index.columns)
        if was or (table, index.columns) in revision.dropped_indexes:
            code, message = "MF102", f'Modifying index "{name}" of table "{table}" to unique'
        else:
            code, message = "MF101", f'Adding a unique index "{name}" on table "{table}"'
        found.append(Finding(
            code, f"{message} might fail in case column(s) {columns} contain duplicate entries",
            "remove the duplicates first, in this revision or an earlier one",
            table, lambda c, t=table, cols=index.columns: _duplicates(c, t, cols)))
    return found


TEMPORAL = ("DATE", "DATETIME", "TIMESTAMP", "TIME", "YEAR")


def _zero_value(kind: str) -> str:
    base = _base(kind)[0]
    if base in TEMPORAL:
        return "'0000-00-00'" if base == "DATE" else "a zero date"
    if base.startswith("ENUM"):
        return "the first ENUM value"
    if base in ("CHAR", "VARCHAR", "TEXT", "TINYTEXT", "MEDIUMTEXT", "LONGTEXT", "BINARY",
                "VARBINARY", "BLOB", "TINYBLOB", "MEDIUMBLOB", "LONGBLOB"):
        return "''"
    return "0"


def _not_null_added(table: str, name: str, column: Column) -> Finding:
    """MF103 when a strict server may refuse the zero value (dates), else MySQL's MY101."""
    zero = _zero_value(column.type)
    fix = (f"give it a server_default, or add it nullable, back-fill {table}.{name}, "
           "then make it NOT NULL in a later revision")
    if _base(column.type)[0] in TEMPORAL:
        return Finding(
            "MF103",
            f'Adding a non-nullable column "{name}" ({column.type}) without a DEFAULT to table '
            f'"{table}" might fail: a strict server refuses {zero} for the existing rows',
            fix, table, lambda c: _rows_get_zero_date(c, table, name))
    return Finding(
        "MY101",
        f'Adding a non-nullable column "{name}" ({column.type}) without a DEFAULT value '
        f"implicitly sets existing rows of {table} to {zero}",
        fix, table, lambda c: _rows_get_zero(c, table, name, zero))


def _base(kind: str) -> tuple[str, list[str], bool]:
    """("VARCHAR", ["255"], unsigned) from "VARCHAR(255)"."""
    match = re.match(r"(\w+)(?:\(([^)]*)\))?(.*)", kind)
    name, args, rest = match[1].upper(), match[2], match[3].upper()
    return name, [a.strip() for a in args.split(",")] if args else [], "UNSIGNED" in rest


INTEGERS = {"TINYINT": 8, "SMALLINT": 16, "MEDIUMINT": 24, "INTEGER": 32, "INT": 32, "BIGINT": 64}
TEXTS = {"TINYTEXT": 255, "TEXT": 65535, "MEDIUMTEXT": 16777215, "LONGTEXT": 4294967295}
STRINGS = ("CHAR", "VARCHAR")


def _narrowing(table: str, name: str, old: str, new: str) -> Finding | None:
    """MF105 (ours): a type change that not every existing value survives."""
    (was, was_args, was_unsigned), (now, now_args, now_unsigned) = _base(old), _base(new)
    check: Check | None = None
    if (was in STRINGS or was in TEXTS) and now in STRINGS:
        limit = int(now_args[0])
        if was in STRINGS and int(was_args[0]) <= limit:
            return None  # as long or longer: every value fits
        check = lambda c: _too_long(c, table, name, limit)
    elif (was in TEXTS or was in STRINGS) and now in TEXTS:
        # A character takes up to 4 bytes (utf8mb4); TEXT types count bytes.
        if TEXTS[now] >= (TEXTS[was] if was in TEXTS else 4 * int(was_args[0])):
            return None
        check = lambda c: _too_long(c, table, name, TEXTS[now], unit="bytes")
    elif was in INTEGERS and now in INTEGERS:
        bits = INTEGERS[now]
        low, high = (0, 2**bits - 1) if now_unsigned else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
        was_bits = INTEGERS[was]
        was_low, was_high = ((0, 2**was_bits - 1) if was_unsigned
                             else (-(2 ** (was_bits - 1)), 2 ** (was_bits - 1) - 1))
        if low <= was_low and was_high <= high:
            return None
        check = lambda c: _out_of_range(c, table, name, low, high)
    elif was in ("DECIMAL", "NUMERIC") and now in ("DECIMAL", "NUMERIC"):
        (p, s), (q, t) = ([int(x) for x in (args + ["0"])[:2]] for args in (was_args, now_args))
        if q - t >= p - s and t >= s:
            return None
        check = lambda c: _out_of_range(c, table, name, -(10 ** (q - t)), 10 ** (q - t), decimal=True)
    elif was == now == "ENUM":
        values = now_args
        if set(was_args) <= set(values):
            return None
        return Finding(
            "MY110", f'Removing enum values from column "{name}" of table "{table}" requires a '
            "table copy, and fails on rows holding a removed value",
            "move those rows to a value that stays first, in this revision or an earlier one",
            table, lambda c: _not_in(c, table, name, values))
    elif was == now:
        return None  # the same type with another precision or collation: nothing is cut
    return Finding(
        "MF105",
        f'Changing column "{name}" of table "{table}" from {old} to {new} might fail, or '
        "change values, where existing values do not fit the new type",
        "check the values first (lint does, with DATABASE_URL), or keep the wider type",
        table, check)


# --- Data checks: read-only queries against the app's database ----------------------------

def _strict(c: Connection) -> bool:
    mode = c.scalar(text("SELECT @@SESSION.sql_mode")) or ""
    return "STRICT_TRANS_TABLES" in mode or "STRICT_ALL_TABLES" in mode


def _count(c: Connection, table: str, where: str = "1=1") -> int:
    return c.scalar(text(f"SELECT COUNT(*) FROM `{table}` WHERE {where}"))


def _rows(n: int, table: str, has: str, have: str) -> str:
    """ "1 row of users has ...", "2 rows of users have ..." """
    return f"{n} row of {table} {has}" if n == 1 else f"{n} rows of {table} {have}"


def _nulls(c: Connection, table: str, name: str) -> tuple[str, bool]:
    n = _count(c, table, f"`{name}` IS NULL")
    if n == 0:
        return f"no row of {table} has a NULL {name}", False
    if _strict(c):
        return f"{_rows(n, table, 'has', 'have')} a NULL {name}: this revision will fail", True
    return (f"{_rows(n, table, 'has', 'have')} a NULL {name}: the server (not strict) "
            "will write the zero value instead"), False


def _duplicates(c: Connection, table: str, columns: tuple[str, ...]) -> tuple[str, bool]:
    cols = ", ".join(f"`{n}`" for n in columns)
    not_null = " AND ".join(f"`{n}` IS NOT NULL" for n in columns)  # NULLs never collide
    n = c.scalar(text(f"SELECT COUNT(*) FROM (SELECT 1 FROM `{table}` WHERE {not_null} "
                      f"GROUP BY {cols} HAVING COUNT(*) > 1) AS duplicates"))
    what = ", ".join(columns)
    if n == 0:
        return f"no duplicate ({what}) in {table}", False
    return f"{n} value{'s' if n != 1 else ''} of ({what}) appear more than once in {table}: this revision will fail", True


def _rows_get_zero(c: Connection, table: str, name: str, zero: str) -> tuple[str, bool]:
    n = _count(c, table)
    if n == 0:
        return f"{table} is empty: no row gets the zero value", False
    return f"{_rows(n, table, 'will', 'will')} get {name} = {zero}", False


def _rows_get_zero_date(c: Connection, table: str, name: str) -> tuple[str, bool]:
    n = _count(c, table)
    if n == 0:
        return f"{table} is empty: nothing to fill", False
    mode = c.scalar(text("SELECT @@SESSION.sql_mode")) or ""
    if _strict(c) and "NO_ZERO_DATE" in mode:
        return (f"{table} holds {n} row(s) and the server refuses zero dates (sql_mode): "
                "this revision will fail"), True
    return f"{_rows(n, table, 'will', 'will')} get a zero date in {name}", False


def _too_long(c: Connection, table: str, name: str, limit: int, unit: str = "characters") -> tuple[str, bool]:
    length = "CHAR_LENGTH" if unit == "characters" else "LENGTH"
    n = _count(c, table, f"{length}(`{name}`) > {limit}")
    if n == 0:
        return f"every {name} of {table} fits in {limit} {unit}", False
    return (f"{_rows(n, table, 'has', 'have')} a {name} longer than {limit} {unit}: "
            "this revision will fail"), _strict(c)


def _out_of_range(c: Connection, table: str, name: str, low: int, high: int,
                  decimal: bool = False) -> tuple[str, bool]:
    # DECIMAL(q, t) holds values strictly inside +-10^(q-t); integers their whole range.
    where = f"ABS(`{name}`) >= {high}" if decimal else f"`{name}` < {low} OR `{name}` > {high}"
    n = _count(c, table, where)
    if n == 0:
        return f"every {name} of {table} fits the new type", False
    return (f"{_rows(n, table, 'has', 'have')} a {name} out of the new type's range: "
            "this revision will fail"), _strict(c)


def _not_in(c: Connection, table: str, name: str, values: list[str]) -> tuple[str, bool]:
    n = _count(c, table, f"`{name}` NOT IN ({', '.join(values)})")
    if n == 0:
        return f"no row of {table} holds a removed value in {name}", False
    return (f"{_rows(n, table, 'holds', 'hold')} a removed value in {name}: "
            "this revision will fail"), _strict(c)


def _rows_lost(c: Connection, table: str) -> tuple[str, bool]:
    n = _count(c, table)
    return (f"{table} is empty", False) if n == 0 else (f"{table} holds {n} row(s) that would be lost", False)


def _values_lost(c: Connection, table: str, name: str) -> tuple[str, bool]:
    n = _count(c, table, f"`{name}` IS NOT NULL")
    if n == 0:
        return f"no row of {table} has a value in {name}", False
    return f"{_rows(n, table, 'holds', 'hold')} a value in {name} that would be lost", False
