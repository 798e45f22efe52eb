"""Property-based tests from the app's own OpenAPI schema (schemathesis): every operation, with
generated inputs, never answers 5xx, answers as its schema declares, and leaves the app serving.

Only the checks that hold for any FastAPI app run (names from schemathesis' checks reference). The
others test choices FastAPI makes on purpose: a status a route raises without declaring it
(`HTTPException(404)`), pydantic's lax coercion (`{"price": false}` is a valid float), and an
`Allow` header naming the methods of the first route that matches the path.
{%- if cookiecutter.database != "none" %}

The app runs on the throwaway database (conftest.py).
{%- endif %}
"""

from __future__ import annotations

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

app = create_app(Settings())
{%- if cookiecutter.database != "none" %}
# The schema from the app itself (no request, no lifespan: no database yet), its calls to the app.
schema = schemathesis.openapi.from_dict(app.openapi(), config=CONFIG)
schema.app = app
{%- else %}
schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG)
{%- endif %}
probe = TestClient(app)
{%- if cookiecutter.database != "none" %}


@pytest.fixture(autouse=True)
def on_the_throwaway_database(database_url: str) -> None:
    app.state.settings = Settings(DATABASE_URL=database_url)  # what the lifespan opens
{%- endif %}


@schema.parametrize()
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_api_conforms_to_its_schema(case: schemathesis.Case[Any]) -> None:
    case.call_and_validate()

    assert probe.get("/readyz").status_code == 200, "the app stopped serving after this request"
