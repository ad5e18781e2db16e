"""step-2-generate: the planner, on a throwaway dev database, never on the app's."""

import re
from datetime import datetime, timedelta

import pytest
from sqlalchemy import create_engine, inspect

from conftest import assert_clean_failure, repo_root
from tutorial_kit.steps import run, url_text

ROOT = repo_root()
NO_DOCKER = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}


def revisions(app):
    return sorted((app / "migrations" / "versions").glob("*.py"))


def throwaways(server, dev_database_url) -> set[str]:
    """The planner's throwaway databases beside this test's scratch database."""
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("SHOW DATABASES")
        return {row[0] for row in cur.fetchall() if row[0].startswith(f"{dev_database_url.database}_plan_")}


def edit(path, old, new):
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


@pytest.mark.parametrize("name", ["step-2-generate", "step-3-apply"])
def test_committed_migrations_match_the_models(step, name, database_url):
    app = step(name)
    assert [p.stem.split("_", 1)[1] for p in revisions(app)][0] == "initialize"
    upgrade = run(app, "-m", "alembic", "upgrade", "head", database_url=database_url)
    assert upgrade.returncode == 0, upgrade.stderr
    check = run(app, "-m", "alembic", "check", database_url=database_url)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "No new upgrade operations detected" in check.stdout


def test_unchanged_models_write_nothing(step, server, dev_database_url):
    app = step("step-2-generate")
    before = revisions(app)
    result = run(app, "-m", "migrate", "generate", "again", dev_database_url=dev_database_url)
    assert result.returncode == 0, result.stderr
    assert "nothing to generate" in result.stdout
    assert revisions(app) == before
    assert throwaways(server, dev_database_url) == set()  # the throwaway database is gone
    assert inspect(create_engine(url_text(dev_database_url))).get_table_names() == []


def test_a_model_change_becomes_one_revision(step, server, dev_database_url, database_url):
    app = step("step-2-generate")
    edit(
        app / "models.py",
        '    email: Mapped[str] = mapped_column(String(255), unique=True)\n',
        '    email: Mapped[str] = mapped_column(String(255), unique=True)\n'
        '    title: Mapped[str | None] = mapped_column(String(255))\n',
    )
    before = revisions(app)
    result = run(app, "-m", "migrate", "generate", "add_user_title", dev_database_url=dev_database_url)
    assert result.returncode == 0, result.stderr
    [new] = sorted(set(revisions(app)) - set(before))
    assert re.fullmatch(r"\d{14}_add_user_title", new.stem)
    assert "ALTER TABLE users ADD COLUMN title VARCHAR(255)" in result.stdout
    assert "warning" not in result.stderr
    assert throwaways(server, dev_database_url) == set()

    # The new revision, applied to a real database, makes exactly that change.
    assert run(app, "-m", "alembic", "upgrade", "head", database_url=database_url).returncode == 0
    columns = {c["name"]: c for c in inspect(create_engine(url_text(database_url))).get_columns("users")}
    assert list(columns) == ["id", "name", "email", "title"]
    assert columns["title"]["nullable"] is True
    check = run(app, "-m", "alembic", "check", database_url=database_url)
    assert check.returncode == 0, check.stdout + check.stderr
    # Running the planner again finds nothing left to do.
    again = run(app, "-m", "migrate", "generate", "add_user_title", dev_database_url=dev_database_url)
    assert "nothing to generate" in again.stdout
    # It recorded the new file in the checksum file, chained after the first, as Atlas does.
    lines = (app / "migrations" / "revisions.sum").read_text().splitlines()
    assert [line.split(" ")[0] for line in lines[1:]] == [p.name for p in before] + [new.name]
    assert lines[0].startswith("h1:") and all(" h1:" in line for line in lines[1:])
    shipped = (ROOT / "step-2-generate" / "migrations" / "revisions.sum").read_text().splitlines()
    assert lines[1] == shipped[1] and lines[0] != shipped[0]


