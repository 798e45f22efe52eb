"""Instructions per `GET /`, counted by valgrind's callgrind: a figure that, unlike requests/s, does
not move with whatever else the machine runs.

Each configuration runs with one worker under callgrind, started as in the load rounds (`make run`,
or `make bare`). Once it answers, it serves WARM_UP requests; callgrind's counters are zeroed
(`callgrind_control --zero`), it serves REQUESTS keep-alive `GET /` from 127.0.0.1, one after the
other, and the counts are dumped (`--dump`): start-up and shutdown are left out, and every process
of the server counts (Gunicorn's master and its worker; make waits, not counted).
"""

from __future__ import annotations

import http.client
import re
import subprocess
import tempfile
from pathlib import Path

from tests.support.live_server import LOOPBACK, LiveServer, free_port, process_tree, wait_until
from tools.bench.servers import Config, answers, where

WARM_UP, REQUESTS = 200, 1_000
START_TIMEOUT = 300.0  # under callgrind a server starts some fifty times slower
SUMMARY = re.compile(rb"^summary: (\d+)$", re.MULTILINE)


def serve(port: int, path: str, requests: int) -> None:
    """`requests` GET on one keep-alive connection, each sent once the last one is answered."""
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=60)
    try:
        for _ in range(requests):
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise SystemExit(f"error: GET {path} answered {response.status}")
    finally:
        connection.close()


def callgrind_control(option: str, pids: list[int], work: str, env: dict[str, str]) -> None:
    # vgdb names its pipes after USER and HOST: the server's environment (HOST=127.0.0.1) finds them.
    for pid in pids:
        command = ["callgrind_control", f"--vgdb-prefix={work}/vgdb", option, str(pid)]
        subprocess.run(command, env=env, capture_output=True, timeout=60, check=True)


def dumped(path: Path) -> int:
    """The instructions in a dump, once callgrind has written it (--dump returns before)."""
    wait_until(lambda: path.exists() and b"\ntotals:" in path.read_bytes(), 60, f"callgrind to write {path}")
    return int(SUMMARY.search(path.read_bytes())[1])  # type: ignore[index]


def per_request(config: Config, projects: dict[str, Path], logs: Path) -> float:
    folder, target, env = where(config, projects, workers=1)
    port = free_port()
    env |= {"HOST": LOOPBACK, "PORT": str(port)}
    with tempfile.TemporaryDirectory() as work, (logs / f"callgrind-{config.key}.log").open("wb") as log:
        valgrind = ["valgrind", "--tool=callgrind", "--trace-children=yes", f"--vgdb-prefix={work}/vgdb"]
        valgrind.append(f"--callgrind-out-file={work}/%p.out")
        process = subprocess.Popen(
            [*valgrind, "make", target],
            cwd=folder,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        server = LiveServer(project=folder, port=port, make=process, log_path=logs / f"callgrind-{config.key}.log")
        try:
            wait_until(lambda: server.check_running() or answers(port, config.ready_path), START_TIMEOUT, "ready", 0.5)
            serve(port, "/", WARM_UP)
            pids = process_tree(process.pid)[1:]  # make's children: the server, its workers
            callgrind_control("--zero", pids, work, env)
            serve(port, "/", REQUESTS)
            callgrind_control("--dump", pids, work, env)
            counts = [dumped(Path(f"{work}/{pid}.out.1")) for pid in pids]
        finally:
            server.close()
    return sum(counts) / REQUESTS
