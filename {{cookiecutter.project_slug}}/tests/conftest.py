"""Shared fixtures. Every test sees the settings' defaults: neither a developer's .env nor a
setting exported in the shell reaches it (tests that need a value set it with monkeypatch).
{%- if cookiecutter.database == "postgres" %}
Every test runs on a throwaway database, created (and dropped) on the PostgreSQL server that
TEST_DATABASE_URL names, never on DATABASE_URL's: without one, the tests skip.
{%- elif cookiecutter.database == "sqlite" %}
Every test runs on a throwaway SQLite database in its own temporary folder, never on DATABASE_URL's.
{%- endif %}"""

from __future__ import annotations

import os
{%- if cookiecutter.database == "postgres" %}
import uuid
{%- endif %}
from collections.abc import Iterator
{%- if cookiecutter.database == "sqlite" %}
from pathlib import Path
{%- endif %}

import pytest
from fastapi.testclient import TestClient
{%- if cookiecutter.database == "postgres" %}
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import DBAPIError
{%- endif %}

from {{ cookiecutter.package_name }}.settings import (
    Settings,
    env_var_name,
    get_settings,
)

# Done here, before any test imports `main` (which builds the module-level app from the settings).
Settings.model_config["env_file"] = None
for field_name in Settings.model_fields:
    os.environ.pop(env_var_name(field_name), None)

from {{ cookiecutter.package_name }}.main import create_app  # noqa: E402
{%- if cookiecutter.database != "none" %}
from {{ cookiecutter.package_name }}.migrations import upgrade  # noqa: E402
{%- endif %}
{%- if cookiecutter.database == "postgres" %}


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A throwaway database, migrated, on TEST_DATABASE_URL's server; dropped at the end."""
    server = os.environ.get("TEST_DATABASE_URL", "")
    if not server:
        pytest.skip("no PostgreSQL: set TEST_DATABASE_URL to a server where the tests may create a database")
    admin = create_engine(server, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    name = f"test_{uuid.uuid4().hex[:16]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except DBAPIError as error:
        admin.dispose()
        pytest.skip(f"no PostgreSQL at TEST_DATABASE_URL: {str(error.orig).strip().splitlines()[0]}")
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()
{%- elif cookiecutter.database == "sqlite" %}


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """A throwaway database, migrated, in the test's own temporary folder."""
    url = f"sqlite:///{tmp_path / 'test.db'}"
    upgrade(url)
    return url
{%- endif %}
{%- if cookiecutter.database != "none" %}


@pytest.fixture(autouse=True)
def throwaway_database(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every Settings() of a test, the app's included, reads the throwaway database's URL."""
    monkeypatch.setenv("DATABASE_URL", database_url)
{%- endif %}


@pytest.fixture
def settings() -> Settings:
    return Settings()


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """A client of an app whose lifespan has started (so it is ready)."""
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture(autouse=True)
def fresh_settings_cache() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
