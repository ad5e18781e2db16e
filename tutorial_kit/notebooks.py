"""Execute the notebooks: jupytext's py:percent sources, run top to bottom with nbclient."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tutorial_kit.steps import REPO

NOTEBOOKS = REPO / "notebooks"


def sources() -> list[Path]:
    """The notebooks' py:percent sources, in the tutorial's order (00-, 01-, ...)."""
    return sorted(p for p in NOTEBOOKS.glob("[0-9][0-9]-*.py"))


def pair_differences(source: Path) -> list[str]:
    """How `NN-name.ipynb` differs from its source `NN-name.py`: cells, kinds, text, kernel.

    Outputs, execution counts and the metadata Jupyter adds are not compared: running and
    saving a notebook is no edit. A changed cell that `make sync` did not carry over is.
    """
    import jupytext
    import nbformat

    paired = source.with_suffix(".ipynb")
    if not paired.exists():
        return [f"{paired.name} is missing"]
    text, notebook = jupytext.read(source), nbformat.read(paired, as_version=4)
    cells = lambda nb: [(cell.cell_type, cell.source) for cell in nb.cells]
    found = []
    mine, theirs = cells(text), cells(notebook)
    if mine != theirs:
        pairs = enumerate(zip(mine, theirs), 1)
        first = next((i for i, (a, b) in pairs if a != b), min(len(mine), len(theirs)) + 1)
        found.append(
            f"cell {first} differs ({len(mine)} cells in {source.name}, {len(theirs)} in "
            f"{paired.name}): run `make sync` after editing {source.name}"
        )
    if notebook.metadata.get("kernelspec", {}).get("name") != "python3":
        found.append(f"{paired.name} has no python3 kernelspec")
    if "py:percent" not in notebook.metadata.get("jupytext", {}).get("formats", ""):
        found.append(f"{paired.name} is not paired with a py:percent file")
    return found


def execute(source: Path, *, environ: dict[str, str] | None = None, timeout: int = 600):
    """The executed notebook (an nbformat node); its kernel's environment adds `environ`."""
    import jupytext
    from nbclient import NotebookClient

    notebook = jupytext.read(source)
    NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        kernel_manager_class=kernel_manager_class(),
        # The kernel warns that its local TCP sockets are unencrypted: known, and noise here.
        extra_arguments=["--IPKernelApp.log_level=ERROR"],
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    ).execute(env={**os.environ, **(environ or {})})  # this kernel's alone: safe in threads
    return notebook


def kernel_manager_class():
    """nbclient's kernel manager; where there is a preloader (tutorial_kit/preload.py), one
    whose kernels start through its shim, as bash's commands do: a kernel is then forked from
    a process that has SQLAlchemy, Alembic and PyMySQL imported already (0.35 s of CPU less)."""
    import sys

    from jupyter_client import AsyncKernelManager

    from tutorial_kit.steps import build_dir, preloaded_python

    shim = preloaded_python(build_dir() / "bin")
    if shim is None:
        return AsyncKernelManager

    class PreloadedKernelManager(AsyncKernelManager):
        def format_kernel_cmd(self, extra_arguments=None):
            cmd = super().format_kernel_cmd(extra_arguments)
            return [str(shim), *cmd[1:]] if cmd and cmd[0] == sys.executable else cmd

    return PreloadedKernelManager


# JupyterLab's style breaks an output line anywhere, mid-word (`word-break: break-all`): in the
# exported pages, a line breaks at a space, and inside a word only when the word alone is wider
# than the page.
WRAP_AT_SPACES = """<style>
.jp-OutputArea-output pre { word-break: normal; overflow-wrap: anywhere; }
</style>
"""


def execute_into(source: Path, out: Path, *, environ: dict[str, str] | None = None) -> float:
    """Execute one notebook into `out` as .ipynb and HTML; the seconds it took."""
    import nbformat
    from nbconvert import HTMLExporter

    started = time.perf_counter()
    notebook = execute(source, environ=environ)
    out.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, out / f"{source.stem}.ipynb")
    html, _ = HTMLExporter().from_notebook_node(notebook)
    (out / f"{source.stem}.html").write_text(html.replace("</head>", WRAP_AT_SPACES + "</head>", 1))
    return time.perf_counter() - started
