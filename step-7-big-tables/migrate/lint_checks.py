"""What `python -m migrate lint` looks for, and how it checks a finding against the real data.

lint.py runs a revision on the dev database one statement at a time and hands this module, for
each statement, the schema before and after it and what the statement says it does
(lint_sql.py): the schema says what changed, the statement says whether a column that went and
one that came are a rename. The revision is read as a whole: a table it creates holds no rows
yet, a column it adds and fills is no loss, a view or generated column that keeps an old name
keeps the app working. The codes are Atlas's (https://atlasgo.io/lint/analyzers); ours have
codes Atlas does not use: MF105 (narrowing), MF106 (a character set that not every value
fits), DM101-DM104 (rows deleted or overwritten), DF101 (a NOT NULL column loses its default),
IG101 (a lint comment without a reason).

Each data-dependent finding carries a `check`: read-only queries against the app's database
that say whether the revision will really fail there, or how many rows it loses.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Connection, text
from sqlglot import exp, tokenize
from sqlglot.tokens import TokenType

from .history import BOOKKEEPING
from .lint_sql import Change, Statement, may_be_null, only_nulls, safe_to_evaluate, sql_of
from .sql import parse

# Errors by default: what they lose cannot be had back.
DESTRUCTIVE = {"DS101", "DS102", "DS103", "DM101", "DM102", "DM103", "DM104"}


@dataclass(frozen=True)
class Column:
    type: str  # as the server spells it: varchar(255), int(11) unsigned, point, inet6
    nullable: bool
    default: str | None
    generated: str  # "", "VIRTUAL" or "STORED"
    autoincrement: bool
    position: int
    charset: str | None = None  # a text column's character set: utf8mb4, ascii...


@dataclass(frozen=True)
class Index:
    columns: tuple[str, ...]
    unique: bool


@dataclass
class Table:
    columns: dict[str, Column]
    indexes: dict[str, Index] = field(default_factory=dict)
    foreign_keys: dict[str, tuple[str, ...]] = field(default_factory=dict)  # name -> columns
    engine: str = ""
    partitioned: bool = False
    checked_not_null: set[str] = field(default_factory=set)  # a CHECK (c IS NOT NULL) holds


@dataclass
class Schema:
    tables: dict[str, Table]
    views: set[str]


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
    # Shown only when the data proves it (a back-fill that lint cannot prove complete alone).
    unless_data: bool = False
    column: tuple[str, str] | None = None  # (table, column) it is about

    @property
    def error(self) -> bool:
        return self.code in DESTRUCTIVE or self.code == "IG101" or self.fails


def snapshot(connection: Connection) -> Schema:
    """The database's tables and views, from information_schema: a column's type is its SQL
    text (point, inet6, geometry are compared as text like any other, never interpreted)."""
    where = "TABLE_SCHEMA = DATABASE()"
    tables: dict[str, Table] = {}
    views = set()
    for name, kind, engine, options in connection.execute(text(
            f"SELECT TABLE_NAME, TABLE_TYPE, ENGINE, CREATE_OPTIONS FROM information_schema.TABLES "
            f"WHERE {where}")):
        if kind == "VIEW":
            views.add(name)
        elif name not in BOOKKEEPING:
            tables[name] = Table({}, engine=(engine or "").upper(),
                                 partitioned="partitioned" in (options or "").lower())
    for table, name, kind, nullable, default, extra, position, charset in connection.execute(text(
            "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA, "
            f"ORDINAL_POSITION, CHARACTER_SET_NAME FROM information_schema.COLUMNS WHERE {where}")):
        if table not in tables:
            continue
        extra = (extra or "").upper()
        generated = "STORED" if "STORED" in extra or "PERSISTENT" in extra else \
            "VIRTUAL" if "VIRTUAL" in extra else ""
        # MariaDB writes a nullable column's missing default as the word NULL.
        default = None if default is None or default == "NULL" else str(default)
        tables[table].columns[name] = Column(
            str(kind), nullable == "YES", default, generated, "AUTO_INCREMENT" in extra, position,
            charset)
    parts: dict[tuple[str, str], list] = {}
    unique = {}
    for table, name, non_unique, column in connection.execute(text(
            "SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, COALESCE(COLUMN_NAME, '(expression)') "
            f"FROM information_schema.STATISTICS WHERE {where} ORDER BY SEQ_IN_INDEX")):
        parts.setdefault((table, name), []).append(column)
        unique[(table, name)] = not int(non_unique)
    for (table, name), columns in parts.items():
        if table in tables:
            tables[table].indexes[name] = Index(tuple(columns), unique[(table, name)])
    keys: dict[tuple[str, str], list] = {}
    for table, name, column in connection.execute(text(
            "SELECT TABLE_NAME, CONSTRAINT_NAME, COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE "
            f"WHERE {where} AND REFERENCED_TABLE_NAME IS NOT NULL ORDER BY ORDINAL_POSITION")):
        keys.setdefault((table, name), []).append(column)
    for (table, name), columns in keys.items():
        if table in tables:
            tables[table].foreign_keys[name] = tuple(columns)
    for table, clause in connection.execute(text(
            "SELECT t.TABLE_NAME, c.CHECK_CLAUSE FROM information_schema.TABLE_CONSTRAINTS t "
            "JOIN information_schema.CHECK_CONSTRAINTS c ON c.CONSTRAINT_SCHEMA = t.CONSTRAINT_SCHEMA "
            "AND c.CONSTRAINT_NAME = t.CONSTRAINT_NAME WHERE t.CONSTRAINT_SCHEMA = DATABASE() "
            "AND t.CONSTRAINT_TYPE = 'CHECK'")):
        column = not_null_check(clause)
        if table in tables and column:
            tables[table].checked_not_null.add(column)
    return Schema(tables, views)


def not_null_check(clause: str) -> str | None:
    """The column a CHECK clause keeps NULLs out of (`a IS NOT NULL`), read with sqlglot."""
    try:
        [tree] = parse(clause)
    except ValueError:
        return None
    while isinstance(tree, exp.Paren):
        tree = tree.this
    if isinstance(tree, exp.Not) and isinstance(tree.this, exp.Is) and \
            isinstance(tree.this.this, exp.Column) and isinstance(tree.this.expression, exp.Null):
        return tree.this.this.name
    return None


@dataclass
class Revision:
    """What the revision did so far, which the checks of its later statements depend on."""

    existing: set[str]  # tables holding rows from before the revision (by their current name)
    schema: Schema  # as the last statement left it
    added: set[tuple[str, str]] = field(default_factory=set)  # (table, column) it added
    fills: dict[tuple[str, str], list[Change]] = field(default_factory=dict)  # its UPDATEs
    dropped_unique: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)


# --- One statement --------------------------------------------------------------------------

def compare(before: Schema, after: Schema, statement: Statement, revision: Revision) -> list[Finding]:
    """The findings of one schema statement, from the schema before and after it."""
    found: list[Finding] = []
    renamed = {old: new for old, new in statement.table_renames.items()
               if old in before.tables and new in after.tables}
    for old, new in renamed.items():
        if old in revision.existing:
            revision.existing = (revision.existing - {old}) | {new}
            found.append(Finding(
                "BC101", f'Renaming table "{old}" to "{new}"',
                "the app version still running during the deploy queries the old name: keep it "
                f'(CREATE VIEW {old} AS SELECT * FROM {new}, in this revision) or rename in two releases',
                column=(old, new)))
        revision.added = {(new if t == old else t, c) for t, c in revision.added}
    gone = before.tables.keys() - after.tables.keys() - renamed.keys()
    for table in sorted(gone):
        if table in revision.existing:
            revision.existing = revision.existing - {table}
            found.append(Finding(
                "DS102", f'Dropping table "{table}"', "check that the table is empty, or save its rows first",
                table, lambda c, t=table: _rows_lost(c, t)))
    pairs = [(t, t) for t in before.tables.keys() & after.tables.keys()] + list(renamed.items())
    for old, new in sorted(pairs):
        renames = statement.column_renames.get(old) or statement.column_renames.get(new) or {}
        found += _table_changes(new, before.tables[old], after.tables[new], renames, revision)
    for table, name in statement.inline_references:
        # From the text: MySQL ignores it, MariaDB 10.5+ makes the key, so the same revision
        # gives a foreign key on one server and none on the other.
        found.append(Finding(
            "MY102", f'Defining column "{name}" on table "{table}" with inline REFERENCES is '
            "ignored by MySQL", f"declare it as a table constraint: FOREIGN KEY ({name}) "
            "REFERENCES ... (sa.ForeignKeyConstraint, or sa.ForeignKey on the column)"))
    revision.schema = after
    return found


def _table_changes(table: str, old: Table, new: Table, renames: dict[str, str],
                   revision: Revision) -> list[Finding]:
    found: list[Finding] = []
    existing = table in revision.existing
    renames = {a: b for a, b in renames.items() if a in old.columns and b in new.columns}
    for was, now in renames.items():
        if existing and (table, was) not in revision.added:
            found.append(Finding(
                "BC102", f'Renaming column "{was}" to "{now}" of table "{table}"',
                "the app version still running during the deploy uses the old name: keep it "
                f"(a generated column {was} AS ({now}), in this revision) or rename in two releases",
                column=(table, was)))
        if (table, was) in revision.added:
            revision.added = revision.added - {(table, was)} | {(table, now)}
    lost = old.columns.keys() - new.columns.keys() - renames.keys()
    added = new.columns.keys() - old.columns.keys() - set(renames.values())
    for name in sorted(lost):
        if existing and not old.columns[name].generated and (table, name) not in revision.added:
            found.append(Finding(
                "DS103", f'Dropping non-virtual column "{name}" of table "{table}"',
                "check that no row holds a value, or save them first",
                table, lambda c, t=table, n=name: _values_lost(c, t, n)))
        revision.added.discard((table, name))
    kept = [new.columns[renames.get(c, c)].position for c in old.columns if renames.get(c, c) in new.columns]
    for name in sorted(added):
        revision.added.add((table, name))
        column = new.columns[name]
        if not existing:
            continue
        if not (column.nullable or column.default is not None or column.generated
                or column.autoincrement):
            found.append(_not_null_added(table, name, column))
        if column.generated == "STORED":
            found.append(Finding(
                "MY140", f'Adding a stored generated column "{name}" to table "{table}" '
                "rewrites every row", "make it VIRTUAL, or add it while the table is small"))
        if column.autoincrement:
            found.append(Finding(
                "MY141", f'Adding an AUTO_INCREMENT column "{name}" to table "{table}" '
                "rebuilds it and numbers every row", "do it while the table is small, or in a "
                "maintenance window"))
        if any(position > column.position for position in kept):
            found.append(Finding(
                "MY142", f'Adding column "{name}" before existing columns of table "{table}" '
                "rebuilds it on servers before MySQL 8.0.29", "add it last (no FIRST or AFTER)"))
    for was_name in sorted(old.columns.keys() & new.columns.keys() | renames.keys()):
        name = renames.get(was_name, was_name)
        was, now = old.columns[was_name], new.columns[name]
        if existing and was.nullable and not now.nullable and was_name not in old.checked_not_null:
            finding = _made_not_null(table, name, was, revision)
            if finding:
                found.append(finding)
        if existing and was.default is not None and now.default is None and not now.nullable \
                and not now.autoincrement and (table, name) not in revision.added:
            found.append(Finding(
                "DF101", f'Column "{name}" of table "{table}" is NOT NULL and loses its DEFAULT: '
                "the running app's INSERTs that leave it out fail (error 1364)",
                "keep the default until no app version inserts without the column"))
        if existing and was.type.lower() != now.type.lower() and (table, name) not in revision.added:
            finding = _type_change(table, name, was.type, now.type)
            if finding:
                found.append(finding)
        if existing and was.charset and now.charset and was.charset != now.charset \
                and now.charset != "utf8mb4" and (table, name) not in revision.added:
            found.append(_charset_change(table, name, was.charset, now.charset))
        if existing and now.autoincrement and not was.autoincrement:
            found.append(Finding(
                "MY141", f'Making column "{name}" of table "{table}" AUTO_INCREMENT rebuilds the table',
                "do it while the table is small, or in a maintenance window"))
    for fk, columns in sorted(old.foreign_keys.items()):
        if existing and fk not in new.foreign_keys and all(
                renames.get(c, c) in new.columns for c in columns):
            found.append(Finding(
                "CD101", f'Dropping foreign-key constraint "{fk}" of table "{table}"',
                "nothing will keep the rows consistent any more: make sure the app does, or keep it",
                column=(table, ",".join(renames.get(c, c) for c in columns))))
    if existing:
        found += _blocking(table, old, new, renames)
    found += _indexes(table, old, new, renames, revision)
    return found


def _blocking(table: str, old: Table, new: Table, renames: dict[str, str]) -> list[Finding]:
    """Changes that rebuild the table, whatever ALGORITHM is asked: Atlas's MY137-MY139."""
    found = []
    was = old.indexes.get("PRIMARY")
    was = was and tuple(renames.get(c, c) for c in was.columns)
    now = new.indexes.get("PRIMARY")
    if was != (now and now.columns):
        found.append(Finding(
            "MY137", f'Changing the primary key of table "{table}" rebuilds it, blocking writes',
            "do it while the table is small, or with an online schema change tool"))
    if old.engine != new.engine:
        found.append(Finding(
            "MY138", f'Changing the engine of table "{table}" from {old.engine} to {new.engine} '
            "copies it, blocking writes", "keep InnoDB, or copy with an online schema change tool"))
    if old.partitioned != new.partitioned:
        what = "Partitioning" if new.partitioned else "Removing the partitioning of"
        found.append(Finding(
            "MY139", f'{what} table "{table}" copies it, blocking writes',
            "do it while the table is small, or with an online schema change tool"))
    return found


