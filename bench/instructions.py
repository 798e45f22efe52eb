#!/usr/bin/env python3
"""Instructions per request, counted by valgrind's callgrind: a figure that, unlike requests/s,
does not move with whatever else the machine runs.

    python bench/instructions.py PROJECT                  # PROJECT: a baked, `make install`ed uvicorn project
    python bench/instructions.py --connections 64 PROJECT # the same requests, 64 at a time

For each server (bare FastAPI under Uvicorn, the bench's baseline; the service with its access log
off; the service as shipped) it runs the server under callgrind twice, serving 200 and then 1,200
keep-alive `GET /` from 127.0.0.1, and reports the difference over 1,000: start-up and shutdown
cancel out. On one connection (the default) each request is its own event-loop turn, so work a busy
server shares between requests (the access lines' one write per turn) is counted in full; with
many, requests overlap as under load, and so does what that brings (shared turns, the garbage
collector's passes over the objects of the requests in flight).

It is a benchmark: it asserts nothing. Needs valgrind (`apt-get install valgrind`); takes about
five minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
FEW, MANY = 200, 1_200
REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
SUMMARY = re.compile(r"^summary: (\d+)$", re.MULTILINE)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_listening(port: int, timeout: float = 120.0) -> None:
    """Under callgrind a server takes a while to start: poll until it accepts."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=30).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


async def send_requests(port: int, requests: int, connections: int) -> None:
    """`requests` GET / over `connections` keep-alive connections, each sending its next request
    once the answer to the last one has arrived."""
    left = requests

    async def one_connection() -> None:
        nonlocal left
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while left > 0:
            left -= 1
            writer.write(REQUEST)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise SystemExit(f"error: {head.decode(errors='replace')}")
            await reader.readexactly(int(re.search(rb"(?i)content-length: (\d+)", head).group(1)))  # type: ignore[union-attr]
        writer.close()

    await asyncio.gather(*(one_connection() for _ in range(connections)))


def instructions(command: list[str], env: dict[str, str], port: int, requests: int, cwd: Path, connections: int) -> int:
    """Instructions the server ran, from start to exit, serving `requests` requests."""
    with tempfile.TemporaryDirectory() as work:
        out = Path(work) / "callgrind.out"
        server = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--trace-children=yes", *command],
            env=env,
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until_listening(port)
            asyncio.run(send_requests(port, requests, connections))
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=120)
        return int(SUMMARY.search(out.read_text()).group(1))  # type: ignore[union-attr]


def per_request(command: list[str], env: dict[str, str], port: int, cwd: Path, connections: int) -> float:
    many = instructions(command, env, port, MANY, cwd, connections)
    return (many - instructions(command, env, port, FEW, cwd, connections)) / (MANY - FEW)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("project", type=Path, help="a baked, installed uvicorn-runner project")
    parser.add_argument("--connections", type=int, default=1, help="requests at a time (1: one after the other)")
    args = parser.parse_args()
    project = args.project.resolve()
    python = project / ".venv/bin/python"
    (package,) = (path.parent.name for path in (project / "src").glob("*/__init__.py"))
    env = {name: value for name, value in os.environ.items() if name not in {"HOST", "PORT", "WEB_CONCURRENCY"}}
    port = free_port()
    service_env = {**env, "HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": "1"}
    bare = [str(python), "-m", "uvicorn", "--app-dir", str(BENCH_DIR / "apps"), "bare_fastapi:app", "--port"]
    servers = {
        "bare FastAPI, Uvicorn, no access log": ([*bare, str(port), "--log-level", "warning", "--no-access-log"], env),
        "service, access log off": (
            [str(python), "-m", package],
            {**service_env, f"{package.upper()}_ACCESS_LOG": "false"},
        ),
        "service, logging as shipped": ([str(python), "-m", package], service_env),
    }
    baseline = None
    for name, (command, server_env) in servers.items():
        count = per_request(command, server_env, port, project, args.connections)
        baseline = baseline or count
        print(f"{name}: {count / 1000:.0f} k instructions per request ({count / baseline - 1:+.1%})", flush=True)


if __name__ == "__main__":
    sys.exit(main())
