"""pytest-alembic's built-in checks, run against the migrations of steps 3, 5 and 6 on a real
server, with data where it matters (pytest-alembic's before_revision_data / at_revision_data):
- step 5: a user with a title arrives with add_user_title, and production already has a Jerry
  before seed_users, which must neither fail on him, nor duplicate him, nor change him;
- step 6: users without a title before user_title_required, which must back-fill them."""

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
ELAINE = {"__tablename__": "users", "name": "Elaine Benes", "email": "elaine@benes.io", "title": "Ms."}
NO_TITLE = [
    {"__tablename__": "users", "name": "Kramer", "email": "kramer@example.com", "title": None},
    {"__tablename__": "users", "name": "Newman", "email": "newman@example.com"},
]


def revision_of(app, name: str) -> str:
    [path] = (app / "migrations" / "versions").glob(f"*_{name}.py")
    return path.name.split("_")[0]


@pytest.fixture(scope="module", params=["step-3-apply", "step-5-custom-migration",
                                                       "step-6-verify-safety", "step-7-big-tables"])
def step_copy(request, tmp_path_factory):
    app = copy_step(request.param, tmp_path_factory.mktemp("alembic"))
    yield app
    # env.py imports this copy's modules; do not leave them for another step's tests.
    for name in [*("models", "history", "lock", "database"),
                 *(m for m in sys.modules if m == "migrate" or m.startswith("migrate."))]:
        sys.modules.pop(name, None)


@pytest.fixture
def alembic_config(step_copy):
    data = {"before_revision_data": {}, "at_revision_data": {}}
    if step_copy.name == "step-5-custom-migration":
        data["at_revision_data"] = {revision_of(step_copy, "add_user_title"): ELAINE}
        data["before_revision_data"] = {revision_of(step_copy, "seed_users"): JERRY}
    if step_copy.name in ("step-6-verify-safety", "step-7-big-tables"):
        data["before_revision_data"] = {revision_of(step_copy, "user_title_required"): NO_TITLE}
    return Config(config_options={"file": str(step_copy / "alembic.ini")}, **data)


@pytest.fixture
def alembic_engine(database_url):
    engine = create_engine(url_text(database_url))
    yield engine
    engine.dispose()
