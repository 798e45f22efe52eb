#!/usr/bin/env python3
"""Benchmark the generated service against bare FastAPI, in the same run, on this machine.

    python bench/run.py            # everything, Docker included when an engine answers (~10 min)
    python bench/run.py --quick    # short rounds while developing (~3 min)
    python bench/run.py --no-docker

What it does:
1. Bakes the default project once per runner (cookiecutter CLI, timed: bake time per project),
   and `make install`s the uvicorn and gunicorn ones with the host's Python.
2. For WEB_CONCURRENCY=1 and 2 it starts, each on its own 127.0.0.1 port and side by side:
   (a) baseline: a bare FastAPI hello-world under Uvicorn, no access log, from the uvicorn project's
       virtualenv (bench/apps/bare_fastapi.py; same route, return type and body as the service's `/`);
   (b) ceiling: a raw ASGI callable under Uvicorn (bench/apps/raw_asgi.py);
   the generated projects with their own `make run`, logging as shipped (access log on), and the
   uvicorn one again with <PKG>_ACCESS_LOG=false; with 1 worker also bare FastAPI with Uvicorn's
   own access log, and with its route on an included APIRouter (the layout the service uses), for
   reference. Cold start (exec to the first /readyz 200) is timed at each start.
3. Loads them with wrk in rounds, interleaved (A/B/A/B, the order rotating each round), so every
   configuration sees the same machine; one-worker servers get a core of their own and wrk the
   others (--no-pin to let the scheduler place them); reports the median requests/s of the rounds, p50/p99
   latency, non-2xx/3xx and socket errors, RSS per worker after the load, and the ratio to (a).
4. Docker (optional, --no-docker): bakes the docker runner with python_version=3.13, builds the
   image (timed, size over the base image), and loads it through the published port next to the
   bare FastAPI app run in the same image, same port mapping.
5. Writes docs/benchmark.md (tables, machine, versions, targets) and docs/benchmark.png, and puts
   the summary table into README.md between the `<!-- benchmark:start -->` and
   `<!-- benchmark:end -->` markers when the README has them.

It is a benchmark, not a test: it asserts nothing and exits 0 whatever the figures. It only ever
connects to 127.0.0.1, every load run is time-bounded, and it stops every process and container it
started. Needs: wrk (installed with apt-get when missing and run as root), make, uv (for
`make install`), cookiecutter and matplotlib in this Python.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import random
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
BENCH_DIR = TEMPLATE_DIR / "bench"
APPS_DIR = BENCH_DIR / "apps"
WRK_SCRIPT = BENCH_DIR / "report.lua"
DOCS_DIR = TEMPLATE_DIR / "docs"
README = TEMPLATE_DIR / "README.md"
README_START, README_END = "<!-- benchmark:start -->", "<!-- benchmark:end -->"

HOST_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
DOCKER_PYTHON = "3.13"  # the seeded python:3.13-slim base image (tests/support/docker_env.py)
RUNNERS = ("uvicorn", "gunicorn", "docker")
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# The issue's targets; the report says how each one came out. Nothing here fails the run.
TARGET_LOG_ON_RATIO = 0.85
TARGET_LOG_ON_P99 = 1.25
TARGET_LOG_OFF_RATIO = 0.95
TARGET_GUNICORN_SCALING = 1.7
TARGET_COLD_START_S = 1.0
TARGET_BAKE_S = 1.0


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- processes -------------------------------------------------------------------------------


def free_port() -> int:
    """A free port below the kernel's range for outgoing connections (32768 and up on Linux), which
    wrk's and everyone's client sockets use: a port picked there can be taken before the server binds."""
    for _ in range(200):
        port = random.randrange(20_000, 32_000)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise SystemExit("error: no free port found in 20000-32000")


def tools_env(**overrides: str) -> dict[str, str]:
    """This Python's tools (uv, cookiecutter) first on PATH; no server settings leak in."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("UV_PYTHON_DOWNLOADS", "never")
    env.pop("VIRTUAL_ENV", None)
    for name in ("HOST", "PORT", "WEB_CONCURRENCY", "FORWARDED_ALLOW_IPS"):
        env.pop(name, None)
    # Python caches bytecode as it does on most machines (some CI images switch that off, and every
    # start then compiles FastAPI again); the first start after an install is reported on its own.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(overrides)
    return env


def run_checked(args: list[str], cwd: Path, what: str, timeout: float = 900, **kwargs: object) -> str:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-20:])
        raise SystemExit(f"error: {what} failed (exit {result.returncode}):\n{tail}")
    return result.stdout


def http_status(port: int, path: str) -> int | None:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        connection.request("GET", path)
        status = connection.getresponse().status
        connection.close()
        return status
    except (OSError, http.client.HTTPException):
        return None


