from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from fastapi import Request
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.responses import PlainTextResponse
from starlette.types import Message, Receive, Scope, Send

from {{ cookiecutter.package_name }}.main import create_app
from {{ cookiecutter.package_name }}.middleware import (
    SECURITY_HEADERS,
    InFlightLimitMiddleware,
    RequestContextMiddleware,
)
from {{ cookiecutter.package_name }}.serving.logging_config import RequestIdFilter
from {{ cookiecutter.package_name }}.settings import Settings


def client_for(**settings: object) -> TestClient:
    return TestClient(create_app(Settings(_env_file=None, **settings)), raise_server_exceptions=False)  # type: ignore[arg-type]


def header_values(headers: Mapping[str, str], expected: tuple[tuple[bytes, bytes], ...]) -> dict[str, str | None]:
    return {name.decode(): headers.get(name.decode()) for name, _ in expected}


def as_text(expected: tuple[tuple[bytes, bytes], ...]) -> dict[str, str | None]:
    return {name.decode(): value.decode() for name, value in expected}


@pytest.mark.parametrize("path", ["/", "/no-such-page", "/docs"])
def test_every_response_carries_the_security_headers(client: TestClient, path: str) -> None:
    assert header_values(client.get(path).headers, SECURITY_HEADERS) == as_text(SECURITY_HEADERS)


# --- request body size ------------------------------------------------------------------------------


@pytest.fixture
def echo_client() -> TestClient:
    """An app with a 10-byte body limit and a route that reads the body."""
    app = create_app(Settings(_env_file=None, max_body_bytes=10))

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"received": len(await request.body())}

    return TestClient(app)


def test_body_within_the_limit_is_served(echo_client: TestClient) -> None:
    assert echo_client.post("/echo", content=b"x" * 10).json() == {"received": 10}


def test_declared_body_over_the_limit_is_413(echo_client: TestClient) -> None:
    response = echo_client.post("/echo", content=b"x" * 11)

    assert response.status_code == 413


def test_streamed_body_over_the_limit_is_413(echo_client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"x" * 6
        yield b"x" * 6

    response = echo_client.post("/echo", content=chunks())  # chunked: no Content-Length

    assert response.status_code == 413


def test_streamed_body_within_the_limit_is_served(echo_client: TestClient) -> None:
    response = echo_client.post("/echo", content=iter([b"abc", b"def"]))

    assert response.json() == {"received": 6}


def test_oversized_body_is_refused_before_routing() -> None:
    assert client_for(max_body_bytes=1).post("/", content=b"xx").status_code == 413


@pytest.fixture
def large_upload_client() -> TestClient:
    """The service limit at 10 bytes, and a route that declares its own larger limit, as FastAPI's
    docs show (`max_body_size` on the route)."""
    app = create_app(Settings(_env_file=None, max_body_bytes=10))

    @app.post("/upload", max_body_size=100)
    async def upload(request: Request) -> dict[str, int]:
        return {"received": len(await request.body())}

    return TestClient(app)


def test_a_routes_own_larger_limit_wins(large_upload_client: TestClient) -> None:
    assert large_upload_client.post("/upload", content=b"x" * 50).json() == {"received": 50}


def test_a_routes_own_limit_still_refuses_more(large_upload_client: TestClient) -> None:
    assert large_upload_client.post("/upload", content=b"x" * 101).status_code == 413


def test_the_413_carries_the_request_id_and_security_headers() -> None:
    headers = client_for(max_body_bytes=1).post("/", content=b"xx").headers

    assert header_values(headers, SECURITY_HEADERS) == as_text(SECURITY_HEADERS)
    assert len(headers["x-request-id"]) == 32


def test_refused_body_is_access_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="{{ cookiecutter.package_name }}.access"):
        client_for(max_body_bytes=1).post("/", content=b"xx")

    assert '"POST / HTTP/1.1" 413' in caplog.text


# --- Host header --------------------------------------------------------------------------------------


def test_any_host_is_served_by_default(client: TestClient) -> None:
    assert client.get("/", headers={"Host": "whatever.example"}).status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "api.example.com.evil.example", "example.com", "[::1]:8000", ""])
