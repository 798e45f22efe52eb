"""The HTTP protocol (serving/protocol.py) on a real Uvicorn server on 127.0.0.1 (a TestClient has no
parser): the header size limit (trailers too), slow and idle clients, the linger that lets a client
read its 413, and a stop that answers the requests already sent, queued connections' included."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
import uvicorn

from {{ cookiecutter.package_name }}.main import create_app
from {{ cookiecutter.package_name }}.serving import protocol
from {{ cookiecutter.package_name }}.serving.protocol import (
    DRAIN_GRACE_SECONDS,
    HttpProtocol,
    Server,
)
from {{ cookiecutter.package_name }}.settings import Settings, get_settings

MAX_HEADER_BYTES = get_settings().max_header_bytes
GET_ROOT = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"


@contextlib.contextmanager
def running_server() -> Iterator[tuple[Server, threading.Thread, int]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = Server(app_config(port))
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


def app_config(port: int) -> uvicorn.Config:
    return uvicorn.Config(
        create_app(Settings(_env_file=None)), host="127.0.0.1", port=port, http=HttpProtocol, log_config=None
    )


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


def test_431_is_not_logged_as_an_invalid_request(server_port: int, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="uvicorn.error"):
        exchange(server_port, get_with_header(MAX_HEADER_BYTES + 1))

    assert [record.getMessage() for record in caplog.records] == [
        f"Request headers larger than {MAX_HEADER_BYTES} bytes: refused"
    ]


def test_two_host_headers_are_400(server_port: int) -> None:
    request = b"GET / HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\n\r\n"

    assert exchange(server_port, request) == b"HTTP/1.1 400 Bad Request"


# --- chunked trailers ------------------------------------------------------------------------------

CHUNKED_POST = b"POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n"


def bytes_sent_before_the_server_closed(port: int, head: bytes, line: bytes, total: int) -> int:
    """Send head, then `line` over and over up to `total` bytes: how many went before the server closed."""
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(head)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            while sent < total:
                connection.sendall(line * 64)
                sent += len(line) * 64
    return sent


def test_trailers_over_the_header_limit_close_the_connection(server_port: int) -> None:
    total = 16 * 1024 * 1024
    line = b"X-Trailer: " + b"a" * 50 + b"\r\n"

    assert bytes_sent_before_the_server_closed(server_port, CHUNKED_POST, line, total) < total


def test_small_trailers_are_read() -> None:
    request = CHUNKED_POST + b"X-Checksum: abc\r\n\r\n"
    with running_server() as (_, _, port), socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request + GET_ROOT)  # a second request after the trailers, on the same connection
        answers = b""
        while answers.count(b"HTTP/1.1 ") < 2 and (chunk := connection.recv(65536)):
            answers += chunk

    assert re.findall(rb"HTTP/1\.1 \d{3}", answers) == [b"HTTP/1.1 405", b"HTTP/1.1 200"]


def test_large_chunks_split_across_packets_are_not_taken_for_trailers(server_port: int) -> None:
    size = MAX_HEADER_BYTES * 8
    with socket.create_connection(("127.0.0.1", server_port), timeout=10) as connection:
        connection.sendall(CHUNKED_POST.removesuffix(b"0\r\n") + b"%x\r\n" % size)  # a chunk's size line alone
        for _ in range(8):
            time.sleep(0.01)  # the chunk's data in separate packets
            connection.sendall(b"x" * MAX_HEADER_BYTES)
        connection.sendall(b"\r\n0\r\n\r\n" + GET_ROOT)
        answers = b""
        while answers.count(b"HTTP/1.1 ") < 2 and (chunk := connection.recv(65536)):
            answers += chunk

    assert re.findall(rb"HTTP/1\.1 \d{3}", answers) == [b"HTTP/1.1 405", b"HTTP/1.1 200"]


# --- slow and idle clients ---------------------------------------------------------------------------


@pytest.fixture
def short_header_timeout(monkeypatch: pytest.MonkeyPatch) -> float:
    monkeypatch.setattr(protocol, "HEADER_TIMEOUT_SECONDS", 0.5)
    return 0.5


def seconds_until_closed(connection: socket.socket, *, trickle: bytes = b"") -> float:
    """Send `trickle` every 0.1 s (nothing if empty) until the server closes; the seconds it took."""
    began = time.monotonic()
    connection.settimeout(0.1)
    while time.monotonic() - began < 10:
        try:
            if not connection.recv(65536):
                break
        except TimeoutError:
            if trickle:
                connection.sendall(trickle)
        except ConnectionResetError:
            break
    return time.monotonic() - began


@pytest.mark.usefixtures("short_header_timeout")
def test_connection_that_sends_nothing_is_closed_after_the_header_timeout() -> None:
    with running_server() as (_, _, port), socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        assert seconds_until_closed(connection) < 2


@pytest.mark.usefixtures("short_header_timeout")
def test_headers_sent_slowly_are_closed_after_the_header_timeout() -> None:
    with running_server() as (_, _, port), socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(b"GET / HTTP/1.1\r\n")
        assert seconds_until_closed(connection, trickle=b"X-a: b\r\n") < 2


@pytest.mark.usefixtures("short_header_timeout")
def test_slow_headers_of_a_second_request_are_closed_too() -> None:
    with running_server() as (_, _, port), socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(GET_ROOT)
        connection.recv(65536)
        connection.sendall(b"GET / HTTP/1.1\r\n")
        assert seconds_until_closed(connection, trickle=b"X-a: b\r\n") < 2


@pytest.mark.usefixtures("short_header_timeout")
def test_idle_keep_alive_connection_outlives_the_header_timeout() -> None:
    with running_server() as (_, _, port), socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(GET_ROOT)
        connection.recv(65536)
        time.sleep(1.5)  # three header timeouts, well within the keep-alive timeout
        connection.sendall(GET_ROOT)

        assert connection.recv(65536).startswith(b"HTTP/1.1 200 OK")


def test_idle_connections_are_closed_past_max_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(protocol, "MAX_CONNECTIONS", 20)
    with running_server() as (_, _, port), contextlib.ExitStack() as stack:
        idle = []
        for _ in range(30):
            connection = stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=10))
            connection.sendall(GET_ROOT)
            connection.recv(65536)
            idle.append(connection)
        time.sleep(0.2)
        closed = 0
        for connection in idle:
            connection.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                closed += connection.recv(1) == b""

    assert closed >= 30 - 20


# --- the answer to a body refused while it arrives ----------------------------------------------------


def test_client_that_sends_the_whole_body_first_reads_the_413(server_port: int) -> None:
    # urllib sends Connection: close and the whole body before it reads: closing at once would reset it.
    request = urllib.request.Request(f"http://127.0.0.1:{server_port}/", data=b"x" * 20_000_000, method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)  # noqa: S310  # a fixed http:// URL

    assert refused.value.code == 413


# --- drain ---------------------------------------------------------------------------------------


def begin_stop(server: Server, port: int) -> None:
    """Ask the server to stop and wait until its listener is closed (its connections are then draining)."""
    server.should_exit = True
    deadline = time.monotonic() + 5
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except ConnectionRefusedError:
            return
        except TimeoutError:  # a busy machine: the listener is not closed yet, try again
            pass
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


async def stop_with_a_queued_request() -> bytes:
    """Start a server, connect and send a request while its event loop does not run (the kernel queues the
    connection on the listening socket), then stop the server: the whole answer."""
    config = app_config(port=0)
    config.load()
    server = Server(config)
    server.lifespan = config.lifespan_class(config)  # as Server.serve() does before startup()
    await server.startup()
    port = server.servers[0].sockets[0].getsockname()[1]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(GET_ROOT)
        await server.shutdown()
        return read_response(connection)


def test_request_queued_on_the_listening_socket_when_the_server_stops_is_answered() -> None:
    # Uvicorn alone closes its listening socket with the connection still queued: the kernel resets it.
    with asyncio.Runner(loop_factory=app_config(port=0).get_loop_factory()) as runner:
        answer = runner.run(stop_with_a_queued_request())

    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
