"""Hostile traffic against the baked project's real server (`make run`, 127.0.0.1), as an attacker
would send it: thousands of idle and slow connections, a path that forges a log line, trailers past
the header limit, a refused upload from a client that reads only after sending, the API docs in
production, two Host headers, a stop while new clients keep arriving, and startup failures.

Each scenario runs once per runner in a module fixture and returns what it saw; the tests below it
assert one fact each. Figures are printed as "figure: ..." lines (run with -rA).
"""

from __future__ import annotations

import contextlib
import http.client
import re
import resource
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import project_env
from tests.support.live_server import (
    LOOPBACK,
    LiveServer,
    WrkResult,
    add_slow_route,
    figure,
    free_port,
    live_server,
    needs_migrated_requests,
    package_name,
    start_slow_request,
    wait_until,
    wrk_under_fault,
)

pytestmark = [pytest.mark.live, pytest.mark.xdist_group("live")]

Installer = Callable[..., Path]

IDLE_CONNECTIONS = 2000
SLOW_CONNECTIONS = 500
# The generated protocol's HEADER_TIMEOUT_SECONDS, and room for a busy machine.
HEADER_TIMEOUT = 10.0
MAX_HEADER_BYTES = 32_768
FORGED = "2026-01-01 00:00:00,000 INFO [forged] [-] 6.6.6.6"
TRAILER_BYTES = 16 * 1024 * 1024
UPLOAD_BYTES = 20_000_000


