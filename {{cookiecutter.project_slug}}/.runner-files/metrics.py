"""Prometheus metrics of the HTTP traffic, summed over every worker and served on their own port.

Each worker counts the requests it answers (`instrument()` wraps the app). One process serves the
metrics on {{ cookiecutter.package_name | upper }}_METRICS_PORT, from a thread: the server process itself when it runs
alone, else the process that supervises the workers (Uvicorn's supervisor, Gunicorn's master), so
a scrape never queues behind requests, is never counted, and never reaches the public port. With
workers, prometheus-client's multiprocess mode adds their values up: each worker writes its own
to a file in a folder made new for each run (PROMETHEUS_MULTIPROC_DIR, set by the server before
anything loads prometheus-client), and every scrape reads all the files. docs/observability.md
says what each series means and what it costs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager

from fastapi.routing import RouteContext, iter_route_contexts
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Where the workers write their values: set by the server for its workers, one new folder per run.
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
# The route label of every request no route matched, so clients cannot grow the label set.
UNMATCHED = "unmatched"
# HTTP allows any token as a method: others share the label value "_OTHER" (as OpenTelemetry's).
METHODS = frozenset({"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY", "TRACE"})
# Seconds, from a quick answer to a slow one.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter("http_requests", "HTTP requests answered.", ["method", "route", "status"])
DURATION = Histogram(
    "http_request_duration_seconds", "Time taken to answer HTTP requests.", ["method", "route"], buckets=BUCKETS
)
# Summed over the live workers only: a dead worker's requests are no longer in flight.
IN_FLIGHT = Gauge("http_requests_in_flight", "HTTP requests being answered.", multiprocess_mode="livesum")


def new_multiprocess_dir() -> str:
    """Make this run's folder and tell the workers (and prometheus-client) about it."""
    folder = tempfile.mkdtemp(prefix="metrics-")
    os.environ[MULTIPROCESS_DIR] = folder
    return folder


def remove_multiprocess_dir() -> None:
    folder = os.environ.pop(MULTIPROCESS_DIR, None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


def forget_worker(pid: int) -> None:
    """A worker is gone: its requests in flight no longer count. (Its counters still do.)"""
    if MULTIPROCESS_DIR in os.environ:
        mark_process_dead(pid)  # type: ignore[no-untyped-call]  # prometheus-client's multiprocess module is untyped


@contextmanager
def endpoint(host: str, port: int, worker_pids: Callable[[], Collection[int]] | None = None) -> Iterator[None]:
    """Serve the metrics while the block runs (port 0: none); with worker_pids, the sum over the
    workers started inside the block, in this run's new folder."""
    if not port:
        yield
        return
    if worker_pids is not None:
        new_multiprocess_dir()
    stop = serve(host, port, worker_pids)
    try:
        yield
    finally:
        stop()
        remove_multiprocess_dir()


def serve(host: str, port: int, worker_pids: Callable[[], Collection[int]] | None = None) -> Callable[[], None]:
    """Serve the metrics on host:port from a thread of this process; returns the function that stops
    it. With worker_pids (the live workers' process ids) the values are every worker's, read from
    their files, else this process's own."""
    registry = REGISTRY
    if worker_pids is not None:
        if MULTIPROCESS_DIR not in os.environ:
            raise SystemExit(f"error: metrics of several workers need {MULTIPROCESS_DIR}: start with `python -m {{ cookiecutter.package_name }}`")
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        registry.register(ProcessesCollector(worker_pids))
    try:
        server, _ = start_http_server(port, host, registry)
    except OSError as error:
        raise SystemExit(f"error: cannot serve metrics on {host}:{port}: {error.strerror}") from None
    return server.shutdown


class ProcessesCollector(Collector):
    """The standard process metrics (CPU, memory, open files...) of this process and each worker,
    labelled by process id."""

    def __init__(self, worker_pids: Callable[[], Collection[int]]) -> None:
        self.worker_pids = worker_pids

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        for pid in (os.getpid(), *self.worker_pids()):
            for family in process_metrics(pid):
                merged = families.setdefault(family.name, Metric(family.name, family.documentation, family.type))
                merged.samples += [
                    sample._replace(labels={**sample.labels, "pid": str(pid)}) for sample in family.samples
                ]
        return iter(families.values())


def process_metrics(pid: int) -> Iterable[Metric]:
    return ProcessCollector(pid=lambda: pid, registry=None).collect()


class RouteTemplates:
    """The path template of the route a request matched (`/items/{item_id}`), as its label.

    Starlette leaves the matched route in scope["route"]. For a route of a router included with a
    prefix, FastAPI (0.137 and later) leaves the route as its own router declared it, without the
    prefix (fastapi/fastapi#16051): the full template is then looked up among FastAPI's public
    `iter_route_contexts(app.routes)`, read once. A route included twice (two prefixes) is told
    apart by matching the path. Delete the lookup once scope["route"].path_format has the prefix.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.contexts: dict[int, list[RouteContext]] | None = None

    def __call__(self, scope: Scope) -> str:
        route = scope.get("route")
        if route is None:
            return UNMATCHED
        if self.contexts is None:
            contexts: dict[int, list[RouteContext]] = {}
            for context in iter_route_contexts(getattr(self.app, "routes", [])):
                contexts.setdefault(id(context.original_route), []).append(context)
            self.contexts = contexts
        candidates = self.contexts.get(id(route), ())
        if len(candidates) > 1:
            path = scope["path"].removeprefix(scope.get("root_path", ""))
            candidates = [context for context in candidates if context.path_regex.match(path)]
        template = candidates[0].path_format if candidates else getattr(route, "path_format", None)
        return template or UNMATCHED


class MetricsMiddleware:
    """Counts each HTTP request by method, route template and status, and times it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.route_template = RouteTemplates(app)
        # The series of each (method, route, status) seen: labels() costs as much as counting.
        self.series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # what the client sees if the app fails before answering

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        IN_FLIGHT.inc()
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            IN_FLIGHT.dec()
            method = scope["method"] if scope["method"] in METHODS else "_OTHER"
            key = (method, self.route_template(scope), status)
            series = self.series.get(key)
            if series is None:
                series = self.series[key] = (REQUESTS.labels(*key), DURATION.labels(*key[:2]))
            series[0].inc()
            series[1].observe(time.perf_counter() - started)


def instrument(app: ASGIApp) -> ASGIApp:
    """The app, with each HTTP request counted."""
    return MetricsMiddleware(app)