def _indexes(table: str, old: Table, new: Table, renames: dict[str, str],
             revision: Revision) -> list[Finding]:
    found = []
    moved = {name: Index(tuple(renames.get(c, c) for c in i.columns), i.unique)
             for name, i in old.indexes.items()}
    for name, index in moved.items():
        if index.unique and new.indexes.get(name) != index:
            revision.dropped_unique.append((table, index.columns))
    existing = table in revision.existing
    for name, index in sorted(new.indexes.items()):
        was = moved.get(name)
        if not index.unique or name == "PRIMARY" or (was and was.unique) or not existing:
            continue
        if index in moved.values() and was is None:
            continue  # RENAME INDEX: the same index under another name
        columns = [c for c in index.columns if (table, c) not in revision.added]
        if not columns:
            continue  # on columns this revision adds: they hold no duplicate yet
        covered = set(index.columns)
        if any(i.unique and set(i.columns) <= covered for n, i in moved.items() if n != name
               and new.indexes.get(n) == i) or any(
                t == table and set(c) <= covered for t, c in revision.dropped_unique):
            continue  # a unique index on fewer of its columns exists, or did: no duplicate
        listed = ", ".join(f'"{c}"' for c in columns)
        if was:
            code, message = "MF102", f'Modifying index "{name}" of table "{table}" to unique'
        else:
            code, message = "MF101", f'Adding a unique index "{name}" on table "{table}"'
        found.append(Finding(
            code, f"{message} might fail in case column(s) {listed} contain duplicate entries",
            "remove the duplicates first, in this revision or an earlier one",
            table, lambda c, t=table, cols=index.columns: _duplicates(c, t, cols)))
    return found