def children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: the fields after the last ")" are fixed.
        ppid = int(text[text.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(stat.parent.name))
    return children


def process_tree(root: int) -> list[int]:
    children = children_map()
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def rss_kib(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_seconds(root: int) -> float:
    """User + system CPU time the process tree has used so far, workers that ended included (their
    time is in their parent's cutime/cstime once reaped: a recycled Gunicorn worker still counts)."""
    total = 0
    for pid in process_tree(root):
        with contextlib.suppress(OSError, ValueError):
            text = Path(f"/proc/{pid}/stat").read_text()
            fields = text[text.rindex(")") + 2 :].split()
            total += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime (stat 14-17)
    return total / CLOCK_TICKS


def worker_pids(root: int) -> list[int]:
    """The processes serving requests: the leaves of the tree (a single-process server is its own
    worker), leaving out make and multiprocessing's resource tracker."""
    children = children_map()
    tree = process_tree(root)
    return [
        pid
        for pid in tree
        if not children.get(pid) and "resource_tracker" not in cmdline(pid) and not cmdline(pid).startswith("make")
    ]


# --- servers ---------------------------------------------------------------------------------


class OutputDrain:
    """Reads a server's output as fast as it comes; keeps its beginning and end, counts its lines."""

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
    container: str | None = None  # Docker: the container name; cmd is then `docker run -d ...`
    cpus: set[int] | None = None  # pinned to these CPUs (with wrk on the others), or free
    proc: subprocess.Popen[bytes] | None = None
    output: OutputDrain | None = None
    log_path: Path | None = None
    stopped: bool = False
    failure: str = ""
    cold_starts: list[float] = field(default_factory=list)
    rounds: list[dict[str, float]] = field(default_factory=list)
    rss_kib: list[int] = field(default_factory=list)

    def root_pid(self) -> int:
        if self.container:
            out = subprocess.run(
                [DOCKER, "inspect", "--format", "{{.State.Pid}}", self.container],
                capture_output=True,
                text=True,
                check=False,
            )
            return int(out.stdout.strip() or 0)
        assert self.proc is not None
        return self.proc.pid

    def start(self, logs_dir: Path) -> float:
        """Start it and wait for the first 200 on ready_path: returns seconds since exec."""
        self.log_path = logs_dir / f"{self.key}.log"
        self.stopped = False
        started = time.perf_counter()
        # Own process group: stop() signals the whole tree (make, the server, its workers). Output
        # goes to a pipe, as under systemd or Docker, drained by a thread: a slow disk shared with
        # other work must not stall the server's log writes and show up as latency.
        self.proc = subprocess.Popen(
            pinned(self.cmd, self.cpus) if not self.container else self.cmd,
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.output = OutputDrain(self.proc.stdout)  # type: ignore[arg-type]
        if self.cpus and self.container:
            cpuset = ",".join(map(str, sorted(self.cpus)))
            subprocess.run(
                [DOCKER, "update", "--cpuset-cpus", cpuset, self.container], capture_output=True, check=False
            )
        deadline = started + READY_TIMEOUT
        while time.perf_counter() < deadline:
            if http_status(self.port, self.ready_path) == 200:
                elapsed = time.perf_counter() - started
                self.cold_starts.append(elapsed)
                return elapsed
            if not self.container and self.proc.poll() is not None:
                break
            time.sleep(0.005)
        self.stop()
        tail = self.log_path.read_text(errors="replace").strip().splitlines()[-15:]
        raise SystemExit(f"error: {self.label} did not answer {self.ready_path} with 200:\n" + "\n".join(tail))

    def wait_for_workers(self, timeout: float = READY_TIMEOUT) -> None:
        """With several workers the first one answers before the others have started."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(worker_pids(self.root_pid())) >= self.workers:
                return
            time.sleep(0.05)
        log(f"warning: {self.label}: fewer than {self.workers} worker processes found")

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        if self.container:
            logs = subprocess.run([DOCKER, "logs", "--tail", "200", self.container], capture_output=True, check=False)
            if self.log_path:
                self.log_path.write_bytes(logs.stdout + logs.stderr)
            subprocess.run([DOCKER, "rm", "--force", self.container], capture_output=True, check=False)
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

    def log_lines(self) -> int:
        """Lines the server has written so far (Docker: its log lines, counted by the engine)."""
        if self.container:
            logs = subprocess.run([DOCKER, "logs", self.container], capture_output=True, check=False)
            return logs.stdout.count(b"\n") + logs.stderr.count(b"\n")
        return self.output.lines if self.output else 0

    def record_rss(self) -> None:
        self.rss_kib = [rss_kib(pid) for pid in worker_pids(self.root_pid())]

    # Figures over the rounds.
    def median(self, name: str) -> float:
        return statistics.median(r[name] for r in self.rounds) if self.rounds else float("nan")

    def total(self, name: str) -> int:
        return int(sum(r[name] for r in self.rounds))


# --- wrk -------------------------------------------------------------------------------------


def ensure_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk:
        return wrk
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SystemExit("error: wrk is missing: install it (Debian/Ubuntu: apt-get install wrk)")
    log("wrk is missing: installing it with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "wrk"]
    if subprocess.run(install, env=env, capture_output=True, check=False).returncode != 0:
        run_checked(["apt-get", "update", "-qq"], TEMPLATE_DIR, "apt-get update", env=env)
        run_checked(install, TEMPLATE_DIR, "apt-get install wrk", env=env)
    wrk = shutil.which("wrk")
    if not wrk:
        raise SystemExit("error: wrk still not found after apt-get install wrk")
    return wrk


def pinned(cmd: list[str], cpus: set[int] | None) -> list[str]:
    """The command run on these CPUs only (it and all it starts), with util-linux's taskset."""
    if not cpus:
        return cmd
    return ["taskset", "--cpu-list", ",".join(map(str, sorted(cpus))), *cmd]


def cpu_split(servers: list[Server], args: argparse.Namespace) -> tuple[set[int], set[int]] | None:
    """(server CPUs, wrk CPUs) when one-worker servers and wrk get cores of their own: on a small
    machine the scheduler otherwise moves them onto one core now and then, and a round's figure
    moves with it. Servers with several workers share all the cores with wrk."""
    cpus = sorted(os.sched_getaffinity(0))
    if not args.pin or len(cpus) < 2 or any(server.workers != 1 for server in servers):
        return None
    return {cpus[-1]}, set(cpus[:-1])


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class LoadFailed(Exception):
    """wrk could not load the server (it died, or stopped answering)."""


def load(
    wrk: str, port: int, seconds: float, args: argparse.Namespace, cpus: set[int] | None = None
) -> dict[str, float]:
    cmd = [
        wrk,
        f"--threads={args.threads}",
        f"--connections={args.connections}",
        f"--duration={max(1, round(seconds))}s",
        "--timeout=5s",
        f"--script={WRK_SCRIPT}",
        f"http://127.0.0.1:{port}/",
    ]
    wrk_cpu_before = children_cpu_seconds()
    result = subprocess.run(pinned(cmd, cpus), capture_output=True, text=True, timeout=seconds + 60, check=False)
    # wrk is the only child reaped meanwhile (taskset execs it; servers are reaped when stopped).
    wrk_cpu = children_cpu_seconds() - wrk_cpu_before
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("BENCH-JSON ")), None)
    if result.returncode != 0 or line is None:
        raise LoadFailed((result.stdout + result.stderr).strip().splitlines()[-1:] or ["no output"])
    raw = json.loads(line.removeprefix("BENCH-JSON "))
    return {
        "rps": raw["requests"] / (raw["duration_us"] / 1e6),
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "non_2xx": raw["non_2xx_3xx"],
        "socket_errors": raw["connect"] + raw["read"] + raw["write"] + raw["timeout"],
        "requests": raw["requests"],
        "wrk_cpu_us": wrk_cpu / max(raw["requests"], 1) * 1e6,
    }


def measure_group(servers: list[Server], wrk: str, args: argparse.Namespace, logs_dir: Path) -> None:
    """Start every server of the group, warm each up, then load them in interleaved rounds."""
    split = cpu_split(servers, args)
    server_cpus, wrk_cpus = split if split else (None, None)
    if split:
        log(f"  servers on CPU {sorted(server_cpus or ())}, wrk on CPU {sorted(wrk_cpus or ())}")
    try:
        for server in servers:
            server.cpus = server_cpus
            elapsed = server.start(logs_dir)
            server.wait_for_workers()
            log(f"  started {server.label} in {elapsed:.2f} s")
        for server in servers:
            with contextlib.suppress(LoadFailed):
                load(wrk, server.port, args.warmup, args, wrk_cpus)
        for round_no in range(args.rounds):
            shift = round_no % len(servers)  # rotate the order: no configuration always goes first
            for server in servers[shift:] + servers[:shift]:
                if server.failure:
                    continue
                # CPU time per request: it moves less than requests/s when other work shares the cores.
                root = server.root_pid()
                cpu_before, lines_before, own_before = cpu_seconds(root), server.log_lines(), own_cpu_seconds()
                try:
                    result = load(wrk, server.port, args.duration, args, wrk_cpus)
                except LoadFailed as error:
                    # Reported, not fatal: the other configurations' figures still stand.
                    server.failure = f"stopped answering in round {round_no + 1} ({error}); see {server.log_path}"
                    log(f"  {server.label}: {server.failure}")
                    continue
                result["cpu_us"] = (cpu_seconds(root) - cpu_before) / max(result["requests"], 1) * 1e6
                # This process drains the servers' output meanwhile, on the same cores.
                result["bench_cpu_us"] = (own_cpu_seconds() - own_before) / max(result["requests"], 1) * 1e6
                # The proof that the access log was on (about 1 line a request) or off (about 0).
                result["log_lines"] = (server.log_lines() - lines_before) / max(result["requests"], 1)
                server.rounds.append(result)
                log(
                    f"  round {round_no + 1}/{args.rounds} {server.label}: {result['rps']:.0f} req/s, "
                    f"p99 {result['p99_ms']:.1f} ms, {result['cpu_us']:.0f} µs CPU/request"
                )
        for server in servers:
            server.record_rss()
    finally:
        for server in servers:
            server.stop()


# --- baking and installing -------------------------------------------------------------------


def bake(runner: str, python_version: str, out_dir: Path, project_name: str | None = None) -> tuple[Path, float]:
    """Bake the default project with the cookiecutter CLI, timed from exec to exit."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "cookiecutter",
        "--no-input",
        "--output-dir",
        str(out_dir),
        str(TEMPLATE_DIR),
        f"python_version={python_version}",
        f"runner={runner}",
    ]
    if project_name:
        cmd.append(f"project_name={project_name}")
    started = time.perf_counter()
    run_checked(cmd, out_dir, f"baking the {runner} project", env=tools_env())
    elapsed = time.perf_counter() - started
    (project,) = (path for path in out_dir.iterdir() if path.is_dir())
    return project, elapsed


def bake_all(work: Path, args: argparse.Namespace) -> tuple[dict[str, Path], dict[str, list[float]]]:
    projects: dict[str, Path] = {}
    times: dict[str, list[float]] = {runner: [] for runner in RUNNERS}
    for attempt in range(args.bakes):
        for runner in RUNNERS:
            python_version = DOCKER_PYTHON if runner == "docker" else HOST_PYTHON
            project, elapsed = bake(runner, python_version, work / f"bake-{attempt}" / runner, args.project_name)
            times[runner].append(elapsed)
            projects[runner] = project
    for runner in RUNNERS:
        log(f"bake {runner}: median {statistics.median(times[runner]):.2f} s of {args.bakes}")
    return projects, times


def package_name(project: Path) -> str:
    (package,) = (path.parent.name for path in (project / "src").glob("*/__init__.py"))
    return package


def venv_versions(python: Path) -> dict[str, str]:
    names = ["fastapi", "starlette", "pydantic", "pydantic-core", "uvicorn", "uvloop", "httptools"]
    names += ["gunicorn", "uvicorn-worker"]
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        f"for name in {names!r}:\n"
        "    try: out[name] = m.version(name)\n"
        "    except m.PackageNotFoundError: pass\n"
        "out['python'] = sys.version.split()[0]\n"
        "print(json.dumps(out))\n"
    )
    return json.loads(run_checked([str(python), "-c", code], TEMPLATE_DIR, "reading versions"))


# --- configurations --------------------------------------------------------------------------


def uvicorn_cmd(python: Path, app: str, workers: int, port: int, *, access_log: bool = False) -> list[str]:
    cmd = [str(python), "-m", "uvicorn", "--app-dir", str(APPS_DIR), app, "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--workers", str(workers), "--log-level", "warning"]
    if access_log:
        # Uvicorn logs access lines at INFO: its default level, as a user switching it on would run it.
        cmd[cmd.index("warning")] = "info"
    else:
        cmd.append("--no-access-log")
    return cmd


def host_servers(projects: dict[str, Path], workers: int) -> list[Server]:
    uvicorn_project, gunicorn_project = projects["uvicorn"], projects["gunicorn"]
    python = uvicorn_project / ".venv" / "bin" / "python"
    servers = []
    references = [
        ("baseline", "(a) bare FastAPI, Uvicorn, no access log", "baseline", "bare_fastapi:app", False),
        ("ceiling", "(b) raw ASGI callable, Uvicorn", "ceiling", "raw_asgi:app", False),
    ]
    if workers == 1:
        references += [
            ("uvicorn-access-log", "bare FastAPI + Uvicorn's own access log", "reference", "bare_fastapi:app", True),
            (
                "included-router",
                "bare FastAPI, route on an included APIRouter",
                "reference",
                "bare_fastapi_router:app",
                False,
            ),
        ]
    for key, label, kind, app, access_log in references:
        port = free_port()
        servers.append(
            Server(
                f"{key}-w{workers}",
                label,
                kind,
                workers,
                "/",
                uvicorn_cmd(python, app, workers, port, access_log=access_log),
                env=tools_env(),
                port=port,
            )
        )
    prefix = package_name(uvicorn_project).upper()
    for key, label, project, extra in (
        ("uvicorn-log-on", "uvicorn runner, logging as shipped", uvicorn_project, {}),
        ("uvicorn-log-off", "uvicorn runner, access log off", uvicorn_project, {f"{prefix}_ACCESS_LOG": "false"}),
        ("gunicorn-log-on", "gunicorn runner, logging as shipped", gunicorn_project, {}),
    ):
        port = free_port()
        env = tools_env(HOST="127.0.0.1", PORT=str(port), WEB_CONCURRENCY=str(workers), **extra)
        servers.append(
            Server(
                f"{key}-w{workers}",
                label,
                "generated",
                workers,
                "/readyz",
                ["make", "run"],
                cwd=project,
                env=env,
                port=port,
            )
        )
    return servers


def measure_cold_start(projects: dict[str, Path], logs_dir: Path, starts: int) -> dict[str, object]:
    """The uvicorn runner, 1 worker: `make run` exec to the first /readyz 200, several times.

    The first start after `make install` also compiles the bytecode; it is reported on its own."""
    times = []
    for attempt in range(starts + 1):
        port = free_port()
        server = Server(
            f"cold-start-{attempt}",
            "cold start",
            "generated",
            1,
            "/readyz",
            ["make", "run"],
            cwd=projects["uvicorn"],
            env=tools_env(HOST="127.0.0.1", PORT=str(port), WEB_CONCURRENCY="1"),
            port=port,
        )
        try:
            times.append(server.start(logs_dir))
        finally:
            server.stop()
    log(f"cold start (uvicorn, 1 worker): first {times[0]:.2f} s, then median {statistics.median(times[1:]):.2f} s")
    return {"first_s": times[0], "median_s": statistics.median(times[1:]), "all_s": times[1:]}


# --- Docker ----------------------------------------------------------------------------------

DOCKER = "/usr/bin/docker"


def lock_in_image(project: Path, python_image: str, uv_image: str, env: dict[str, str]) -> None:
    """`uv lock` with the image's Python (this host may not have the project's version), using the
    uv binary from the uv image the Dockerfile copies from."""
    uv_dir = project.parent / "uv-binary"
    uv_dir.mkdir(exist_ok=True)
    container = run_checked([DOCKER, "create", uv_image, "/uv"], project, "docker create", env=env).strip()
    try:
        run_checked([DOCKER, "cp", f"{container}:/uv", str(uv_dir / "uv")], project, "docker cp", env=env)
    finally:
        subprocess.run([DOCKER, "rm", container], capture_output=True, check=False)
    cmd = [DOCKER, "run", "--rm", "--volume", f"{uv_dir / 'uv'}:/usr/local/bin/uv:ro", "--volume", f"{project}:/src"]
    cmd += ["--workdir", "/src", "--env", "UV_PYTHON_DOWNLOADS=never", python_image, "uv", "lock", "--quiet"]
    run_checked(cmd, project, f"uv lock in {python_image}", env=env)


def docker_part(project: Path, wrk: str, args: argparse.Namespace, logs_dir: Path) -> dict[str, object] | None:
    sys.path.insert(0, str(TEMPLATE_DIR))
    from tests.support import docker_env  # the engine and the offline-seeded base images

    reason = docker_env.engine_unavailable_reason()
    if reason:
        log(f"Docker part skipped: {reason}")
        return {"skipped": reason}
    dockerfile = (project / "Dockerfile").read_text()
    base = re.search(r"^FROM (\S+)", dockerfile, re.MULTILINE)[1]  # type: ignore[index]
    uv_version = re.search(r"astral-sh/uv:([\w.]+)", dockerfile)[1]  # type: ignore[index]
    try:
        docker_env.seed_python_image(base)
        docker_env.seed_uv_image(uv_version)
    except RuntimeError as error:
        log(f"Docker part skipped: {error}")
        return {"skipped": str(error)}
    env = docker_env.docker_env()
    if not (project / "uv.lock").exists():
        lock_in_image(project, base, f"ghcr.io/astral-sh/uv:{uv_version}", env)
    tag = f"bench-{project.name}:latest"
    # Layers rebuilt from scratch; uv's download cache (a BuildKit cache mount) stays warm, as on
    # a build machine that has built before.
    started = time.perf_counter()
    run_checked([DOCKER, "build", "--no-cache", "--tag", tag, "."], project, "docker build", env=env)
    build_s = time.perf_counter() - started
    # A source change: only the project's own layers are rebuilt.
    main_py = next((project / "src").glob("*/main.py"))
    main_py.write_text(main_py.read_text() + f"\n# bench: a source change at {time.time()}\n")  # never cached
    started = time.perf_counter()
    run_checked([DOCKER, "build", "--tag", tag, "."], project, "docker rebuild", env=env)
    rebuild_s = time.perf_counter() - started

    def size(image: str) -> int:
        return int(run_checked([DOCKER, "image", "inspect", "--format", "{{.Size}}", image], project, "inspect"))

    image_size, base_size = size(tag), size(base)
    log(
        f"docker build {build_s:.1f} s (rebuild after a source change {rebuild_s:.1f} s), "
        f"image {image_size / 1e6:.0f} MB, {(image_size - base_size) / 1e6:.0f} MB over {base}"
    )
    container_port = int(re.search(r"^EXPOSE (\d+)", dockerfile, re.MULTILINE)[1])  # type: ignore[index]
    log_off = ["--env", f"{package_name(project).upper()}_ACCESS_LOG=false"]
    servers = []
    for workers in args.docker_workers:
        for key, label, kind, bare, env_args in (
            ("docker-baseline", "(a) bare FastAPI in the image, no access log", "docker-baseline", True, []),
            ("docker", "docker runner, logging as shipped", "docker", False, []),
            (
                "docker-log-off",
                "docker runner, access log off",
                "docker",
                False,
                log_off,
            ),
        ):
            port = free_port()
            name = f"bench-{key}-w{workers}-{os.getpid()}"
            cmd = [DOCKER, "run", "--detach", "--name", name, "--publish", f"127.0.0.1:{port}:{container_port}"]
            cmd += ["--env", f"WEB_CONCURRENCY={workers}", *env_args]
            if bare:
                cmd += ["--volume", f"{APPS_DIR}:/bench:ro", tag, "python", "-m", "uvicorn", "--app-dir", "/bench"]
                cmd += ["bare_fastapi:app", "--host", "0.0.0.0", "--port", str(container_port)]
                cmd += ["--workers", str(workers), "--no-access-log", "--log-level", "warning"]
            else:
                cmd.append(tag)
            servers.append(
                Server(
                    f"{key}-w{workers}",
                    label,
                    kind,
                    workers,
                    "/" if bare else "/readyz",
                    cmd,
                    env=env,
                    port=port,
                    container=name,
                )
            )
    try:
        measure_group(servers, wrk, args, logs_dir)
    finally:
        for server in servers:
            server.stop()
        subprocess.run([DOCKER, "image", "rm", tag], capture_output=True, check=False)
    return {
        "base": base,
        "build_s": build_s,
        "rebuild_s": rebuild_s,
        "image_mb": image_size / 1e6,
        "over_base_mb": (image_size - base_size) / 1e6,
        "servers": servers,
    }


# --- report ----------------------------------------------------------------------------------


def machine_facts(wrk: str) -> dict[str, str]:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gib = 0.0
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem_gib = int(Path("/proc/meminfo").read_text().split()[1]) / 2**20
    wrk_version = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)
    return {
        "cpu": f"{cpu}, {os.cpu_count()} cores, {mem_gib:.0f} GiB RAM",
        "os": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "wrk": (wrk_version.stdout + wrk_version.stderr).split("Copyright")[0].strip(),
    }


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def fmt_ratio(value: float) -> str:
    return f"{value:.2f}x" if value == value else "n/a"  # NaN check


def server_rows(servers: list[Server], baseline: Server | None) -> list[str]:
    rows = []
    for server in servers:
        rps = server.median("rps")
        ratio = rps / baseline.median("rps") if baseline else float("nan")
        rss = f"{statistics.mean(server.rss_kib) / 1024:.0f}" if server.rss_kib else "n/a"
        cold = f"{statistics.median(server.cold_starts):.2f}" if server.cold_starts else "n/a"
        label = f"{server.label} (**failed**: see below)" if server.failure else server.label
        rows.append(
            f"| {label} | {server.workers} | {rps:,.0f} | {fmt_ratio(ratio)} | {server.median('p50_ms'):.1f} "
            f"| {server.median('p99_ms'):.1f} | {server.total('non_2xx')} | {server.total('socket_errors')} "
            f"| {server.median('cpu_us'):.0f} | {server.median('wrk_cpu_us'):.0f} | {server.median('log_lines'):.2f} "
            f"| {rss} | {cold} |"
        )
    return rows


TABLE_HEAD = [
    "| configuration | workers | requests/s | x (a) | p50 ms | p99 ms | non-2xx | socket errors "
    "| CPU µs/request | wrk CPU µs/request | log lines/request | RSS/worker MiB | cold start s |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
]


def all_servers(results: dict[str, object]) -> list[Server]:
    servers: list[Server] = list(results["servers"])  # type: ignore[call-overload]
    docker = results.get("docker")
    if isinstance(docker, dict) and "servers" in docker:
        servers += docker["servers"]
    return servers


def find(servers: list[Server], key: str) -> Server | None:
    return next((server for server in servers if server.key == key), None)


def scaling_ceiling(one: Server, two: Server) -> float:
    """The most 2 workers could give over 1 here: with 2 workers wrk and this script share the cores
    with them, so every core-second serves a request's worth of server, wrk and drain CPU time."""
    per_request_us = two.median("cpu_us") + two.median("wrk_cpu_us") + two.median("bench_cpu_us")
    return len(os.sched_getaffinity(0)) * 1e6 / per_request_us / one.median("rps")


