"""Loading servers with wrk: interleaved rounds, and the figures of each round.

wrk runs from the live tests' helper (tests/support/live_server.py: `wrk_command`, `WrkResult`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import subprocess
from pathlib import Path

from bench.projects import TEMPLATE_DIR, log, run_checked
from bench.servers import Server, pinned
from tests.support.live_server import LOOPBACK, WrkResult, wrk_command


class LoadFailed(Exception):
    """wrk could not load the server (it died, or stopped answering)."""


def ensure_wrk() -> str:
    """wrk's path; installed with apt-get when missing and this runs as root."""
    if wrk := shutil.which("wrk"):
        return wrk
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SystemExit("error: wrk is missing: install it (Debian/Ubuntu: apt-get install wrk)")
    log("wrk is missing: installing it with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "wrk"]
    if subprocess.run(install, env=env, capture_output=True, check=False).returncode != 0:
        run_checked(["apt-get", "update", "-qq"], TEMPLATE_DIR, "apt-get update", env=env)
        run_checked(install, TEMPLATE_DIR, "apt-get install wrk", env=env)
    if wrk := shutil.which("wrk"):
        return wrk
    raise SystemExit("error: wrk still not found after apt-get install wrk")


def cpu_split(servers: list[Server], pin: bool) -> tuple[set[int], set[int]] | None:
    """(server CPUs, wrk CPUs) when one-worker servers and wrk get cores of their own: on a small
    machine the scheduler otherwise moves them onto one core now and then, and a round's figure
    moves with it. Servers with several workers share all the cores with wrk."""
    cpus = sorted(os.sched_getaffinity(0))
    if not pin or len(cpus) < 2 or any(server.workers != 1 for server in servers):
        return None
    return {cpus[-1]}, set(cpus[:-1])


def cpu_used(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def load(port: int, seconds: float, args: argparse.Namespace, cpus: set[int] | None = None) -> dict[str, float]:
    """One wrk run against GET / on the port: requests/s, latency, errors, wrk's CPU per request."""
    cmd = wrk_command(f"http://{LOOPBACK}:{port}/", seconds=seconds, connections=args.connections, threads=args.threads)
    wrk_cpu_before = cpu_used(resource.RUSAGE_CHILDREN)
    result = subprocess.run(pinned(cmd, cpus), capture_output=True, text=True, timeout=seconds + 60, check=False)
    # wrk is the only child reaped meanwhile (taskset execs it; servers are reaped when stopped).
    wrk_cpu = cpu_used(resource.RUSAGE_CHILDREN) - wrk_cpu_before
    try:
        if result.returncode != 0:
            raise AssertionError(f"wrk exited with {result.returncode}")
        wrk = WrkResult.parse(result.stdout)
    except AssertionError as error:
        raise LoadFailed((result.stdout + result.stderr).strip().splitlines()[-1:] or [str(error)]) from None
    return {
        "rps": wrk.requests_per_second,
        "p50_ms": wrk.latency_ms.get(50, float("nan")),
        "p90_ms": wrk.latency_ms.get(90, float("nan")),
        "p99_ms": wrk.latency_ms.get(99, float("nan")),
        "non_2xx": wrk.non_2xx,
        "socket_errors": wrk.socket_errors,
        "requests": wrk.requests,
        "wrk_cpu_us": wrk_cpu / max(wrk.requests, 1) * 1e6,
    }


def measure_group(servers: list[Server], args: argparse.Namespace, logs_dir: Path) -> None:
    """Start every server of the group, warm each up, then load them in interleaved rounds (the
    order rotating each round), so every configuration sees the same machine."""
    split = cpu_split(servers, args.pin)
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
                load(server.port, args.warmup, args, wrk_cpus)
        for round_no in range(args.rounds):
            shift = round_no % len(servers)  # no configuration always goes first
            for server in servers[shift:] + servers[:shift]:
                if not server.failure:
                    measure_round(server, round_no, args, wrk_cpus)
        for server in servers:
            server.record_rss()
    finally:
        for server in servers:
            server.stop()


def measure_round(server: Server, round_no: int, args: argparse.Namespace, wrk_cpus: set[int] | None) -> None:
    # CPU time per request: it moves less than requests/s when other work shares the cores.
    cpu_before, lines_before = server.cpu_seconds(), server.log_lines()
    own_before = cpu_used(resource.RUSAGE_SELF)
    try:
        result = load(server.port, args.duration, args, wrk_cpus)
    except LoadFailed as error:
        # Reported, not fatal: the other configurations' figures still stand.
        server.failure = f"stopped answering in round {round_no + 1} ({error}); see {server.log_path}"
        log(f"  {server.label}: {server.failure}")
        return
    requests = max(result["requests"], 1)
    result["cpu_us"] = (server.cpu_seconds() - cpu_before) / requests * 1e6
    # This process drains the servers' output meanwhile, on the same cores.
    result["bench_cpu_us"] = (cpu_used(resource.RUSAGE_SELF) - own_before) / requests * 1e6
    # The proof that the access log was on (about 1 line a request) or off (about 0).
    result["log_lines"] = (server.log_lines() - lines_before) / requests
    server.rounds.append(result)
    log(
        f"  round {round_no + 1}/{args.rounds} {server.label}: {result['rps']:.0f} req/s, "
        f"p99 {result['p99_ms']:.1f} ms, {result['cpu_us']:.0f} µs CPU/request"
    )
