"""The schema check reads MySQL 8.4 as it reads the server the tests run on.

The suite runs on MariaDB 10.11 and on MySQL 9.7 (.ci/run), not on MySQL 8.4. SQLAlchemy's MySQL
dialect reflects a table by parsing SHOW CREATE TABLE, so these tests build the tutorial's schema
on the run's server, then have the dialect read, for the same tables, the text MySQL 8.4 prints
for them: `int` without a display width, the `now()` default spelled as MySQL spells it,
utf8mb4_0900_ai_ci, the index MySQL adds for a foreign key. step-3-apply's schema_compare must
see no drift where there is none, and drift where there is.
"""

import importlib
import sys

import pytest
from sqlalchemy import create_engine

from tutorial_kit.steps import run, url_text

MYSQL_84 = {
    "users": """CREATE TABLE `users` (
  `id` int NOT NULL AUTO_INCREMENT,
  `name` varchar(255) NOT NULL,
  `email` varchar(255) NOT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `uq_users_email` (`email`)
) ENGINE=InnoDB AUTO_INCREMENT=1002 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci""",
    "blogs": """CREATE TABLE `blogs` (
  `id` int NOT NULL AUTO_INCREMENT,
  `title` varchar(255) NOT NULL,
  `body` text NOT NULL,
  `created_at` datetime NOT NULL DEFAULT {now},
  `author_id` int DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `fk_blogs_author_id_users` (`author_id`),
  CONSTRAINT `fk_blogs_author_id_users` FOREIGN KEY (`author_id`) REFERENCES `users` (`id`) ON DELETE SET NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci""",
}


@pytest.fixture
def schema_compare(step, request):
    app = step(getattr(request, "param", "step-3-apply"))
    sys.path.insert(0, str(app))
    try:
        yield app, importlib.import_module("migrate.schema_compare")
    finally:
        sys.path.remove(str(app))
        for name in [name for name in sys.modules if name.split(".")[0] in ("migrate", "database")]:
            sys.modules.pop(name)


@pytest.fixture
def built(schema_compare, database_url):
    """The `initialize` revision applied on the run's server; an engine on it."""
    app, _ = schema_compare
    assert run(app, "-m", "migrate", "upgrade", database_url=database_url).returncode == 0
    engine = create_engine(url_text(database_url))
    yield engine
    engine.dispose()


def as_mysql(engine, monkeypatch, texts: dict[str, str]) -> None:
    """From now on the dialect reads `texts` as the SHOW CREATE TABLE of those tables."""
    real = engine.dialect._show_create_table

    def show_create_table(connection, table, charset=None, full_name=None):
        name = full_name.split(".")[-1].strip("`")  # "`database`.`users`"
        if name in texts:
            return texts[name]
        return real(connection, table, charset, full_name=full_name)

    monkeypatch.setattr(engine.dialect, "_show_create_table", show_create_table)


def describe(engine, module) -> dict[str, str]:
    with engine.connect() as connection:
        return module.describe(connection)


@pytest.mark.parametrize("now", ["CURRENT_TIMESTAMP", "(now())", "now()", "current_timestamp()"])
def test_mysql_84_reads_as_the_servers_own_text(schema_compare, built, monkeypatch, mariadb, now):
    _, module = schema_compare
    here = describe(built, module)
    as_mysql(built, monkeypatch, {t: sql.format(now=now) for t, sql in MYSQL_84.items()})
    mysql = describe(built, module)
    assert mysql["column blogs.created_at"] == "DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP"
    assert mysql["column users.id"] == here["column users.id"] == "INT NOT NULL AUTO_INCREMENT"
    assert mysql["index blogs.fk_blogs_author_id_users"] == "(author_id)"
    found = module.differences(here, mysql, "REV")
    if mariadb:
        # The only difference: each server's own default collation (MariaDB 10.11's for utf8mb4
        # is utf8mb4_general_ci), a real difference, which baseline avoids by building the
        # revision with production's defaults.
        assert [line.split(":")[0] for line in found] == ["table blogs", "table users"]
        assert all("COLLATE=utf8mb4_0900_ai_ci" in line for line in found)
        assert all("COLLATE=utf8mb4_general_ci" in line for line in found)
    else:
        # MySQL 9.7 has MySQL 8.4's default collation, utf8mb4_0900_ai_ci: no difference at all.
        assert found == []


