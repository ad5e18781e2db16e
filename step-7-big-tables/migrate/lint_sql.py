"""What one statement of a revision says it does, read with sqlglot (sql.py), never guessed.

lint.py sees each statement a revision sends, and the schema before and after it. The schema
says what changed; only the statement says why: a column gone and another come is a rename
only when the statement says RENAME COLUMN or CHANGE, whatever their types. The statement also
names what no schema shows: another database (refused), an inline REFERENCES (ignored by
MySQL), the rows a DELETE or UPDATE touches.
"""

from dataclasses import dataclass, field
from functools import lru_cache

from sqlglot import exp, tokenize
from sqlglot.tokens import TokenType

from .sql import parse

# Databases a revision may read (SELECT ... FROM information_schema.TABLES), never write.
READABLE = {"information_schema", "performance_schema"}


@dataclass
class Statement:
    """What lint needs to know of one statement, whatever its kind."""

    tree: exp.Expression | None  # None when the text is not SQL at all
    table_renames: dict[str, str] = field(default_factory=dict)  # old -> new
    column_renames: dict[str, dict[str, str]] = field(default_factory=dict)  # table -> old -> new
    inline_references: list[tuple[str, str]] = field(default_factory=list)  # (table, column)
    dropped_database: str | None = None
    refusal: str | None = None  # why lint will not run it, even on its throwaway database


@lru_cache(maxsize=256)  # Alembic's and the history's own statements come back again and again
def read(sql: str, own: str = "") -> Statement:
    """`own`: the database the statement runs in; naming it is no escape (SQLAlchemy's own
    queries do)."""
    try:
        trees = parse(sql)
    except ValueError:
        return Statement(None)
    if not trees:
        return Statement(None)
    if len(trees) > 1:
        statement = Statement(trees[0])
        statement.refusal = "several statements in one call; send them one at a time"
        return statement
    tree = trees[0]
    statement = Statement(tree)
    if isinstance(tree, exp.Command):
        _read_command(sql, statement, own)
    else:
        _read_tree(tree, statement, own)
    return statement


def _read_tree(tree: exp.Expression, statement: Statement, own: str) -> None:
    kind = str(tree.args.get("kind") or "").upper()
    if isinstance(tree, exp.Drop) and kind in ("DATABASE", "SCHEMA"):
        target = tree.this or tree.args["tables"][0]
        statement.dropped_database = target.name or target.db  # sqlglot: SCHEMA x is x.
        return
    if isinstance(tree, exp.Create) and kind in ("DATABASE", "SCHEMA"):
        name = tree.this.name or tree.this.db
        statement.refusal = f"CREATE {kind} {name}: a revision creates no database"
        return
    if isinstance(tree, exp.Use):
        statement.refusal = f"USE {tree.this.name}: a revision works in the database it is given"
        return
    named = {table.db for table in tree.find_all(exp.Table) if table.db}
    named |= {column.args["db"].name for column in tree.find_all(exp.Column)
              if column.args.get("db")}
    others = sorted(name for name in named if name.lower() not in READABLE | {own.lower()})
    if others:
        statement.refusal = (f"it names database {', '.join(others)}: a revision names its "
                             "tables without their database, since it runs on whichever "
                             "database it is given")
        return
    if isinstance(tree, exp.Alter) and tree.this is not None:
        table = tree.this.name
        for action in tree.args.get("actions") or []:
            if isinstance(action, exp.AlterRename):
                statement.table_renames[table] = action.this.name
            elif isinstance(action, exp.RenameColumn):
                statement.column_renames.setdefault(table, {})[action.this.name] = action.args["to"].name
            elif isinstance(action, exp.ModifyColumn) and action.args.get("rename_from") is not None:
                old, new = action.args["rename_from"].name, action.this.name
                if old.lower() != new.lower():  # CHANGE c c ... keeps the name
                    statement.column_renames.setdefault(table, {})[old] = new
            elif isinstance(action, exp.ColumnDef) and _references(action):
                statement.inline_references.append((table, action.name))
    if isinstance(tree, exp.Create) and kind == "TABLE":
        schema = tree.this
        table = schema.this.name if isinstance(schema, exp.Schema) else schema.name
        for column in tree.find_all(exp.ColumnDef):
            if _references(column):
                statement.inline_references.append((table, column.name))


def _references(column: exp.ColumnDef) -> bool:
    return any(isinstance(c.args.get("kind"), exp.Reference)
               for c in column.args.get("constraints") or [])