def _made_not_null(table: str, name: str, was: Column, revision: Revision) -> Finding | None:
    """MF104, unless an earlier UPDATE of this revision surely fills every NULL; with the
    data, the back-fill is played as a SELECT on production's rows in any case."""
    fills = revision.fills.get((table, name), [])
    nullable = {n: c.nullable for n, c in revision.schema.tables.get(table, Table({})).columns.items()}
    added = (table, name) in revision.added
    if added and was.default is not None:  # its default filled every row; an UPDATE may not have
        start = None
        filled = not any(may_be_null(f.assignments[name], nullable) for f in fills)
    else:
        start = exp.Null() if added else exp.column(name)
        filled = any(only_nulls(f.where, name) and not may_be_null(f.assignments[name], nullable)
                     for f in fills)
    check = None if start is None else \
        (lambda c: _nulls_after(c, table, name, start, fills))
    message = f'Modifying nullable column "{name}" to non-nullable might fail in case it ' \
              "contains NULL values"
    if fills and not filled:
        message += " (the UPDATE before it may leave some)"
    return Finding(
        "MF104", message,
        f"back-fill it first, in this revision: op.execute(\"UPDATE {table} SET {name} "
        f"= ... WHERE {name} IS NULL\")", table if check else None, check,
        unless_data=filled, column=(table, name))


