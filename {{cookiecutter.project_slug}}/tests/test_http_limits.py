"""The header size limit, checked on a real Uvicorn server on 127.0.0.1 (a TestClient has no parser)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from {{ cookiecutter.package_name }}.http_limits import HTTP_PROTOCOL
from {{ cookiecutter.package_name }}.main import create_app
from {{ cookiecutter.package_name }}.settings import Settings, get_settings

MAX_HEADER_BYTES = get_settings().max_header_bytes


@pytest.fixture(scope="module")
def server_port() -> Iterator[int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    config = uvicorn.Config(
        create_app(Settings(_env_file=None)), host="127.0.0.1", port=port, http=HTTP_PROTOCOL, log_config=None
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "server did not start in 10 s"
        time.sleep(0.05)
    yield port
    server.should_exit = True
    thread.join(timeout=10)


def exchange(port: int, request: bytes) -> bytes:
    """Send a raw request; the status line of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request)
        return connection.recv(65536).split(b"\r\n", 1)[0]


def get_with_header(size: int) -> bytes:
    return b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * size + b"\r\n\r\n"


def test_ordinary_request_is_served(server_port: int) -> None:
    assert exchange(server_port, get_with_header(100)) == b"HTTP/1.1 200 OK"


def test_headers_over_the_limit_are_431(server_port: int) -> None:
    assert exchange(server_port, get_with_header(MAX_HEADER_BYTES + 1)) == (
        b"HTTP/1.1 431 Request Header Fields Too Large"
    )


def test_huge_header_is_cut_off_early(server_port: int) -> None:
    # 8 MiB sent in one go: refused once the limit is passed, not after buffering all of it.
    with socket.create_connection(("127.0.0.1", server_port), timeout=10) as connection:
        # The server may close the connection while we are still sending: what we want.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            connection.sendall(get_with_header(8 * 1024 * 1024))
        status = connection.recv(65536).split(b"\r\n", 1)[0]

    assert status == b"HTTP/1.1 431 Request Header Fields Too Large"


def test_body_in_the_same_packet_as_headers_does_not_count(server_port: int) -> None:
    body = b"x" * (MAX_HEADER_BYTES * 2)
    request = b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n" % len(body) + body

    # POST / is not a route: 405 shows the request got past the header limit to the app.
    assert exchange(server_port, request) == b"HTTP/1.1 405 Method Not Allowed"
