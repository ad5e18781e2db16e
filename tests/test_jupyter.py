"""Jupyter just works: a kernel reuses its server and leaves nothing behind, saving a notebook
keeps git clean and the pair check green, and `make lab` starts as root."""

import asyncio
import copy
import os
import shutil
import subprocess
import time
from pathlib import Path

import nbformat
import pytest

import tutorial_kit.mysql as kit
from tutorial_kit.lab import HOOK, strip
from tutorial_kit.notebooks import NOTEBOOKS, pair_differences, sources
from tutorial_kit.steps import REPO


def leftovers(tmp: Path) -> list[str]:
    """Server folders in `tmp`, and server processes still running on them."""
    found = [p.name for p in tmp.glob("tutorial-mysql-*")]
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if str(tmp) in cmdline.read_bytes().decode(errors="replace"):
                found.append(f"process {cmdline.parent.name}")
        except OSError:
            pass
    return found


def test_a_killed_kernel_reuses_its_server_and_leaves_nothing_in_tmp(tmp_path, short_tmp):
    from jupyter_client.manager import start_new_kernel

    if kit.find_server_binary() is None:
        pytest.skip("no mysqld or mariadbd on this machine")
    tmp = short_tmp  # the kernel's temporary folder
    env = {
        **os.environ,
        "DATABASE_URL": "",  # no server given: the kernel starts a local one
        "MYSQL_PORT": "1",  # no compose service there
        "DOCKER_HOST": "unix:///nonexistent/docker.sock",  # no engine
        "TUTORIAL_SERVER_DIR": str(tmp),
        "TUTORIAL_BUILD_DIR": str(tmp_path / "build"),
    }
    manager, client = start_new_kernel(kernel_name="python3", env=env, cwd=str(REPO / "notebooks"))
    outputs: list[str] = []
    collect = lambda msg: outputs.append(
        msg["content"].get("text") or msg["content"].get("evalue") or ""
    )
    try:
        first_cell = "from tutorial_kit.notebook import Tutorial\nt = Tutorial('kernel')\n"
        for _ in range(2):  # the reader runs the first cell twice
            reply = client.execute_interactive(
                first_cell + "print('port', t.server.url.port)", timeout=120, output_hook=collect
            )
            assert reply["content"]["status"] == "ok", (outputs, reply["content"].get("evalue"))
        ports = [line for line in "".join(outputs).splitlines() if line.startswith("port ")]
        assert len(ports) == 2 and ports[0] == ports[1], outputs
        assert len(list(tmp.glob("tutorial-mysql-*"))) == 1  # one server, not two
    finally:
        # The worst case: the kernel is killed, its atexit handlers never run.
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    deadline = time.monotonic() + 60
    while leftovers(tmp) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert leftovers(tmp) == []


def git_tracked(path: Path) -> bytes | None:
    """The committed content of `path`, or None outside a git checkout."""
    result = subprocess.run(
        ["git", "show", f"HEAD:{path.relative_to(REPO).as_posix()}"],
        cwd=REPO, capture_output=True,
    )
    return result.stdout if result.returncode == 0 else None


@pytest.mark.parametrize("name", [p.stem for p in sources()])
def test_committed_notebook_holds_no_outputs(name):
    path = NOTEBOOKS / f"{name}.ipynb"
    committed = git_tracked(path)
    notebook = nbformat.reads((committed or path.read_bytes()).decode(), as_version=4)
    assert strip(copy.deepcopy(notebook)) == notebook, f"{name}.ipynb was committed with outputs"


def ran_in_jupyter(notebook: dict) -> None:
    """What running every cell in JupyterLab adds to a notebook, as Jupyter stores it."""
    notebook["metadata"]["language_info"] = {"name": "python", "version": "3.11.7"}
    notebook["metadata"]["widgets"] = {}
    for count, cell in enumerate(notebook["cells"], 1):
        if cell["cell_type"] == "code":
            cell["execution_count"] = count
            cell["outputs"] = [{"name": "stdout", "output_type": "stream", "text": "MySQL: ...\n"}]
            cell["metadata"]["execution"] = {"iopub.status.idle": "2026-11-27T16:00:00.000Z"}
            cell["metadata"]["scrolled"] = True


def test_saving_in_jupyter_keeps_git_clean_and_the_pair_check_honest(tmp_path):
    from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
    from jupytext import build_async_jupytext_contents_manager_class

    # The contents manager `make lab` runs: jupytext's, with the kit's pre-save hook.
    shutil.copytree(NOTEBOOKS, tmp_path / "notebooks")
    manager = build_async_jupytext_contents_manager_class(AsyncLargeFileManager)(
        root_dir=str(tmp_path), pre_save_hook=HOOK
    )
    name = "01-versioned"
    copy_py, copy_ipynb = (tmp_path / "notebooks" / f"{name}{ext}" for ext in (".py", ".ipynb"))

    async def run_and_save() -> None:
        model = await manager.get(f"notebooks/{name}.ipynb")
        ran_in_jupyter(model["content"])
        await manager.save(model, f"notebooks/{name}.ipynb")

    asyncio.run(run_and_save())
    # Byte for byte what git has: `git status` stays clean, `make test` stays green.
    assert copy_ipynb.read_bytes() == (NOTEBOOKS / f"{name}.ipynb").read_bytes()
    assert copy_py.read_bytes() == (NOTEBOOKS / f"{name}.py").read_bytes()
    assert pair_differences(copy_py) == []

    # A notebook saved with its outputs by another Jupyter is still in sync: no edit was made.
    saved = nbformat.read(copy_ipynb, as_version=4)
    ran_in_jupyter(saved)
    nbformat.write(nbformat.from_dict(saved), copy_ipynb)
    assert pair_differences(copy_py) == []

    # An edit of the .py that `make sync` did not carry over is caught.
    copy_py.write_text(copy_py.read_text().replace('t = Tutorial("01-versioned")', 't = None'))
    [difference] = pair_differences(copy_py)
    assert "run `make sync`" in difference


def test_make_lab_starts_as_root_with_the_save_hook():
    # `make -n` prints the recipe without running it (starting JupyterLab needs a browser).
    result = subprocess.run(["make", "-n", "lab"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    [command] = [line for line in result.stdout.splitlines() if "jupyter lab" in line]
    assert f"--ContentsManager.pre_save_hook={HOOK}" in command
    assert ("--allow-root" in command) == (os.geteuid() == 0)
