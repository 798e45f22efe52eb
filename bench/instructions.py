#!/usr/bin/env python3
"""Instructions per `GET /`, counted by valgrind's callgrind: a figure that, unlike requests/s,
does not move with whatever else the machine runs.

    python bench/instructions.py PROJECT                  # PROJECT: a baked, `make install`ed uvicorn project
    python bench/instructions.py --connections 64 PROJECT # the same requests, 64 at a time
    python bench/instructions.py --quick PROJECT          # few requests: checks the script, not the figures
    python bench/instructions.py --metrics-project METRICS_PROJECT PROJECT   # and the cost of metrics=yes

Servers, one process each: (a) the baseline, bare FastAPI written the documented way (its route on
an APIRouter added with include_router) under Uvicorn without access log; the same route on
@app.get, for reference; the service (`python -m <package>`) with its access log off; the service
as shipped; with --metrics-project, that project (baked with metrics=yes) as shipped, metrics on.
Each runs under callgrind twice, serving 200 and then 1,200 keep-alive `GET /` from
127.0.0.1; the difference over 1,000 is the count per request (start-up and shutdown cancel out).
Ratios are to (a); the targets: access log off <= 1.05 x (a), as shipped <= 1.15 x (a).

On one connection (the default) each request is its own event-loop turn; with many, requests
overlap as under load, and so does what that brings (shared turns, the garbage collector's passes
over the objects of the requests in flight).

It is a benchmark: it asserts nothing. Needs valgrind (`apt-get install valgrind`); takes about
seven minutes. `make bench` runs it too and puts its ratios in the table.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

# `python bench/instructions.py` puts bench/ on sys.path, not the template root the imports start from.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.projects import tools_env, venv_python
from bench.servers import uvicorn_cmd
from tests.support.live_server import LOOPBACK, free_port, package_name, wait_until

FEW, MANY = 200, 1_200
QUICK_FEW, QUICK_MANY = 20, 120
REQUEST = f"GET / HTTP/1.1\r\nHost: {LOOPBACK}\r\n\r\n".encode()
SUMMARY = re.compile(r"^summary: (\d+)$", re.MULTILINE)
# Under callgrind a server starts some fifty times slower.
START_TIMEOUT = 300.0

CONFIGS = {
    "baseline": "(a) bare FastAPI, APIRouter + include_router, Uvicorn, no access log",
    "app-get": "bare FastAPI, route on @app.get (reference)",
    "log-off": "service, access log off",
    "log-on": "service, logging as shipped",
    "metrics-on": "service baked with metrics=yes, logging as shipped",
}
TARGETS = {"log-off": 1.05, "log-on": 1.15, "metrics-on": 1.15}  # at most this many times (a)'s instructions


def server(project: Path, config: str, port: int) -> tuple[list[str], dict[str, str]]:
    """The command and environment of one configuration, serving on `port` with one process."""
    python = venv_python(project)
    if config in ("baseline", "app-get"):
        app = "bare_fastapi_router:app" if config == "baseline" else "bare_fastapi:app"
        return uvicorn_cmd(python, app, 1, port), tools_env()
    package = package_name(project)
    env = tools_env(HOST=LOOPBACK, PORT=str(port), WEB_CONCURRENCY="1")
    if config == "log-off":
        env[f"{package.upper()}_ACCESS_LOG"] = "false"
    if config == "metrics-on":
        env[f"{package.upper()}_METRICS_PORT"] = str(free_port())
    return [str(python), "-m", package], env


def listening(port: int) -> bool:
    try:
        socket.create_connection((LOOPBACK, port), timeout=30).close()
    except OSError:
        return False
    return True


async def send_requests(port: int, requests: int, connections: int) -> None:
    """`requests` GET / over `connections` keep-alive connections, each sending its next request
    once the answer to the last one has arrived."""
    left = requests

    async def one_connection() -> None:
        nonlocal left
        reader, writer = await asyncio.open_connection(LOOPBACK, port)
        while left > 0:
            left -= 1
            writer.write(REQUEST)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise SystemExit(f"error: {head.decode(errors='replace')}")
            await reader.readexactly(int(re.search(rb"(?i)content-length: (\d+)", head).group(1)))  # type: ignore[union-attr]
        writer.close()

    await asyncio.gather(*(one_connection() for _ in range(connections)))


def instructions(project: Path, config: str, requests: int, connections: int) -> int:
    """Instructions the server ran, from start to exit, serving `requests` requests."""
    port = free_port()
    command, env = server(project, config, port)
    with tempfile.TemporaryDirectory() as work:
        out = Path(work) / "callgrind.out"
        valgrind = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--trace-children=yes"]
        process = subprocess.Popen(
            [*valgrind, *command], env=env, cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            wait_until(lambda: listening(port), START_TIMEOUT, f"{CONFIGS[config]} to listen", interval=0.2)
            asyncio.run(send_requests(port, requests, connections))
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=120)
        return int(SUMMARY.search(out.read_text())[1])  # type: ignore[index]


def per_request(
    project: Path,
    *,
    connections: int = 1,
    quick: bool = False,
    configs: list[str] | None = None,
    metrics_project: Path | None = None,
) -> dict[str, float]:
    """Instructions per request of each configuration, (a) first; metrics-on only with a metrics project."""
    few, many = (QUICK_FEW, QUICK_MANY) if quick else (FEW, MANY)
    counts = {}
    for config in configs or [name for name in CONFIGS if name != "metrics-on" or metrics_project]:
        served = metrics_project if config == "metrics-on" else project
        if served is None:
            raise SystemExit("error: metrics-on needs --metrics-project (a project baked with metrics=yes)")
        counts[config] = (
            instructions(served, config, many, connections) - instructions(served, config, few, connections)
        ) / (many - few)
        print(f"  callgrind: {CONFIGS[config]}: {counts[config] / 1000:.0f} k instructions per request", flush=True)
    return counts


def ratios(counts: dict[str, float]) -> list[str]:
    """One line per configuration: its count, its ratio to (a) and, where there is one, the target."""
    lines = []
    for config, count in counts.items():
        line = f"{CONFIGS[config]}: {count / 1000:.0f} k instructions per request"
        if "baseline" in counts:
            line += f", {count / counts['baseline']:.3f} x (a)"
            if config in TARGETS:
                met = count / counts["baseline"] <= TARGETS[config]
                line += f" (target <= {TARGETS[config]} x: {'met' if met else 'NOT met'})"
        lines.append(line)
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("project", type=Path, help="a baked, installed uvicorn-runner project")
    parser.add_argument("--connections", type=int, default=1, help="requests at a time (1: one after the other)")
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_FEW} and {QUICK_MANY} requests, not {FEW} and {MANY}"
    )
    parser.add_argument(
        "--only", help=f"comma-separated configurations, of: {', '.join(CONFIGS)} (metrics-on: with --metrics-project)"
    )
    parser.add_argument("--metrics-project", type=Path, help="a baked, installed uvicorn project with metrics=yes")
    args = parser.parse_args()
    configs = args.only.split(",") if args.only else None
    if unknown := set(configs or ()) - set(CONFIGS):
        parser.error(f"unknown configuration(s): {', '.join(sorted(unknown))}")
    metrics_project = args.metrics_project.resolve() if args.metrics_project else None
    counts = per_request(
        args.project.resolve(),
        connections=args.connections,
        quick=args.quick,
        configs=configs,
        metrics_project=metrics_project,
    )
    print("\n".join(ratios(counts)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
