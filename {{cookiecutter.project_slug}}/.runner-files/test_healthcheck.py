from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from {{ cookiecutter.package_name }}.serving.healthcheck import main


class LivezHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/livez" else 404)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def live_port() -> Iterator[int]:
    server = HTTPServer(("127.0.0.1", 0), LivezHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


def test_healthy_when_livez_answers(monkeypatch: pytest.MonkeyPatch, live_port: int) -> None:
    monkeypatch.setenv("PORT", str(live_port))

    assert main() == 0


def test_unhealthy_when_nothing_listens(monkeypatch: pytest.MonkeyPatch, live_port: int) -> None:
    monkeypatch.setenv("PORT", "1")

    assert main() == 1
