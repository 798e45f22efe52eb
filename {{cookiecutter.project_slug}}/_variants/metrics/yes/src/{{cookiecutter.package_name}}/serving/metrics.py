"""Prometheus metrics of the HTTP traffic, summed over the workers, on their own port.

Each worker counts its requests (MetricsMiddleware). One process serves the metrics from a thread:
the server itself when alone, else the workers' supervisor (Uvicorn's, or Gunicorn's master), which
sums the files each worker writes in PROMETHEUS_MULTIPROC_DIR, a folder made new for each run.
docs/observability.md says what each series means and what it costs.
"""

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from fastapi.routing import iter_route_contexts
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

FOLDER = "PROMETHEUS_MULTIPROC_DIR"
FOLDER_PREFIX = "metrics-"  # in the temporary folder (/tmp: a tmpfs in the container)
# Other methods (HTTP allows any token) share one label value, as in OpenTelemetry.
METHODS = frozenset({"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY", "TRACE"})
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
REQUESTS = Counter("http_requests", "HTTP requests answered.", ["method", "route", "status"])
DURATION = Histogram("http_request_duration_seconds", "Time to answer.", ["method", "route"], buckets=BUCKETS)
# Summed over the live workers only: mark_process_dead() drops a dead worker's.
IN_FLIGHT = Gauge("http_requests_in_flight", "HTTP requests being answered.", multiprocess_mode="livesum")


class MetricsMiddleware:
    """Counts and times each HTTP request by method, route template and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}  # labels() costs as much as inc()
        self.templates: dict[int, Any] | None = None  # route id: its template, or its contexts if included twice

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status, counted = 500, False  # 500: if the app fails before answering
        started = time.perf_counter()

        async def send_and_count(message: Message) -> None:
            nonlocal status, counted
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                # Before the answer's end leaves: a scrape the client makes next already counts it.
                counted = self.count(scope, status, started)
            await send(message)

        IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send_and_count)
        finally:
            if not counted:
                self.count(scope, status, started)

    def count(self, scope: Scope, status: int, started: float) -> bool:
        IN_FLIGHT.dec()
        key = (scope["method"] if scope["method"] in METHODS else "_OTHER", self.route(scope), status)
        series = self.series.get(key)
        if series is None:
            series = self.series[key] = (REQUESTS.labels(*key), DURATION.labels(*key[:2]))
        series[0].inc()
        series[1].observe(time.perf_counter() - started)
        return True

    def route(self, scope: Scope) -> str:
        """The matched route's path template; "unmatched" for every path no route matched. A route
        of a router included with a prefix is in the scope without it (fastapi/fastapi#16051): its
        full template is looked up with FastAPI's public iter_route_contexts(), by the path when the
        router is included twice. Delete the lookup once scope["route"].path_format has the prefix."""
        route = scope.get("route")
        if route is None:
            return "unmatched"
        if self.templates is None:
            found: dict[int, list[Any]] = {}
            for context in iter_route_contexts(getattr(self.app, "routes", [])):
                found.setdefault(id(context.original_route), []).append(context)
            self.templates = {key: one[0].path_format if len(one) == 1 else one for key, one in found.items()}
        template = self.templates.get(id(route), route.path_format)
        if isinstance(template, list):
            path = scope["path"].removeprefix(scope.get("root_path", ""))
            template = next((c.path_format for c in template if c.path_regex.match(path)), route.path_format)
        return str(template)


class ProcessesCollector(Collector):
    """The standard process metrics (CPU, memory, open files) of this process and each worker, by pid."""

    def __init__(self, worker_pids: Callable[[], Collection[int]]) -> None:
        self.worker_pids = worker_pids

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        for pid in (os.getpid(), *self.worker_pids()):
            for family in ProcessCollector(pid=partial(int, pid), registry=None).collect():
                merged = families.setdefault(family.name, Metric(family.name, family.documentation, family.type))
                merged.samples += [sample._replace(labels={"pid": str(pid)}) for sample in family.samples]
        yield from families.values()


def serve(host: str, port: int, worker_pids: Callable[[], Collection[int]] | None = None) -> Callable[[], None]:
    """Serve the metrics on a thread of this process: with worker_pids, the workers' sum from their
    files (in the folder FOLDER names), else this process's own. Returns the function that stops it."""
    registry = REGISTRY
    if worker_pids is not None:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # untyped; raises without FOLDER
        registry.register(ProcessesCollector(worker_pids))
    try:
        server, _ = start_http_server(port, host, registry)
    except OSError as error:
        raise SystemExit(f"error: cannot serve metrics on {host}:{port}: {error.strerror}") from None
    return server.shutdown


@contextmanager
def endpoint(host: str, port: int, worker_pids: Callable[[], Collection[int]] | None = None) -> Iterator[None]:
    """serve() while the block runs (port 0: no metrics); with worker_pids, in a new folder, set
    before the block starts the workers."""
    if port and worker_pids is not None:
        os.environ[FOLDER] = tempfile.mkdtemp(prefix=FOLDER_PREFIX)
    stop = serve(host, port, worker_pids) if port else None
    try:
        yield
    finally:
        if stop:
            stop()
        remove_folder()


def forget_worker(pid: int) -> None:
    """A worker is gone: its requests no longer count as in flight (its counts still do)."""
    if FOLDER in os.environ:
        mark_process_dead(pid)  # type: ignore[no-untyped-call]


def remove_folder() -> None:
    """Remove this run's folder: one the server made, never one a user set."""
    folder = Path(os.environ.pop(FOLDER, ""))
    if folder.name.startswith(FOLDER_PREFIX) and folder.parent == Path(tempfile.gettempdir()):
        shutil.rmtree(folder, ignore_errors=True)
