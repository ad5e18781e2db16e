"""The first run is quiet: pip's progress, one line per phase, not its log."""

import subprocess
import sys

from conftest import assert_clean_failure, repo_root

sys.path.insert(0, str(repo_root() / "scripts"))
from install import phases  # noqa: E402

PIP_LOG = """\
Obtaining file:///work/repo
  Checking if build backend supports build_editable: started
Collecting SQLAlchemy==2.1.9 (from -r requirements.txt (line 6))
  Downloading sqlalchemy-2.1.9-cp311-cp311-manylinux_2_17_x86_64.whl (3.3 MB)
Collecting alembic==1.20.1 (from -r requirements.txt (line 8))
Building wheels for collected packages: versioned-migrations-tutorial
  /tmp/pip-build-env/setuptools/command/editable_wheel.py:354: BuildBackendWarning: Editable installation.
          Please be careful with folders in your working directory with the same
Installing collected packages: SQLAlchemy, alembic, versioned-migrations-tutorial
Successfully installed SQLAlchemy-2.1.9 alembic-1.20.1 versioned-migrations-tutorial-0.1.0
""".splitlines()


def test_only_the_phases_of_pips_log_are_shown():
    assert list(phases(PIP_LOG)) == [
        "collecting the requirements: 1 (SQLAlchemy==2.1.9)",
        "collecting the requirements: 2 (alembic==1.20.1)",
        "installing 3 packages",
        "installed 3 packages",
    ]


def test_a_failing_pip_shows_its_log_and_one_error_line(tmp_path):
    result = subprocess.run(
        [sys.executable, str(repo_root() / "scripts" / "install.py"), "-r", str(tmp_path / "none.txt")],
        capture_output=True, text=True,
    )
    assert assert_clean_failure(result).startswith("error: pip failed (exit 1)")
    assert "none.txt" in result.stdout  # pip's own words, for the reader to act on


def test_a_venv_with_every_pin_is_taken_as_it_is(tmp_path):
    # `make`'s stamp rule asks this first: a .venv made with the README's own commands is kept.
    script = str(repo_root() / "scripts" / "install.py")
    check = lambda path: subprocess.run([sys.executable, script, "--check", str(path)]).returncode
    assert check(repo_root() / "requirements.txt") == 0
    (tmp_path / "other.txt").write_text("# a comment\nSQLAlchemy==0.1  # not this one\n")
    assert check(tmp_path / "other.txt") == 1
    (tmp_path / "absent.txt").write_text("no-such-package-here[extra]==1.0\n")
    assert check(tmp_path / "absent.txt") == 1