def test_mysql_84_drift_is_seen(schema_compare, built, monkeypatch):
    _, module = schema_compare
    as_mysql(built, monkeypatch, {t: sql.format(now="CURRENT_TIMESTAMP") for t, sql in MYSQL_84.items()})
    expected = describe(built, module)
    drifted = {
        "users": MYSQL_84["users"].replace("`name` varchar(255) NOT NULL", "`name` varchar(100) NOT NULL")
        .replace("  UNIQUE KEY `uq_users_email` (`email`)\n", "  KEY `ix_users_email` (`email`)\n"),
        "blogs": MYSQL_84["blogs"].format(now="CURRENT_TIMESTAMP")
        .replace("`author_id` int DEFAULT NULL", "`author_id` int DEFAULT '0'")
        .replace(" ON DELETE SET NULL", ""),
    }
    as_mysql(built, monkeypatch, drifted)
    found = module.differences(expected, describe(built, module), "REV")
    assert found == [
        "column blogs.author_id: database has INT NULL DEFAULT 0, revision REV has INT NULL",
        "column users.name: database has VARCHAR(100) NOT NULL, revision REV has VARCHAR(255) NOT NULL",
        "foreign key blogs.fk_blogs_author_id_users: database has (author_id) REFERENCES users "
        "(id), revision REV has (author_id) REFERENCES users (id) ON DELETE SET NULL",
        "index users.ix_users_email is not in revision REV (database has (email))",
        "index users.uq_users_email is missing (revision REV has UNIQUE (email))",
    ]


def test_a_check_constraint_reads_alike_on_both_servers(schema_compare, built, monkeypatch):
    """MySQL stores a CHECK with a character-set mark on each string (_utf8mb4'%@%') and
    parentheses of its own; MariaDB as written. The same constraint must not be drift."""
    _, module = schema_compare
    with built.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE users ADD CONSTRAINT ck_users_email "
                             "CHECK (email LIKE '%%@%%' AND char_length(name) > 0)")
    mariadb = describe(built, module)
    as_mysql(built, monkeypatch, {"users": MYSQL_84["users"].replace(
        "  UNIQUE KEY `uq_users_email` (`email`)\n",
        "  UNIQUE KEY `uq_users_email` (`email`),\n  CONSTRAINT `ck_users_email` CHECK "
        "(((`email` like _utf8mb4'%@%') and (char_length(`name`) > 0)))\n",
    )})
    mysql = describe(built, module)
    assert mysql["check users.ck_users_email"] == mariadb["check users.ck_users_email"] == (
        "email LIKE '%@%' AND CHAR_LENGTH(name) > 0"
    )
    # A changed constraint is still drift.
    as_mysql(built, monkeypatch, {"users": MYSQL_84["users"].replace(
        "  UNIQUE KEY `uq_users_email` (`email`)\n",
        "  UNIQUE KEY `uq_users_email` (`email`),\n  CONSTRAINT `ck_users_email` CHECK "
        "(((`email` like _utf8mb4'%@%') or (char_length(`name`) > 0)))\n",
    )})
    assert describe(built, module)["check users.ck_users_email"] == (
        "email LIKE '%@%' OR CHAR_LENGTH(name) > 0"
    )


CHECKED = ("CREATE TABLE users (id INT PRIMARY KEY, email VARCHAR(255) NOT NULL, "
           "CONSTRAINT ck_users_email CHECK ({}))")


def with_check(server, url, check: str, charset: str = "utf8mb4") -> str:
    """`users` with a CHECK, made over a connection in `charset`; its SHOW CREATE TABLE."""
    with server.connect(url.database) as conn, conn.cursor() as cur:
        cur.execute(f"SET NAMES {charset}")
        cur.execute(CHECKED.format(check))
        cur.execute("SHOW CREATE TABLE users")
        return cur.fetchone()[1]


def described(module, url) -> dict[str, str]:
    engine = create_engine(url_text(url))
    try:
        return describe(engine, module)
    finally:
        engine.dispose()


STEPS_WITH_BASELINE = ["step-3-apply", "step-4-new-migration", "step-5-custom-migration",
                       "step-6-verify-safety", "step-7-big-tables"]


@pytest.mark.parametrize("schema_compare", STEPS_WITH_BASELINE, indirect=True)
@pytest.mark.parametrize("charset", ["utf8mb3", "latin1"])
def test_a_check_made_over_another_character_set_is_no_drift(
        schema_compare, server, mariadb, request, charset):
    """Production's CHECK was made by a client in another character set than the revision's
    (the mysql client, an older app on utf8mb3): the same CHECK, no drift."""
    _, module = schema_compare
    with server.database("ck") as revision, server.database("ck") as production:
        with_check(server, revision, "email LIKE '%@%'")
        shown = with_check(server, production, "email LIKE '%@%'", charset)
        # Each server's text: MySQL names the connection's character set before the string
        # literal (an introducer), MariaDB does not.
        if mariadb:
            assert "CHECK (`email` like '%@%')" in shown, shown
        else:
            assert f"CHECK ((`email` like _{charset}'%@%'))" in shown, shown
        expected, actual = described(module, revision), described(module, production)
    assert actual["check users.ck_users_email"] == "email LIKE '%@%'"
    assert module.differences(expected, actual, "REV") == []