def data_changes(change: Change, revision: Revision) -> list[Finding]:
    """Rows a TRUNCATE, DELETE or UPDATE of a table from before the revision loses."""
    table = change.table
    if change.kind == "UPDATE":
        for column in change.assignments:
            revision.fills.setdefault((table, column), []).append(change)
    if table not in revision.existing:
        return []
    where = change.where
    if change.kind == "TRUNCATE":
        return [Finding("DM101", f'Truncating table "{table}" deletes every row',
                        "save the rows first, or delete only those meant to go (DELETE ... WHERE)",
                        table, lambda c: _rows_lost(c, table))]
    if change.kind == "DELETE":
        if where is not None:
            return []
        return [Finding("DM102", f'DELETE without WHERE deletes every row of table "{table}"',
                        "add the WHERE that selects the rows meant to go",
                        table, lambda c: _rows_lost(c, table))]
    found = []
    for column, value in change.assignments.items():
        if (table, column) in revision.added:
            continue  # filling a column this revision added
        if any(isinstance(c, exp.Column) and c.name == column for c in value.find_all(exp.Column)):
            continue  # computed from the old value (COALESCE(c, ''), c + 1): not a loss
        if isinstance(value, exp.Null) and not (where is not None and only_nulls(where, column)):
            found.append(Finding(
                "DM104", f'UPDATE sets column "{column}" of table "{table}" to NULL',
                "save the values first, or keep them", table,
                lambda c, col=column: _values_overwritten(c, table, col, where, None)))
        elif where is None:
            found.append(Finding(
                "DM103", f'UPDATE without WHERE overwrites column "{column}" of every row of '
                f'table "{table}"', f"add a WHERE (e.g. WHERE {column} IS NULL for a back-fill)",
                table, lambda c, col=column, v=value: _values_overwritten(c, table, col, None, v)))
    return found