def _read_command(sql: str, statement: Statement, own: str) -> None:
    """What sqlglot keeps as a plain command (RENAME TABLE, ALTER TABLE ... POINT, ALTER
    DATABASE): read from its tokens, the parser's own, so that comments and quotes are
    understood as MySQL does."""
    tokens = list(tokenize(sql, read="mysql"))
    if len(tokens) == 2 and tokens[1].token_type == TokenType.STRING:
        # The tokenizer keeps what follows a command word (RENAME) as one string: read it too.
        tokens = tokens[:1] + list(tokenize(tokens[1].text, read="mysql"))
    words = [t.text.upper() if t.token_type != TokenType.IDENTIFIER else "" for t in tokens]
    if words[:2] in (["ALTER", "DATABASE"], ["ALTER", "SCHEMA"], ["CREATE", "DATABASE"],
                     ["CREATE", "SCHEMA"]):
        statement.refusal = f"{words[0]} {words[1]}: a revision changes no database"
        return
    # schema.name anywhere: a dot between two names, not inside an expression's column.
    for i in range(1, len(tokens) - 1):
        if tokens[i].token_type == TokenType.DOT and i >= 2 and words[i - 2] in (
                "TABLE", "TO", "AS", ",", "INTO", "FROM", "JOIN", "ON", "UPDATE", "REFERENCES"):
            name = tokens[i - 1].text
            if name.lower() not in READABLE | {own.lower()}:
                statement.refusal = (f"it names database {name}: a revision names its tables "
                                     "without their database")
                return
    if words[:2] == ["RENAME", "TABLE"]:  # RENAME TABLE a TO b, c TO d
        names = [t.text for t, w in zip(tokens[2:], words[2:]) if w not in ("TO", ",")]
        for old, new in zip(names[::2], names[1::2]):
            statement.table_renames[old] = new
    elif words[:2] == ["ALTER", "TABLE"] and len(tokens) > 2:
        table = tokens[2].text
        clauses, depth, current = [], 0, []
        for token, word in zip(tokens[3:], words[3:]):
            depth += {"(": 1, ")": -1}.get(token.text, 0)
            if word == "," and depth == 0:
                clauses.append(current)
                current = []
            else:
                current.append(token)
        clauses.append(current)
        for clause in clauses:
            texts = [t.text for t in clause]
            upper = [t.upper() for t in texts]
            if upper[:2] == ["RENAME", "COLUMN"] and len(texts) >= 5:
                statement.column_renames.setdefault(table, {})[texts[2]] = texts[4]
            elif upper[:1] == ["RENAME"] and len(texts) >= 2:
                statement.table_renames[table] = texts[-1]
            elif upper[:1] == ["CHANGE"]:
                names = texts[2:4] if upper[1:2] == ["COLUMN"] else texts[1:3]
                if len(names) == 2 and names[0].lower() != names[1].lower():
                    statement.column_renames.setdefault(table, {})[names[0]] = names[1]


# --- DML: the rows a statement touches --------------------------------------------------------

@dataclass
class Change:
    """An UPDATE, DELETE or TRUNCATE of one table."""

    kind: str  # UPDATE, DELETE, TRUNCATE
    table: str
    where: exp.Expression | None
    assignments: dict[str, exp.Expression] = field(default_factory=dict)  # UPDATE's SET


def data_change(tree: exp.Expression | None) -> Change | None:
    if isinstance(tree, exp.TruncateTable):
        return Change("TRUNCATE", tree.expressions[0].name, None)
    if isinstance(tree, exp.Delete):
        table = tree.this if isinstance(tree.this, exp.Table) else tree.find(exp.Table)
        if table is None or tree.args.get("limit") is not None:
            return None
        where = tree.args.get("where")
        return Change("DELETE", table.name, where.this if where else None)
    if isinstance(tree, exp.Update) and isinstance(tree.this, exp.Table) \
            and not tree.args.get("from") and not tree.this.args.get("joins"):
        where = tree.args.get("where")
        assignments = {eq.this.name: eq.expression for eq in tree.expressions
                       if isinstance(eq, exp.EQ) and isinstance(eq.this, exp.Column)}
        return Change("UPDATE", tree.this.name, where.this if where else None, assignments)
    return None


def may_be_null(value: exp.Expression, nullable: dict[str, bool]) -> bool:
    """Whether an expression can give NULL, knowing which columns of its table can hold one
    (a column lint does not know could)."""
    if isinstance(value, exp.Null):
        return True
    if isinstance(value, exp.Literal):
        return False
    if isinstance(value, exp.Column):
        return nullable.get(value.name, True)
    if isinstance(value, exp.Paren):
        return may_be_null(value.this, nullable)
    if isinstance(value, exp.Coalesce):  # COALESCE and IFNULL
        return all(may_be_null(v, nullable) for v in [value.this, *value.expressions])
    if isinstance(value, exp.If):
        return any(may_be_null(v, nullable) for v in (value.args.get("true"),
                                                      value.args.get("false") or exp.Null()))
    if isinstance(value, exp.Case):
        branches = [i.args["true"] for i in value.args.get("ifs") or []]
        return any(may_be_null(v, nullable) for v in [*branches, value.args.get("default") or exp.Null()])
    if isinstance(value, (exp.CurrentTimestamp, exp.CurrentDate, exp.CurrentTime)):
        return False
    if isinstance(value, (exp.Subquery, exp.Select)):
        return True
    # Most functions and operators give NULL from a NULL argument, and only then.
    return any(may_be_null(v, nullable) for v in value.iter_expressions()) \
        if list(value.iter_expressions()) else True


def only_nulls(where: exp.Expression | None, column: str) -> bool:
    """WHERE absent, or `c IS NULL`: the UPDATE reaches every row where c is NULL."""
    if where is None:
        return True
    return isinstance(where, exp.Is) and isinstance(where.this, exp.Column) \
        and where.this.name == column and isinstance(where.expression, exp.Null)


# Functions that have an effect beyond their value: never evaluated against production's rows.
# RAND: a count over production would be as random as the UPDATE's choice of rows.
EFFECTS = {"SLEEP", "BENCHMARK", "GET_LOCK", "RELEASE_LOCK", "RELEASE_ALL_LOCKS", "LOAD_FILE",
           "SYS_EXEC", "NAME_CONST", "MASTER_POS_WAIT", "SOURCE_POS_WAIT", "UUID_SHORT", "RAND"}


def safe_to_evaluate(value: exp.Expression) -> bool:
    """An expression lint may put in a SELECT on production: the server's own functions,
    the table's columns and literals; no stored function, variable or subquery."""
    for node in value.walk():
        if isinstance(node, (exp.Anonymous, exp.Subquery, exp.Select, exp.Parameter,
                             exp.SessionParameter, exp.Placeholder)):
            return False
        if isinstance(node, exp.Func) and node.sql_name().upper() in EFFECTS:
            return False
        if isinstance(node, exp.Column) and (node.table or node.args.get("db")):
            return False
    return True


def sql_of(value: exp.Expression) -> str:
    return value.sql(dialect="mysql")
