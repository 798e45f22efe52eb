"""Resident memory of each server's service as shipped, one worker, after each block of requests (100,000).

Every server's project starts with `make run`; wrk loads it in 5 s bursts until the block's requests
are served, then the resident memory of its processes (make left out) is read from /proc. Three blocks:
the first says what the server costs, the next two whether it grows (Granian #276).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tests.conftest import SERVERS
from tests.support.live_server import process_tree, rss_kib
from tools.bench.load import wrk
from tools.bench.servers import Config, configs, start

BLOCKS = 3
BURST_S = 5.0


def pss_kib(pid: int) -> int:
    """The process's proportional share of resident memory in KiB: a page shared by n processes counts 1/n in
    each (a forked worker shares its parent's pages; RSS counts them in both)."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def served_kib(make_pid: int) -> list[tuple[int, int]]:
    """(RSS, PSS) of each of the server's processes, parents first, make's own left out."""
    return [(rss_kib(pid), pss_kib(pid)) for pid in process_tree(make_pid)[1:]]


def after_blocks(
    config: Config, projects: dict[str, Path], logs: Path, args: argparse.Namespace
) -> list[list[tuple[int, int]]]:
    """(RSS, PSS) in KiB of each process after each block of args.block requests."""
    server, _ = start(config, projects, 1, logs / f"memory-{config.key}.log")
    try:
        readings = []
        for _ in range(BLOCKS):
            served = 0
            while served < args.block:
                result = wrk(server.port, BURST_S, args, None)
                if result.requests == 0:
                    raise SystemExit(f"error: {config.label} served nothing:\n{server.log()[-2000:]}")
                served += result.requests
            readings.append(served_kib(server.make.pid))
        return readings
    finally:
        server.close()


def measure(projects: dict[str, Path], logs: Path, args: argparse.Namespace) -> dict[str, list[list[tuple[int, int]]]]:
    """Per server (its as-shipped configuration's key), (RSS, PSS) KiB per process after each block."""
    shipped = [config for config in configs() if config.key in {f"{server}-shipped" for server in SERVERS}]
    return {config.key: after_blocks(config, projects, logs, args) for config in shipped}
