"""The demo app. Its schema comes from the migrations: `python -m migrate upgrade`."""

import sys

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from database import connect
from models import Blog, User
from migrate.revisions import require_current


def ensure_demo_data(session: Session) -> None:
    """Create the demo author and post once; running the app again adds nothing."""
    email = "ada@example.com"
    if session.scalar(select(User).where(User.email == email)) is None:
        ada = User(name="Ada Lovelace", email=email, title="Countess")  # required now
        ada.blog_posts.append(
            Blog(title="Notes on the Analytical Engine", body="It weaves algebraic patterns.")
        )
        session.add(ada)
        session.commit()


def print_users(session: Session, limit: int = 5) -> None:
    total = session.scalar(select(func.count()).select_from(User))
    users = session.scalars(
        select(User).options(selectinload(User.blog_posts)).order_by(User.id).limit(limit)
    ).all()
    print(f"{total} user(s)")
    for user in users:
        name = f"{user.title} {user.name}" if user.title else user.name
        print(f"- {name} <{user.email}>: {len(user.blog_posts)} post(s)")
        for post in user.blog_posts:
            print(f"    {post.title!r}, {post.created_at:%Y-%m-%d %H:%M}")
    if total > limit:
        print(f"... and {total - limit} more")


def main() -> None:
    engine = connect()
    # No more create_all(): the migrations own the schema. Refuse to run on a
    # database they have not brought up to date.
    require_current(engine)
    with Session(engine) as session:
        ensure_demo_data(session)
        print_users(session)


if __name__ == "__main__":
    if sys.argv[1:] in (["-h"], ["--help"]):
        print(f"usage: python main.py (its database: DATABASE_URL)\n\n{__doc__}")
        sys.exit(0)
    if sys.argv[1:]:
        sys.exit("error: main.py takes no arguments; its database comes from DATABASE_URL")
    try:
        main()
    except KeyboardInterrupt:  # Ctrl-C: one line, not a traceback
        print("main.py: interrupted", file=sys.stderr)
        sys.exit(130)
