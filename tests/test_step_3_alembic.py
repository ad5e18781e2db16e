"""pytest-alembic's built-in checks, run against step-3-apply's migrations on a real server."""

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


@pytest.fixture(scope="module")
def step_3(tmp_path_factory):
    app = copy_step("step-3-apply", tmp_path_factory.mktemp("alembic"))
    yield app
    # env.py imports this copy's `models`; do not leave it for another step's tests.
    sys.modules.pop("models", None)


@pytest.fixture
def alembic_config(step_3):
    return Config(config_options={"file": str(step_3 / "alembic.ini")})


@pytest.fixture
def alembic_engine(database_url):
    engine = create_engine(url_text(database_url))
    yield engine
    engine.dispose()
