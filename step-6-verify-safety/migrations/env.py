"""How Alembic reaches the database and the models. Run by every alembic command."""

import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection, Engine, create_engine, pool

from models import Base

config = context.config
# Scripts that run Alembic from code may set up their own output instead.
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

# What autogenerate compares the database with: the app's models.
target_metadata = Base.metadata


def database_url() -> str:
    url = os.environ.get("DATABASE_URL", "").strip()
    if not url:
        raise SystemExit(
            "error: DATABASE_URL is not set; set it to "
            "mysql+pymysql://USER:PASSWORD@HOST:3306/DATABASE"
        )
    return url


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
        engine = create_engine(database_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        run_migrations(connection)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
