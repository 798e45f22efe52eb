from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from {{ cookiecutter.package_name }}.main import create_app
from {{ cookiecutter.package_name }}.settings import Settings


def test_not_ready_before_startup(settings: Settings) -> None:
    assert create_app(settings).state.readiness == "starting"


def test_ready_once_started(settings: Settings) -> None:
    app = create_app(settings)
    with TestClient(app):
        assert app.state.readiness == "ready"


def test_stopping_after_shutdown(settings: Settings) -> None:
    app: FastAPI = create_app(settings)
    with TestClient(app):
        pass

    assert app.state.readiness == "stopping"
