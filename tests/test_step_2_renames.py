"""step-2-generate: a rename is never planned as a drop by default (Django's "Did you rename?")."""

import os

import pexpect
import pytest
from sqlalchemy import create_engine, inspect, text

from conftest import assert_clean_failure
from tutorial_kit.steps import python_on_path, run, step_env, url_text

USERS = 2000

# (model edit, --rename answers, what the revision must hold)
RENAMES = {
    "column": (
        [("    name: Mapped[str]", "    full_name: Mapped[str]")],
        ["users.name=full_name"],
        ["op.alter_column('users', 'name'", "new_column_name='full_name'"],
    ),
    "unique column": (
        [("    email: Mapped[str]", "    address: Mapped[str]")],
        ["users.email=address"],
        ["new_column_name='address'", "op.create_unique_constraint(op.f('uq_users_address')"],
    ),
    "primary key, and a column with a server default": (
        [("    id: Mapped[int] = mapped_column(primary_key=True)\n    name",
          "    user_id: Mapped[int] = mapped_column(primary_key=True)\n    name"),
         ('ForeignKey("users.id"', 'ForeignKey("users.user_id"'),
         ("    created_at: Mapped[datetime]", "    published_at: Mapped[datetime]")],
        ["users.id=user_id", "blogs.created_at=published_at"],
        ["new_column_name='user_id'", "autoincrement=True", "new_column_name='published_at'",
         "existing_server_default="],
    ),
    "table and one of its columns": (
        [('__tablename__ = "blogs"', '__tablename__ = "posts"'),
         ("    title: Mapped[str]", "    headline: Mapped[str]")],
        ["blogs=posts", "posts.title=headline"],
        ["op.rename_table('blogs', 'posts')", "op.alter_column('posts', 'title'"],
    ),
}


def edit(path, old, new):
    source = path.read_text()
    assert old in source, f"{old!r} not in {path}"
    path.write_text(source.replace(old, new))


def revisions(app):
    return sorted((app / "migrations" / "versions").glob("*.py"))


def throwaways(server, dev_database_url) -> set[str]:
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute(f"SHOW DATABASES LIKE '{dev_database_url.database}\\_plan\\_%'")
        return {row[0] for row in cur.fetchall()}


def fill(app, database_url, engine):
    """The committed migrations applied, then thousands of users, each with a post."""
    upgrade = run(app, "-m", "alembic", "upgrade", "head", database_url=database_url)
    assert upgrade.returncode == 0, upgrade.stderr
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO users (name, email) VALUES (:name, :email)"),
            [{"name": f"User {i}", "email": f"user{i}@example.com"} for i in range(USERS)],
        )
        conn.execute(text("INSERT INTO blogs (title, body, author_id) "
                          "SELECT CONCAT('Post ', id), REPEAT('text ', id % 50), id FROM users"))


def columns(engine) -> list[dict]:
    """What each column is (type, nullable, default, auto-increment, ...), its name aside."""
    engine.dispose()
    names = inspect(engine).get_table_names()
    return [
        {key: str(value) for key, value in column.items() if key != "name"}
        for table in ("users", "posts" if "posts" in names else "blogs")
        for column in inspect(engine).get_columns(table)
    ]


def rows(engine) -> list[tuple]:
    """Every value of every user and post, whatever the tables and columns are called now."""
    engine.dispose()  # a fresh look at the schema
    tables = set(inspect(engine).get_table_names())
    posts = "posts" if "posts" in tables else "blogs"
    with engine.connect() as conn:
        users = conn.execute(text("SELECT * FROM users ORDER BY 1")).all()
        blogs = conn.execute(text(f"SELECT * FROM `{posts}` ORDER BY 1")).all()
    return [tuple(row) for row in users + blogs]


