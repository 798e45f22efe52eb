from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from {{ cookiecutter.package_name }}.serving import healthcheck


class LivezHandler(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/livez" else 404)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[LivezHandler]]:
    """A /livez on 127.0.0.1, standing in for the container's own address; PORT points at it."""
    server = HTTPServer(("127.0.0.1", 0), LivezHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(healthcheck, "own_address", lambda: "127.0.0.1")
    monkeypatch.setenv("HOST", "0.0.0.0")  # noqa: S104 (the image's value)
    monkeypatch.setenv("PORT", str(server.server_address[1]))
    yield LivezHandler
    server.shutdown()
    server.server_close()


def test_healthy_when_livez_answers_200(serve: type[LivezHandler]) -> None:
    assert healthcheck.main() == 0


def test_unhealthy_when_livez_answers_an_error(serve: type[LivezHandler], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(serve, "status", 503)

    assert healthcheck.main() == 1


def test_unhealthy_when_nothing_listens(serve: type[LivezHandler], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "1")

    assert healthcheck.main() == 1


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "0.0.0.0", "::", ""])  # noqa: S104
def test_loopback_or_any_host_is_probed_on_the_containers_own_address(
    host: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A server bound to loopback is out of reach of published ports: probing loopback would hide it.
    monkeypatch.setattr(healthcheck, "own_address", lambda: "172.17.0.2")

    assert healthcheck.probe_host(host) == "172.17.0.2"


def test_a_specific_host_is_probed_there() -> None:
    assert healthcheck.probe_host("10.1.2.3") == "10.1.2.3"


def test_imports_only_the_standard_library() -> None:
    # It runs every 10 s: importing pydantic or the app would cost more CPU than the check itself.
    code = f"import sys, {healthcheck.__name__}; print(*sys.modules, sep='\\n')"
    modules = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout  # noqa: S603
    heavy = {"pydantic", "pydantic_settings", "fastapi", "starlette", "uvicorn"}

    assert heavy.isdisjoint(name.split(".")[0] for name in modules.split()), modules
