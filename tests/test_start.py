"""start/: the demo app creates its own schema at start-up (automatic migration)."""

import pytest
from sqlalchemy import inspect, text

from conftest import assert_clean_failure, count
from tutorial_kit.steps import run, url_text


def test_main_creates_schema_and_data_once(step, database_url, db):
    app = step("start")
    for _ in range(2):
        result = run(app, "main.py", database_url=database_url)
        assert result.returncode == 0, result.stderr
        assert "Ada Lovelace <ada@example.com>: 1 post(s)" in result.stdout

    schema = inspect(db)
    assert set(schema.get_table_names()) == {"users", "blogs"}
    assert [c["name"] for c in schema.get_columns("users")] == ["id", "name", "email"]
    assert [c["name"] for c in schema.get_columns("blogs")] == [
        "id", "title", "body", "created_at", "author_id"
    ]
    blog_columns = {c["name"]: c for c in schema.get_columns("blogs")}
    assert "TEXT" in str(blog_columns["body"]["type"]).upper()
    assert blog_columns["created_at"]["default"] is not None  # DEFAULT now()
    assert blog_columns["author_id"]["nullable"] is True

    unique = {u["name"]: u["column_names"] for u in schema.get_unique_constraints("users")}
    assert unique == {"uq_users_email": ["email"]}
    [fk] = schema.get_foreign_keys("blogs")
    assert fk["constrained_columns"] == ["author_id"]
    assert (fk["referred_table"], fk["referred_columns"]) == ("users", ["id"])
    assert fk["options"].get("ondelete") == "SET NULL"

    # Run twice, the app data is there exactly once.
    assert count(db, "users") == 1
    assert count(db, "blogs") == 1


def test_deleting_a_user_keeps_their_posts(step, database_url, db):
    assert run(step("start"), "main.py", database_url=database_url).returncode == 0
    with db.begin() as conn:
        conn.execute(text("DELETE FROM users"))
    with db.connect() as conn:
        assert conn.execute(text("SELECT author_id FROM blogs")).all() == [(None,)]


def test_unique_email_is_enforced(step, database_url, db):
    assert run(step("start"), "main.py", database_url=database_url).returncode == 0
    with pytest.raises(Exception, match="Duplicate entry"), db.begin() as conn:
        conn.execute(text("INSERT INTO users (name, email) VALUES ('X', 'ada@example.com')"))


SECRET = "s3cret-Pa55word"


def _bad_urls(url):
    """(case, DATABASE_URL, what the one line must say)."""
    return [
        ("unset", None, "DATABASE_URL is not set"),
        ("not a url", f"root:{SECRET}@localhost/app", "not a valid URL"),
        ("bad port", f"mysql+pymysql://root:{SECRET}@127.0.0.1:port/app", "not a valid URL"),
        ("other database", f"postgresql://root:{SECRET}@127.0.0.1/app", "uses 'postgresql'"),
        ("no database", url_text(url._replace(database=None, password=SECRET)), "names no database"),
        ("wrong password", url_text(url.set(password=SECRET)), "check the user name and password"),
        ("unknown user", url_text(url.set(username="nobody", password=SECRET)), "refused user 'nobody'"),
        ("closed port", url_text(url.set(port=1, password=SECRET)), "cannot reach MySQL at 127.0.0.1:1"),
        ("unknown host", url_text(url.set(host="no-such-host.invalid", password=SECRET)), "cannot reach MySQL"),
        ("missing database", url_text(url.set(database="no_such_db")), "database 'no_such_db' does not exist"),
    ]


@pytest.mark.parametrize("case", range(10))
def test_bad_database_url_gets_one_clear_line(step, database_url, db, case):
    name, bad, expected = _bad_urls(database_url)[case]
    result = run(step("start"), "main.py", database_url=bad)
    line = assert_clean_failure(result, password=SECRET)
    assert line.startswith("error: ") and expected in line, (name, line)
    assert count_tables(db) == 0  # nothing half-done in the real database


def count_tables(engine) -> int:
    return len(inspect(engine).get_table_names())
