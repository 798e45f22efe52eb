"""Prometheus metrics of the HTTP traffic, summed over the workers, on their own port.

Each process that serves requests counts them (MetricsMiddleware, added by main.create_app). With
workers, each writes its values to files of its own in PROMETHEUS_MULTIPROC_DIR, a folder server.py
makes new for each run before anything imports prometheus_client (which reads it at import); the
process that started them (Uvicorn's supervisor, Gunicorn's master) sums the files at each scrape.
Alone, a process serves its own values from memory. docs/observability.md says what each series means.
"""

import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

FOLDER = "PROMETHEUS_MULTIPROC_DIR"
FOLDER_PREFIX = "metrics-"  # server.py makes it in the temporary folder (/tmp: a tmpfs in the container)
# Other methods (HTTP allows any token) share one label value, as in OpenTelemetry.
METHODS = frozenset({"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY", "TRACE"})
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
REQUESTS = Counter("http_requests", "HTTP requests answered.", ["method", "route", "status"])
DURATION = Histogram("http_request_duration_seconds", "Time to answer.", ["method", "route"], buckets=BUCKETS)
# Summed over the live processes only: a dead one's is dropped (mark_process_dead).
IN_FLIGHT = Gauge("http_requests_in_flight", "HTTP requests being answered.", multiprocess_mode="livesum")
PARAMETER = re.compile(r"{(\w+)(?::\w+)?}")  # a path template's {name} or {name:convertor}


class MetricsMiddleware:
    """Counts and times each HTTP request by method, route template and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}  # labels() costs as much as inc()

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
        key = (scope["method"] if scope["method"] in METHODS else "_OTHER", route_template(scope), status)
        series = self.series.get(key)
        if series is None:
            series = self.series[key] = (REQUESTS.labels(*key), DURATION.labels(*key[:2]))
        series[0].inc()
        series[1].observe(time.perf_counter() - started)
        return True


def route_template(scope: Scope) -> str:
    """The matched route's path template, else "unmatched". scope["route"] lacks the prefixes of
    include_router() (fastapi/fastapi#16051): they are the path before the route's own, with their
    parameters (in path_params) put back as {name}; if that cannot be exact, the route's own template."""
    route = scope.get("route")
    own = getattr(route, "path", None)
    if not isinstance(own, str):
        return "unmatched"
    params = {name: str(value) for name, value in scope.get("path_params", {}).items()}
    tail = PARAMETER.sub(lambda match: params.get(match[1], match[0]), own)
    path = scope["path"]
    if path == tail or not path.endswith(tail):
        return own
    names = {value: name for name, value in params.items() if name not in PARAMETER.findall(own)}
    prefix = ["{" + names[segment] + "}" if segment in names else segment for segment in path[: -len(tail)].split("/")]
    if len(names) > sum(segment.startswith("{") for segment in prefix):
        return own  # a parameter inside a segment, or two with one value
    return "/".join(prefix) + own


class LiveProcessesCollector(Collector):
    """The sum of the files in `folder`, after dropping the in-flight values of the processes that
    wrote there and are gone; and the standard process metrics (CPU, memory) of each live one, by pid."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.files = MultiProcessCollector(None, path=folder)  # type: ignore[no-untyped-call]  # untyped

    def collect(self) -> Iterator[Metric]:
        pids = {int(file.stem.rsplit("_", 1)[1]) for file in Path(self.folder).glob("*_*.db")}
        for pid in [pid for pid in pids if not is_alive(pid)]:
            mark_process_dead(pid, self.folder)  # type: ignore[no-untyped-call]  # untyped
            pids.discard(pid)
        yield from self.files.collect()  # type: ignore[no-untyped-call]  # untyped
        families: dict[str, Metric] = {}
        for pid in sorted(pids):
            for family in ProcessCollector(pid=partial(int, pid), registry=None).collect():
                merged = families.setdefault(family.name, Metric(family.name, family.documentation, family.type))
                for sample in family.samples:
                    merged.add_sample(sample.name, {"pid": str(pid)}, sample.value)
        yield from families.values()


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except OSError:  # none, or another user's: a pid used again
        return False
    return True


def serve(host: str, port: int) -> Callable[[], None]:
    """Serve the metrics from a thread of this process: the sum of the folder's files when FOLDER
    is set, else this process's own. Returns the function that stops serving."""
    registry = REGISTRY
    if FOLDER in os.environ:
        registry = CollectorRegistry()
        registry.register(LiveProcessesCollector(os.environ[FOLDER]))
    try:
        server, _ = start_http_server(port, host, registry)
    except OSError as error:
        raise SystemExit(f"error: cannot serve metrics on {host}:{port}: {error.strerror}") from None
    return server.shutdown


@contextmanager
def endpoint(host: str, port: int) -> Iterator[None]:
    """serve() while the block runs, then remove_folder()."""
    stop = serve(host, port)
    try:
        yield
    finally:
        stop()
        remove_folder()


def forget(pid: int) -> None:
    if FOLDER in os.environ:
        mark_process_dead(pid)  # type: ignore[no-untyped-call]  # untyped


def remove_folder() -> None:
    """Remove this run's folder: one server.py made, never one a user set."""
    folder = Path(os.environ.pop(FOLDER, ""))
    if folder.name.startswith(FOLDER_PREFIX) and folder.parent == Path(tempfile.gettempdir()):
        shutil.rmtree(folder, ignore_errors=True)
