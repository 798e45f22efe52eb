"""Property-based tests from the app's own OpenAPI schema (schemathesis): every operation, with
generated inputs, answers as its schema declares, never with a 5xx it does not declare, and leaves
the app serving.

Each generated case runs in an app of its own, started and stopped by its lifespan (the `client`
fixture's way): what one request stores in memory is gone before the next case and the next test.
A 5xx a route declares (`responses={502: ...}` for an upstream service that is down) conforms.

Only the checks that hold for any FastAPI app run (names from schemathesis' checks reference). The
others test choices FastAPI makes on purpose: a status a route raises without declaring it
(`HTTPException(404)`), pydantic's lax coercion (`{"price": false}` is a valid float), and an
`Allow` header naming the methods of the first route that matches the path.
{%- if cookiecutter.database != "none" %}

Every case's app runs on the test's throwaway database (conftest.py sets DATABASE_URL), which its
examples share.
{%- endif %}
"""

from __future__ import annotations

from typing import Any

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from {{ cookiecutter.package_name }}.main import create_app
from {{ cookiecutter.package_name }}.settings import Settings

CONFIG = schemathesis.Config.from_dict(
    {
        "checks": {
            "enabled": False,
            # No `not_a_server_error`: it fails a 5xx even when the route declares it; the test checks that below.
            "response_schema_conformance": {"enabled": True},
            "content_type_conformance": {"enabled": True},
            "response_headers_conformance": {"enabled": True},
        }
    }
)

OPENAPI = create_app(Settings()).openapi()
schema = schemathesis.openapi.from_dict(OPENAPI, config=CONFIG)


def declares(case: schemathesis.Case[Any], status: int) -> bool:
    """Whether the operation's responses list this status, as itself or its range (`5XX`)."""
    responses = OPENAPI["paths"][case.path][case.method.lower()]["responses"]
    return str(status) in responses or f"{status // 100}XX" in responses


@schema.parametrize()
{%- if cookiecutter.database != "none" %}
@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],  # the throwaway database
)
{%- else %}
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
{%- endif %}
def test_api_conforms_to_its_schema(case: schemathesis.Case[Any]) -> None:
    request = case.as_transport_kwargs(base_url="http://testserver")  # TestClient's own address
    if isinstance(request.get("data"), bytes | str):  # a raw body: `content` in TestClient's words
        request["content"] = request.pop("data")
    with TestClient(create_app(Settings()), cookies=request.pop("cookies", None)) as client:
        response = client.request(**request)
        ready = client.get("/readyz").status_code

    case.validate_response(response)
    assert response.status_code < 500 or declares(case, response.status_code), (
        f"{case.method} {case.path} answered {response.status_code}, a server error it does not declare:\n"
        f"{response.text[:500]}"
    )
    assert ready == 200, "the app stopped serving after this request"
