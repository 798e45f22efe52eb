"""Metrics and traces of each server with two workers, started for real with the baked project's own
`make run` on 127.0.0.1 (metrics=yes, tracing on, JSON logs).

Metrics: each scrape of the metrics port reads the sum over both workers, exactly; a worker killed with
a request in flight leaves its counts in the total (its counter file stays) and nothing in flight (its
gauge file goes); a restarted service starts from 0; unmatched paths share one label value.
Traces: a small OTLP/HTTP receiver on 127.0.0.1 (standard library plus opentelemetry-proto to decode
what it is sent) gets the spans of a request, whose trace id is the one in that request's log line.

One scenario per server runs in a module fixture and returns what it saw; each test asserts one fact.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.conftest import SERVERS, project_env
from tests.support.live_server import (
    LOOPBACK,
    LiveServer,
    add_slow_route,
    connections_held,
    established_socket_inodes,
    free_port,
    get,
    package_name,
    start_slow_request,
    wait_until,
)

pytestmark = [pytest.mark.live, pytest.mark.xdist_group("live")]

WORKERS = 2
# Requests to / on fresh connections, then scrapes that must each read exactly that many.
REQUESTS = 60
SCRAPES = 5
UNMATCHED_PATHS = 10_000
UNMATCHED = "unmatched"
# The slow route is also included a second time under this prefix: its label must carry it.
PREFIX = "/v2"
SLOW_SECONDS = 30.0
TRACED_REQUEST_ID = "observability-test-request"
# The OTLP exporter's batch delay (5 s by default), so spans arrive within the test's patience.
BATCH_DELAY_MS = "100"

SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][\w:]*)(?:\{(?P<labels>.*)\})? (?P<value>\S+)$")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')

Installer = Callable[..., Path]


def add_test_routes(project: Path) -> None:
    """GET /slow (live_server.add_slow_route), and the same router again under PREFIX."""
    add_slow_route(project)
    main = project / "src" / package_name(project) / "main.py"
    text = main.read_text()
    old = "    app.include_router(slow.router)\n"
    assert text.count(old) == 1, "main.py changed: cannot include the slow router under a prefix"
    main.write_text(text.replace(old, old + f'    app.include_router(slow.router, prefix="{PREFIX}")\n'))


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """The samples of one series in Prometheus text: (labels, value) each."""
    found = []
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match and match["name"] == name:
            found.append((dict(LABEL.findall(match["labels"] or "")), float(match["value"])))
    return found


def requests_to_root(text: str) -> float:
    """http_requests_total of GET / answered 200 (0 when no such series exists yet)."""
    wanted = {"method": "GET", "route": "/", "status": "200"}
    return sum(value for labels, value in samples(text, "http_requests_total") if labels == wanted)


@dataclass
class OtlpReceiver:
    """An OTLP/HTTP endpoint on 127.0.0.1 keeping every span it is sent (traces; other signals are
    answered and dropped)."""

    spans: list[Any] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> ThreadingHTTPServer:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path == "/v1/traces":
                    request = ExportTraceServiceRequest.FromString(body)
                    with receiver.lock:
                        receiver.spans += [
                            span
                            for spans in request.resource_spans
                            for scope in spans.scope_spans
                            for span in scope.spans
                        ]
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server

    def spans_of(self, trace_id: str) -> list[Any]:
        with self.lock:
            return [span for span in self.spans if span.trace_id.hex() == trace_id]


@dataclass
class Observed:
    scrapes: list[float] = field(default_factory=list)
    public_metrics_status: int = 0
    scrapes_logged: int = 0
    after_kill: float = 0.0
    before_kill: float = 0.0
    in_flight_before_kill: float = -1.0
    in_flight_after_kill: float = -1.0
    victim_files_before_kill: list[str] = field(default_factory=list)
    victim_files_after_kill: list[str] = field(default_factory=list)
    all_requests_before_kill: float = 0.0
    all_requests_after_kill: float = -1.0
    unmatched_answers: int = 0
    route_values: set[str] = field(default_factory=set)
    folder_during_run: bool = False
    folder_after_exit: bool = True
    after_restart: float = -1.0
    after_restart_and_one_request: float = -1.0
    log_line: dict[str, Any] = field(default_factory=dict)
    span_attributes: dict[str, str] = field(default_factory=dict)
    span_names: list[str] = field(default_factory=list)


def scrape(port: int) -> str:
    status, body = get(port, "/metrics")
    assert status == 200, f"metrics port answered {status}"
    return body.decode()


def multiprocess_folder(pid: int, server_pid: int) -> Path:
    """The metrics folder the server gave a worker: from the environment it started with, in /proc; a
    forked worker (Granian's) has it in memory only: then the temporary folder holding the files of the
    server process, which made it (its in-flight gauge's, written when it imported prometheus_client)."""
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    values = [item.split(b"=", 1)[1] for item in environ if item.startswith(b"PROMETHEUS_MULTIPROC_DIR=")]
    if not values:
        files = Path(tempfile.gettempdir()).glob(f"metrics-*/*_{server_pid}.db")
        values = [str(path.parent).encode() for path in files]
    assert len(set(values)) == 1, f"worker {pid} started without PROMETHEUS_MULTIPROC_DIR"
    return Path(values[0].decode())


def get_unmatched_paths(port: int, count: int, deadline: float) -> int:
    """GET `count` distinct paths no route matches, on one keep-alive connection; how many got 404."""
    answered = 0
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=10)
    try:
        for number in range(count):
            assert time.monotonic() < deadline, f"only {number} unmatched paths in the time allowed"
            connection.request("GET", f"/no-such-page/{number}")
            response = connection.getresponse()
            response.read()
            answered += response.status == 404
    finally:
        connection.close()
    return answered


def json_lines(log: str) -> Iterator[dict[str, Any]]:
    for line in log.splitlines():
        if line.startswith("{"):
            yield json.loads(line)


def all_requests(text: str) -> float:
    """http_requests_total summed over every series."""
    return sum(value for _, value in samples(text, "http_requests_total"))


def in_flight(port: int) -> float:
    return sum(value for _, value in samples(scrape(port), "http_requests_in_flight"))


def access_lines(log: str, path: str) -> int:
    return sum(line.get("target") == path for line in json_lines(log))


def stop(server: LiveServer) -> None:
    server.signal_server(signal.SIGTERM)
    assert server.wait_exit(timeout=60) == 0, server.log()[-3000:]


def files_of(folder: Path, pid: int) -> list[str]:
    """The kinds of value files (counter, histogram, gauge_livesum) a process wrote in the folder."""
    return sorted(path.stem.rsplit("_", 1)[0] for path in folder.glob(f"*_{pid}.db"))


@pytest.fixture(scope="module", params=SERVERS)
def observed(
    request: pytest.FixtureRequest, installed_project: Installer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Observed]:
    server_name: str = request.param
    project = installed_project(server_name, variant="metrics", customize=add_test_routes, metrics="yes")
    prefix = package_name(project).upper()
    receiver = OtlpReceiver()
    otlp = receiver.start()
    metrics_port, port = free_port(), free_port()
    env = project_env(
        WEB_CONCURRENCY=str(WORKERS),
        **{f"{prefix}_METRICS_PORT": str(metrics_port), f"{prefix}_LOG_FORMAT": "json", f"{prefix}_TELEMETRY": "true"},
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://{LOOPBACK}:{otlp.server_address[1]}",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTEL_BSP_SCHEDULE_DELAY=BATCH_DELAY_MS,
    )
    logs = tmp_path_factory.mktemp(f"observability-{server_name}")
    seen = Observed()
    server = LiveServer.start(project, env, logs / "first.log", port=port)
    try:
        server.wait_ready()
        workers = server.wait_for_workers(WORKERS)
        folder = multiprocess_folder(min(workers), server.server_pid())
        seen.folder_during_run = folder.is_dir()

        for _ in range(REQUESTS):
            assert server.get("/")[0] == 200
        seen.scrapes = [requests_to_root(scrape(metrics_port)) for _ in range(SCRAPES)]
        seen.public_metrics_status = server.get("/metrics")[0]
        wait_until(lambda: access_lines(server.log(), "/metrics") >= 1, 10, "the public GET /metrics's access line")
        seen.scrapes_logged = access_lines(server.log(), "/metrics") - 1  # less that public GET

        # Kill the worker serving a slow request: it dies with that request in flight.
        slow, _ = start_slow_request(server.get, server.log, SLOW_SECONDS)
        inodes = established_socket_inodes(server.port)
        (victim,) = [pid for pid in workers if connections_held(pid, inodes)]
        # It has counted requests too (their counter file exists), else requests go to both until it has.
        extra = 0
        while "counter" not in files_of(folder, victim) and extra < 1000:
            assert server.get("/readyz")[0] == 200
            extra += 1
        seen.before_kill = requests_to_root(scrape(metrics_port))
        seen.all_requests_before_kill = all_requests(scrape(metrics_port))
        seen.in_flight_before_kill = in_flight(metrics_port)
        seen.victim_files_before_kill = files_of(folder, victim)
        os.kill(victim, signal.SIGKILL)
        server.wait_for_workers(WORKERS, without={victim})
        slow.join(timeout=10)
        seen.after_kill = requests_to_root(scrape(metrics_port))
        seen.all_requests_after_kill = all_requests(scrape(metrics_port))
        with contextlib.suppress(AssertionError):  # a failed wait leaves the last value to the test
            wait_until(lambda: in_flight(metrics_port) == 0, 10, "no request in flight")
        seen.in_flight_after_kill = in_flight(metrics_port)
        seen.victim_files_after_kill = files_of(folder, victim)

        assert server.get(f"{PREFIX}/slow?seconds=0")[0] == 200
        seen.unmatched_answers = get_unmatched_paths(server.port, UNMATCHED_PATHS, time.monotonic() + 300)
        seen.route_values = {labels["route"] for labels, _ in samples(scrape(metrics_port), "http_requests_total")}

        connection = http.client.HTTPConnection(LOOPBACK, server.port, timeout=5)
        connection.request("GET", "/", headers={"X-Request-ID": TRACED_REQUEST_ID})
        connection.getresponse().read()
        connection.close()
        wait_until(
            lambda: any(line.get("request_id") == TRACED_REQUEST_ID for line in json_lines(server.log())),
            10,
            "the traced request's access line",
        )
        seen.log_line = next(line for line in json_lines(server.log()) if line.get("request_id") == TRACED_REQUEST_ID)
        trace_id, span_id = str(seen.log_line.get("trace_id")), str(seen.log_line.get("span_id"))
        # The request's spans end, and may be exported, in more than one batch: wait for the logged one.
        wait_until(
            lambda: any(span.span_id.hex() == span_id for span in receiver.spans_of(trace_id)),
            30,
            f"span {span_id} of trace {trace_id}",
            interval=0.1,
        )
        spans = receiver.spans_of(trace_id)
        seen.span_names = sorted(span.name for span in spans)
        server_span = next(span for span in spans if span.span_id.hex() == span_id)
        seen.span_attributes = {item.key: item.value.string_value for item in server_span.attributes}

        stop(server)
        seen.folder_after_exit = folder.exists()

        server = LiveServer.start(project, env, logs / "second.log", port=port)
        server.wait_ready()
        seen.after_restart = requests_to_root(scrape(metrics_port))
        assert server.get("/")[0] == 200
        seen.after_restart_and_one_request = requests_to_root(scrape(metrics_port))
        stop(server)
        yield seen
    finally:
        server.close()
        otlp.shutdown()


def test_every_scrape_reads_exactly_the_requests_of_all_workers(observed: Observed) -> None:
    assert observed.scrapes == [REQUESTS] * SCRAPES


def test_the_public_port_does_not_serve_the_metrics(observed: Observed) -> None:
    assert observed.public_metrics_status == 404


def test_scrapes_are_not_logged(observed: Observed) -> None:
    assert observed.scrapes_logged == 0


def test_a_killed_workers_requests_stay_in_the_total(observed: Observed) -> None:
    assert observed.after_kill >= observed.before_kill == REQUESTS


def test_the_request_in_flight_in_the_worker_to_kill_is_counted(observed: Observed) -> None:
    assert observed.in_flight_before_kill == 1


def test_a_killed_worker_leaves_no_request_in_flight(observed: Observed) -> None:
    assert observed.in_flight_after_kill == 0


def test_the_worker_to_kill_wrote_counts_and_a_request_in_flight(observed: Observed) -> None:
    assert observed.victim_files_before_kill == ["counter", "gauge_livesum", "histogram"]


def test_a_killed_workers_counter_files_stay_and_its_in_flight_file_goes(observed: Observed) -> None:
    assert observed.victim_files_after_kill == ["counter", "histogram"]


def test_the_total_over_every_series_does_not_drop_when_a_worker_is_killed(observed: Observed) -> None:
    assert observed.all_requests_after_kill >= observed.all_requests_before_kill > 0


def test_ten_thousand_unmatched_paths_add_one_label_value(observed: Observed) -> None:
    assert observed.route_values == {"/", "/readyz", f"{PREFIX}/slow", UNMATCHED}


def test_a_route_included_under_a_prefix_is_labelled_with_it(observed: Observed) -> None:
    assert f"{PREFIX}/slow" in observed.route_values


def test_every_unmatched_path_was_answered_404(observed: Observed) -> None:
    assert observed.unmatched_answers == UNMATCHED_PATHS


def test_the_workers_metrics_folder_exists_while_serving(observed: Observed) -> None:
    assert observed.folder_during_run


def test_the_metrics_folder_is_removed_at_exit(observed: Observed) -> None:
    assert not observed.folder_after_exit


def test_a_restarted_service_counts_from_zero(observed: Observed) -> None:
    assert observed.after_restart == 0


def test_a_restarted_service_counts_again(observed: Observed) -> None:
    assert observed.after_restart_and_one_request == 1


def test_the_traced_requests_log_line_names_its_trace(observed: Observed) -> None:
    assert re.fullmatch(r"[0-9a-f]{32}", str(observed.log_line.get("trace_id")))


def test_the_spans_of_the_logged_trace_reach_the_otlp_receiver(observed: Observed) -> None:
    assert "GET /" in observed.span_names


def test_the_logged_span_carries_the_request_id(observed: Observed) -> None:
    assert observed.span_attributes.get("request.id") == TRACED_REQUEST_ID


def test_the_logged_span_carries_the_route_template(observed: Observed) -> None:
    assert observed.span_attributes.get("http.route") == "/"
