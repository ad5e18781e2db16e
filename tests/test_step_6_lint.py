"""step-6-verify-safety: `python -m migrate lint`, judged on what revisions do on MySQL.

Each test writes small revisions on top of the step's head (users with a unique email and a
required title, two of them seeded; blogs with a foreign key to users) and lints them on a dev
database of its own. The tutorial's own story uses the step's `user_title_required` revision.
"""

import re
import secrets

import pytest
from sqlalchemy import text

from conftest import assert_clean_failure
from tutorial_kit.revisions import FIRST_LINE, write_revision
from tutorial_kit.steps import run

STEP = "step-6-verify-safety"


# The step's head already made users.title required: these tests play it again on nickname.
ADD_NICKNAME = "op.add_column('users', sa.Column('nickname', sa.String(40), nullable=True))\n"
# The dev database replays seed_users too: give its users a nickname, or NOT NULL fails there.
NICKNAME_FILLED = ADD_NICKNAME + "op.execute(\"UPDATE users SET nickname = 'Seed'\")\n"
NICKNAME_REQUIRED = ("op.alter_column('users', 'nickname', existing_type=sa.String(40), "
                     "nullable=False)\n")


def lint(app, *args, dev_database_url, database_url=None):
    return run(app, "-m", "migrate", "lint", *args, dev_database_url=dev_database_url,
               database_url=database_url)


def write_revisions(app, earlier: list[str], linted: str) -> None:
    """The revisions a case needs before the one it lints, then that one, named "linted"."""
    for i, body in enumerate(earlier):
        write_revision(app, f"earlier_{i}", body)
    write_revision(app, "linted", linted)


def findings(result) -> list[tuple[int, str, str]]:
    """(line, code, error|warning) of each finding printed."""
    return [(int(line), code, kind) for line, code, kind in
            re.findall(r"^  L(\d+): ([A-Z]{2}\d{3}) (error|warning):", result.stdout, re.M)]


# code: (revisions before the one linted, the one linted, expected exit without --strict)
FIRES = {
    "DS102": ([], "op.drop_table('blogs')\n", 1),
    "DS103": ([], "op.drop_column('users', 'name')\n", 1),
    "MF101": ([], "op.create_index('ix_users_name', 'users', ['name'], unique=True)\n", 0),
    # One statement: Atlas's MF102 is an index modified to unique, not a new unique one.
    "MF102": (["op.create_index('ix_users_name', 'users', ['name'])\n"],
              "op.execute('ALTER TABLE users DROP INDEX ix_users_name, "
              "ADD UNIQUE INDEX ix_users_name (name)')\n", 0),
    "MF103": ([], "op.add_column('users', sa.Column('born', sa.DateTime(), nullable=False))\n", 0),
    "MF104": ([NICKNAME_FILLED], NICKNAME_REQUIRED, 0),
    "MF105": ([], "op.alter_column('users', 'name', type_=sa.String(50), "
                  "existing_type=sa.String(255), existing_nullable=False)\n", 0),
    "BC101": ([], "op.rename_table('blogs', 'posts')\n", 0),
    "BC102": ([], "op.alter_column('users', 'name', new_column_name='full_name', "
                  "existing_type=sa.String(255), existing_nullable=False)\n", 0),
    "CD101": ([], "op.drop_constraint('fk_blogs_author_id_users', 'blogs', type_='foreignkey')\n", 0),
    "MY101": ([], "op.add_column('users', sa.Column('age', sa.Integer(), nullable=False))\n", 0),
    "MY110": (["op.add_column('users', sa.Column('kind', sa.Enum('a', 'b', 'c')))\n"],
              "op.alter_column('users', 'kind', type_=sa.Enum('a', 'b'), "
              "existing_type=sa.Enum('a', 'b', 'c'))\n", 0),
    "DM101": ([], "op.execute('TRUNCATE TABLE blogs')\n", 1),
    "DM102": ([], "op.execute('DELETE FROM blogs')\n", 1),
    "DM103": ([NICKNAME_FILLED], "op.execute(\"UPDATE users SET nickname = 'Mx.'\")\n", 1),
    "DM104": ([], "op.execute('UPDATE blogs SET author_id = NULL WHERE id > 1')\n", 1),
    "IG101": ([], "# lint: ignore MY101\n"
                  "op.add_column('users', sa.Column('age', sa.Integer(), nullable=False))\n", 1),
}


# MySQL 8 and later refuse the zero date that a NOT NULL DATETIME without a DEFAULT gives the
# existing rows: their default sql_mode is strict and has NO_ZERO_DATE (error 1292). MariaDB
# 10.11's default sql_mode is strict but without NO_ZERO_DATE: the rows get 0000-00-00 00:00:00.
ZERO_DATE_REFUSED = ("the revision fails on the dev database: (1292, \"Incorrect datetime value: "
                     "'0000-00-00 00:00:00' for column 'born' at row 1\")")


@pytest.mark.parametrize("code", FIRES)
def test_each_finding_fires_on_what_the_revision_does(step, dev_database_url, mariadb, code):
    app = step(STEP)
    earlier, linted, exit_code = FIRES[code]
    write_revisions(app, earlier, linted)
    result = lint(app, dev_database_url=dev_database_url)
    if code == "MF103" and not mariadb:
        # MySQL: the dev database's seeded users already refuse it, so the revision is an
        # error before MF103 is weighed (see test_zero_dates_... for MF103 on MySQL).
        assert result.returncode == 1, result.stdout + result.stderr
        assert f"L{FIRST_LINE}: {ZERO_DATE_REFUSED}" in result.stdout
        assert findings(result) == [] and "Lint failed." in result.stdout
        return
    assert result.returncode == exit_code, result.stdout + result.stderr
    found = findings(result)
    kind = "error" if exit_code else "warning"
    line = FIRST_LINE
    assert (line, code, kind) in found, result.stdout + result.stderr
    # Nothing else: a rename is not also a drop, a changed index not also a new one.
    assert len(found) == 1 + (code == "IG101"), result.stdout
    assert re.search(r"fix: +\S", result.stdout), result.stdout
    assert ("Lint passed." if exit_code == 0 else "Lint failed.") in result.stdout


