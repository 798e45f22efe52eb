"""Shared fixtures. Every test sees the settings' defaults: neither a developer's .env nor a
setting exported in the shell reaches it (tests that need a value set it with monkeypatch)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

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
