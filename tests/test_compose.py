"""docker-compose.yml, checked without a Docker engine: schema, services, health, ports."""

import copy
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import repo_root
from tutorial_kit.steps import STEPS

ROOT = repo_root()


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def checked(compose, tmp_path_factory):
    """check-jsonschema, with the Compose Specification's schema it ships, run once on the
    repository's file and on a copy broken on purpose (a misspelt key)."""
    broken = copy.deepcopy(compose)
    broken["services"]["db"]["helthcheck"] = broken["services"]["db"].pop("healthcheck")
    path = tmp_path_factory.mktemp("compose") / "broken-compose.yml"
    path.write_text(yaml.safe_dump(broken))
    return subprocess.run(
        [str(Path(sys.executable).with_name("check-jsonschema")),
         "--builtin-schema", "vendor.compose-spec", str(ROOT / "docker-compose.yml"), str(path)],
        capture_output=True, text=True,
    )


def test_matches_the_compose_specification(checked):
    errors = checked.stdout + checked.stderr
    assert "broken-compose.yml" in errors and "docker-compose.yml:" not in errors, errors


def test_the_compose_check_catches_a_broken_file(checked):
    assert checked.returncode == 1 and "helthcheck" in checked.stdout, checked.stdout


def test_mysql_service(compose):
    db = compose["services"]["db"]
    assert db["image"] == "mysql:8.4"
    assert db["environment"]["MYSQL_ROOT_PASSWORD"] == "${MYSQL_ROOT_PASSWORD:-pass}"
    # The init script creates the app database and the scratch database.
    [init] = [v for v in db["volumes"] if "docker-entrypoint-initdb.d" in v]
    script = (ROOT / init.split(":")[0]).glob("*.sql")
    sql = "\n".join(p.read_text() for p in script)
    assert re.search(r"CREATE DATABASE IF NOT EXISTS app\b", sql)
    assert re.search(r"CREATE DATABASE IF NOT EXISTS dev\b", sql)


def test_healthcheck_probes_over_tcp(compose):
    test = compose["services"]["db"]["healthcheck"]["test"]
    command = " ".join(test[1:])
    assert test[0] in ("CMD", "CMD-SHELL")
    assert "mysqladmin ping" in command
    assert "--protocol=tcp" in command and "127.0.0.1" in command


def test_ports_are_published_on_loopback_only(compose):
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)


def _stage_services(compose):
    return {n: s for n, s in compose["services"].items() if n != "db"}


def test_one_service_per_stage(compose):
    services = _stage_services(compose)
    built = {s["build"].removeprefix("./") for s in services.values() if "build" in s}
    present = [step for step in STEPS if (ROOT / step).is_dir()]
    assert built == set(present)
    for name, service in services.items():
        assert service["profiles"] == ["stages"], name
        url = service["environment"]["DATABASE_URL"]
        assert url.startswith("mysql+pymysql://") and "@db:3306/app" in url
        assert "db" in service["depends_on"], name
        assert (ROOT / service["build"] / "Dockerfile").exists(), name


def test_env_example_documents_the_defaults():
    example = (ROOT / ".env.example").read_text()
    assert "MYSQL_ROOT_PASSWORD=pass" in example
    assert "MYSQL_PORT=3306" in example


def test_step_3_app_waits_for_its_migration(compose):
    services = compose["services"]
    migrate, app = services["step-3-migrate"], services["step-3"]
    assert migrate["command"] == ["python", "-m", "migrate", "upgrade"]
    assert app["depends_on"]["step-3-migrate"]["condition"] == "service_completed_successfully"
    assert app["depends_on"]["db"]["condition"] == "service_healthy"
    assert "command" not in app  # the image's CMD: python main.py
    assert "CMD [\"python\", \"main.py\"]" in (ROOT / "step-3-apply" / "Dockerfile").read_text()
