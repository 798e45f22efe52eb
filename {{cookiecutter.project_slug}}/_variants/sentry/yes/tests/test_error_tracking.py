"""Sentry's error tracking (error_tracking.py): off without a DSN; with one, an unhandled error reaches
Sentry with the release and the environment, and no personal data. A transport of the test's own keeps
the events in this process: nothing is sent anywhere."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import sentry_sdk
from fastapi.testclient import TestClient
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from {{ cookiecutter.package_name }} import __version__
from {{ cookiecutter.package_name }}.main import create_app
from {{ cookiecutter.package_name }}.settings import Settings

FAKE_DSN = "https://public@example.invalid/1"


class KeptEvents(Transport):
    """Keeps each event instead of sending it."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        event = envelope.get_event()
        if event is not None:
            self.events.append(dict(event))


@pytest.fixture
def inits(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """The options of each `sentry_sdk.init` call, which runs with a KeptEvents transport."""
    calls: list[dict[str, Any]] = []
    init = sentry_sdk.init

    def keeping_init(**options: Any) -> None:
        calls.append(options)
        init(**options, transport=KeptEvents())

    monkeypatch.setattr(sentry_sdk, "init", keeping_init)
    yield calls
    sentry_sdk.get_global_scope().set_client(None)  # the next tests run without Sentry


def test_without_a_dsn_sentry_is_not_started(inits: list[dict[str, Any]]) -> None:
    create_app(Settings())

    assert inits == []


def test_an_empty_dsn_leaves_sentry_off(inits: list[dict[str, Any]]) -> None:
    create_app(Settings(sentry_dsn=""))

    assert inits == []


def test_the_dsn_is_never_shown() -> None:
    settings = Settings(sentry_dsn=FAKE_DSN)

    assert "public@" not in f"{settings!r} {settings}"


def test_with_a_dsn_sentry_starts_with_errors_only_and_no_personal_data(inits: list[dict[str, Any]]) -> None:
    create_app(Settings(sentry_dsn=FAKE_DSN))

    assert [(call["data_collection"]["user_info"], call["traces_sample_rate"]) for call in inits] == [(False, None)]


def test_a_traces_sample_rate_turns_tracing_on(inits: list[dict[str, Any]]) -> None:
    create_app(Settings(sentry_dsn=FAKE_DSN, sentry_traces_sample_rate=0.25))

    assert [call["traces_sample_rate"] for call in inits] == [0.25]


def test_an_unhandled_error_is_sent_with_release_and_environment_and_no_personal_data(
    inits: list[dict[str, Any]],
) -> None:
    secret = secrets.token_hex(8)  # in a cookie, the Authorization header, the client address, the query
    app = create_app(Settings(sentry_dsn=FAKE_DSN))

    @app.get("/fails")
    async def fails() -> None:
        raise RuntimeError("the handler failed")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get(
            f"/fails?email={secret}",
            headers={"Cookie": f"id={secret}", "Authorization": f"Bearer {secret}", "X-Forwarded-For": secret},
        )
    sentry_sdk.flush()
    transport = sentry_sdk.get_client().transport
    assert isinstance(transport, KeptEvents)
    (event,) = transport.events

    assert response.status_code == 500
    assert [value["type"] for value in event["exception"]["values"]] == ["RuntimeError"]
    assert (event["release"], event["environment"]) == (__version__, Settings().environment)
    assert secret not in json.dumps(event, default=str)
