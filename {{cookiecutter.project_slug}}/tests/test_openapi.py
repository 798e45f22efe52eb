"""Property-based tests from the app's own OpenAPI schema (schemathesis): every operation, with
generated inputs, never answers 5xx, answers as its schema declares, and leaves the app serving.

Only the checks that hold for any FastAPI app run (names from schemathesis' checks reference). The
others test choices FastAPI makes on purpose: a status a route raises without declaring it
(`HTTPException(404)`), pydantic's lax coercion (`{"price": false}` is a valid float), and an
`Allow` header naming the methods of the first route that matches the path.
{%- if cookiecutter.database != "none" %}

The app is made by a fixture, so that it runs on the throwaway database (conftest.py).
{%- endif %}
"""

from __future__ import annotations

{% if cookiecutter.database != "none" -%}
from collections.abc import Iterator
{% endif -%}
from typing import Any

{% if cookiecutter.database != "none" -%}
import pytest
{% endif -%}
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from {{ cookiecutter.package_name }}.main import create_app
from {{ cookiecutter.package_name }}.settings import Settings

CONFIG = schemathesis.Config.from_dict(
    {
        "checks": {
            "enabled": False,
            "not_a_server_error": {"enabled": True},
            "response_schema_conformance": {"enabled": True},
            "content_type_conformance": {"enabled": True},
            "response_headers_conformance": {"enabled": True},
        }
    }
)

{%- if cookiecutter.database != "none" %}


@pytest.fixture
def probe() -> Iterator[TestClient]:
    with TestClient(create_app(Settings())) as client:  # its lifespan runs: the database is open
        yield client


@pytest.fixture
def api_schema(probe: TestClient) -> schemathesis.schemas.BaseSchema:
    return schemathesis.openapi.from_asgi("/openapi.json", probe.app, config=CONFIG)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_api_conforms_to_its_schema(case: schemathesis.Case[Any], probe: TestClient) -> None:
    case.call_and_validate()

    assert probe.get("/readyz").status_code == 200, "the app stopped serving after this request"
{%- else %}

app = create_app(Settings())
schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG)
probe = TestClient(app)


@schema.parametrize()
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_api_conforms_to_its_schema(case: schemathesis.Case[Any]) -> None:
    case.call_and_validate()

    assert probe.get("/readyz").status_code == 200, "the app stopped serving after this request"
{%- endif %}
