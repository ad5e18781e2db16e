"""`make lab`: JupyterLab on the notebooks, saving each one the way git keeps it.

JupyterLab saves (and autosaves) a notebook with its outputs, execution counts and the
kernel's metadata; jupytext, installed in the same environment, writes the paired `.py` too.
`make lab` hands Jupyter `pre_save` as its `ContentsManager.pre_save_hook`: before one of the
tutorial's notebooks (`NN-name.ipynb`) reaches the disk, it is stripped to what git tracks, so
running and saving a notebook leaves `git status` clean. The outputs stay in the open tab.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

HOOK = "tutorial_kit.lab.pre_save"  # what the Makefile passes to Jupyter
TUTORIAL_NOTEBOOK = re.compile(r"^\d\d-[^/]*\.ipynb$")
# What Jupyter adds to a cell while it runs or is looked at; jupytext leaves these out of the
# .py as well.
TRANSIENT_CELL_METADATA = {
    "autoscroll", "collapsed", "scrolled", "trusted", "execution", "ExecuteTime", "jupyter",
}


def strip(notebook: dict[str, Any]) -> dict[str, Any]:
    """The notebook as git keeps it: no outputs, no counts, only the tracked metadata."""
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        for key in TRANSIENT_CELL_METADATA & set(cell.get("metadata", {})):
            del cell["metadata"][key]
    metadata = notebook.get("metadata", {})
    tracked = metadata.get("jupytext", {}).get("notebook_metadata_filter", "kernelspec,jupytext")
    keep = {key for key in tracked.split(",") if key and not key.startswith("-")}
    keep |= {"kernelspec", "jupytext"}
    for key in set(metadata) - keep:
        del metadata[key]
    return notebook


def pre_save(model: dict[str, Any], path: str, contents_manager: Any = None, **_: Any) -> None:
    """Jupyter's pre_save_hook: strip a tutorial notebook before it is written."""
    if model.get("type") == "notebook" and TUTORIAL_NOTEBOOK.match(Path(path).name):
        strip(model["content"])
