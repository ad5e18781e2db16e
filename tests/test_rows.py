"""Rows for the tutorial's databases, at sizes SQL's recursive CTE cannot reach."""

import pymysql
import pytest

USERS = (
    "CREATE TABLE users (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(255) NOT NULL, "
    "email VARCHAR(255) NOT NULL UNIQUE)"
)


def test_insert_rows_makes_5000_rows_every_one_there(server, database_url):
    with server.connect(database_url.database) as conn, conn.cursor() as cur:
        cur.execute(USERS)
    users = [(f"User {i}", f"user{i}@example.com") for i in range(1, 5001)]
    done = server.insert_rows(database_url, "users", ["name", "email"], iter(users), batch=1000)
    assert done == 5000
    with server.connect(database_url.database) as conn, conn.cursor() as cur:
        cur.execute("SELECT id, name, email FROM users ORDER BY id")
        rows = cur.fetchall()
    assert [(name, email) for _, name, email in rows] == users  # every row, in order
    assert [row[0] for row in rows] == list(range(1, 5001))


def test_insert_rows_stops_at_the_first_bad_batch(server, database_url):
    with server.connect(database_url.database) as conn, conn.cursor() as cur:
        cur.execute(USERS)
    users = [(f"User {i}", f"user{i}@example.com") for i in range(1, 2501)]
    users[1500] = users[0]  # a duplicate email in the second batch
    with pytest.raises(pymysql.IntegrityError):
        server.insert_rows(database_url, "users", ["name", "email"], users, batch=1000)
    with server.connect(database_url.database) as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM users")
        assert cur.fetchone()[0] == 1000  # the first batch went in; nothing after the bad one


def test_a_recursive_cte_cannot_make_5000_rows_here(server, mariadb):
    # Why the notebooks make rows in Python: the server stops the recursion after 1,000
    # iterations. MySQL says so (cte_max_recursion_depth, error 3636); MariaDB
    # (max_recursive_iterations) returns the first 1,001 rows, without a word.
    sql = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000) "
           "SELECT COUNT(*) FROM n")
    with server.connect() as conn, conn.cursor() as cur:
        if mariadb:
            cur.execute(sql)
            assert cur.fetchone()[0] == 1001
        else:
            with pytest.raises(pymysql.OperationalError) as info:
                cur.execute(sql)
            assert info.value.args[0] == 3636, info.value
