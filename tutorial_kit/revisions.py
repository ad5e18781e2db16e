"""Write Alembic revisions into a copy of a step folder, as a reader writes one by hand."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tutorial_kit.steps import run

TEMPLATE = '''\
"""{name}

Revision ID: {rev}
Revises: {down}
"""
from alembic import op
import sqlalchemy as sa

revision = {rev!r}
down_revision = {down!r}
branch_labels = None
depends_on = None


def upgrade() -> None:
{upgrade}


def downgrade() -> None:
{downgrade}
'''
# write_revision() puts the first line of upgrade()'s body on this line of the file.
FIRST_LINE = TEMPLATE.splitlines().index("{upgrade}") + 1


def write_revision(step_dir: Path, name: str, upgrade: str, downgrade: str = "pass", *,
                   rev: str | None = None, down: str | None = None, rehash: bool = True) -> str:
    """A revision whose upgrade() runs `upgrade`; returns its id.

    By default it follows the newest revision, with the next id (ids are timestamps, so files
    sort in order), and `python -m migrate hash` records it in migrations/revisions.sum, as
    the README says to after writing a revision by hand; rehash=False leaves that undone.
    """
    versions = Path(step_dir) / "migrations" / "versions"
    ids = sorted(p.stem.split("_")[0] for p in versions.glob("*.py"))
    rev = rev or str(int(ids[-1]) + 1)
    down = down or ids[-1]
    (versions / f"{rev}_{name}.py").write_text(TEMPLATE.format(
        name=name, rev=rev, down=down,
        upgrade=textwrap.indent(textwrap.dedent(upgrade).strip(), "    "),
        downgrade=textwrap.indent(textwrap.dedent(downgrade).strip(), "    "),
    ))
    if rehash:
        hashed = run(step_dir, "-m", "migrate", "hash")
        assert hashed.returncode == 0, hashed.stderr
    return rev
