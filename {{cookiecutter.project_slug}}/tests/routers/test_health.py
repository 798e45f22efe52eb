from __future__ import annotations

from fastapi.testclient import TestClient

from {{ cookiecutter.package_name }}.main import create_app
from {{ cookiecutter.package_name }}.settings import Settings


def test_livez_answers_alive(client: TestClient) -> None:
    response = client.get("/livez")

    assert response.status_code == 200
    assert response.json() == {"status": "alive"}


def test_readyz_is_ready_once_started(client: TestClient) -> None:
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


def test_readyz_is_503_before_startup(settings: Settings) -> None:
    # Outside a `with` block the client does not run the lifespan: the app has not started.
    response = TestClient(create_app(settings)).get("/readyz")

    assert response.status_code == 503
    assert response.json() == {"status": "starting"}


def test_readyz_is_503_after_shutdown(settings: Settings) -> None:
    app = create_app(settings)
    with TestClient(app):
        pass

    response = TestClient(app).get("/readyz")

    assert response.status_code == 503
    assert response.json() == {"status": "stopping"}