def finish(findings: list[Finding], revision: Revision) -> list[Finding]:
    """What only the whole revision shows: a shim that keeps an old name (a view for a renamed
    table, a generated column for a renamed column), and a column added NOT NULL that a later
    UPDATE fills (Atlas: MY101 no longer applies)."""
    final = revision.schema
    kept = []
    for finding in findings:
        if finding.code == "BC101" and finding.column and finding.column[0] in final.views:
            continue
        if finding.code == "BC102" and finding.column:
            table = final.tables.get(finding.column[0])
            column = table and table.columns.get(finding.column[1])
            if column and column.generated:
                continue
        if finding.code == "CD101" and finding.column:  # its columns dropped later: DS103 says it
            table = final.tables.get(finding.column[0])
            if table is None or not set(finding.column[1].split(",")) & table.columns.keys():
                continue
        if finding.code == "MY101" and finding.column:
            zero = _zero_literal(finding.column, revision)
            if any(f.where is None or (isinstance(f.where, exp.EQ) and isinstance(f.where.this, exp.Column)
                                       and f.where.this.name == finding.column[1]
                                       and sql_of(f.where.expression) == zero)
                   for f in revision.fills.get(finding.column, [])):
                continue
        kept.append(finding)
    return kept


def _zero_literal(column: tuple[str, str], revision: Revision) -> str:
    kind = revision.schema.tables.get(column[0], Table({})).columns.get(column[1])
    return "''" if kind and _base(kind.type)[0] in STRINGS + tuple(TEXTS) else "0"


# --- Types ----------------------------------------------------------------------------------

TEMPORAL = ("DATE", "DATETIME", "TIMESTAMP", "TIME", "YEAR")
ZERO_DATES = ("DATE", "DATETIME", "TIMESTAMP")  # zero values that NO_ZERO_DATE refuses
INTEGERS = {"TINYINT": 8, "SMALLINT": 16, "MEDIUMINT": 24, "INTEGER": 32, "INT": 32, "BIGINT": 64}
TEXTS = {"TINYTEXT": 255, "TEXT": 65535, "MEDIUMTEXT": 16777215, "LONGTEXT": 4294967295}
STRINGS = ("CHAR", "VARCHAR")


def _base(kind: str) -> tuple[str, list[str], bool]:
    """("VARCHAR", ["255"], unsigned) from "varchar(255)", read with sqlglot's tokenizer; a type
    it cannot read comes back whole as its name."""
    try:
        tokens = list(tokenize(kind, read="mysql"))
    except Exception:
        return kind.upper(), [], False
    if not tokens:
        return kind.upper(), [], False
    args, depth, rest = [], 0, []
    for token in tokens[1:]:
        if token.text == "(":
            depth += 1
        elif token.text == ")":
            depth -= 1
        elif depth == 1 and token.token_type != TokenType.COMMA:
            args.append(token.text)
        elif depth == 0:
            rest.append(token.text.upper())
    return tokens[0].text.upper(), args, "UNSIGNED" in rest


def _type_change(table: str, name: str, old: str, new: str) -> Finding | None:
    (was, was_args, _), (now, now_args, _) = _base(old), _base(new)
    if was == now and was in ("ENUM", "SET"):
        return _members(table, name, was, was_args, now_args)
    return _narrowing(table, name, old, new)


