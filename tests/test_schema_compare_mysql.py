"""The schema check reads MySQL 8.4 as it reads MariaDB.

No MySQL server runs here. SQLAlchemy's MySQL dialect reflects a table by parsing SHOW CREATE
TABLE, so these tests build the tutorial's schema on the real MariaDB server, then have the
dialect read, for the same tables, the text MySQL 8.4 prints for them: `int` without a display
width, the `now()` default spelled as MySQL spells it, utf8mb4_0900_ai_ci, the index MySQL adds
for a foreign key. step-3-apply's schema_compare must see no drift where there is none, and
drift where there is.
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
def schema_compare(step):
    app = step("step-3-apply")
    sys.path.insert(0, str(app))
    try:
        yield app, importlib.import_module("migrate.schema_compare")
    finally:
        sys.path.remove(str(app))
        for name in [name for name in sys.modules if name.split(".")[0] in ("migrate", "database")]:
            sys.modules.pop(name)


@pytest.fixture
def built(schema_compare, database_url):
    """The `initialize` revision applied on MariaDB; an engine on it."""
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
def test_mysql_84_reads_as_mariadb_does(schema_compare, built, monkeypatch, now):
    _, module = schema_compare
    mariadb = describe(built, module)
    as_mysql(built, monkeypatch, {t: sql.format(now=now) for t, sql in MYSQL_84.items()})
    mysql = describe(built, module)
    assert mysql["column blogs.created_at"] == "DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP"
    assert mysql["column users.id"] == mariadb["column users.id"] == "INTEGER NOT NULL AUTO_INCREMENT"
    assert mysql["index blogs.fk_blogs_author_id_users"] == "(author_id)"
    # The only difference: each server's own default collation, a real difference, which
    # baseline avoids by building the revision with production's defaults.
    found = module.differences(mariadb, mysql, "REV")
    assert [line.split(":")[0] for line in found] == ["table blogs", "table users"]
    assert all("COLLATE=utf8mb4_0900_ai_ci" in line for line in found)


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
        "column blogs.author_id: database has INTEGER NULL DEFAULT 0, revision REV has INTEGER NULL",
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