def test_an_expression_default_made_over_another_character_set_is_no_drift(
        schema_compare, server, mariadb, request):
    """The same for a column's expression default (MySQL 8.0.13 and later, MariaDB 10.2)."""
    _, module = schema_compare
    table = "CREATE TABLE users (id INT PRIMARY KEY, name VARCHAR(20) DEFAULT (concat('a', 'b')))"
    with server.database("df") as revision, server.database("df") as production:
        for url, charset in ((revision, "utf8mb4"), (production, "latin1")):
            with server.connect(url.database) as conn, conn.cursor() as cur:
                cur.execute(f"SET NAMES {charset}")
                cur.execute(table)
                cur.execute("SHOW CREATE TABLE users")
                shown = cur.fetchone()[1]
        if mariadb:
            assert "DEFAULT concat('a','b')" in shown, shown
            # A blind spot of its own there, found with this test: SQLAlchemy 2.1.9 does not
            # read an expression default that MariaDB writes without parentheses, so the
            # default is not compared at all (information_schema.COLUMNS has it).
            request.applymarker(pytest.mark.xfail(strict=True, reason=(
                "SQLAlchemy 2.1.9 does not reflect MariaDB's DEFAULT concat('a','b'): steps "
                "3-6's schema_compare cannot see an expression default there")))
        else:
            assert "DEFAULT (concat(_latin1'a',_latin1'b'))" in shown, shown
            expected, actual = described(module, revision), described(module, production)
    assert actual["column users.name"] == "VARCHAR(20) NULL DEFAULT CONCAT('a', 'b')"
    assert module.differences(expected, actual, "REV") == []


def test_a_binary_check_is_a_difference_where_the_server_shows_it(schema_compare, server, mariadb):
    """`_binary` is no mere spelling: it makes LIKE compare bytes (case-sensitive). MySQL shows
    it; MariaDB 10.11 prints a CHECK without any introducer, `_binary` included, so there the
    two CHECKs read the same and no schema check can tell them apart."""
    _, module = schema_compare
    with server.database("ck") as revision, server.database("ck") as production:
        with_check(server, revision, "email LIKE '%@%'")
        shown = with_check(server, production, "email LIKE _binary'%@%'")
        found = module.differences(described(module, revision), described(module, production), "REV")
    if mariadb:
        assert "CHECK (`email` like '%@%')" in shown, shown
        assert found == []
    else:
        assert "CHECK ((`email` like _binary'%@%'))" in shown, shown
        [line] = found
        assert line == ("check users.ck_users_email: database has email LIKE _binary '%@%', "
                        "revision REV has email LIKE '%@%'"), line


def test_types_and_defaults_are_read_as_sql(schema_compare):
    """migrate/sql.py's column_type and column_default (sqlglot): one spelling per meaning,
    and a difference kept where the meaning differs."""
    app, _ = schema_compare
    sql = importlib.import_module("migrate.sql")
    same = [("INTEGER(11)", "INT"), ("BIGINT(20) UNSIGNED", "BIGINT UNSIGNED"),
            ("VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin", "VARCHAR(255)")]
    for spelled, plain in same:
        assert sql.column_type(spelled) == sql.column_type(plain)
    assert sql.column_type("BIT(8)") != sql.column_type("BIT(1)")  # a size, not a width
    assert sql.column_type("INT") != sql.column_type("INT UNSIGNED")
    assert sql.column_type("POINT") == "POINT"  # unknown to sqlglot: the text itself
    assert {sql.column_default(v) for v in ("now()", "(now())", "CURRENT_TIMESTAMP",
                                            "current_timestamp()")} == {"CURRENT_TIMESTAMP"}
    assert sql.column_default("now(3)") == sql.column_default("current_timestamp(3)") \
        != sql.column_default("now()")
    assert sql.column_default("'0'") == sql.column_default("0") == "0"
    assert sql.column_default("'abc'") == "'abc'" and sql.column_default("'nan'") == "'nan'"
    assert sql.column_default("(concat(_latin1'a','b'))") == sql.column_default("concat('a', 'b')")