def _members(table: str, name: str, kind: str, old: list[str], new: list[str]) -> Finding | None:
    """MY110-MY113 (ENUM), MY120-MY123 (SET): only values appended at the end are free."""
    base = 110 if kind == "ENUM" else 120
    where = f'column "{name}" of table "{table}"'
    if set(old) - set(new):
        return Finding(
            f"MY{base}", f"Removing {kind.lower()} values from {where} requires a table copy, and "
            "fails on rows holding a removed value",
            "move those rows to a value that stays first, in this revision or an earlier one",
            table, lambda c: _not_in(c, table, name, new, kind))
    if new[:len(old)] == old:
        limit = 256 if kind == "ENUM" else 8
        if kind == "ENUM" and len(old) <= 255 < len(new) or \
                kind == "SET" and (len(old) + 7) // 8 != (len(new) + 7) // 8:
            return Finding(
                f"MY{base + 3}", f"Growing {where} past {limit if kind == 'ENUM' else 'a multiple of 8'} "
                f"{kind.lower()} values changes its storage size and requires a table copy",
                "keep the number of values under the limit, or plan the copy")
        return None
    if [v for v in new if v in old] == old:
        return Finding(
            f"MY{base + 2}", f"Inserting {kind.lower()} values before the end of {where} requires "
            "a table copy, and changes what its values sort and compare as",
            "append new values at the end of the list")
    return Finding(
        f"MY{base + 1}", f"Reordering {kind.lower()} values of {where} requires a table copy, and "
        "changes what the stored values mean", "keep the order; append new values at the end")


def _narrowing(table: str, name: str, old: str, new: str) -> Finding | None:
    """MF105 (ours): a type change that not every existing value survives."""
    (was, was_args, was_unsigned), (now, now_args, now_unsigned) = _base(old), _base(new)
    check: Check | None = None
    try:
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
            low, high = _range(now, now_unsigned)
            was_low, was_high = _range(was, was_unsigned)
            if low <= was_low and was_high <= high:
                return None
            check = lambda c: _out_of_range(c, table, name, low, high)
        elif was in ("DECIMAL", "NUMERIC") and now in ("DECIMAL", "NUMERIC"):
            (p, s), (q, t) = ([int(x) for x in (args + ["10", "0"][len(args):])[:2]]
                              for args in (was_args, now_args))
            if q - t >= p - s and t >= s:
                return None
            check = lambda c: _out_of_range(c, table, name, -(10 ** (q - t)), 10 ** (q - t), decimal=True)
        elif was == now or not ({was, now} <= KNOWN):
            return None  # another precision or display width; or a type lint does not know
    except (ValueError, IndexError):
        return None  # arguments lint cannot read: compared as text only
    return Finding(
        "MF105",
        f'Changing column "{name}" of table "{table}" from {old} to {new} might fail, or '
        "change values, where existing values do not fit the new type",
        "check the values first (lint does, with DATABASE_URL), or keep the wider type",
        table, check)


def _charset_change(table: str, name: str, old: str, new: str) -> Finding:
    """MF106 (ours): a character set that cannot hold every character of the old one (utf8mb4
    holds them all). In strict mode the ALTER fails on the first such value (error 1366),
    otherwise it turns each one into '?'."""
    return Finding(
        "MF106",
        f'Changing the character set of column "{name}" of table "{table}" from {old} to '
        f"{new} might fail, or turn characters into '?', where a value has characters {new} "
        "cannot hold",
        "check the values first (lint does, with DATABASE_URL), or keep the character set",
        table, lambda c: _not_representable(c, table, name, old, new))


SPATIAL = {"POINT", "GEOMETRY", "LINESTRING", "POLYGON", "MULTIPOINT", "MULTILINESTRING",
           "MULTIPOLYGON", "GEOMETRYCOLLECTION", "GEOMCOLLECTION"}
KNOWN = set(INTEGERS) | set(TEXTS) | set(STRINGS) | set(TEMPORAL) | {
    "DECIMAL", "NUMERIC", "FLOAT", "DOUBLE", "REAL", "BIT", "BINARY", "VARBINARY", "BLOB",
    "TINYBLOB", "MEDIUMBLOB", "LONGBLOB", "JSON", "ENUM", "SET", "BOOL", "BOOLEAN"}


def _range(kind: str, unsigned: bool) -> tuple[int, int]:
    bits = INTEGERS[kind]
    return (0, 2**bits - 1) if unsigned else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