@pytest.mark.parametrize("case", RENAMES)
def test_in_a_script_a_rename_is_refused_and_nothing_written(step, server, dev_database_url, case):
    app = step("step-2-generate")
    edits, answers, _ = RENAMES[case]
    for old, new in edits:
        edit(app / "models.py", old, new)
    before = revisions(app)
    result = run(app, "-m", "migrate", "generate", "rename", dev_database_url=dev_database_url)
    line = assert_clean_failure(result)
    first = answers[0].partition("=")[0]  # a table's columns are asked about after the table
    assert line.startswith("error: ") and "Nothing was written" in line
    assert "`python -m migrate generate rename --rename " in line and f"--rename {answers[0]}" in line
    assert "`python -m migrate generate rename --drop " in line and f"--drop {first}" in line
    assert revisions(app) == before
    assert throwaways(server, dev_database_url) == set()


@pytest.mark.parametrize("case", RENAMES)
def test_a_rename_keeps_every_value_up_and_down(step, dev_database_url, database_url, db, case):
    app = step("step-2-generate")
    fill(app, database_url, db)
    before, described = rows(db), columns(db)
    assert len(before) == 2 * USERS
    edits, answers, expected = RENAMES[case]
    for old, new in edits:
        edit(app / "models.py", old, new)
    options = [arg for answer in answers for arg in ("--rename", answer)]
    planned = run(app, "-m", "migrate", "generate", "rename", *options, dev_database_url=dev_database_url)
    assert planned.returncode == 0, planned.stderr
    assert planned.stderr == ""
    [revision] = (app / "migrations" / "versions").glob("*_rename.py")
    source = revision.read_text()
    assert [e for e in expected if e not in source] == []
    assert "drop_column" not in source and "drop_table" not in source

    up = run(app, "-m", "alembic", "upgrade", "head", database_url=database_url)
    assert up.returncode == 0, up.stderr
    assert rows(db) == before  # same values, in the same places, under the new names
    assert columns(db) == described  # and each column still what it was
    check = run(app, "-m", "alembic", "check", database_url=database_url)
    assert check.returncode == 0, check.stdout + check.stderr  # the models are matched exactly

    down = run(app, "-m", "alembic", "downgrade", "-1", database_url=database_url)
    assert down.returncode == 0, down.stderr
    assert rows(db) == before
    assert columns(db) == described
    assert {"users", "blogs"} <= set(inspect(db).get_table_names())
    assert [c["name"] for c in inspect(db).get_columns("users")] == ["id", "name", "email"]


def test_a_confirmed_drop_is_written_as_a_drop(step, dev_database_url):
    app = step("step-2-generate")
    edit(app / "models.py", "    name: Mapped[str]", "    full_name: Mapped[str]")
    result = run(app, "-m", "migrate", "generate", "replace_name", "--drop", "users.name",
                 dev_database_url=dev_database_url)
    assert result.returncode == 0, result.stderr
    [revision] = (app / "migrations" / "versions").glob("*_replace_name.py")
    source = revision.read_text()
    assert "op.add_column('users', sa.Column('full_name'" in source
    assert "op.drop_column('users', 'name')" in source


def test_a_plain_drop_needs_no_answer(step, dev_database_url):
    app = step("step-2-generate")
    edit(app / "models.py", '    title: Mapped[str] = mapped_column(String(255))\n', "")
    result = run(app, "-m", "migrate", "generate", "drop_title", dev_database_url=dev_database_url)
    assert result.returncode == 0, result.stderr
    assert "ALTER TABLE blogs DROP COLUMN title" in result.stdout


def terminal_env(app, dev_database_url) -> dict[str, str]:
    env = step_env(dev_database_url=dev_database_url)
    return {**env, "PATH": f"{python_on_path(app.parent / 'bin')}{os.pathsep}{env['PATH']}"}


def ask(app, dev_database_url, *answers: str) -> tuple[str, int]:
    """Run the planner on a pseudo-terminal, answering its questions in turn."""
    child = pexpect.spawn("python", ["-m", "migrate", "generate", "rename"], cwd=str(app),
                          env=terminal_env(app, dev_database_url), encoding="utf-8", timeout=120)
    for answer in answers:
        child.expect_exact("[y/N] ")
        if answer == "EOF":
            child.sendeof()
        else:
            child.sendline(answer)
    child.expect(pexpect.EOF)
    child.close()
    return child.before, child.exitstatus