def targets(results: dict[str, object]) -> list[tuple[str, str, str, bool | None]]:
    servers: list[Server] = results["servers"]  # type: ignore[assignment]
    rows: list[tuple[str, str, str, bool | None]] = []
    base, on, off = (
        find(servers, "baseline-w1"),
        find(servers, "uvicorn-log-on-w1"),
        find(servers, "uvicorn-log-off-w1"),
    )
    if base and on:
        ratio = on.median("rps") / base.median("rps")
        p99 = on.median("p99_ms") / base.median("p99_ms")
        rows.append(
            (
                "uvicorn runner, 1 worker, logging as shipped: requests/s",
                f"≥ {TARGET_LOG_ON_RATIO} x (a)",
                f"{ratio:.2f} x",
                ratio >= TARGET_LOG_ON_RATIO,
            )
        )
        rows.append(
            (
                "uvicorn runner, 1 worker, logging as shipped: p99",
                f"≤ {TARGET_LOG_ON_P99} x (a)",
                f"{p99:.2f} x",
                p99 <= TARGET_LOG_ON_P99,
            )
        )
    if base and off:
        ratio = off.median("rps") / base.median("rps")
        rows.append(
            (
                "same, access log off by setting: requests/s",
                f"≥ {TARGET_LOG_OFF_RATIO} x (a)",
                f"{ratio:.2f} x",
                ratio >= TARGET_LOG_OFF_RATIO,
            )
        )
    g1, g2 = find(servers, "gunicorn-log-on-w1"), find(servers, "gunicorn-log-on-w2")
    if g1 and g2:
        scaling = g2.median("rps") / g1.median("rps")
        rows.append(
            (
                "gunicorn runner, 2 workers vs 1",
                f"≥ {TARGET_GUNICORN_SCALING} x",
                f"{scaling:.2f} x (ceiling {scaling_ceiling(g1, g2):.2f} x)",
                scaling >= TARGET_GUNICORN_SCALING,
            )
        )
    cold = results.get("cold_start")
    if isinstance(cold, dict):
        rows.append(
            (
                "cold start to ready, uvicorn, 1 worker (median)",
                f"≤ {TARGET_COLD_START_S} s",
                f"{cold['median_s']:.2f} s",
                cold["median_s"] <= TARGET_COLD_START_S,
            )
        )
    bakes: dict[str, list[float]] = results["bake_s"]  # type: ignore[assignment]
    for runner, times in bakes.items():
        median = statistics.median(times)
        rows.append(
            (
                f"bake time, {runner} project (median)",
                f"≤ {TARGET_BAKE_S} s",
                f"{median:.2f} s",
                median <= TARGET_BAKE_S,
            )
        )
    return rows