def _zero_value(kind: str) -> str:
    base = _base(kind)[0]
    if base in ZERO_DATES:
        return "'0000-00-00'" if base == "DATE" else "a zero date"
    if base == "TIME":
        return "'00:00:00'"
    if base == "ENUM":
        return "the first ENUM value"
    if base in STRINGS or base in TEXTS or base in ("BINARY", "VARBINARY", "BLOB", "TINYBLOB",
                                                    "MEDIUMBLOB", "LONGBLOB", "SET"):
        return "''"
    return "0"


def _not_null_added(table: str, name: str, column: Column) -> Finding:
    """MF103 when a strict server may refuse the zero value (dates), else MySQL's MY101."""
    zero = _zero_value(column.type)
    fix = (f"give it a server_default, or add it nullable, back-fill {table}.{name}, "
           "then make it NOT NULL")
    if _base(column.type)[0] in SPATIAL:
        return Finding(
            "MF103",
            f'Adding a non-nullable column "{name}" ({column.type}) without a DEFAULT to table '
            f'"{table}" fails on MySQL when the table holds rows: a geometry has no zero value',
            fix, table, lambda c: _rows_get_no_geometry(c, table, name), column=(table, name))
    if _base(column.type)[0] in ZERO_DATES:
        return Finding(
            "MF103",
            f'Adding a non-nullable column "{name}" ({column.type}) without a DEFAULT to table '
            f'"{table}" might fail: a strict server refuses {zero} for the existing rows',
            fix, table, lambda c: _rows_get_zero_date(c, table, name), column=(table, name))
    return Finding(
        "MY101",
        f'Adding a non-nullable column "{name}" ({column.type}) without a DEFAULT value '
        f"implicitly sets existing rows of {table} to {zero}",
        fix, table, lambda c: _rows_get_zero(c, table, name, zero), column=(table, name))


# --- Data checks: read-only queries against the app's database ----------------------------

def _strict(c: Connection) -> bool:
    mode = c.scalar(text("SELECT @@SESSION.sql_mode")) or ""
    return "STRICT_TRANS_TABLES" in mode or "STRICT_ALL_TABLES" in mode


def _count(c: Connection, table: str, where: exp.Expression | str = "1=1") -> int:
    condition = sql_of(where) if isinstance(where, exp.Expression) else where
    return c.scalar(text(f"SELECT COUNT(*) FROM `{table}` WHERE {condition}"))


def _rows(n: int, table: str, has: str, have: str) -> str:
    """ "1 row of users has ...", "2 rows of users have ..." """
    return f"{n} row of {table} {has}" if n == 1 else f"{n} rows of {table} {have}"


