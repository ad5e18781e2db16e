"""copy_step: a step's copy comes with the bytecode its first command would otherwise compile."""

import importlib.util
from pathlib import Path

import pytest

from tutorial_kit.steps import copy_step, run


def test_a_copy_carries_bytecode_for_every_module(tmp_path):
    app = copy_step("step-6-verify-safety", tmp_path)
    modules = sorted(app.rglob("*.py"))
    assert len(modules) > 10
    missing = [m for m in modules if not Path(importlib.util.cache_from_source(str(m))).is_file()]
    assert missing == []


@pytest.mark.parametrize("copy", ["compiled here", "given the first copy's bytecode"])
def test_a_module_edited_within_the_second_runs_as_edited(tmp_path, copy):
    """Same size, same second: a time-stamped .pyc would still be taken for the new source."""
    if copy != "compiled here":
        copy_step("start", tmp_path / "first")
    app = copy_step("start", tmp_path / "second")
    models = app / "models.py"
    source = models.read_text()
    models.write_text(source + "print('old')\n")
    assert run(app, "-c", "import models").stdout == "old\n"
    models.write_text(source + "print('new')\n")
    assert run(app, "-c", "import models").stdout == "new\n"


def test_code_names_its_own_copy_not_the_one_compiled_first(tmp_path):
    """Tracebacks, and step 6's lint (which finds a revision's lines in the stack), need it."""
    for copy in ("first", "second"):
        app = copy_step("start", tmp_path / copy)
        result = run(app, "-c", "import database; print(database.connect.__code__.co_filename)")
        assert result.stdout == f"{app / 'database.py'}\n", result.stderr