def test_a_revision_id_already_taken_is_skipped(step, dev_database_url, database_url):
    # Revisions are named by the second. Occupy the next ten seconds' names with empty
    # revisions, so that the plan below is made in a second whose name is taken.
    app = step("step-2-generate")
    versions = app / "migrations" / "versions"
    [first] = revisions(app)
    previous = first.stem.split("_")[0]
    now = datetime.now()
    for offset in range(11):
        rev = (now + timedelta(seconds=offset)).strftime("%Y%m%d%H%M%S")
        (versions / f"{rev}_placeholder.py").write_text(
            f"revision = {rev!r}\ndown_revision = {previous!r}\nbranch_labels = None\n"
            "depends_on = None\n\ndef upgrade():\n    pass\n\ndef downgrade():\n    pass\n"
        )
        previous = rev
    edit(app / "models.py", "    name: Mapped[str]",
         "    title: Mapped[str | None] = mapped_column(String(50))\n    name: Mapped[str]")
    result = run(app, "-m", "migrate", "generate", "add_user_title", dev_database_url=dev_database_url)
    assert result.returncode == 0, result.stderr
    [new] = versions.glob("*_add_user_title.py")
    assert f"down_revision: Union[str, Sequence[str], None] = {previous!r}" in new.read_text()
    assert run(app, "-m", "alembic", "upgrade", "head", database_url=database_url).returncode == 0
    check = run(app, "-m", "alembic", "check", database_url=database_url)
    assert check.returncode == 0, check.stdout + check.stderr


def test_a_revision_mysql_rejects_is_not_kept(step, server, dev_database_url):
    app = step("step-2-generate")
    # MySQL has no VARCHAR without a length: the planned revision cannot run.
    edit(app / "models.py", "    name: Mapped[str]",
         "    nickname: Mapped[str | None] = mapped_column(String())\n    name: Mapped[str]")
    before = revisions(app)
    result = run(app, "-m", "migrate", "generate", "add_nickname", dev_database_url=dev_database_url)
    line = assert_clean_failure(result)
    assert "the planned revision fails on MySQL (VARCHAR requires a length" in line
    assert revisions(app) == before
    assert throwaways(server, dev_database_url) == set()


def test_a_dev_database_with_tables_is_refused(step, database_url, dev_database_url):
    app = step("step-2-generate")
    # The app's database, filled by create_all(), named as the dev database by mistake.
    assert run(app, "main.py", database_url=database_url).returncode == 0
    edit(app / "models.py", "    name: Mapped[str]", "    full_name: Mapped[str]")
    before = revisions(app)
    result = run(app, "-m", "migrate", "generate", "oops", dev_database_url=database_url)
    line = assert_clean_failure(result)
    assert f"names database '{database_url.database}', which holds tables (blogs, users)" in line
    assert revisions(app) == before
    assert set(inspect(create_engine(url_text(database_url))).get_table_names()) == {"users", "blogs"}


SECRET = "s3cret-Pa55word"


@pytest.mark.parametrize(
    "case, args, dev_url, expected",
    [
        ("missing NAME", [], "dev", "NAME is missing"),
        ("two words", ["add", "title"], "dev", "'add title' is not a NAME"),
        ("upper case", ["AddTitle"], "dev", "'AddTitle' is not a NAME"),
        ("malformed URL", ["x"], f"mysql+pymysql://root:{SECRET}@host:port/dev", "DEV_DATABASE_URL is not a valid URL"),
        ("wrong password", ["x"], "password", "check the user name and password in DEV_DATABASE_URL"),
        ("unreachable", ["x"], "port", "cannot reach MySQL at 127.0.0.1:1"),
        ("missing database", ["x"], "database", "database 'no_such_dev' does not exist"),
        ("no URL, no Docker", ["x"], None, "DEV_DATABASE_URL is not set and no Docker engine answers"),
    ],
)
def test_bad_input_gets_one_clear_line(step, dev_database_url, case, args, dev_url, expected):
    app = step("step-2-generate")
    edit(app / "models.py", "    name: Mapped[str]", "    full_name: Mapped[str]")  # work to do
    urls = {
        "dev": dev_database_url,
        "password": dev_database_url.set(password=SECRET),
        "port": dev_database_url.set(port=1, password=SECRET),
        "database": dev_database_url.set(database="no_such_dev"),
    }
    before = revisions(app)
    result = run(app, "-m", "migrate", "generate", *args, dev_database_url=urls.get(dev_url, dev_url), env=NO_DOCKER)
    line = assert_clean_failure(result, password=SECRET)
    assert line.startswith("error: ") and expected in line, (case, line)
    assert revisions(app) == before