def test_host_not_allowed_is_400_in_json(host: str) -> None:
    client = client_for(allowed_hosts=("api.example.com", "*.example.com"))

    response = client.get("/", headers={"Host": host})

    assert response.status_code == 400
    assert response.json() == {"detail": "Invalid host header"}


@pytest.mark.parametrize("host", ["api.example.com", "API.Example.com:8000", "eu.example.com", "[::1]"])
def test_allowed_host_is_served(host: str) -> None:
    client = client_for(allowed_hosts=("api.example.com", "*.example.com", "[::1]"))

    assert client.get("/", headers={"Host": host}).status_code == 200


def test_probes_answer_any_host() -> None:
    client = client_for(allowed_hosts=("api.example.com",))

    assert client.get("/livez", headers={"Host": "10.1.2.3:8000"}).status_code == 200


# --- requests in flight ------------------------------------------------------------------------------


async def statuses_while_held(paths: list[str], *, held: int, limit: int, uploads: int = 0) -> list[int]:
    """The statuses of requests for `paths`, one after the other, while `held` requests are in flight."""
    starts = await starts_while_held(paths, held=held, limit=limit, uploads=uploads)
    return [int(start["status"]) for start in starts]


async def starts_while_held(paths: list[str], *, held: int, limit: int, uploads: int = 0) -> list[Message]:
    """The response starts (status, headers) of requests for `paths`, while `held` requests are in flight
    and `uploads` requests are still sending their body."""
    release = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] in {"/held", "/upload"}:
            await receive()
            await release.wait()
        await PlainTextResponse("ok")(scope, receive, send)

    limited = InFlightLimitMiddleware(app, limit=limit) if limit else app
    middleware = RequestContextMiddleware(limited, access_log=False, tracing=False)

    async def start_of(path: str) -> Message:
        upload = path == "/upload"  # an upload's body never ends
        headers = [(b"content-length", b"100")] if upload else []
        scope: dict[str, Any] = {"type": "http", "method": "GET", "path": path, "headers": headers}
        sent: list[Message] = []

        async def receive() -> Message:
            return {"type": "http.request", "body": b"x", "more_body": upload}

        async def send(message: Message) -> None:
            sent.append(message)

        await middleware(scope, receive, send)
        return sent[0]

    in_flight = [asyncio.create_task(start_of("/held")) for _ in range(held)]
    in_flight += [asyncio.create_task(start_of("/upload")) for _ in range(uploads)]
    await asyncio.sleep(0)  # they start, and wait
    starts = [await start_of(path) for path in paths]
    release.set()
    await asyncio.gather(*in_flight)
    return starts


def test_request_past_the_in_flight_limit_is_503() -> None:
    assert asyncio.run(statuses_while_held(["/"], held=2, limit=2)) == [503]


def test_a_503_carries_the_request_id() -> None:
    (start,) = asyncio.run(starts_while_held(["/"], held=2, limit=2))

    assert b"x-request-id" in dict(start["headers"])


def test_a_503_carries_the_security_headers() -> None:
    (start,) = asyncio.run(starts_while_held(["/"], held=2, limit=2))

    assert set(SECURITY_HEADERS) <= set(start["headers"])


def test_request_within_the_in_flight_limit_is_served() -> None:
    assert asyncio.run(statuses_while_held(["/"], held=1, limit=2)) == [200]


def test_uploads_still_sending_their_body_do_not_count() -> None:
    assert asyncio.run(statuses_while_held(["/"], held=1, limit=2, uploads=50)) == [200]


def test_probes_are_answered_past_the_in_flight_limit() -> None:
    assert asyncio.run(statuses_while_held(["/livez", "/readyz"], held=2, limit=2)) == [200, 200]


def test_limit_0_is_no_limit() -> None:
    assert asyncio.run(statuses_while_held(["/"], held=5, limit=0)) == [200]