def _nulls_after(c: Connection, table: str, name: str, start: exp.Expression,
                 fills: list[Change]) -> tuple[str, bool]:
    """The back-fill played on production's rows as a SELECT: each UPDATE of the column, in
    order, becomes CASE WHEN its WHERE THEN its value ELSE what the column held before."""
    value = start
    for fill in fills:
        parts = [fill.assignments[name]] + ([fill.where] if fill.where is not None else [])
        if not all(safe_to_evaluate(p) for p in parts):
            return (f"could not check: the back-fill's UPDATE calls what lint will not run on "
                    f"production ({sql_of(fill.assignments[name])})"), False
        value = fill.assignments[name] if fill.where is None else \
            exp.Case(ifs=[exp.If(this=fill.where.copy(), true=fill.assignments[name].copy())],
                     default=value)
    n = _count(c, table, exp.Is(this=exp.Paren(this=value), expression=exp.Null()))
    filled = " after the back-fill" if fills else ""
    if n == 0:
        return f"no row of {table} has a NULL {name}{filled}", False
    if _strict(c):
        return f"{_rows(n, table, 'has', 'have')} a NULL {name}{filled}: this revision will fail", True
    return (f"{_rows(n, table, 'has', 'have')} a NULL {name}{filled}: the server (not strict) "
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


def _rows_get_no_geometry(c: Connection, table: str, name: str) -> tuple[str, bool]:
    n = _count(c, table)
    if n == 0:
        return f"{table} is empty: nothing to fill", False
    if "mariadb" in (c.scalar(text("SELECT VERSION()")) or "").lower():
        return f"{_rows(n, table, 'will', 'will')} get an empty value in {name} (MariaDB)", False
    return f"{table} holds {n} row(s) and MySQL has no zero geometry: this revision will fail", True


def _too_long(c: Connection, table: str, name: str, limit: int, unit: str = "characters") -> tuple[str, bool]:
    length = "CHAR_LENGTH" if unit == "characters" else "LENGTH"
    n = _count(c, table, f"{length}(`{name}`) > {limit}")
    if n == 0:
        return f"every {name} of {table} fits in {limit} {unit}", False
    return (f"{_rows(n, table, 'has', 'have')} a {name} longer than {limit} {unit}: "
            "this revision will fail"), _strict(c)


def _not_representable(c: Connection, table: str, name: str, old: str, new: str) -> tuple[str, bool]:
    # A value survives the trip to the new character set and back, byte for byte, or it does not.
    # The names come from information_schema, the server's own: no quoting needed.
    trip = f"CONVERT(CONVERT(`{name}` USING {new}) USING {old})"
    n = _count(c, table, f"CAST({trip} AS BINARY) <> CAST(`{name}` AS BINARY)")
    if n == 0:
        return f"every {name} of {table} is written in characters {new} holds", False
    strict = _strict(c)
    article = "an" if name[:1].lower() in "aeiou" else "a"
    return (f"{_rows(n, table, 'has', 'have')} {article} {name} with characters {new} cannot hold: "
            + ("this revision will fail" if strict else "they will become '?'")), strict


def _out_of_range(c: Connection, table: str, name: str, low: int, high: int,
                  decimal: bool = False) -> tuple[str, bool]:
    # DECIMAL(q, t) holds values strictly inside +-10^(q-t); integers their whole range.
    where = f"ABS(`{name}`) >= {high}" if decimal else f"`{name}` < {low} OR `{name}` > {high}"
    n = _count(c, table, where)
    if n == 0:
        return f"every {name} of {table} fits the new type", False
    return (f"{_rows(n, table, 'has', 'have')} a {name} out of the new type's range: "
            "this revision will fail"), _strict(c)


def _not_in(c: Connection, table: str, name: str, values: list[str], kind: str) -> tuple[str, bool]:
    if kind == "SET":  # a SET value holds several members: it fails when one of them goes
        where = " OR ".join(
            f"FIND_IN_SET({exp.Literal.string(v).sql('mysql')}, `{name}`) > 0"
            for v in _removed_members(c, table, name, values)) or "1=0"
    else:
        listed = ", ".join(exp.Literal.string(v).sql("mysql") for v in values)
        where = f"`{name}` NOT IN ({listed})"
    n = _count(c, table, where)
    if n == 0:
        return f"no row of {table} holds a removed value in {name}", False
    return (f"{_rows(n, table, 'holds', 'hold')} a removed value in {name}: "
            "this revision will fail"), _strict(c)


def _removed_members(c: Connection, table: str, name: str, values: list[str]) -> list[str]:
    kind = c.scalar(text("SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE "
                         "TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :t AND COLUMN_NAME = :c"),
                    {"t": table, "c": name}) or ""
    return [v for v in _base(kind)[1] if v not in values]


def _rows_lost(c: Connection, table: str) -> tuple[str, bool]:
    n = _count(c, table)
    return (f"{table} is empty", False) if n == 0 else (f"{table} holds {n} row(s) that would be lost", False)


def _values_lost(c: Connection, table: str, name: str) -> tuple[str, bool]:
    n = _count(c, table, f"`{name}` IS NOT NULL")
    if n == 0:
        return f"no row of {table} has a value in {name}", False
    return f"{_rows(n, table, 'holds', 'hold')} a value in {name} that would be lost", False


def _values_overwritten(c: Connection, table: str, name: str, where: exp.Expression | None,
                        value: exp.Expression | None) -> tuple[str, bool]:
    """How many rows hold a value in `name` that the UPDATE replaces by another (or NULL)."""
    parts = [p for p in (where, value) if p is not None]
    if not all(safe_to_evaluate(p) for p in parts):
        return "could not check: the UPDATE calls what lint will not run on production", False
    condition: exp.Expression = exp.Not(this=exp.Is(this=exp.column(name), expression=exp.Null()))
    if where is not None:
        condition = exp.and_(exp.Paren(this=where.copy()), condition)
    if value is not None:  # NULL-safe "differs": NOT (old <=> new)
        condition = exp.and_(condition, exp.Not(this=exp.NullSafeEQ(
            this=exp.column(name), expression=value.copy())))
    n = _count(c, table, condition)
    if n == 0:
        return f"no row of {table} loses a value in {name}", False
    return f"{_rows(n, table, 'loses', 'lose')} its value in {name}", False
