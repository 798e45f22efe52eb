"""The metrics middleware and endpoint (serving/metrics.py), in this process; the template's live tests
check the sums over several workers with each server."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from pydantic import ValidationError
from starlette.types import Message, Receive, Scope, Send

from {{ cookiecutter.package_name }}.main import create_app
from {{ cookiecutter.package_name }}.serving.metrics import LiveProcessesCollector, MetricsMiddleware, serve
from {{ cookiecutter.package_name }}.settings import Settings


def requests_total(method: str, route: str, status: str) -> float:
    labels = {"method": method, "route": route, "status": status}
    return REGISTRY.get_sample_value("http_requests_total", labels) or 0.0


def items_app() -> FastAPI:
    """An app with a router included under a prefix, inside another router with its own prefix."""
    items = APIRouter(prefix="/items")

    @items.get("/{item_id}")
    async def read_item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    api = APIRouter(prefix="/api")
    api.include_router(items)
    app = FastAPI()
    app.include_router(api)
    app.include_router(items, prefix="/v2")
    app.include_router(items, prefix="/users/{user_id}")
    app.include_router(items, prefix="/shop{number}")
    return app


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(MetricsMiddleware(items_app()))


def test_requests_are_counted_by_their_route_template(client: TestClient) -> None:
    before = requests_total("GET", "/api/items/{item_id}", "200")

    client.get("/api/items/1")
    client.get("/api/items/2")

    assert requests_total("GET", "/api/items/{item_id}", "200") == before + 2


def test_a_router_included_twice_is_counted_under_each_prefix(client: TestClient) -> None:
    before = requests_total("GET", "/v2/items/{item_id}", "200")

    client.get("/v2/items/1")

    assert requests_total("GET", "/v2/items/{item_id}", "200") == before + 1


def test_a_parameter_of_an_include_prefix_is_put_back_as_its_name(client: TestClient) -> None:
    before = requests_total("GET", "/users/{user_id}/items/{item_id}", "200")

    client.get("/users/7/items/1")
    client.get("/users/8/items/1")

    assert requests_total("GET", "/users/{user_id}/items/{item_id}", "200") == before + 2


def test_a_parameter_inside_a_segment_of_a_prefix_never_becomes_a_label_value(client: TestClient) -> None:
    before = requests_total("GET", "/items/{item_id}", "200")

    client.get("/shop1/items/1")

    assert requests_total("GET", "/items/{item_id}", "200") == before + 1
    assert requests_total("GET", "/shop1/items/{item_id}", "200") == 0


def test_a_failed_validation_counts_under_the_route(client: TestClient) -> None:
    before = requests_total("GET", "/api/items/{item_id}", "422")

    client.get("/api/items/not-a-number")

    assert requests_total("GET", "/api/items/{item_id}", "422") == before + 1


def test_unmatched_paths_share_one_label_value(client: TestClient) -> None:
    before = requests_total("GET", "unmatched", "404")

    for number in range(20):
        client.get(f"/no/such/path/{number}")

    assert requests_total("GET", "unmatched", "404") == before + 20


def test_unknown_methods_share_one_label_value(client: TestClient) -> None:
    before = requests_total("_OTHER", "/api/items/{item_id}", "405")

    client.request("BREW", "/api/items/1")

    assert requests_total("_OTHER", "/api/items/{item_id}", "405") == before + 1


def test_no_request_is_left_in_flight(client: TestClient) -> None:
    client.get("/api/items/1")

    assert REGISTRY.get_sample_value("http_requests_in_flight") == 0


def test_fastapi_still_leaves_the_include_prefix_out_of_the_matched_route() -> None:
    """The upstream behaviour MetricsMiddleware.route() works around (fastapi/fastapi#16051). When this fails,
    FastAPI puts the full template in scope["route"]: delete the lookup in MetricsMiddleware.route()."""
    seen: dict[str, str] = {}
    app = items_app()

    @app.middleware("http")
    async def note_route(request, call_next):  # type: ignore[no-untyped-def]
        response = await call_next(request)
        seen["path_format"] = request.scope["route"].path_format
        return response

    TestClient(app).get("/api/items/1")

    assert seen["path_format"] == "/items/{item_id}"


def test_the_shipped_app_is_counted() -> None:
    with TestClient(create_app(Settings(_env_file=None))) as client:
        before = requests_total("GET", "/", "200")
        client.get("/")

        assert requests_total("GET", "/", "200") == before + 1


def test_metrics_port_0_adds_no_middleware() -> None:
    app = create_app(Settings(_env_file=None, metrics_port=0))

    assert "MetricsMiddleware" not in [getattr(middleware.cls, "__name__", "") for middleware in app.user_middleware]


WORKER = """
from {{ cookiecutter.package_name }}.serving.metrics import IN_FLIGHT, REQUESTS
REQUESTS.labels("GET", "/", 200).inc(3)
IN_FLIGHT.inc()
"""


def test_a_dead_workers_counts_stay_and_its_requests_in_flight_do_not(tmp_path: Path) -> None:
    """A process writes its values in the folder and dies with a request in flight."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    subprocess.run([sys.executable, "-c", WORKER], env=env, check=True)  # noqa: S603  # this interpreter
    values = {
        (sample.name, sample.labels.get("route")): sample.value
        for family in LiveProcessesCollector(str(tmp_path)).collect()
        for sample in family.samples
    }

    assert values[("http_requests_total", "/")] == 3
    assert values.get(("http_requests_in_flight", None), 0) == 0


def test_the_endpoint_serves_the_metrics_in_prometheus_text() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    stop = serve("127.0.0.1", port)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    finally:
        stop()

    assert "# TYPE http_requests_total counter" in text


def test_the_metrics_port_cannot_be_the_service_port() -> None:
    with pytest.raises(ValidationError, match="must differ from PORT"):
        Settings(_env_file=None, port=9000, metrics_port=9000)


def test_a_request_is_counted_before_the_end_of_its_answer_leaves() -> None:
    """So a client that scrapes right after its answer arrived finds it counted."""
    counts_as_the_end_left: list[float] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def receive() -> Message:
        return {"type": "http.request"}

    async def server_send(message: Message) -> None:
        if message["type"] == "http.response.body":
            counts_as_the_end_left.append(requests_total("GET", "unmatched", "200"))

    before = requests_total("GET", "unmatched", "200")
    asyncio.run(MetricsMiddleware(app)({"type": "http", "method": "GET", "path": "/"}, receive, server_send))

    assert counts_as_the_end_left == [before + 1]