def test_refusals_are_logged_as_one_line(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING"):
        asyncio.run(statuses_while_held(["/"] * 100, held=1, limit=1))

    assert len([record for record in caplog.records if "refused" in record.getMessage()]) == 1


def test_in_flight_limit_is_the_setting() -> None:
    client = client_for(limit_concurrency=7)
    client.get("/")  # builds the middleware stack

    (limit,) = [layer for layer in middleware_layers(client.app) if isinstance(layer, InFlightLimitMiddleware)]
    assert limit.limit == 7


def middleware_layers(app: Any) -> Iterator[Any]:
    layer = app.middleware_stack
    while layer is not None:
        yield layer
        layer = getattr(layer, "app", None)


# --- CORS ---------------------------------------------------------------------------------------------

PREFLIGHT = {"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET"}


def test_cors_is_off_by_default(client: TestClient) -> None:
    response = client.options("/", headers=PREFLIGHT)

    assert "access-control-allow-origin" not in response.headers


def test_cors_allows_configured_origins() -> None:
    client = client_for(cors_origins=("https://app.example.com",))

    assert client.options("/", headers=PREFLIGHT).headers["access-control-allow-origin"] == "https://app.example.com"


def test_cors_refuses_other_origins() -> None:
    client = client_for(cors_origins=("https://app.example.com",))
    response = client.options("/", headers={**PREFLIGHT, "Origin": "https://evil.example"})

    assert "access-control-allow-origin" not in response.headers


# --- errors -------------------------------------------------------------------------------------------

SECRET = "db-password-hunter2"  # noqa: S105 (a fake secret the error must not show)


def failing_client(**settings: object) -> TestClient:
    app = create_app(Settings(_env_file=None, app_name=SECRET, **settings))  # type: ignore[arg-type]

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError(f"connection to postgres://admin:{SECRET}@db failed")

    return TestClient(app, raise_server_exceptions=False)


def test_unhandled_error_is_a_plain_500() -> None:
    response = failing_client().get("/boom")

    assert response.status_code == 500
    assert response.json() == {"detail": "Internal Server Error"}


def test_debug_shows_the_traceback_in_development() -> None:
    response = failing_client(debug=True).get("/boom")

    assert response.status_code == 500
    assert "RuntimeError" in response.text  # Starlette's debug page


def test_the_500_carries_the_request_id() -> None:
    response = failing_client().get("/boom", headers={"X-Request-ID": "req-500"})

    assert response.headers["x-request-id"] == "req-500"


def test_the_500_carries_the_security_headers() -> None:
    headers = failing_client().get("/boom").headers

    assert header_values(headers, SECURITY_HEADERS) == as_text(SECURITY_HEADERS)


def test_the_error_is_logged_with_the_request_id(caplog: pytest.LogCaptureFixture) -> None:
    caplog.handler.addFilter(RequestIdFilter())  # as the service's handler does
    with caplog.at_level("ERROR"):
        failing_client().get("/boom", headers={"X-Request-ID": "req-500"})

    assert [getattr(record, "request_id", None) for record in caplog.records if record.exc_info] == ["req-500"]


def test_the_error_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("ERROR"):
        failing_client().get("/boom")

    assert len([record for record in caplog.records if record.exc_info]) == 1


@pytest.mark.parametrize("leak", [SECRET, "Traceback", "RuntimeError", "postgres://", ".py"])
def test_unhandled_error_leaks_nothing(leak: str) -> None:
    response = failing_client().get("/boom")

    assert leak not in response.text
    assert leak not in str(response.headers)


def test_validation_errors_do_not_echo_settings(client: TestClient, settings: Settings) -> None:
    response = client.get("/?" + "x" * 100)

    assert settings.forwarded_allow_ips not in response.text


def span_attributes(tracing: bool) -> object:
    """The attributes of a request's span, the middleware inside it."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    middleware = RequestContextMiddleware(PlainTextResponse("ok"), access_log=True, tracing=tracing)

    async def traced(scope: Scope, receive: Receive, send: Send) -> None:
        with provider.get_tracer("test").start_as_current_span("request"):
            await middleware(scope, receive, send)

    TestClient(traced).get("/", headers={"X-Request-ID": "req-42"})
    (span,) = exporter.get_finished_spans()
    return span.attributes


def test_the_request_span_carries_the_request_id_when_tracing() -> None:
    assert span_attributes(tracing=True) == {"request.id": "req-42"}


def test_with_tracing_off_the_middleware_leaves_spans_alone() -> None:
    assert not span_attributes(tracing=False)
