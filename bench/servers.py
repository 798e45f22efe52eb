"""The servers a round loads: what each one runs, and starting, watching and stopping it.

A server is a command in its own process group (a generated project's `make run`, or Uvicorn
serving one of bench/apps) or a Docker container. Readiness, ports and the /proc process
helpers are the live tests' (tests/support/live_server.py).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from bench.projects import TEMPLATE_DIR, log, tools_env, venv_python
from tests.support import docker_env
from tests.support.live_server import (
    LOOPBACK,
    ServerExited,
    children,
    cmdline,
    cpu_seconds,
    free_port,
    get,
    package_name,
    process_tree,
    rss_kib,
    wait_until,
)

APPS_DIR = TEMPLATE_DIR / "bench" / "apps"
# Every configuration's key (a server's key is this plus "-w<workers>"); --only picks among them.
CONFIGS = (
    *("baseline", "ceiling", "app-get", "uvicorn-access-log", "uvicorn-log-on", "uvicorn-log-off", "gunicorn-log-on"),
    "uvicorn-metrics",
    *("docker-baseline", "docker", "docker-log-off"),
)
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


def pinned(cmd: list[str], cpus: set[int] | None) -> list[str]:
    """The command run on these CPUs only (it and all it starts), with util-linux's taskset."""
    if not cpus:
        return cmd
    return ["taskset", "--cpu-list", ",".join(map(str, sorted(cpus))), *cmd]


def worker_pids(root: int) -> list[int]:
    """The processes serving requests: the leaves of the tree (a single-process server is its own
    worker), leaving out make and multiprocessing's resource tracker. (Bare Uvicorn at log level
    warning does not announce its workers, so the live tests' way of finding them does not apply.)"""
    leaves = [pid for pid in process_tree(root) if not children(pid)]
    return [pid for pid in leaves if "resource_tracker" not in cmdline(pid) and not cmdline(pid).startswith("make")]


class OutputDrain:
    """Reads a server's output as fast as it comes; keeps its beginning and end, counts its lines.

    A pipe drained by a thread, as under systemd or Docker: a slow disk shared with other work must
    not stall the server's log writes and show up as latency."""

    KEEP = 64 * 1024

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.head = b""
        self.tail = b""
        self.lines = 0
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        while chunk := self.stream.read1(1 << 16):  # type: ignore[attr-defined]
            self.lines += chunk.count(b"\n")
            if len(self.head) < self.KEEP:
                self.head += chunk[: self.KEEP - len(self.head)]
            self.tail = (self.tail + chunk)[-self.KEEP :]

    def save(self, path: Path) -> None:
        self.thread.join(5)
        path.write_bytes(self.head + b"\n[...]\n" + self.tail)


@dataclass
class Server:
    key: str  # stable id, e.g. "uvicorn-log-on-w1"
    label: str  # what the report calls it
    kind: str  # baseline | ceiling | reference | generated | docker-baseline | docker
    workers: int
    ready_path: str
    cmd: list[str] = field(default_factory=list)
    cwd: Path = TEMPLATE_DIR
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    container: str | None = None  # Docker: the container name; cmd is then `docker run --detach ...`
    cpus: set[int] | None = None  # pinned to these CPUs (with wrk on the others), or free
    proc: subprocess.Popen[bytes] | None = None
    output: OutputDrain | None = None
    log_path: Path | None = None
    stopped: bool = False
    failure: str = ""
    cold_starts: list[float] = field(default_factory=list)
    rounds: list[dict[str, float]] = field(default_factory=list)
    rss_kib: list[int] = field(default_factory=list)

    @property
    def config(self) -> str:
        """The key without its worker count: "uvicorn-log-on"."""
        return self.key.rsplit("-w", 1)[0]

    def root_pid(self) -> int:
        if self.container:
            inspect = docker_env.docker("inspect", "--format", "{{.State.Pid}}", self.container, check=False)
            return int(inspect.stdout.strip() or 0)
        assert self.proc is not None
        return self.proc.pid

    def _ready(self) -> bool:
        assert self.proc is not None
        if not self.container and self.proc.poll() is not None:
            raise ServerExited(f"{self.label} exited with {self.proc.returncode}")
        try:
            return get(self.port, self.ready_path, timeout=2.0)[0] == 200
        except (OSError, http.client.HTTPException):
            return False

    def start(self, logs_dir: Path) -> float:
        """Start it and wait for the first 200 on ready_path: returns seconds since exec."""
        self.log_path = logs_dir / f"{self.key}.log"
        self.stopped = False
        started = time.perf_counter()
        # Its own process group: stop() signals the whole tree (make, the server, its workers).
        self.proc = subprocess.Popen(
            self.cmd if self.container else pinned(self.cmd, self.cpus),
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.output = OutputDrain(self.proc.stdout)  # type: ignore[arg-type]
        if self.cpus and self.container:
            cpuset = ",".join(map(str, sorted(self.cpus)))
            docker_env.docker("update", "--cpuset-cpus", cpuset, self.container, check=False)
        try:
            wait_until(self._ready, READY_TIMEOUT, f"{self.label} to answer {self.ready_path} with 200", 0.005)
        except AssertionError as error:  # ServerExited is one too
            self.stop()
            tail = self.log_path.read_text(errors="replace").strip().splitlines()[-15:]
            raise SystemExit(f"error: {error}:\n" + "\n".join(tail)) from None
        elapsed = time.perf_counter() - started
        self.cold_starts.append(elapsed)
        return elapsed

    def wait_for_workers(self) -> None:
        """With several workers the first one answers before the others have started."""
        try:
            wait_until(lambda: len(worker_pids(self.root_pid())) >= self.workers, READY_TIMEOUT, "workers")
        except AssertionError:
            log(f"warning: {self.label}: fewer than {self.workers} worker processes found")

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        if self.container:
            logs = docker_env.docker("logs", "--tail", "200", self.container, check=False)
            if self.log_path:
                self.log_path.write_text(logs.stdout + logs.stderr)
            docker_env.docker("rm", "--force", self.container, check=False)
            return
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.output and self.log_path:
            self.output.save(self.log_path)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.root_pid())

    def log_lines(self) -> int:
        """Lines the server has written so far (Docker: its log lines, counted by the engine)."""
        if self.container:
            logs = docker_env.docker("logs", self.container, check=False)
            return logs.stdout.count("\n") + logs.stderr.count("\n")
        return self.output.lines if self.output else 0

    def record_rss(self) -> None:
        self.rss_kib = [rss_kib(pid) for pid in worker_pids(self.root_pid())]

    # Figures over the rounds.
    def median(self, name: str) -> float:
        return statistics.median(r[name] for r in self.rounds) if self.rounds else float("nan")

    def total(self, name: str) -> int:
        return int(sum(r[name] for r in self.rounds))


