"""The HTTP protocol (serving/protocol.py) on a real Uvicorn server on 127.0.0.1 (a TestClient has no
parser): the header size limit, and a drain that answers requests arriving while the server stops."""

from __future__ import annotations

import contextlib
import http.client
import re
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from {{ cookiecutter.package_name }}.main import create_app
from {{ cookiecutter.package_name }}.serving.protocol import (
    DRAIN_GRACE_SECONDS,
    HTTP_PROTOCOL,
)
from {{ cookiecutter.package_name }}.settings import Settings, get_settings

MAX_HEADER_BYTES = get_settings().max_header_bytes
GET_ROOT = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"


@contextlib.contextmanager
def running_server() -> Iterator[tuple[uvicorn.Server, threading.Thread, int]]:
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
    try:
        yield server, thread, port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def server_port() -> Iterator[int]:
    with running_server() as (_, _, port):
        yield port


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


@pytest.mark.parametrize(
    ("header_size", "status"),
    [
        (MAX_HEADER_BYTES - 27, b"HTTP/1.1 200 OK"),
        (MAX_HEADER_BYTES - 26, b"HTTP/1.1 431 Request Header Fields Too Large"),
    ],
    ids=["at-the-limit", "one-byte-over"],
)
def test_limit_counts_the_target_and_each_header_line(server_port: int, header_size: int, status: bytes) -> None:
    # Counted: "/" (1), "Host: localhost" (4 + 9 + 4: ": " and CRLF), "X-Big: ..." (5 + 4 + size).
    assert exchange(server_port, get_with_header(header_size)) == status


def test_next_request_begun_in_a_body_packet_is_not_counted_whole(server_port: int) -> None:
    body = b"x" * (MAX_HEADER_BYTES * 2)
    first = b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    second = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server_port), timeout=10) as connection:
        connection.sendall(first + second[:10])  # one packet: a body, then the next request's first bytes
        connection.sendall(second[10:])
        answers = read_response(connection)

    # A status line follows the answer before it directly (no CRLF after a body).
    assert re.findall(rb"HTTP/1\.1 \d{3} [^\r]*", answers) == [b"HTTP/1.1 405 Method Not Allowed", b"HTTP/1.1 200 OK"]


# --- drain ---------------------------------------------------------------------------------------


def begin_stop(server: uvicorn.Server, port: int) -> None:
    """Ask the server to stop and wait until its listener is closed (its connections are then draining)."""
    server.should_exit = True
    deadline = time.monotonic() + 5
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except ConnectionRefusedError:
            return
        assert time.monotonic() < deadline, "the listener was still open 5 s after should_exit"
        time.sleep(0.01)


def read_response(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    chunks = []
    while chunk := connection.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def request_on_a_connection_opened_before_the_stop() -> bytes:
    """Connect, let the server begin to stop, then send a request: the whole answer."""
    with (
        running_server() as (server, _, port),
        socket.create_connection(("127.0.0.1", port), timeout=10) as connection,
    ):
        begin_stop(server, port)
        connection.sendall(GET_ROOT)
        return read_response(connection)


def test_request_sent_on_a_new_connection_while_stopping_is_answered() -> None:
    # A client that connected just before the stop and sends its request a moment later: Uvicorn
    # alone resets such a connection (https://github.com/Kludex/uvicorn/issues/2757).
    assert request_on_a_connection_opened_before_the_stop().startswith(b"HTTP/1.1 200 OK\r\n")


def test_request_on_an_idle_keep_alive_connection_while_stopping_is_answered() -> None:
    with (
        running_server() as (server, _, port),
        socket.create_connection(("127.0.0.1", port), timeout=10) as connection,
    ):
        connection.sendall(GET_ROOT)
        first = http.client.HTTPResponse(connection)
        first.begin()
        first.read()  # all of it: one recv() may stop before the body, which the next read would see
        begin_stop(server, port)
        connection.sendall(GET_ROOT)
        second = read_response(connection)

    assert (first.status, second.split(b"\r\n", 1)[0]) == (200, b"HTTP/1.1 200 OK")


def test_answer_while_stopping_closes_the_connection() -> None:
    assert b"\r\nconnection: close\r\n" in request_on_a_connection_opened_before_the_stop().lower()


def test_silent_connection_is_closed_after_the_grace() -> None:
    with (
        running_server() as (server, _, port),
        socket.create_connection(("127.0.0.1", port), timeout=10) as connection,
    ):
        begin_stop(server, port)
        began = time.monotonic()
        closing = connection.recv(1)  # b"" when the server closes the connection
        waited = time.monotonic() - began

    assert (closing, DRAIN_GRACE_SECONDS * 0.5 <= waited <= DRAIN_GRACE_SECONDS + 1.0) == (b"", True)


def test_request_half_sent_when_the_grace_ends_is_still_answered() -> None:
    with (
        running_server() as (server, _, port),
        socket.create_connection(("127.0.0.1", port), timeout=10) as connection,
    ):
        connection.sendall(GET_ROOT[:20])  # the request line and part of a header
        begin_stop(server, port)
        time.sleep(DRAIN_GRACE_SECONDS * 2)  # the grace passes with the request still incomplete
        connection.sendall(GET_ROOT[20:])
        answer = read_response(connection)

    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