def test_strict_fails_on_warnings(step, dev_database_url):
    app = step(STEP)
    write_revision(app, "linted", FIRES["MF101"][1])
    result = lint(app, "--strict", dev_database_url=dev_database_url)
    assert result.returncode == 1, result.stdout + result.stderr
    assert findings(result) == [(FIRST_LINE, "MF101", "warning")]
    assert "0 error(s), 1 warning(s)" in result.stdout and "Lint failed." in result.stdout


def test_drop_schema_is_reported_and_never_run(step, server, dev_database_url):
    app = step(STEP)
    with server.database("keep") as victim:
        write_revision(app, "drop_schema", f"op.execute('DROP SCHEMA IF EXISTS {victim.database}')\n")
        result = lint(app, dev_database_url=dev_database_url)
        assert result.returncode == 1, result.stdout + result.stderr
        assert findings(result) == [(FIRST_LINE, "DS101", "error")]
        assert f'Dropping schema "{victim.database}"' in result.stdout
        with server.connect() as conn, conn.cursor() as cur:
            cur.execute("SHOW DATABASES LIKE %s", (victim.database,))
            assert cur.fetchall(), "lint ran DROP SCHEMA on the dev server"


# (revisions before the one linted, the one linted, the code that must stay silent)
SILENT = {
    "nullable column added": ([], ADD_NICKNAME, None),
    "back-filled before NOT NULL": (
        [NICKNAME_FILLED], "op.execute(\"UPDATE users SET nickname = '' WHERE nickname IS NULL\")\n" + NICKNAME_REQUIRED,
        "MF104"),
    "back-filled without WHERE, in the revision that adds the column": (
        [], NICKNAME_FILLED + NICKNAME_REQUIRED, "MF104"),
    "every row updated from its own value": (
        [NICKNAME_FILLED], "op.execute(\"UPDATE users SET nickname = COALESCE(nickname, 'Mx.')\")\n"
        + NICKNAME_REQUIRED, "MF104"),
    "ignored on the line of the op": (
        [NICKNAME_FILLED], NICKNAME_REQUIRED.replace(
            "\n", "  # lint: ignore MF104 -- the app has always written a nickname\n"), "MF104"),
    "ignored on the line above": (
        [NICKNAME_FILLED], "# lint: ignore MF104 -- the app has always written a nickname\n" + NICKNAME_REQUIRED,
        "MF104"),
    "NOT NULL with a default": (
        [], "op.add_column('users', sa.Column('age', sa.Integer(), nullable=False, "
            "server_default='0'))\n", "MY101"),
    "unique index on a table made in the same revision": (
        [], "op.create_table('tags', sa.Column('id', sa.Integer(), primary_key=True), "
            "sa.Column('name', sa.String(50), nullable=False))\n"
            "op.create_index('ix_tags_name', 'tags', ['name'], unique=True)\n"
            "op.add_column('tags', sa.Column('n', sa.Integer(), nullable=False))\n", "MF101"),
    "renamed column of a unique index": (
        [], "# lint: ignore BC102 -- no app version reads email during this deploy\n"
            "op.alter_column('users', 'email', new_column_name='mail', "
            "existing_type=sa.String(255), existing_nullable=False)\n", "MF101"),
    "enum value added at the end": (
        ["op.add_column('users', sa.Column('kind', sa.Enum('a', 'b')))\n"],
        "op.alter_column('users', 'kind', type_=sa.Enum('a', 'b', 'c'), "
        "existing_type=sa.Enum('a', 'b'))\n", "MY110"),
    "VARCHAR to TEXT": (
        [], "op.alter_column('users', 'name', type_=sa.Text(), "
            "existing_type=sa.String(255), existing_nullable=False)\n", "MF105"),
    "widened column": (
        [], "op.alter_column('users', 'name', type_=sa.String(300), "
            "existing_type=sa.String(255), existing_nullable=False)\n", "MF105"),
}


