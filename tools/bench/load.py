"""Loading the servers with wrk, in interleaved rounds, and the figures of each round.

wrk's command and report are the live tests' (tests/support/live_server.py: wrk_command, WrkResult).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
from pathlib import Path

from tests.support.live_server import LOOPBACK, LiveServer, WrkResult, cpu_seconds, process_tree, wrk_command


def cpu_split(workers: int) -> tuple[set[int], set[int]] | None:
    """(server CPUs, wrk CPUs) for one-worker servers: a core each, or the scheduler now and then
    puts both on one core and a round's figure moves with it. Two workers share every core."""
    cpus = sorted(os.sched_getaffinity(0))
    return ({cpus[-1]}, set(cpus[:-1])) if workers == 1 and len(cpus) > 1 else None


def pin(server: LiveServer, cpus: set[int]) -> None:
    """Every process of the server (make, the server, its workers) onto these CPUs."""
    for pid in process_tree(server.make.pid):
        os.sched_setaffinity(pid, cpus)


def wrk(port: int, seconds: float, args: argparse.Namespace, cpus: set[int] | None, path: str = "/") -> WrkResult:
    cmd = wrk_command(
        f"http://{LOOPBACK}:{port}{path}", seconds=seconds, connections=args.connections, threads=args.threads
    )
    result = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
        preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
    )
    return WrkResult.parse(result.stdout)


def lines_since(log_path: Path, offset: int) -> tuple[int, int]:
    """(lines written to the log since byte `offset`, the new offset)."""
    with log_path.open("rb") as log:
        log.seek(offset)
        lines = 0
        while chunk := log.read(1 << 20):
            lines += chunk.count(b"\n")
            offset += len(chunk)
    return lines, offset


def rounds(
    servers: dict[str, LiveServer], workers: int, args: argparse.Namespace, path: str = "/"
) -> dict[str, list[dict[str, float]]]:
    """Warm every server up, then load `path` of them round after round, the order rotating each round so
    that no configuration always goes first: each sees the same machine. Per server, its rounds' figures."""
    split = cpu_split(workers)
    server_cpus, wrk_cpus = split or (None, None)
    for server in servers.values():
        if server_cpus:
            pin(server, server_cpus)
        wrk(server.port, args.warmup, args, wrk_cpus, path)
    offsets = {key: lines_since(server.log_path, 0)[1] for key, server in servers.items()}
    figures: dict[str, list[dict[str, float]]] = {key: [] for key in servers}
    keys = list(servers)
    for round_no in range(args.rounds):
        shift = round_no % len(keys)
        for key in keys[shift:] + keys[:shift]:
            server = servers[key]
            cpu_before = cpu_seconds(server.make.pid)
            result = wrk(server.port, args.duration, args, wrk_cpus, path)
            requests = max(result.requests, 1)
            lines, offsets[key] = lines_since(server.log_path, offsets[key])
            figures[key].append(
                {
                    "rps": result.requests_per_second,
                    "p50_ms": result.latency_ms.get(50, float("nan")),
                    "p99_ms": result.latency_ms.get(99, float("nan")),
                    "errors": result.socket_errors + result.non_2xx,
                    "non_2xx": result.non_2xx,
                    "timeouts": result.timeouts,
                    # Moves less than requests/s when other work shares the cores.
                    "cpu_us": (cpu_seconds(server.make.pid) - cpu_before) / requests * 1e6,
                    # About 1 with an access log, 0 without: the proof the setting took.
                    "log_lines": lines / requests,
                }
            )
            print(
                f"  round {round_no + 1}/{args.rounds} {key}, {workers} worker(s): {result.requests_per_second:.0f} "
                f"requests/s, p99 {figures[key][-1]['p99_ms']:.1f} ms, {result.summary()}",
                flush=True,
            )
    return figures


def median(rounds: list[dict[str, float]], figure: str) -> float:
    return statistics.median(r[figure] for r in rounds) if rounds else float("nan")