# --- what runs -------------------------------------------------------------------------------


def uvicorn_cmd(python: Path, app: str, workers: int, port: int, *, access_log: bool = False) -> list[str]:
    """One of bench/apps under plain Uvicorn, as its documentation runs it."""
    cmd = [str(python), "-m", "uvicorn", "--app-dir", str(APPS_DIR), app, "--host", LOOPBACK]
    cmd += ["--port", str(port), "--workers", str(workers)]
    # Uvicorn logs access lines at INFO: its default level, as a user switching them on would run it.
    return cmd + (["--log-level", "info"] if access_log else ["--log-level", "warning", "--no-access-log"])


def host_servers(projects: dict[str, Path], workers: int) -> list[Server]:
    """Every configuration run on the host with this many workers, the baseline (a) first."""
    uvicorn_project, gunicorn_project = projects["uvicorn"], projects["gunicorn"]
    python = venv_python(uvicorn_project)
    references = [
        ("baseline", "(a) bare FastAPI, APIRouter + include_router, Uvicorn", "baseline", "bare_fastapi_router:app"),
        ("ceiling", "(b) raw ASGI callable, Uvicorn", "ceiling", "raw_asgi:app"),
    ]
    if workers == 1:
        references += [
            ("app-get", "bare FastAPI, route on @app.get", "reference", "bare_fastapi:app"),
            ("uvicorn-access-log", "(a) + Uvicorn's own access log", "reference", "bare_fastapi_router:app"),
        ]
    servers = []
    for key, label, kind, app in references:
        port = free_port()
        cmd = uvicorn_cmd(python, app, workers, port, access_log=key == "uvicorn-access-log")
        servers.append(Server(f"{key}-w{workers}", label, kind, workers, "/", cmd, env=tools_env(), port=port))
    access_log_off = {f"{package_name(uvicorn_project).upper()}_ACCESS_LOG": "false"}
    metrics_project = projects["uvicorn-metrics"]
    metrics_port = {f"{package_name(metrics_project).upper()}_METRICS_PORT": str(free_port())}
    for key, label, project, extra in (
        ("uvicorn-log-on", "uvicorn runner, logging as shipped", uvicorn_project, {}),
        ("uvicorn-log-off", "uvicorn runner, access log off", uvicorn_project, access_log_off),
        ("gunicorn-log-on", "gunicorn runner, logging as shipped", gunicorn_project, {}),
        ("uvicorn-metrics", "uvicorn runner, metrics=yes, logging as shipped", metrics_project, metrics_port),
    ):
        port = free_port()
        env = tools_env(HOST=LOOPBACK, PORT=str(port), WEB_CONCURRENCY=str(workers), **extra)
        servers.append(
            Server(f"{key}-w{workers}", label, "generated", workers, "/readyz", ["make", "run"], project, env, port)
        )
    return servers


def selected(servers: list[Server], only: set[str]) -> list[Server]:
    """The servers whose configuration (key without "-wN") is in `only`; all when it is empty."""
    return [server for server in servers if not only or server.config in only]


def measure_cold_start(project: Path, logs_dir: Path, starts: int) -> dict[str, object]:
    """The uvicorn runner, 1 worker: `make run` exec to the first /readyz 200, several times. The
    first start after `make install` also compiles the bytecode; it is reported on its own."""
    times = []
    for attempt in range(starts + 1):
        port = free_port()
        env = tools_env(HOST=LOOPBACK, PORT=str(port), WEB_CONCURRENCY="1")
        server = Server(
            f"cold-start-{attempt}", "cold start", "generated", 1, "/readyz", ["make", "run"], project, env, port
        )
        try:
            times.append(server.start(logs_dir))
        finally:
            server.stop()
    log(f"cold start (uvicorn, 1 worker): first {times[0]:.2f} s, then median {statistics.median(times[1:]):.2f} s")
    return {"first_s": times[0], "median_s": statistics.median(times[1:]), "all_s": times[1:]}