@pytest.mark.parametrize(
    "answer, expected",
    [
        ("y", ["op.alter_column('users', 'name'", "new_column_name='full_name'"]),
        ("yes", ["new_column_name='full_name'"]),
        ("n", ["op.add_column('users', sa.Column('full_name'", "op.drop_column('users', 'name')"]),
        ("", ["op.drop_column('users', 'name')"]),  # Enter: the default, no
    ],
)
def test_on_a_terminal_the_planner_asks(step, dev_database_url, answer, expected):
    app = step("step-2-generate")
    edit(app / "models.py", "    name: Mapped[str]", "    full_name: Mapped[str]")
    output, status = ask(app, dev_database_url, answer)
    assert status == 0, output
    [revision] = (app / "migrations" / "versions").glob("*_rename.py")
    source = revision.read_text()
    assert [e for e in expected if e not in source] == []
    assert ("drop_column" in source) == (answer in ("n", ""))


def test_on_a_terminal_a_table_then_its_column_is_asked_about(step, dev_database_url):
    app = step("step-2-generate")
    for old, new in RENAMES["table and one of its columns"][0]:
        edit(app / "models.py", old, new)
    child = pexpect.spawn("python", ["-m", "migrate", "generate", "rename"], cwd=str(app),
                          env=terminal_env(app, dev_database_url), encoding="utf-8", timeout=120)
    child.expect_exact("Did you rename table blogs to posts? [y/N] ")
    child.sendline("y")
    child.expect_exact("Did you rename posts.title to posts.headline? [y/N] ")
    child.sendline("y")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    [revision] = (app / "migrations" / "versions").glob("*_rename.py")
    assert "op.rename_table('blogs', 'posts')" in revision.read_text()


def test_on_a_terminal_no_answer_writes_nothing(step, dev_database_url):
    app = step("step-2-generate")
    edit(app / "models.py", "    name: Mapped[str]", "    full_name: Mapped[str]")
    before = revisions(app)
    output, status = ask(app, dev_database_url, "EOF")
    assert status != 0
    assert "error: no answer; nothing was written" in output and "Traceback" not in output
    assert revisions(app) == before


@pytest.mark.parametrize(
    "options, expected",
    [
        (["--rename", "users.name"], "'users.name' is not TABLE.COLUMN=NEW_NAME or TABLE=NEW_NAME"),
        (["--rename", "users.name=full name"], "is not TABLE.COLUMN=NEW_NAME"),
        (["--drop", "users.name.x"], "'users.name.x' is not TABLE.COLUMN or TABLE"),
        (["--rename", "usrs.name=full_name"], "no table usrs in the models or the migrations"),
        (["--rename", "users.nme=full_name"], "--rename users.nme=full_name names nothing the plan drops, which is: blogs.title, users.name"),
        (["--rename", "users.name=fullname"], "--rename users.name=fullname: the plan adds no users.fullname; it adds users.full_name"),
        (["--rename", "users.name=full_name", "--drop", "users.email"], "--drop users.email names nothing the plan drops"),
        (["--rename", "users.name=full_name", "--drop", "users.name"], "users.name is named twice"),
        (["--rename", "blogs=posts"], "--rename blogs=posts names nothing the plan drops"),
        (["--rename", "blogs.title=headline"], "--rename blogs.title=headline: the plan adds no blogs.headline; it adds nothing there"),
    ],
)
def test_bad_answers_get_one_clear_line(step, server, dev_database_url, options, expected):
    app = step("step-2-generate")
    edit(app / "models.py", "    name: Mapped[str]", "    full_name: Mapped[str]")
    edit(app / "models.py", '    title: Mapped[str] = mapped_column(String(255))\n', "")  # a plain drop
    before = revisions(app)
    result = run(app, "-m", "migrate", "generate", "rename", *options, dev_database_url=dev_database_url)
    line = assert_clean_failure(result)
    assert line.startswith("error: ") and expected in line, line
    assert revisions(app) == before
    assert throwaways(server, dev_database_url) == set()
    assert inspect(create_engine(url_text(dev_database_url))).get_table_names() == []