@pytest.mark.parametrize("case", SILENT)
def test_findings_stay_silent_where_they_should(step, dev_database_url, case):
    app = step(STEP)
    earlier, linted, code = SILENT[case]
    write_revisions(app, earlier, linted)
    result = lint(app, "--strict", dev_database_url=dev_database_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert findings(result) == [], result.stdout
    assert "Lint passed." in result.stdout
    silenced = "# lint: ignore" in linted
    assert f"{int(silenced)} silenced" in result.stdout


def test_back_fill_of_some_rows_only_does_not_clear_mf104(step, dev_database_url):
    app = step(STEP)
    write_revision(app, "add_nickname", NICKNAME_FILLED)
    write_revision(app, "linted",
                   "op.execute(\"UPDATE users SET nickname = '' WHERE id < 10\")\n" + NICKNAME_REQUIRED)
    result = lint(app, dev_database_url=dev_database_url)
    assert findings(result) == [(FIRST_LINE + 1, "MF104", "warning")], result.stdout


def test_ignore_for_another_code_silences_nothing(step, dev_database_url):
    app = step(STEP)
    write_revision(app, "add_nickname", NICKNAME_FILLED)
    write_revision(app, "linted", "# lint: ignore MF101 -- wrong code\n" + NICKNAME_REQUIRED)
    result = lint(app, dev_database_url=dev_database_url)
    assert findings(result) == [(FIRST_LINE + 1, "MF104", "warning")], result.stdout
    assert "0 silenced" in result.stdout


def cost(result) -> str:
    [verdict] = re.findall(r"^  L\d+: cost: .*\n +(.*)$", result.stdout, re.M)
    return verdict


def test_cost_of_an_instant_alter(step, dev_database_url):
    app = step(STEP)
    write_revision(app, "add_nickname", ADD_NICKNAME)
    result = lint(app, dev_database_url=dev_database_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "cost: ALTER TABLE users ADD COLUMN nickname VARCHAR(40)" in result.stdout
    assert cost(result).startswith("INSTANT: metadata only"), result.stdout


def test_cost_of_a_rebuilding_alter(step, dev_database_url, mariadb):
    app = step(STEP)
    write_revision(app, "add_nickname", NICKNAME_FILLED)
    write_revision(app, "linted", "# lint: ignore MF104 -- tested elsewhere\n" + NICKNAME_REQUIRED)
    result = lint(app, dev_database_url=dev_database_url)
    # The server refused INSTANT (and NOCOPY, which only MariaDB has), so the table is rebuilt,
    # in place.
    refused = "INSTANT refused; NOCOPY refused; " if mariadb else "INSTANT refused; "
    assert cost(result) == refused + "INPLACE: in place: rebuilds or scans the table, writes " \
        "allowed meanwhile", result.stdout


def test_cost_of_a_copying_alter_names_the_servers_reason(step, dev_database_url, mariadb):
    app = step(STEP)
    write_revision(app, "linted", "# lint: ignore MF105 -- tested elsewhere\n"
                   + FIRES["MF105"][1])
    verdict = cost(lint(app, dev_database_url=dev_database_url))
    # Each server's own words for why it cannot do it in place.
    if mariadb:
        refused = ("INSTANT refused (Cannot change column type); NOCOPY refused (Cannot change "
                   "column type); INPLACE refused (Cannot change column type); ")
    else:
        refused = ("INSTANT refused (Need to rebuild the table to change column type); "
                   "INPLACE refused (Cannot change column type INPLACE); ")
    assert verdict == refused + "COPY: copies the whole table, blocking writes until done"


def snapshot(engine) -> dict[str, list[tuple]]:
    with engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT * FROM `{t}` ORDER BY 1")).all()
                for t in ("users", "blogs", "alembic_version")}


@pytest.fixture
def read_only_url(database_url, db):
    """The test database's URL for a user that may only SELECT."""
    user, password = f"ro_{secrets.token_hex(4)}", secrets.token_hex(8)
    with db.begin() as conn:
        conn.execute(text(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'"))
        conn.execute(text(f"GRANT SELECT ON `{database_url.database}`.* TO '{user}'@'%'"))
    yield database_url.set(username=user, password=password)
    with db.begin() as conn:
        conn.execute(text(f"DROP USER '{user}'@'%'"))


def production(app, database_url, db, users: list[dict[str, str | None]]):
    """The app's database at the newest revision: the two users seed_users inserted, then
    `users` (name, email and any other column; title "Mx." unless given), and one blog."""
    upgrade = run(app, "-m", "migrate", "upgrade", database_url=database_url)
    assert upgrade.returncode == 0, upgrade.stderr
    with db.begin() as conn:
        for user in users:
            row = {"title": "Mx.", **user}
            conn.execute(text(f"INSERT INTO users ({', '.join(row)}) "
                              f"VALUES ({', '.join(':' + column for column in row)})"), row)
        conn.execute(text("INSERT INTO blogs (title, body) VALUES ('Hello', 'World')"))


def test_data_checks_with_a_select_only_user_prove_failures(
        step, database_url, dev_database_url, db, read_only_url):
    app = step(STEP)
    write_revision(app, "add_nickname", NICKNAME_FILLED)
    production(app, database_url, db, [
        {"name": "Jerry", "email": "jerry@example.com", "nickname": "J"},
        {"name": "George", "email": "george@example.com", "nickname": None},
        {"name": "George", "email": "george2@example.com", "nickname": None},
        {"name": "Elaine", "email": "elaine@example.com", "nickname": None}])
    write_revision(app, "linted", NICKNAME_REQUIRED
                   + "op.create_index('ix_users_name', 'users', ['name'], unique=True)\n"
                   + "op.add_column('users', sa.Column('age', sa.Integer(), nullable=False))\n"
                   + "op.drop_column('blogs', 'body')\n")
    before = snapshot(db)
    assert len(before["users"]) == 6  # with the two seeded users
    result = lint(app, dev_database_url=dev_database_url, database_url=read_only_url)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr == ""
    assert findings(result) == [(FIRST_LINE, "MF104", "error"), (FIRST_LINE + 1, "MF101", "error"),
                                (FIRST_LINE + 2, "MY101", "warning"),
                                (FIRST_LINE + 3, "DS103", "error")]
    out = result.stdout
    assert "data: 3 rows of users have a NULL nickname: this revision will fail" in out
    assert "data: 1 value of (name) appear more than once in users: this revision will fail" in out
    assert "data: 6 rows of users will get age = 0" in out
    assert "data: 1 row of blogs holds a value in body that would be lost" in out
    assert re.search(r"INPLACE: .*; users holds 6 rows, \d+\.\d MiB", out), out
    parent = out.split("data checked in database")[1]
    assert f" '{database_url.database}' at revision " in parent and "not at" not in parent
    assert snapshot(db) == before  # nothing written


def test_data_checks_pass_when_the_data_fits(step, database_url, dev_database_url, db, read_only_url):
    app = step(STEP)
    write_revision(app, "add_nickname", NICKNAME_FILLED)
    production(app, database_url, db, [{"name": "Jerry", "email": "jerry@example.com", "nickname": "J"},
                                       {"name": "George", "email": "george@example.com", "nickname": "G"}])
    write_revision(app, "linted", NICKNAME_REQUIRED
                   + "op.create_index('ix_users_name', 'users', ['name'], unique=True)\n")
    before = snapshot(db)
    result = lint(app, dev_database_url=dev_database_url, database_url=read_only_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert findings(result) == [(FIRST_LINE, "MF104", "warning"), (FIRST_LINE + 1, "MF101", "warning")]
    assert "data: no row of users has a NULL nickname" in result.stdout
    assert "data: no duplicate (name) in users" in result.stdout
    assert snapshot(db) == before


def test_data_checks_of_a_narrowing_change(step, database_url, dev_database_url, db, read_only_url):
    app = step(STEP)
    # Newman and the seeded George Costanza fit in 15 characters (the dev database replays the
    # seed: a name too long there fails the revision there); Elaine Marie Benes does not.
    production(app, database_url, db, [{"name": "Elaine Marie Benes", "email": "elaine@example.com"},
                                       {"name": "Newman", "email": "newman@example.com"}])
    write_revision(app, "linted", "op.alter_column('users', 'name', type_=sa.String(15), "
                                  "existing_type=sa.String(255), existing_nullable=False)\n")
    result = lint(app, dev_database_url=dev_database_url, database_url=read_only_url)
    assert result.returncode == 1, result.stdout + result.stderr
    assert findings(result) == [(FIRST_LINE, "MF105", "error")]
    assert "data: 1 row of users has a name longer than 15 characters: this revision will fail" \
        in result.stdout


def test_data_is_checked_only_where_the_revision_starts(
        step, database_url, dev_database_url, db, read_only_url):
    app = step(STEP)
    production(app, database_url, db, [])  # at the step's head: no nickname column yet
    write_revision(app, "add_nickname", NICKNAME_FILLED)
    write_revision(app, "linted", NICKNAME_REQUIRED)
    result = lint(app, "--latest", "2", dev_database_url=dev_database_url,
                  database_url=read_only_url)
    assert result.returncode == 0 and result.stderr == "", result.stdout + result.stderr
    assert findings(result) == [(FIRST_LINE, "MF104", "warning")]
    assert "data: not checked: the database is not at " in result.stdout


def test_lint_latest_n_and_a_named_revision(step, dev_database_url):
    app = step(STEP)
    first = write_revision(app, "add_nickname", NICKNAME_FILLED)
    write_revision(app, "linted", NICKNAME_REQUIRED)
    both = lint(app, "--latest", "2", dev_database_url=dev_database_url)
    assert "2 revision(s)" in both.stdout and f"{first}_add_nickname.py" in both.stdout
    one = lint(app, first, dev_database_url=dev_database_url)
    assert one.returncode == 0 and "1 revision(s)" in one.stdout, one.stdout + one.stderr
    assert f"{first}_add_nickname.py" in one.stdout and "no findings" in one.stdout


def test_a_revision_that_fails_on_the_seeded_rows_of_the_dev_database_is_an_error(
        step, dev_database_url):
    """The dev database replays every revision, seed_users too: NOT NULL over the seeded
    users' NULL nickname fails there, as it would on any database upgraded from nothing."""
    app = step(STEP)
    write_revision(app, "add_nickname", ADD_NICKNAME)
    write_revision(app, "linted", NICKNAME_REQUIRED)
    result = lint(app, dev_database_url=dev_database_url)
    assert result.returncode == 1 and result.stderr == "", result.stdout + result.stderr
    assert f"L{FIRST_LINE}: the revision fails on the dev database: (" in result.stdout


def test_a_revision_that_fails_on_the_dev_database_is_an_error(step, dev_database_url):
    app = step(STEP)
    write_revision(app, "linted", "op.drop_column('users', 'nickname')\n")
    result = lint(app, dev_database_url=dev_database_url)
    assert result.returncode == 1 and result.stderr == "", result.stdout + result.stderr
    assert f"L{FIRST_LINE}: the revision fails on the dev database: (1091" in result.stdout


@pytest.mark.parametrize("body, reason", [
    ("op.execute('UPDATE nowhere SET a = 1')\n", "(1146"),
    ("op.add_column('users', sa.Column('x', sa.Integr()))\n", "AttributeError: "),
])
def test_the_failing_line_is_named(step, dev_database_url, body, reason):
    app = step(STEP)
    write_revision(app, "linted", ADD_NICKNAME + body)
    result = lint(app, dev_database_url=dev_database_url)
    assert result.returncode == 1 and result.stderr == "", result.stdout + result.stderr
    assert f"L{FIRST_LINE + 1}: the revision fails on the dev database: {reason}" in result.stdout


def test_zero_dates_refused_by_the_servers_sql_mode_fail_mf103(
        step, database_url, dev_database_url, db, read_only_url, mariadb):
    app = step(STEP)
    production(app, database_url, db, [{"name": "Jerry", "email": "jerry@example.com"}])
    write_revision(app, "linted", FIRES["MF103"][1])
    # Each server with its own default sql_mode (see ZERO_DATE_REFUSED).
    result = lint(app, dev_database_url=dev_database_url, database_url=read_only_url)
    if mariadb:  # takes zero dates: a warning, and what the rows will get
        assert result.returncode == 0, result.stdout + result.stderr
        assert findings(result) == [(FIRST_LINE, "MF103", "warning")]
        assert "data: 3 rows of users will get a zero date in born" in result.stdout
    else:  # NO_ZERO_DATE: the dev database's seeded users refuse it first
        assert result.returncode == 1, result.stdout + result.stderr
        assert findings(result) == [] and f"L{FIRST_LINE}: {ZERO_DATE_REFUSED}" in result.stdout
    # A dev database that takes zero dates, and production refusing them (MySQL's default, set
    # on MariaDB): the data check against production's sql_mode is what says this will fail.
    lenient_dev = dev_database_url.update_query_dict({"init_command": "SET SESSION sql_mode = ''"})
    mysql_8_mode = read_only_url.update_query_dict(
        {"init_command": "SET SESSION sql_mode = 'STRICT_TRANS_TABLES,NO_ZERO_DATE'"})
    result = lint(app, dev_database_url=lenient_dev,
                  database_url=mysql_8_mode if mariadb else read_only_url)
    assert result.returncode == 1, result.stdout + result.stderr
    assert findings(result) == [(FIRST_LINE, "MF103", "error")]
    assert "data: users holds 3 row(s) and the server refuses zero dates (sql_mode): this " \
        "revision will fail" in result.stdout


def test_a_revision_python_cannot_load_gets_one_line(step, dev_database_url):
    app = step(STEP)
    write_revision(app, "linted", "op.add_column('users'\n")
    line = assert_clean_failure(lint(app, dev_database_url=dev_database_url))
    assert "cannot read migrations/versions: SyntaxError" in line


@pytest.mark.parametrize("args, message", [
    (["nope"], "unknown revision 'nope'"),
    (["--latest", "0"], "--latest needs a positive whole number, not '0'"),
    (["--latest", "x"], "--latest needs a positive whole number, not 'x'"),
    (["--latest", "9"], "--latest 9, but there are only 4 revision(s)"),
    (["--latest"], "--latest needs a number"),
    (["--fast"], "usage: python -m migrate lint"),
])
def test_bad_arguments_get_one_line(step, dev_database_url, args, message):
    line = assert_clean_failure(lint(step(STEP), *args, dev_database_url=dev_database_url))
    assert message in line


def test_no_dev_database_and_no_docker_gets_one_line(step):
    result = run(step(STEP), "-m", "migrate", "lint",
                 env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    line = assert_clean_failure(result)
    assert "DEV_DATABASE_URL is not set and no Docker engine answers" in line


def test_wrong_password_for_the_app_database_gets_one_line(step, database_url, dev_database_url):
    wrong = database_url.set(password="not-the-password-123")
    result = lint(step(STEP), dev_database_url=dev_database_url, database_url=wrong)
    line = assert_clean_failure(result, password="not-the-password-123")
    assert "refused user" in line


def test_the_tutorials_story_title_becomes_required(
        step, database_url, dev_database_url, db, read_only_url):
    """Ent's "verifying safety" page, on the step's own user_title_required revision: as
    `generate` plans it, lint catches the NOT NULL; as it ships, back-filled, lint is silent."""
    app = step(STEP)
    versions = app / "migrations" / "versions"
    [shipped] = versions.glob("*_user_title_required.py")
    revision_id = shipped.stem.split("_")[0]
    shipped_source, sums = shipped.read_text(), (app / "migrations" / "revisions.sum").read_text()
    seed_users = re.search(r"^down_revision\b.*'(\d+)'$", shipped_source, re.M)[1]
    # Production after step 5, with users from before step 4: their title is NULL.
    at_step_5 = run(app, "-m", "alembic", "upgrade", seed_users, database_url=database_url)
    assert at_step_5.returncode == 0, at_step_5.stderr
    with db.begin() as conn:
        conn.execute(text("INSERT INTO users (name, email, title) VALUES (:n, :e, :t)"),
                     [{"n": "Elaine Benes", "e": "elaine@benes.io", "t": None},
                      {"n": "Newman", "e": "newman@example.com", "t": "Mr."}])
    before = snapshot(db)
    assert len(before["users"]) == 4  # and the two seeded ones

    # The revision as `generate` plans it, before the reader's back-fill. (Removed, then
    # re-hashed: generate, like `atlas migrate diff`, refuses a directory that does not match.)
    shipped.unlink()
    assert run(app, "-m", "migrate", "hash").returncode == 0
    planned = run(app, "-m", "migrate", "generate", "user_title_required", dev_database_url=dev_database_url)
    assert "MODIFY title VARCHAR(255) NOT NULL" in planned.stdout, planned.stdout + planned.stderr
    [generated] = versions.glob("*_user_title_required.py")
    source = generated.read_text().splitlines()
    line = next(i for i, text in enumerate(source, 1) if "op.alter_column(" in text)

    # Judged alone, as Atlas does: a warning. Against the data: this revision would fail.
    alone = lint(app, "--latest", "1", dev_database_url=dev_database_url)
    assert alone.returncode == 0 and findings(alone) == [(line, "MF104", "warning")], alone.stdout
    with_data = lint(app, "--latest", "1", dev_database_url=dev_database_url,
                     database_url=read_only_url)
    assert with_data.returncode == 1 and findings(with_data) == [(line, "MF104", "error")]
    assert "data: 1 row of users has a NULL title: this revision will fail" in with_data.stdout

    # The revision as it ships: back-filled before the ALTER, then re-hashed.
    generated.unlink()
    shipped.write_text(shipped_source)
    assert run(app, "-m", "migrate", "hash").returncode == 0
    assert (app / "migrations" / "revisions.sum").read_text() == sums
    fixed = lint(app, "--latest", "1", "--strict", dev_database_url=dev_database_url,
                 database_url=read_only_url)
    assert fixed.returncode == 0 and findings(fixed) == [], fixed.stdout + fixed.stderr
    assert f"_user_title_required.py  ({revision_id} user_title_required)" in fixed.stdout
    assert "INPLACE: in place: rebuilds" in fixed.stdout  # the ALTER rebuilds users (both servers)
    assert snapshot(db) == before  # lint wrote nothing

    upgrade = run(app, "-m", "migrate", "upgrade", database_url=database_url)
    assert upgrade.returncode == 0, upgrade.stderr
    rows = snapshot(db)["users"]
    assert [(r.id, r.name, r.email, r.title) for r in rows] == \
        [(r.id, r.name, r.email, r.title or "") for r in before["users"]]

    # Linted again once applied, the data no longer is what the revision will meet: said so.
    again = lint(app, "--latest", "1", dev_database_url=dev_database_url, database_url=read_only_url)
    assert f"at revision {revision_id}, not at {seed_users}" in again.stdout, again.stdout


def everything(engine) -> dict[str, list[tuple]]:
    """Every row of every table of the database, and every column of each."""
    with engine.connect() as conn:
        names = conn.scalars(text("SHOW TABLES")).all()
        return {t: [conn.execute(text(f"SHOW CREATE TABLE `{t}`")).one()[1],
                    *conn.execute(text(f"SELECT * FROM `{t}` ORDER BY 1")).all()] for t in names}


def leftovers(server, dev) -> tuple[list, list]:
    """Databases beside the dev database (lint's throwaway ones), and privileges granted on
    them (lint's users, which DROP USER removes with their grants)."""
    pattern = dev.database.replace("_", "\\_") + "\\_%"
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE %s",
                    (pattern,))
        databases = cur.fetchall()
        cur.execute("SELECT User, Db FROM mysql.db WHERE Db LIKE %s", (pattern.replace("\\", "\\\\"),))
        return list(databases), list(cur.fetchall())


# Revisions aimed at production's schema (PROD), on the server where lint replays them.
ATTACKS = {
    "delete a row": ("op.execute('DELETE FROM PROD.blogs WHERE id = 1')\n", "refused, not run: it names database PROD"),
    "drop a column": ("op.execute('ALTER TABLE PROD.users DROP COLUMN title')\n", "refused, not run: it names database PROD"),
    "rename a table away": ("op.execute('RENAME TABLE blogs TO PROD.stolen')\n", "refused, not run: it names database PROD"),
    "create a database": ("op.execute('CREATE DATABASE NEWDB')\n", "refused, not run: CREATE DATABASE NEWDB"),
    "use another database": ("op.execute('USE PROD')\nop.execute('DELETE FROM blogs')\n", "refused, not run: USE PROD"),
    "drop the database": ("op.execute('DROP DATABASE PROD')\n", "DS101 error: Dropping schema \"PROD\""),
    # Its own connection, from the URL lint was given: the revision finds none.
    "connect by itself": ("from database import connect\n"
                          "with connect().begin() as conn:\n"
                          "    conn.exec_driver_sql('DELETE FROM blogs')\n",
                          "the revision fails on the dev database: error: DATABASE_URL is not set"),
    # Assembled at run time, out of lint's sight: the server's privileges refuse it.
    "dynamic SQL": ("op.execute(\"SET @s = CONCAT('DELETE FROM ', 'PROD', '.blogs')\")\n"
                    "op.execute('PREPARE s FROM @s')\nop.execute('EXECUTE s')\n",
                    "the revision fails on the dev database: (1142"),
}


@pytest.mark.parametrize("attack", ATTACKS)
def test_lint_never_writes_outside_its_throwaway_database(
        step, server, database_url, dev_database_url, db, attack):
    """With the app's and the dev database on one server, as the README sets them up, a
    revision aimed at production's schema changes nothing there, and lint leaves nothing."""
    app = step(STEP)
    production(app, database_url, db, [{"name": "Jerry", "email": "jerry@example.com"}])
    body, message = ATTACKS[attack]
    newdb = f"{dev_database_url.database}_made"
    body = body.replace("PROD", database_url.database).replace("NEWDB", newdb)
    write_revision(app, "linted", body)
    before = everything(db)
    assert len(before["users"]) == 4 and len(before["blogs"]) == 2  # definition and rows
    result = lint(app, dev_database_url=dev_database_url, database_url=database_url)
    assert result.returncode == 1, result.stdout + result.stderr
    assert message.replace("PROD", database_url.database).replace("NEWDB", newdb) in result.stdout, \
        result.stdout + result.stderr
    assert "Lint failed." in result.stdout and "Traceback" not in result.stdout + result.stderr
    assert everything(db) == before
    assert leftovers(server, dev_database_url) == ([], [])


ADD_SUBTITLE = "op.add_column('blogs', sa.Column('subtitle', sa.String(40), nullable=True))\n"
SUBTITLE_REQUIRED = "op.alter_column('blogs', 'subtitle', existing_type=sa.String(40), nullable=False)\n"

# What the issue found, each read from the statement, not guessed: (earlier revisions, the one
# linted, the findings as (line offset, code, kind), in order)
READ_AS_SQL = {
    "a leading comment hides nothing": (
        [], "op.execute('/* x */ DROP TABLE blogs')\n", [(0, "DS102", "error")]),
    "DROP + ADD of the same type is no rename": (
        [], "op.execute('ALTER TABLE blogs DROP COLUMN title, ADD COLUMN headline VARCHAR(255)')\n",
        [(0, "DS103", "error")]),
    "two renames in one statement": (
        [], "op.execute('ALTER TABLE blogs RENAME COLUMN title TO headline, RENAME COLUMN body TO content')\n",
        [(0, "BC102", "warning"), (0, "BC102", "warning")]),
    "a rename with another change": (
        [], "op.execute('ALTER TABLE blogs CHANGE title headline VARCHAR(300) NOT NULL')\n",
        [(0, "BC102", "warning")]),
    "RENAME TO + ADD COLUMN": (
        [], "op.execute('ALTER TABLE blogs RENAME TO posts, ADD COLUMN views INT')\n",
        [(0, "BC101", "warning")]),
    "a POINT column elsewhere in the schema": (
        ["op.execute('CREATE TABLE places (id INT PRIMARY KEY, at POINT, ip VARCHAR(39))')\n"],
        ADD_NICKNAME, []),
    "a POINT column dropped": (
        ["op.execute('CREATE TABLE places (id INT PRIMARY KEY, at POINT)')\n"],
        "op.drop_column('places', 'at')\n", [(0, "DS103", "error")]),
    "a back-fill that may write NULL is none": (
        [ADD_SUBTITLE], "op.execute(\"UPDATE blogs SET subtitle = IF(id > 1, 'x', NULL) "
                        "WHERE subtitle IS NULL\")\n" + SUBTITLE_REQUIRED,
        [(1, "MF104", "warning")]),
    "an UPDATE filling a column the revision adds": (
        [], ADD_SUBTITLE + "op.execute(\"UPDATE blogs SET subtitle = 'none'\")\n" + SUBTITLE_REQUIRED, []),
    "TRUNCATE": ([], "op.execute('TRUNCATE blogs')\n", [(0, "DM101", "error")]),
    "CREATE UNIQUE INDEX after a DROP INDEX is a new unique index": (
        ["op.create_index('ix_users_name', 'users', ['name'])\n"],
        "op.drop_index('ix_users_name', 'users')\n"
        "op.create_index('ix_users_name', 'users', ['name'], unique=True)\n",
        [(1, "MF101", "warning")]),
    "a NOT NULL column losing its default": (
        ["op.add_column('blogs', sa.Column('views', sa.Integer(), nullable=False, server_default='0'))\n"],
        "op.alter_column('blogs', 'views', existing_type=sa.Integer(), server_default=None, "
        "existing_nullable=False)\n", [(0, "DF101", "warning")]),
    "a table the revision creates and drops": (
        [], "op.create_table('scratch', sa.Column('id', sa.Integer(), primary_key=True))\n"
            "op.drop_table('scratch')\n", []),
    "a view keeping a renamed table's name": (
        [], "op.rename_table('blogs', 'posts')\nop.execute('CREATE VIEW blogs AS SELECT * FROM posts')\n", []),
    "enum values reordered": (
        ["op.add_column('blogs', sa.Column('kind', sa.Enum('a', 'b')))\n"],
        "op.alter_column('blogs', 'kind', type_=sa.Enum('b', 'a'), existing_type=sa.Enum('a', 'b'))\n",
        [(0, "MY111", "warning")]),
}


@pytest.mark.parametrize("case", READ_AS_SQL)
def test_statements_are_read_as_sql(step, dev_database_url, case):
    app = step(STEP)
    earlier, linted, expected = READ_AS_SQL[case]
    write_revisions(app, earlier, linted)
    result = lint(app, dev_database_url=dev_database_url)
    assert "Traceback" not in result.stdout + result.stderr and result.stderr == "", result.stderr
    assert findings(result) == [(FIRST_LINE + offset, code, kind) for offset, code, kind in expected], \
        result.stdout
    assert result.returncode == int(any(kind == "error" for *_, kind in expected)), result.stdout


@pytest.mark.parametrize("update, nulls", [
    ("UPDATE blogs SET subtitle = 'x' WHERE id < 3", 1),  # blog 3 keeps its NULL
    ("UPDATE blogs SET subtitle = IF(id = 1, 'x', NULL) WHERE subtitle IS NULL", 2),
    ("UPDATE blogs SET subtitle = title WHERE subtitle IS NULL", 0),  # titles are NOT NULL
])
def test_a_back_fill_is_proved_on_productions_rows_then_applied(
        step, database_url, dev_database_url, db, read_only_url, update, nulls):
    """The back-fill's SET and WHERE, played as a SELECT on production's rows (read-only),
    say whether the NOT NULL will fail; applying the revision shows they were right."""
    app = step(STEP)
    write_revision(app, "add_subtitle", ADD_SUBTITLE)
    production(app, database_url, db, [])
    with db.begin() as conn:
        conn.execute(text("INSERT INTO blogs (title, body) VALUES ('Two', '2'), ('Three', '3')"))
    write_revision(app, "linted", f"op.execute({update!r})\n" + SUBTITLE_REQUIRED)
    before = everything(db)
    result = lint(app, dev_database_url=dev_database_url, database_url=read_only_url)
    assert result.stderr == "", result.stderr
    if nulls:
        assert findings(result) == [(FIRST_LINE + 1, "MF104", "error")], result.stdout
        assert f"a NULL subtitle after the back-fill: this revision will fail" in result.stdout
        assert f"data: {nulls} row" in result.stdout
    else:
        assert findings(result) == [], result.stdout
    assert everything(db) == before  # lint read only
    applied = run(app, "-m", "migrate", "upgrade", database_url=database_url)
    assert (applied.returncode != 0) == bool(nulls), applied.stderr
    after = everything(db)
    assert [row[:3] for row in after["blogs"][1:]] == [row[:3] for row in before["blogs"][1:]]


def test_lint_stopped_midway_leaves_nothing_behind(step, server, dev_database_url):
    """SIGTERM (CI's timeout) while a revision runs: the user and the database lint made are
    dropped all the same."""
    import signal
    import subprocess
    import sys
    import time

    from tutorial_kit.steps import step_env
    app = step(STEP)
    # A data statement (the dev database's two seeded users): the upgrade's own handler
    # (migrate/history.py) cancels it at the first SIGTERM, and the run stops there.
    write_revision(app, "linted", "op.execute('UPDATE users SET name = name WHERE SLEEP(60) = 0')\n")
    process = subprocess.Popen([sys.executable, "-m", "migrate", "lint"], cwd=app,
                               env=step_env(None, dev_database_url), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        pattern = dev_database_url.database.replace("_", "\\_") + "\\_%"
        while True:  # until the revision runs: its SLEEP is in the process list
            with server.connect() as conn, conn.cursor() as cur:
                cur.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE "
                            "INFO LIKE 'UPDATE users%%SLEEP(60)%%' AND DB LIKE %s", (pattern,))
                if cur.fetchone()[0]:
                    break
            assert process.poll() is None, process.communicate()
            time.sleep(0.2)
        assert leftovers(server, dev_database_url) != ([], [])  # made while it runs
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 1 and "Traceback" not in out + err, out + err
    assert "the revision fails on the dev database" in out and "Lint failed." in out, out
    assert leftovers(server, dev_database_url) == ([], [])


@pytest.mark.parametrize("create_user, message", [
    (False, "may not create users"), (True, "may not grant privileges on")])
def test_a_dev_user_that_may_not_make_the_replays_user_gets_one_line(
        step, server, dev_database_url, db, create_user, message):
    user, password = f"dev_{secrets.token_hex(4)}", secrets.token_hex(8)
    with db.begin() as conn:
        conn.execute(text(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'"))
        conn.execute(text(f"GRANT ALL ON `{dev_database_url.database}%`.* TO '{user}'@'%'"))
        if create_user:  # but no GRANT OPTION
            conn.execute(text(f"GRANT CREATE USER ON *.* TO '{user}'@'%'"))
    try:
        limited = dev_database_url.set(username=user, password=password)
        line = assert_clean_failure(lint(step(STEP), dev_database_url=limited), password=password)
        assert f"DEV_DATABASE_URL's user '{user}' {message}" in line
        assert leftovers(server, dev_database_url) == ([], [])
    finally:
        with db.begin() as conn:
            conn.execute(text(f"DROP USER '{user}'@'%'"))


@pytest.mark.parametrize("earlier, linted, statement", [
    (["op.create_index('ix_users_name', 'users', ['name'])\n"],
     "op.drop_index('ix_users_name', 'users')\n", "DROP INDEX ix_users_name ON users"),
    (["op.execute('CREATE TABLE places (id INT PRIMARY KEY, at POINT)')\n"],
     "op.execute('ALTER TABLE places ADD COLUMN shape GEOMETRY')\n",
     "ALTER TABLE places ADD COLUMN shape GEOMETRY"),
])
def test_cost_of_statements_sqlglot_reads_in_part(step, dev_database_url, earlier, linted, statement):
    app = step(STEP)
    write_revisions(app, earlier, linted)
    result = lint(app, dev_database_url=dev_database_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"cost: {statement}" in result.stdout
    assert re.search(r"(INSTANT|NOCOPY|INPLACE|COPY): ", cost(result)), result.stdout


def test_a_table_out_of_instant_row_versions_is_found_on_production(
        step, database_url, dev_database_url, db, read_only_url, mariadb):
    """MySQL counts a table's instant ADD/DROP COLUMNs (255 from 9.1): a fresh dev database
    allows INSTANT where production, at the limit, rebuilds. lint reads production's count;
    a user without PROCESS gets "unknown". MariaDB has no such count."""
    app = step(STEP)
    write_revision(app, "wide", "op.create_table('wide', sa.Column('id', sa.Integer(), primary_key=True))\n")
    production(app, database_url, db, [])
    with db.begin() as conn:
        conn.execute(text("INSERT INTO wide (id) VALUES (1), (2)"))
        # Each instant ADD or DROP COLUMN is one row version: 255, the limit (one more and
        # the server rebuilds the table, which starts the count again).
        for i in range(255):
            conn.execute(text("ALTER TABLE wide DROP COLUMN c" if i % 2 else
                              "ALTER TABLE wide ADD COLUMN c INT"))
    write_revision(app, "linted", "op.add_column('wide', sa.Column('extra', sa.Integer(), nullable=True))\n")
    result = lint(app, dev_database_url=dev_database_url, database_url=database_url)
    assert result.returncode == 0 and result.stderr == "", result.stdout + result.stderr
    assert cost(result).startswith("INSTANT: metadata only")  # as the dev database says
    unknown = lint(app, dev_database_url=dev_database_url, database_url=read_only_url)
    if mariadb:
        assert findings(result) == [] and "row versions" not in result.stdout + unknown.stdout
        return
    assert findings(result) == [(FIRST_LINE, "IN101", "warning")], result.stdout
    assert "wide: 255 of 255 instant row versions used" in result.stdout
    assert "instant row versions used unknown (reading them needs PROCESS)" in unknown.stdout
    assert findings(unknown) == []
    with db.connect() as conn:  # and production agrees: INSTANT is refused there
        with pytest.raises(Exception, match="4092"):
            conn.execute(text("ALTER TABLE wide ADD COLUMN probe INT, ALGORITHM=INSTANT"))
    applied = run(app, "-m", "migrate", "upgrade", database_url=database_url)
    assert applied.returncode == 0, applied.stderr
    with db.connect() as conn:
        assert conn.execute(text("SELECT id FROM wide ORDER BY id")).scalars().all() == [1, 2]