def summary_table(results: dict[str, object]) -> list[str]:
    lines = ["| target | wanted | measured | met |", "| --- | --- | --- | --- |"]
    for name, wanted, measured, met in targets(results):
        lines.append(f"| {name} | {wanted} | {measured} | {'yes' if met else 'no'} |")
    return lines


def write_markdown(results: dict[str, object], args: argparse.Namespace) -> str:
    servers: list[Server] = results["servers"]  # type: ignore[assignment]
    facts: dict[str, str] = results["machine"]  # type: ignore[assignment]
    versions: dict[str, str] = results["versions"]  # type: ignore[assignment]
    lines = [
        "# Benchmark: the generated service against bare FastAPI",
        "",
        f"Written by `bench/run.py` on {results['date']} ({results['minutes']:.1f} min). It is a benchmark, not a",
        "test: figures move with the machine and what else runs on it. Rerun it with `make bench`.",
        "",
        f"- Machine: {facts['cpu']}; {facts['os']}. Load average (1, 5, 15 min) before: "
        f"{results['load_before']}, after: {results['load_after']}.",
        f"- Load: {facts['wrk']}, on the same machine, `--threads {args.threads} --connections {args.connections}`, "
        f"GET / over keep-alive on 127.0.0.1; {args.rounds} rounds of {args.duration:.0f} s per configuration after "
        f"a {args.warmup:.0f} s warm-up, interleaved (order rotating); figures are the median of the rounds, "
        "errors their sum. "
        + (
            "With 1 worker, the servers run on the last CPU and wrk on the others (taskset; Docker: "
            "--cpuset-cpus), so the scheduler never puts them on one core; with 2 they share every core."
            if args.pin
            else "Servers and wrk run on any core (--no-pin)."
        ),
        "- Versions: " + ", ".join(f"{name} {version}" for name, version in versions.items()) + ".",
        "- (a) the baseline: bare FastAPI hello-world under Uvicorn, no access log, from the same virtualenv; same "
        "route, return type and body as the service's `/`. (b) the ceiling: a raw ASGI callable under Uvicorn.",
        "- Projects baked with the default answers"
        + (f" but project_name={args.project_name!r}" if args.project_name else "")
        + f" (python_version {HOST_PYTHON} on the host, {DOCKER_PYTHON} in Docker).",
        "- Generated projects run with their own `make run` (HOST, PORT, WEB_CONCURRENCY set), logging as shipped "
        "(text lines to stderr, access log on) into a pipe the benchmark drains, as journald or Docker would; "
        "'access log off' sets `<PKG>_ACCESS_LOG=false`. Python writes bytecode caches as usual "
        "(PYTHONDONTWRITEBYTECODE is cleared).",
        "",
        "## Targets",
        "",
        *summary_table(results),
        "",
        "The gunicorn ceiling: with 2 workers, wrk and this script's drain of the servers' output share the "
        "cores with them, so at best each core-second serves 1 / (server + wrk + drain CPU time per request) "
        "requests; that over the 1-worker figure (which has a core of its own) is the most 2 workers can give "
        "on this machine.",
        "",
        "## Host (Python " + versions.get("python", HOST_PYTHON) + ")",
        "",
    ]
    for workers in sorted({server.workers for server in servers}):
        group = [server for server in servers if server.workers == workers]
        lines += TABLE_HEAD + server_rows(group, find(group, f"baseline-w{workers}")) + [""]
    lines += [
        "CPU µs/request: user + system CPU time of the server's processes during a round over the requests it "
        "served; it moves less than requests/s when other work shares the cores. wrk CPU µs/request: the same "
        "for wrk. Log lines/request: lines the "
        "server wrote during a round over its requests (about 1 with the access log on, 0 off). RSS per worker is "
        "read after the load. Cold start: exec (`make run`, or the server command) to the first 200 from /readyz "
        "(/ for the apps without one), with the other servers of the table idle.",
        "",
        "With 2 workers, Uvicorn's supervisor (the baseline, the ceiling and the uvicorn runner) gives them one "
        "shared listening socket: a round in which most of wrk's connections land on one worker runs at about "
        "one worker's speed. The gunicorn runner gives each worker a socket of its own (`reuse_port`).",
        "",
    ]
    cold = results.get("cold_start")
    if isinstance(cold, dict):
        lines += [
            f"Cold start of the uvicorn runner, 1 worker, `make run` to /readyz 200: median "
            f"{cold['median_s']:.2f} s of {len(cold['all_s'])} starts "
            f"({', '.join(f'{value:.2f}' for value in cold['all_s'])}); the first start after `make install` "
            f"(which also compiles the bytecode): {cold['first_s']:.2f} s.",
            "",
        ]
    bakes: dict[str, list[float]] = results["bake_s"]  # type: ignore[assignment]
    lines += [
        "Bake time (`python -m cookiecutter --no-input`, exec to exit; median of "
        f"{args.bakes}): "
        + ", ".join(f"{runner} {statistics.median(times):.2f} s" for runner, times in bakes.items())
        + ".",
        "",
    ]
    docker = results.get("docker")
    if isinstance(docker, dict) and "servers" in docker:
        group = docker["servers"]
        lines += [
            f"## Docker (image from {docker['base']}, through the published port)",
            "",
            f"Image build {docker['build_s']:.1f} s (`--no-cache`; uv's download cache warm), rebuild after a source "
            f"change {docker['rebuild_s']:.1f} s; image {docker['image_mb']:.0f} MB, {docker['over_base_mb']:.0f} MB "
            f"over the base image. (a) here is the bare app run in the same image through the same port mapping.",
            "",
            *TABLE_HEAD,
        ]
        for workers in sorted({server.workers for server in group}):
            subgroup = [server for server in group if server.workers == workers]
            lines += server_rows(subgroup, find(subgroup, f"docker-baseline-w{workers}"))
        lines.append("")
    elif isinstance(docker, dict):
        lines += ["## Docker", "", f"Skipped: {docker['skipped']}", ""]
    failed = [server for server in all_servers(results) if server.failure]
    if failed:
        lines += ["## Failures", ""] + [
            f"- {server.label}, {server.workers} worker(s): {server.failure}" for server in failed
        ]
        lines.append("")
    lines += ["![requests per second and p99 latency per configuration](benchmark.png)", ""]
    return "\n".join(lines)


