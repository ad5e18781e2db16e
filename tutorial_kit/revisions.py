"""Write Alembic revisions into a copy of a step folder, as a reader writes one by hand."""

from __future__ import annotations

import textwrap
from pathlib import Path

# write_revision() puts the first line of upgrade()'s body on this line of the file.
FIRST_LINE = 10


def write_revision(step_dir: Path, name: str, body: str) -> str:
    """A revision after the newest one, whose upgrade() runs `body`; returns its id.

    Ids follow the step's own (a timestamp), one after the newest, so files sort in order.
    """
    versions = Path(step_dir) / "migrations" / "versions"
    ids = sorted(p.stem.split("_")[0] for p in versions.glob("*.py"))
    revision = str(int(ids[-1]) + 1)
    header = (
        f'"""{name}"""\nfrom alembic import op\nimport sqlalchemy as sa\n\n'
        f"revision = {revision!r}\ndown_revision = {ids[-1]!r}\n\n\ndef upgrade() -> None:\n"
    )
    body = textwrap.indent(textwrap.dedent(body), "    ")
    (versions / f"{revision}_{name}.py").write_text(header + body)
    return revision
