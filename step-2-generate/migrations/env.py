"""How Alembic reaches the database and the models. Run by every alembic command."""

from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection, Engine

from database import connect
from models import Base

config = context.config
# Scripts that run Alembic from code may set up their own output instead.
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

# What autogenerate compares the database with: the app's models.
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    """`alembic upgrade head --sql`: print the SQL for MySQL without connecting."""
    context.configure(dialect_name="mysql", target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    # Code can hand in an Engine or a Connection (config.attributes["connection"]), as
    # tests and scripts do; the alembic command line hands in neither: use DATABASE_URL.
    connectable = config.attributes.get("connection")
    if isinstance(connectable, Connection):
        run_migrations(connectable)
        return
    engine = connectable if isinstance(connectable, Engine) else None
    if engine is None:
        engine = connect()  # DATABASE_URL, checked: a bad one gets one line, as in the app
    with engine.connect() as connection:
        run_migrations(connection)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
