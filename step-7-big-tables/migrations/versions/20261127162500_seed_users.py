"""seed_users: Jerry and George, the users of Ent's custom-migration page

Revision ID: 20261127162500
Revises: 20261127162421
Create Date: 2026-11-27 16:25:00.415619

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '20261127162500'
down_revision: Union[str, Sequence[str], None] = '20261127162421'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


# Written by hand (`python -m migrate new seed_users`): data, which autogenerate never writes.
SEED = [
    {"name": "Jerry Seinfeld", "email": "jerry@seinfeld.io", "title": "Mr."},
    {"name": "George Costanza", "email": "george@costanza.io", "title": "Mr."},
]
# The table as this revision knows it, not the app's model, which later steps will change.
users = sa.table(
    "users",
    sa.column("name", sa.String),
    sa.column("email", sa.String),
    sa.column("title", sa.String),
)


def upgrade() -> None:
    """Insert the users who are missing; a user production already has is left as it is."""
    emails = [user["email"] for user in SEED]
    if op.get_context().as_sql:  # `alembic upgrade head --sql`: no database to ask
        present = set()
    else:
        present = set(op.get_bind().scalars(sa.select(users.c.email).where(users.c.email.in_(emails))))
    for user in SEED:
        if user["email"] not in present:
            # inline_literal puts the values in the SQL itself, so that alembic_history
            # records who was inserted (and `--sql` can print it).
            op.execute(users.insert().values({k: op.inline_literal(v) for k, v in user.items()}))


def downgrade() -> None:
    """Delete only the users the upgrade inserted, as alembic_history recorded its INSERTs."""
    if op.get_context().as_sql:  # `--sql`: no history to read; say what to check instead
        op.execute("-- delete the users of SEED that seed_users inserted (see alembic_history)")
        return
    inserted = op.get_bind().scalar(
        sa.text(
            "SELECT applied_sql FROM alembic_history WHERE revision = :revision "
            "AND kind = 'upgrade' ORDER BY id DESC LIMIT 1"
        ),
        {"revision": revision},
    )
    if inserted is None:
        raise RuntimeError(
            "no upgrade of seed_users is recorded in alembic_history, so which users it "
            "inserted is unknown: delete them by hand if you must, then "
            f"`python -m alembic stamp {down_revision}`"
        )
    for user in SEED:
        if f"'{user['email']}'" in inserted:
            op.execute(users.delete().where(users.c.email == op.inline_literal(user["email"])))
