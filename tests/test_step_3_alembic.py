"""pytest-alembic's built-in checks, run against the migrations of step 3 and of step 5 (which
adds add_user_title and the hand-written seed_users) on a real server. On step 5, the built-in
upgrade tests run with Jerry already in production before seed_users (before_revision_data)."""

import sys

import pytest
from pytest_alembic.config import Config
from pytest_alembic.tests import (  # noqa: F401  (collected as tests here)
    test_model_definitions_match_ddl,
    test_single_head_revision,
    test_up_down_consistency,
    test_upgrade,
)
from sqlalchemy import create_engine

from tutorial_kit.steps import copy_step, url_text

# Production already has a Jerry, another one: seed_users must neither fail, nor duplicate
# him, nor change him.
JERRY = {"__tablename__": "users", "name": "Jerome Seinfeld", "email": "jerry@seinfeld.io", "title": "Dr."}


def revision_of(app, name: str) -> str:
    [path] = (app / "migrations" / "versions").glob(f"*_{name}.py")
    return path.name.split("_")[0]


@pytest.fixture(scope="module", params=["step-3-apply", "step-5-custom-migration"])
def step_copy(request, tmp_path_factory):
    app = copy_step(request.param, tmp_path_factory.mktemp("alembic"))
    yield app
    # env.py imports this copy's modules; do not leave them for another step's tests.
    for name in ("models", "history", "lock", "database"):
        sys.modules.pop(name, None)


@pytest.fixture
def alembic_config(step_copy):
    options = {"file": str(step_copy / "alembic.ini")}
    if step_copy.name == "step-5-custom-migration":
        options["before_revision_data"] = {revision_of(step_copy, "seed_users"): JERRY}
    return Config(config_options=options)


@pytest.fixture
def alembic_engine(database_url):
    engine = create_engine(url_text(database_url))
    yield engine
    engine.dispose()
