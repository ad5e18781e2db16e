"""Read SQL as SQL: what a statement is, from sqlglot's MySQL parser, never from its first word.

A leading comment (`/* step 2 */ ALTER TABLE ...`), several statements in one string or a quoted
name fool a look at the text; the parser reads them as MySQL does.
"""

import logging

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

# sqlglot warns each time it keeps a statement it cannot read in full (RENAME TABLE, a column
# type it does not know) as a plain command; that is enough here, so keep it quiet.
logging.getLogger("sqlglot").setLevel(logging.ERROR)

# MySQL commits before and after each of these, so they cannot be rolled back.
IMPLICIT_COMMIT = {
    "ALTER", "CREATE", "DROP", "RENAME", "TRUNCATE", "GRANT", "REVOKE", "LOCK", "UNLOCK",
    "ANALYZE", "OPTIMIZE", "REPAIR", "INSTALL", "UNINSTALL",
}
READS = {"SELECT", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "WITH", "VALUES", "TABLE"}
KEYWORDS = {
    exp.Alter: "ALTER", exp.Create: "CREATE", exp.Drop: "DROP", exp.TruncateTable: "TRUNCATE",
    exp.Insert: "INSERT", exp.Update: "UPDATE", exp.Delete: "DELETE", exp.Query: "SELECT",
    exp.Show: "SHOW", exp.Describe: "DESCRIBE", exp.Set: "SET",
}


def parse(sql: str) -> list[exp.Expression]:
    """The statements in `sql`, each parsed; one sqlglot cannot read in full comes back as a
    Command holding its first keyword. Empty for a text of comments alone. Raises ValueError
    when the text is not SQL at all (an unclosed quote)."""
    try:
        return [tree for tree in sqlglot.parse(sql, read="mysql") if tree is not None]
    except (ParseError, TokenError) as exc:
        try:  # still tokenizes: keep its first keyword, as sqlglot does for what it cannot read
            tokens = sqlglot.tokenize(sql, read="mysql")
        except TokenError:
            raise ValueError(f"not SQL: {exc}") from None
        return [exp.Command(this=tokens[0].text.upper())] if tokens else []


def keyword(statement: str | exp.Expression) -> str:
    """What the statement does, as its leading keyword: "ALTER", "INSERT", "SELECT"...; "" for
    comments alone, or for text that is not SQL."""
    try:
        trees = parse(statement) if isinstance(statement, str) else [statement]
    except ValueError:
        return ""
    if not trees:
        return ""
    tree = trees[0]
    if isinstance(tree, exp.Command):
        return str(tree.this).split()[0].upper()
    for kind, word in KEYWORDS.items():
        if isinstance(tree, kind):
            return word
    return tree.key.upper()


def commits_implicitly(statement: str | exp.Expression) -> bool:
    """DDL and the like: MySQL commits before it runs, and it stays done whatever follows."""
    return keyword(statement) in IMPLICIT_COMMIT


def reads_only(statement: str | exp.Expression) -> bool:
    return keyword(statement) in READS


def tables(statement: str | exp.Expression) -> set[str]:
    """The names of the tables a statement names (without their schema), in lower case; empty
    for one sqlglot could not read in full."""
    try:
        trees = parse(statement) if isinstance(statement, str) else [statement]
    except ValueError:
        return set()
    return {table.name.lower() for tree in trees for table in tree.find_all(exp.Table)}


def canonical(expression: str) -> str:
    """An SQL expression (a CHECK constraint's) in one spelling: servers store the same CHECK
    with their own quoting, parentheses and character-set marks (MySQL: `email` like
    _utf8mb4'%@%'; MariaDB: `email` like '%@%'). The text itself, tidied, if it is not SQL."""
    try:
        tree = sqlglot.parse_one(expression, read="mysql")
    except (ParseError, TokenError):
        return " ".join(expression.split())

    def tidy(node: exp.Expression) -> exp.Expression:
        # _utf8mb4'x' -> 'x': the character set of the client that sent it. Not _binary'x',
        # which makes the comparison byte by byte.
        if isinstance(node, exp.Introducer) and str(node.this).lower() != "_binary":
            return node.expression
        if isinstance(node, exp.Identifier):
            node.set("quoted", False)
        # Parentheses around parentheses, or around a comparison inside AND, OR or NOT,
        # change nothing.
        if isinstance(node, exp.Paren) and (
            isinstance(node.this, exp.Paren)
            or isinstance(node.this, (exp.Predicate, exp.Column))
            and isinstance(node.parent, (exp.Connector, exp.Not))
        ):
            return node.this
        return node

    text = None
    while text != (text := tree.sql(dialect="mysql")):  # until nothing is left to tidy
        tree = tree.transform(tidy)
        while isinstance(tree, exp.Paren):
            tree = tree.this
    return text


def column_type(spelled: str) -> str:
    """A column type in one spelling: without its character set and collation (compared on
    their own), and without the display width MariaDB and MySQL 5 give integers (INT(11)),
    which MySQL 8 dropped. The text itself if sqlglot does not know the type (POINT, INET6)."""
    try:
        kind = exp.DataType.build(spelled, dialect="mysql")
    except (ParseError, TokenError, ValueError):
        return spelled
    if kind.this in exp.DataType.INTEGER_TYPES and kind.this != exp.DataType.Type.BIT:  # BIT(8): a size
        kind.set("expressions", [])
    return kind.sql(dialect="mysql")


# What each server writes for "the time of the insert": now(), CURRENT_TIMESTAMP, current_timestamp()
NOW = (exp.CurrentTimestamp, exp.Localtime, exp.Localtimestamp)


def column_default(value: str) -> str:
    """A column default in one spelling: MySQL 8 puts expressions in parentheses, MariaDB writes
    current_timestamp() where MySQL writes CURRENT_TIMESTAMP and models now(), MySQL quotes
    numbers (DEFAULT '0')."""
    try:
        tree = sqlglot.parse_one(value, read="mysql")
    except (ParseError, TokenError):
        return " ".join(value.split())
    while isinstance(tree, exp.Paren):
        tree = tree.this
    if isinstance(tree, NOW) or isinstance(tree, exp.Anonymous) and tree.name.lower() == "now":
        precision = tree.expressions[0] if isinstance(tree, exp.Anonymous) and tree.expressions \
            else tree.this
        digits = precision.name if isinstance(precision, exp.Literal) else ""
        return f"CURRENT_TIMESTAMP({digits})" if digits else "CURRENT_TIMESTAMP"
    if isinstance(tree, exp.Literal) and tree.is_string and _is_number(tree.this):
        return tree.this
    return canonical(tree.sql(dialect="mysql"))


def _is_number(text: str) -> bool:
    try:
        return text.strip() == text and float(text) == float(text)  # not "nan", "inf", " 1"
    except ValueError:
        return False
