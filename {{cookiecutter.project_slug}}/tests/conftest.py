from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from {{ cookiecutter.package_name }}.main import create_app
from {{ cookiecutter.package_name }}.settings import Settings, get_settings


@pytest.fixture
def settings() -> Settings:
    """Defaults only: no .env file of the developer's leaks into a test."""
    return Settings(_env_file=None)


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
