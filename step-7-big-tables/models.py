"""The demo app's schema: users who write blog posts."""

from datetime import datetime

from sqlalchemy import ForeignKey, MetaData, String, Text, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    # Name every constraint the same way on every server, so that a later migration
    # can refer to it by name ("uq_users_email") instead of whatever MySQL picked.
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    # 320: the longest address the mail standards allow (64 + "@" + 255). ASCII: an address is
    # ASCII (RFC 5321), and an index of it a quarter of utf8mb4's size. A change of character
    # set the server can only make by copying the table: step 7's lesson.
    email: Mapped[str] = mapped_column(String(320, collation="ascii_general_ci"), unique=True)
    # Required from this step on: the revision back-fills the rows that have none.
    title: Mapped[str] = mapped_column(String(255))

    blog_posts: Mapped[list["Blog"]] = relationship(back_populates="author")


class Blog(Base):
    __tablename__ = "blogs"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    # The server fills this in, so rows inserted by SQL (a data migration) get it too.
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # Deleting a user keeps their posts, without an author.
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )

    author: Mapped[User | None] = relationship(back_populates="blog_posts")