def write_chart(results: dict[str, object], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    servers = all_servers(results)
    colours = {
        "baseline": "#7f7f7f",
        "ceiling": "#c7c7c7",
        "reference": "#d62728",
        "generated": "#1f77b4",
        "docker-baseline": "#9e9e9e",
        "docker": "#2ca02c",
    }
    labels = [
        f"{s.label}{' [docker]' if s.container and 'docker' not in s.label else ''} ({s.workers}w)" for s in servers
    ]
    rps = [s.median("rps") for s in servers]
    p99 = [s.median("p99_ms") for s in servers]
    colour = [colours[s.kind] for s in servers]
    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 0.45 * len(servers) + 1.5), sharey=True)
    positions = range(len(servers))
    left.barh(positions, rps, color=colour)
    left.set_xlabel("requests/s (median of rounds)")
    left.set_yticks(list(positions), labels, fontsize=8)
    left.invert_yaxis()
    for position, value in zip(positions, rps, strict=True):
        left.text(value, position, f" {value:,.0f}", va="center", fontsize=7)
    right.barh(positions, p99, color=colour)
    right.set_xlabel("p99 latency, ms")
    for position, value in zip(positions, p99, strict=True):
        right.text(value, position, f" {value:.1f}", va="center", fontsize=7)
    figure.suptitle(
        f"Generated service vs bare FastAPI ({results['date']}, load average {results['load_before']})", fontsize=10
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def update_readme(summary: str) -> bool:
    if not README.exists():
        return False
    text = README.read_text(encoding="utf-8")
    if README_START not in text or README_END not in text:
        return False
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    README.write_text(f"{head}{README_START}\n{summary}\n{README_END}{tail}", encoding="utf-8")
    return True


# --- main ------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved load rounds per configuration (5)")
    parser.add_argument("--duration", type=float, default=6, help="seconds of load per round (6)")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of warm-up load per server (2)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (64)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (1: the other core serves)")
    parser.add_argument(
        "--no-pin",
        dest="pin",
        action="store_false",
        help="let one-worker servers and wrk run on any core (default: a core each)",
    )
    parser.add_argument("--workers", default="1,2", help="WEB_CONCURRENCY values for the host runs (1,2)")
    parser.add_argument("--docker-workers", default="1", help="WEB_CONCURRENCY values in Docker (1)")
    parser.add_argument("--no-docker", dest="docker", action="store_false", help="skip the Docker part")
    parser.add_argument("--bakes", type=int, default=3, help="bakes per runner, for the bake time (3)")
    parser.add_argument("--cold-starts", type=int, default=5, help="extra cold starts of the uvicorn runner (5)")
    parser.add_argument(
        "--project-name",
        help="bake with this project_name instead of the default (a machine shared with other runs of the template)",
    )
    parser.add_argument("--quick", action="store_true", help="2 rounds of 3 s, 1 s warm-up: for development")
    parser.add_argument("--work-dir", type=Path, help="where projects are baked (default: a temporary folder)")
    parser.add_argument("--out", type=Path, default=DOCS_DIR, help="where benchmark.md/.png go (docs/)")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.duration, args.warmup, args.bakes, args.cold_starts = 2, 3, 1, 2, 3
    args.workers = [int(value) for value in args.workers.split(",")]
    args.docker_workers = [int(value) for value in args.docker_workers.split(",")]
    return args


@contextlib.contextmanager
def work_dir(path: Path | None) -> Iterator[Path]:
    if path:
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="fastapi-template-bench-") as scratch:
        yield Path(scratch)


