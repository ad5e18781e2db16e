"""step-1-versioned: Alembic is set up, no revision yet, and the app still auto-migrates."""

import pytest
from sqlalchemy import inspect

from conftest import count
from tutorial_kit.steps import run, url_text


def test_app_still_migrates_itself(step, database_url, db):
    app = step("step-1-versioned")
    result = run(app, "main.py", database_url=database_url)
    assert result.returncode == 0, result.stderr
    assert set(inspect(db).get_table_names()) == {"users", "blogs"}
    assert (count(db, "users"), count(db, "blogs")) == (1, 1)


def test_alembic_runs_and_finds_no_revision(step, database_url, db):
    app = step("step-1-versioned")
    assert list((app / "migrations" / "versions").glob("*.py")) == []
    for command in (["history"], ["heads"], ["current"]):
        result = run(app, "-m", "alembic", *command, database_url=database_url)
        assert result.returncode == 0, result.stderr
        assert "(head)" not in result.stdout  # no revision anywhere
    # `alembic current` connects, finds no version table, and creates nothing but it.
    assert set(inspect(db).get_table_names()) <= {"alembic_version"}


def test_alembic_reads_the_models_metadata(step, database_url):
    # With no revision, autogenerate sees both tables as new: env.py is wired to the models.
    app = step("step-1-versioned")
    result = run(app, "-m", "alembic", "check", database_url=database_url)
    assert result.returncode != 0
    assert "added table 'users'" in result.stderr + result.stdout
    assert "added table 'blogs'" in result.stderr + result.stdout


def test_revision_files_sort_by_time_and_carry_the_name(step, database_url):
    app = step("step-1-versioned")
    result = run(app, "-m", "alembic", "revision", "-m", "seed users", database_url=database_url)
    assert result.returncode == 0, result.stderr
    [revision] = (app / "migrations" / "versions").glob("*.py")
    stamp, _, slug = revision.stem.partition("_")
    assert len(stamp) == 14 and stamp.isdigit() and stamp.startswith("20")
    assert slug == "seed_users"


def test_alembic_without_database_url_says_so(step):
    result = run(step("step-1-versioned"), "-m", "alembic", "current")
    assert result.returncode != 0
    assert "DATABASE_URL is not set" in result.stderr
    assert "Traceback" not in result.stderr


CODE = """
import sys
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine

engine = create_engine(sys.argv[1])
config = Config("alembic.ini")
if sys.argv[2] == "engine":
    config.attributes["connection"] = engine
    command.upgrade(config, "head")
else:
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        connection.commit()
"""


@pytest.mark.parametrize("handed_in", ["engine", "connection"])
def test_env_py_takes_an_engine_or_a_connection_from_code(step, database_url, db, handed_in):
    # The same env.py in every later step: step-3's revision shows that it really migrates
    # through what code hands in, with DATABASE_URL unset.
    app = step("step-3-apply")
    result = run(app, "-c", CODE, url_text(database_url), handed_in)
    assert result.returncode == 0, result.stderr
    assert set(inspect(db).get_table_names()) == {"users", "blogs", "alembic_version", "alembic_history"}
