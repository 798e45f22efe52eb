"""Alembic's entry point: every migration runs in one transaction, taken under a lock."""

from alembic import context
{%- if cookiecutter.database == "postgres" %}
from sqlalchemy import text
{%- else %}
from sqlalchemy import event
{%- endif %}
from sqlmodel import SQLModel, create_engine

from {{ cookiecutter.package_name }} import models  # noqa: F401  (the tables, for autogenerate)
{%- if cookiecutter.database == "postgres" %}

LOCK_KEY = 7_146_220_011  # any constant: the migrations of this service wait for each other on it
{%- endif %}

engine = create_engine(context.config.attributes["database_url"]{% if cookiecutter.database == "sqlite" %}, connect_args={"timeout": 60}{% endif %})
{%- if cookiecutter.database == "sqlite" %}


# BEGIN IMMEDIATE takes SQLite's write lock at once (SQLAlchemy's documented recipe, with IMMEDIATE).
@event.listens_for(engine, "connect")
def driver_autocommit(dbapi_connection, _record):
    dbapi_connection.isolation_level = None


@event.listens_for(engine, "begin")
def begin_immediate(connection):
    connection.exec_driver_sql("BEGIN IMMEDIATE")
{%- endif %}


with engine.begin() as connection:
{%- if cookiecutter.database == "postgres" %}
    # Held until this transaction ends: a second run waits here, then sees the version table up to date.
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
{%- endif %}
    context.configure(connection=connection, target_metadata=SQLModel.metadata)
    context.run_migrations()
engine.dispose()