def raise_open_files_limit(needed: int) -> None:
    """This process holds every attacking connection and the server inherits the limit: lift its soft
    limit, or skip saying why."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < needed:
        pytest.skip(f"needs {needed} open files, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def status_line(port: int, request: bytes) -> str:
    """Send a raw request on a new connection; the status line of the answer ("" if none)."""
    with socket.create_connection((LOOPBACK, port), timeout=10) as connection:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            connection.sendall(request)
        try:
            return connection.recv(65536).split(b"\r\n", 1)[0].decode()
        except ConnectionResetError:
            return ""


def status_of(port: int, path: str) -> int | str:
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=10)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    except (OSError, http.client.HTTPException) as error:
        return type(error).__name__
    finally:
        connection.close()


def is_closed(connection: socket.socket) -> bool:
    """Whether the server has closed this connection (without waiting)."""
    try:
        return connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def peak_rss_mb(pid: int) -> int:
    return int(re.search(r"VmHWM:\s+(\d+)", Path(f"/proc/{pid}/status").read_text())[1]) // 1024  # type: ignore[index]


def trailer_bytes_sent(port: int) -> int:
    """A chunked POST whose trailers go on for TRAILER_BYTES: how many were sent before the server closed."""
    head = b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n"
    block = (b"X-Trailer: " + b"a" * 50 + b"\r\n") * 1024
    sent = 0
    with socket.create_connection((LOOPBACK, port), timeout=10) as connection:
        connection.sendall(head)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            while sent < TRAILER_BYTES:
                connection.sendall(block)
                sent += len(block)
    return sent


def upload_outcome(port: int) -> str:
    """What urllib meets posting UPLOAD_BYTES: it sends Connection: close and the whole body first."""
    request = urllib.request.Request(f"http://{LOOPBACK}:{port}/", data=b"x" * UPLOAD_BYTES, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # a fixed http:// URL
            return f"status {response.status}"
    except urllib.error.HTTPError as error:
        return f"status {error.code}"
    except urllib.error.URLError as error:
        return type(error.reason).__name__
    except (OSError, http.client.HTTPException) as error:
        return type(error).__name__


# --- one server per runner, probed in turn --------------------------------------------------------


@dataclass
class Probes:
    runner: str
    forged_lines: list[str]
    raw_escape_logged: bool
    oversized_headers: str
    invalid_request_lines: int
    two_hosts: str
    trailer_bytes_sent: int
    upload: str
    docs: dict[str, int | str]
    flood: WrkResult
    probes_under_flood: list[int | str]
    closed_within_header_timeout: dict[str, int]
    refusal_lines: int
    log: str = ""


def flood(server: LiveServer) -> tuple[WrkResult, list[int | str], dict[str, int]]:
    """IDLE_CONNECTIONS that send nothing and SLOW_CONNECTIONS that send a header line every 2 s,
    then wrk for 5 s with the probes asked meanwhile; then how many of each the server closed within
    the header timeout."""
    with contextlib.ExitStack() as stack:
        idle = [stack.enter_context(socket.create_connection((LOOPBACK, server.port))) for _ in range(IDLE_CONNECTIONS)]
        slow = [stack.enter_context(socket.create_connection((LOOPBACK, server.port))) for _ in range(SLOW_CONNECTIONS)]
        opened = time.monotonic()
        for connection in slow:
            connection.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        stop = threading.Event()

        def trickle() -> None:
            while not stop.wait(2):
                for connection in slow:
                    with contextlib.suppress(OSError):
                        connection.send(b"X-a: b\r\n")

        trickler = threading.Thread(target=trickle, daemon=True)
        trickler.start()
        probes: list[int | str] = []
        try:
            result = wrk_under_fault(
                f"http://{LOOPBACK}:{server.port}/",
                lambda: probes.extend(status_of(server.port, path) for path in ("/livez", "/readyz") * 5),
                seconds=5,
                fault_after=2,
            )
            deadline = opened + HEADER_TIMEOUT + 10
            with contextlib.suppress(AssertionError):
                wait_until(lambda: all(map(is_closed, idle + slow)), deadline - time.monotonic(), "closes", 0.5)
            closed = {"idle": sum(map(is_closed, idle)), "slow": sum(map(is_closed, slow))}
        finally:
            stop.set()
            trickler.join()
    return result, probes, closed


def probe(server: LiveServer) -> Probes:
    port = server.port
    status_line(port, f"GET /x%0a{urllib.request.quote(FORGED)}%1b[31m HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    oversized = status_line(port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 40_000 + b"\r\n\r\n")
    wait_until(lambda: "Request headers larger" in server.log(), 5, "the 431 to be logged")
    invalid_request_lines = server.log().count("Invalid HTTP request received")
    two_hosts = status_line(port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\n\r\n")
    worker = min(server.worker_pids() or {server.server_pid()})  # one Uvicorn process is its own worker
    rss_before = peak_rss_mb(worker)
    trailers = trailer_bytes_sent(port)
    figure("trailers: bytes sent before the server closed", f"{trailers:,} of {TRAILER_BYTES:,}")
    figure("trailers: worker's peak RSS", f"{rss_before} MB before, {peak_rss_mb(worker)} MB after")
    upload = upload_outcome(port)
    docs = {path: status_of(port, path) for path in ("/docs", "/redoc", "/openapi.json")}
    log_before_flood = len(server.log())
    wrk, probes, closed = flood(server)
    log = server.log()
    return Probes(
        runner="",
        forged_lines=[line for line in log.splitlines() if line.startswith(FORGED)],
        raw_escape_logged="\x1b" in log,
        oversized_headers=oversized,
        invalid_request_lines=invalid_request_lines,
        two_hosts=two_hosts,
        trailer_bytes_sent=trailers,
        upload=upload,
        docs=docs,
        flood=wrk,
        probes_under_flood=probes,
        closed_within_header_timeout=closed,
        refusal_lines=len([line for line in log[log_before_flood:].splitlines() if "WARNING" in line]),
        log=log,
    )


@pytest.fixture(scope="module", params=["uvicorn", "gunicorn"])
def probed(
    request: pytest.FixtureRequest, installed_project: Installer, tmp_path_factory: pytest.TempPathFactory
) -> Probes:
    """The shipped app in production mode, one worker, probed as above."""
    runner: str = request.param
    project = installed_project(runner)
    prefix = package_name(project).upper()
    env = project_env(**{f"{prefix}_ENVIRONMENT": "production", f"{prefix}_ALLOWED_HOSTS": "127.0.0.1"})
    # The server inherits the limit, as from the systemd unit's LimitNOFILE (a shell's 1,024 is too few).
    raise_open_files_limit(IDLE_CONNECTIONS + SLOW_CONNECTIONS + 200)
    with live_server(project, env, tmp_path_factory.mktemp(f"hostile-{runner}") / "server.log") as server:
        server.wait_ready()
        found = probe(server)
    found.runner = runner
    figure(f"{runner}: wrk under {IDLE_CONNECTIONS} idle + {SLOW_CONNECTIONS} slow connections", found.flood.summary())
    figure(f"{runner}: probes under them", str(sorted(set(map(str, found.probes_under_flood)))))
    figure(f"{runner}: closed within the header timeout", str(found.closed_within_header_timeout))
    figure(f"{runner}: urllib posting {UPLOAD_BYTES:,} bytes", found.upload)
    return found


def test_idle_and_slow_connections_leave_99_percent_of_requests_answered(probed: Probes) -> None:
    assert probed.flood.failed <= probed.flood.requests // 100, probed.flood.output


def test_idle_and_slow_connections_leave_the_probes_answered(probed: Probes) -> None:
    assert set(probed.probes_under_flood) == {200}


def test_slow_clients_are_closed_after_the_header_timeout(probed: Probes) -> None:
    assert probed.closed_within_header_timeout["slow"] == SLOW_CONNECTIONS


def test_silent_connections_are_closed_after_the_header_timeout(probed: Probes) -> None:
    assert probed.closed_within_header_timeout["idle"] == IDLE_CONNECTIONS


def test_a_flood_logs_no_line_per_request(probed: Probes) -> None:
    assert probed.refusal_lines <= 5, probed.log[-3000:]


def test_a_path_cannot_forge_a_log_line(probed: Probes) -> None:
    assert probed.forged_lines == []


def test_a_path_cannot_write_a_raw_escape_to_the_log(probed: Probes) -> None:
    assert probed.raw_escape_logged is False


def test_oversized_headers_are_431(probed: Probes) -> None:
    assert probed.oversized_headers == "HTTP/1.1 431 Request Header Fields Too Large"


def test_a_431_is_not_logged_as_an_invalid_request(probed: Probes) -> None:
    assert probed.invalid_request_lines == 0


def test_two_host_headers_are_400(probed: Probes) -> None:
    assert probed.two_hosts == "HTTP/1.1 400 Bad Request"


def test_trailers_past_the_header_limit_close_the_connection(probed: Probes) -> None:
    assert probed.trailer_bytes_sent < TRAILER_BYTES


def test_a_client_that_sends_its_whole_body_first_reads_the_413(probed: Probes) -> None:
    assert probed.upload == "status 413"


def test_api_docs_are_off_in_production(probed: Probes) -> None:
    assert set(probed.docs.values()) == {404}


# --- a stop while new clients keep connecting (2 workers) -----------------------------------------

CLIENTS = 8  # each connecting and sending a request in a loop: before the fix, 6-7 of them were reset per stop


@dataclass
class Stop:
    runner: str
    outcomes: list[tuple[float, str]] = field(default_factory=list)  # (when the client connected, what it met)
    signalled: float = 0.0  # when SIGTERM was sent
    slow_status: object = None
    exit_code: int | None = None

    def during_the_stop(self, what: str) -> list[float]:
        """Seconds after SIGTERM of each connection that met `what`."""
        return [
            start - self.signalled for start, outcome in self.outcomes if outcome == what and start >= self.signalled
        ]


def keep_connecting(port: int, stop: threading.Event, into: Stop) -> None:
    """A new connection and request, again and again until `stop`; what each met."""
    while not stop.is_set():
        start, sent = time.monotonic(), False
        try:
            with socket.create_connection((LOOPBACK, port), timeout=5) as connection:
                connection.sendall(b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                sent = True
                outcome = "answered" if connection.recv(100).startswith(b"HTTP/1.1 200") else "closed"
        except ConnectionRefusedError:
            outcome = "refused"
        except ConnectionResetError:
            outcome = "reset after sending" if sent else "reset before sending"
        except OSError as error:
            outcome = type(error).__name__
        into.outcomes.append((start, outcome))
        if outcome == "refused":
            stop.wait(0.005)  # the listener is closed: no need to spin


@pytest.fixture(scope="module", params=["uvicorn", "gunicorn"])
def stop_with_workers(
    request: pytest.FixtureRequest, installed_project: Installer, tmp_path_factory: pytest.TempPathFactory
) -> Stop:
    """SIGTERM with WEB_CONCURRENCY=2 while a 3-second request is in flight and CLIENTS clients keep
    connecting, until the server has exited."""
    project = installed_project(request.param, variant="slow-route", customize=add_slow_route)
    log = tmp_path_factory.mktemp(f"stop-{request.param}") / "server.log"
    found = Stop(request.param)
    with live_server(project, project_env(WEB_CONCURRENCY="2"), log) as server:
        server.wait_ready()
        server.wait_for_workers(2)
        in_flight, answer = start_slow_request(server.get, server.log, 3.0)
        stop = threading.Event()
        clients = [threading.Thread(target=keep_connecting, args=(server.port, stop, found)) for _ in range(CLIENTS)]
        for client in clients:
            client.start()
        wait_until(lambda: len(found.outcomes) >= 10 * CLIENTS, 10, "the clients to be answered")  # in full swing
        found.signalled = time.monotonic()
        server.signal_server(signal.SIGTERM)
        found.exit_code = server.wait_exit(timeout=30)
        stop.set()
        for client in clients:
            client.join()
        in_flight.join()
    found.slow_status = answer.get("status")
    during = Counter(outcome for start, outcome in found.outcomes if start >= found.signalled)
    figure(f"{request.param} WEB_CONCURRENCY=2 stop, {CLIENTS} clients connecting", str(dict(during)))
    figure("  first refusal after SIGTERM", f"{min(found.during_the_stop('refused'), default=None)} s")
    return found


def test_new_clients_are_refused_while_a_request_drains(stop_with_workers: Stop) -> None:
    # The 3-second request keeps a worker and the supervisor up: the listening socket is closed
    # within a second anyway, so that the kernel refuses new clients rather than queueing them.
    assert min(stop_with_workers.during_the_stop("refused"), default=99.0) < 1.0


def test_no_new_client_is_reset_after_sending_its_request(stop_with_workers: Stop) -> None:
    # Before: the connections queued on the listening socket when its last copy closed were reset (6-7 of 8).
    needs_migrated_requests(stop_with_workers.runner)  # Gunicorn's first worker to stop has handshakes to move
    assert stop_with_workers.during_the_stop("reset after sending") == []


def test_the_request_in_flight_is_answered_during_the_stop(stop_with_workers: Stop) -> None:
    assert stop_with_workers.slow_status == 200


def test_the_stop_exits_0(stop_with_workers: Stop) -> None:
    assert stop_with_workers.exit_code == 0


# --- startup failures: one line, and an exit code systemd does not restart -----------------------


@dataclass
class FailedStart:
    exit_code: int | None
    error_lines: list[str]
    seconds: float


def start_and_wait_for_the_exit(project: Path, env: dict[str, str], log: Path, port: int | None = None) -> FailedStart:
    server = LiveServer.start(project, env, log, port=port)
    try:
        server.wait_exit(timeout=60)
    finally:
        server.close()
    errors = [line for line in server.log().splitlines() if line.startswith("error:")]
    return FailedStart(server.server_exit_code(), errors, time.monotonic() - server.started)


@pytest.fixture(scope="module", params=["uvicorn", "gunicorn"])
def bad_proxy_setting(
    request: pytest.FixtureRequest, installed_project: Installer, tmp_path_factory: pytest.TempPathFactory
) -> FailedStart:
    project = installed_project(request.param)
    env = project_env(**{f"{package_name(project).upper()}_FORWARDED_ALLOW_IPS": "10.0.0.0/33", "WEB_CONCURRENCY": "2"})
    return start_and_wait_for_the_exit(project, env, tmp_path_factory.mktemp("bad-proxies") / "server.log")


def test_an_invalid_forwarded_allow_ips_exits_2(bad_proxy_setting: FailedStart) -> None:
    assert bad_proxy_setting.exit_code == 2


def test_an_invalid_forwarded_allow_ips_is_named_on_one_line(bad_proxy_setting: FailedStart) -> None:
    assert [("FORWARDED_ALLOW_IPS='10.0.0.0/33'" in line) for line in bad_proxy_setting.error_lines] == [True]


@pytest.fixture(
    scope="module",
    params=[("uvicorn", "1"), ("uvicorn", "2"), ("gunicorn", "1"), ("gunicorn", "2")],
    ids=["uvicorn-1-worker", "uvicorn-2-workers", "gunicorn-1-worker", "gunicorn-2-workers"],
)
def taken_port(
    request: pytest.FixtureRequest, installed_project: Installer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FailedStart]:
    runner, workers = request.param
    with socket.create_server((LOOPBACK, free_port())) as holder:
        log = tmp_path_factory.mktemp("taken-port") / "server.log"
        env = project_env(WEB_CONCURRENCY=workers)
        found = start_and_wait_for_the_exit(installed_project(runner), env, log, port=holder.getsockname()[1])
        figure(f"{runner} WEB_CONCURRENCY={workers}: taken port", f"exit {found.exit_code} after {found.seconds:.1f} s")
        yield found


def test_a_taken_port_exits_3_as_a_failed_startup(taken_port: FailedStart) -> None:
    # 3 is in the systemd unit's RestartPreventExitStatus: no restart loop (Gunicorn alone exits 1).
    assert taken_port.exit_code == 3