def main() -> int:
    args = parse_args()
    began = time.monotonic()
    wrk = ensure_wrk()
    results: dict[str, object] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_before": load_average(),
        "machine": machine_facts(wrk),
    }
    log(f"load average {results['load_before']}; {results['machine']['cpu']}")  # type: ignore[index]
    with work_dir(args.work_dir) as work:
        logs_dir = work / "logs"
        logs_dir.mkdir(exist_ok=True)
        projects, results["bake_s"] = bake_all(work, args)
        for runner in ("uvicorn", "gunicorn"):
            started = time.perf_counter()
            run_checked(["make", "install"], projects[runner], f"make install ({runner})", env=tools_env())
            log(f"make install {runner}: {time.perf_counter() - started:.1f} s")
        results["versions"] = venv_versions(projects["uvicorn"] / ".venv" / "bin" / "python") | {
            key: value
            for key, value in venv_versions(projects["gunicorn"] / ".venv" / "bin" / "python").items()
            if key in ("gunicorn", "uvicorn-worker")
        }
        results["cold_start"] = measure_cold_start(projects, logs_dir, args.cold_starts)
        servers: list[Server] = []
        for workers in args.workers:
            log(f"host, WEB_CONCURRENCY={workers}")
            group = host_servers(projects, workers)
            measure_group(group, wrk, args, logs_dir)
            servers += group
        results["servers"] = servers
        if args.docker:
            log("Docker")
            results["docker"] = docker_part(projects["docker"], wrk, args, logs_dir)
    results["load_after"] = load_average()
    results["minutes"] = (time.monotonic() - began) / 60
    args.out.mkdir(parents=True, exist_ok=True)
    markdown = write_markdown(results, args)
    (args.out / "benchmark.md").write_text(markdown, encoding="utf-8")
    write_chart(results, args.out / "benchmark.png")
    log(f"wrote {args.out / 'benchmark.md'} and {args.out / 'benchmark.png'}")
    summary = "\n".join(
        [
            f"Measured {results['date']} by `bench/run.py` ({results['machine']['cpu']}, "  # type: ignore[index]
            f"load average {results['load_before']}; "
            + ", ".join(f"{name} {version}" for name, version in results["versions"].items())  # type: ignore[attr-defined]
            + "); details in [docs/benchmark.md](docs/benchmark.md).",
            "",
            *summary_table(results),
        ]
    )
    # A run written elsewhere (--out) is someone's experiment: the README keeps the published figures.
    if args.out.resolve() == DOCS_DIR.resolve() and update_readme(summary):
        log("updated the benchmark table in README.md")
    print("\n".join(summary_table(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
