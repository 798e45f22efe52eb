from __future__ import annotations

from typing import Annotated

import pytest
from fastapi import Depends
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.trace import TracerProvider

from {{ cookiecutter.package_name }}.main import app, create_app
from {{ cookiecutter.package_name }}.settings import Settings, get_settings


def test_unknown_path_is_404_json(client: TestClient) -> None:
    response = client.get("/no-such-page")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


def test_module_level_app_is_built_by_the_factory() -> None:
    assert app.title == create_app().title


def test_openapi_title_is_the_app_name(client: TestClient, settings: Settings) -> None:
    assert client.get("/openapi.json").json()["info"]["title"] == settings.app_name


def test_depends_get_settings_gives_the_apps_settings() -> None:
    # FastAPI's docs' way to read a setting in a route: the settings given to create_app(), not the environment's.
    app = create_app(Settings(_env_file=None, app_name="given to create_app"))

    @app.get("/name")
    def read_name(settings: Annotated[Settings, Depends(get_settings)]) -> str:
        return settings.app_name

    assert TestClient(app).get("/name").json() == "given to create_app"


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json"])
def test_api_docs_are_off_in_production(path: str) -> None:
    production = Settings(_env_file=None, environment="production", allowed_hosts=("testserver",))

    assert TestClient(create_app(production)).get(path).status_code == 404


def test_a_setting_serves_the_api_docs_in_production() -> None:
    production = Settings(
        _env_file=None, environment="production", allowed_hosts=("testserver",), docs_in_production=True
    )

    assert TestClient(create_app(production)).get("/docs").status_code == 200


def test_response_carries_a_new_request_id(client: TestClient) -> None:
    assert len(client.get("/").headers["x-request-id"]) == 32


def test_client_request_id_is_echoed(client: TestClient) -> None:
    response = client.get("/", headers={"X-Request-ID": "abc-123"})

    assert response.headers["x-request-id"] == "abc-123"


@pytest.mark.parametrize("bad_id", ["has space", "x" * 129, "line\tbreak"])
def test_unsafe_request_id_is_replaced(client: TestClient, bad_id: str) -> None:
    response = client.get("/", headers={"X-Request-ID": bad_id})

    assert response.headers["x-request-id"] != bad_id


def test_access_log_line_names_path_and_status(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="{{ cookiecutter.package_name }}.access"):
        client.get("/")

    assert '"GET / HTTP/1.1" 200' in caplog.text


def test_probes_are_not_access_logged(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="{{ cookiecutter.package_name }}.access"):
        client.get("/livez")

    assert caplog.records == []


@pytest.mark.parametrize(("telemetry", "looks_for_a_tracer"), [(False, False), (True, True)])
def test_telemetry_setting_decides_whether_requests_look_for_a_tracer(
    monkeypatch: pytest.MonkeyPatch, telemetry: bool, looks_for_a_tracer: bool
) -> None:
    # FastAPI looks for a configured OpenTelemetry provider on every request unless told not to.
    lookups: list[str] = []
    real_lookup = trace.get_tracer_provider

    def counted_lookup() -> TracerProvider:
        lookups.append("tracer provider")
        return real_lookup()

    monkeypatch.setattr(trace, "get_tracer_provider", counted_lookup)
    TestClient(create_app(Settings(_env_file=None, telemetry=telemetry))).get("/")

    assert bool(lookups) is looks_for_a_tracer
