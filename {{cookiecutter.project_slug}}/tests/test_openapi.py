"""Property-based tests from the app's own OpenAPI schema (schemathesis): every operation, with
generated inputs, answers without a 5xx and as its schema says (status, headers, body)."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings

from {{ cookiecutter.package_name }}.main import create_app
from {{ cookiecutter.package_name }}.settings import Settings

schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(Settings(_env_file=None)))


@schema.parametrize()
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_api_conforms_to_its_schema(case: schemathesis.Case[Any]) -> None:
    case.call_and_validate()
