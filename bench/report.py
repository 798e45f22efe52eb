"""The report: the targets met or not, docs/benchmark.md, docs/benchmark.png, the README table."""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import subprocess
from pathlib import Path

from bench.instructions import CONFIGS as INSTRUCTION_CONFIGS
from bench.projects import DOCKER_PYTHON, HOST_PYTHON, TEMPLATE_DIR
from bench.servers import Server

DOCS_DIR = TEMPLATE_DIR / "docs"
README = TEMPLATE_DIR / "README.md"
README_START, README_END = "<!-- benchmark:start -->", "<!-- benchmark:end -->"

# The targets of issue 13, all against (a) of the same run. Nothing here fails the run.
# With metrics on, the as-shipped target: the metrics answer may default to yes only if it holds (issue 16).
RPS_AT_LEAST = {"uvicorn-log-on": 0.85, "uvicorn-log-off": 0.95, "gunicorn-log-on": 0.85, "uvicorn-metrics": 0.85}
P99_AT_MOST = 1.25
INSTRUCTIONS_AT_MOST = {"log-off": 1.05, "log-on": 1.15, "metrics-on": 1.15}
COLD_START_S = 1.0
BAKE_S = 1.0

TABLE_HEAD = [
    "| configuration | workers | requests/s | x (a) | p50 ms | p99 ms | non-2xx | socket errors "
    "| CPU µs/request | wrk CPU µs/request | log lines/request | RSS/worker MiB | cold start s |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
]

Row = tuple[str, str, str, bool]  # target, wanted, measured, met


def machine_facts() -> dict[str, str]:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gib = 0.0
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem_gib = int(Path("/proc/meminfo").read_text().split()[1]) / 2**20
    wrk_version = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    return {
        "cpu": f"{cpu}, {os.cpu_count()} cores, {mem_gib:.0f} GiB RAM",
        "os": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "wrk": (wrk_version.stdout + wrk_version.stderr).split("Copyright")[0].strip(),
    }


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def all_servers(results: dict[str, object]) -> list[Server]:
    servers: list[Server] = list(results["servers"])  # type: ignore[call-overload]
    docker = results.get("docker")
    if isinstance(docker, dict) and "servers" in docker:
        servers += docker["servers"]
    return servers


def find(servers: list[Server], key: str) -> Server | None:
    return next((server for server in servers if server.key == key), None)


def ratio(value: float) -> str:
    return f"{value:.2f}x" if value == value else "n/a"  # NaN check


def server_rows(servers: list[Server], baseline: Server | None) -> list[str]:
    rows = []
    for server in servers:
        rps = server.median("rps")
        times = rps / baseline.median("rps") if baseline else float("nan")
        rss = f"{statistics.mean(server.rss_kib) / 1024:.0f}" if server.rss_kib else "n/a"
        cold = f"{statistics.median(server.cold_starts):.2f}" if server.cold_starts else "n/a"
        label = f"{server.label} (**failed**: see below)" if server.failure else server.label
        rows.append(
            f"| {label} | {server.workers} | {rps:,.0f} | {ratio(times)} "
            f"| {server.median('p50_ms'):.1f} | {server.median('p99_ms'):.1f} | {server.total('non_2xx')} "
            f"| {server.total('socket_errors')} | {server.median('cpu_us'):.0f} | {server.median('wrk_cpu_us'):.0f} "
            f"| {server.median('log_lines'):.2f} | {rss} | {cold} |"
        )
    return rows


def per_workers(servers: list[Server], config: str, figure: str) -> dict[int, float]:
    """The configuration's median of `figure` over (a)'s in the same group, per worker count."""
    found = {}
    for workers in sorted({server.workers for server in servers}):
        server, base = find(servers, f"{config}-w{workers}"), find(servers, f"baseline-w{workers}")
        if server and base and server.rounds and base.rounds:
            found[workers] = server.median(figure) / base.median(figure)
    return found


def workers_text(values: dict[int, float]) -> str:
    return "; ".join(
        f"{value:.2f} x ({workers} worker{'s' if workers > 1 else ''})" for workers, value in values.items()
    )


def targets(results: dict[str, object]) -> list[Row]:
    servers: list[Server] = results["servers"]  # type: ignore[assignment]
    labels = {
        "uvicorn-log-on": "uvicorn runner, logging as shipped",
        "uvicorn-log-off": "uvicorn runner, access log off",
    }
    labels["gunicorn-log-on"] = "gunicorn runner, logging as shipped"
    labels["uvicorn-metrics"] = "uvicorn runner, metrics=yes, logging as shipped"
    rows: list[Row] = []
    for config, label in labels.items():
        if rps := per_workers(servers, config, "rps"):
            wanted = RPS_AT_LEAST[config]
            rows.append((f"{label}: requests/s", f"≥ {wanted} x (a)", workers_text(rps), min(rps.values()) >= wanted))
        if p99 := per_workers(servers, config, "p99_ms"):
            rows.append(
                (f"{label}: p99", f"≤ {P99_AT_MOST} x (a)", workers_text(p99), max(p99.values()) <= P99_AT_MOST)
            )
    counts: dict[str, float] = results.get("instructions") or {}  # type: ignore[assignment]
    for config, wanted in INSTRUCTIONS_AT_MOST.items():
        if config in counts and "baseline" in counts:
            value = counts[config] / counts["baseline"]
            measured = f"{value:.3f} x ({counts[config] / 1000:.0f} k / {counts['baseline'] / 1000:.0f} k)"
            rows.append(
                (
                    f"callgrind instructions per GET /, {INSTRUCTION_CONFIGS[config]}",
                    f"≤ {wanted} x (a)",
                    measured,
                    value <= wanted,
                )
            )
    cold = results.get("cold_start")
    if isinstance(cold, dict):
        met = cold["median_s"] <= COLD_START_S
        rows.append(
            (
                "cold start to ready, uvicorn runner, 1 worker (median)",
                f"≤ {COLD_START_S} s",
                f"{cold['median_s']:.2f} s",
                met,
            )
        )
    bakes: dict[str, list[float]] = results["bake_s"]  # type: ignore[assignment]
    medians = {runner: statistics.median(times) for runner, times in bakes.items()}
    measured = ", ".join(f"{runner} {median:.2f} s" for runner, median in medians.items())
    rows.append(("bake time per runner (median)", f"≤ {BAKE_S} s", measured, max(medians.values()) <= BAKE_S))
    return rows


def summary_table(results: dict[str, object]) -> list[str]:
    lines = ["| target | wanted | measured | met |", "| --- | --- | --- | --- |"]
    for name, wanted, measured, met in targets(results):
        lines.append(f"| {name} | {wanted} | {measured} | {'yes' if met else 'no'} |")
    return lines


def readme_summary(results: dict[str, object]) -> str:
    facts: dict[str, str] = results["machine"]  # type: ignore[assignment]
    versions: dict[str, str] = results["versions"]  # type: ignore[assignment]
    return "\n".join(
        [
            f"Measured {results['date']} by `make bench` ({facts['cpu']}, load average {results['load_before']}; "
            + ", ".join(f"{name} {version}" for name, version in versions.items())
            + "); details in [docs/benchmark.md](docs/benchmark.md).",
            "",
            *summary_table(results),
        ]
    )


def write_markdown(results: dict[str, object], args: argparse.Namespace) -> str:
    servers: list[Server] = results["servers"]  # type: ignore[assignment]
    facts: dict[str, str] = results["machine"]  # type: ignore[assignment]
    versions: dict[str, str] = results["versions"]  # type: ignore[assignment]
    pinning = (
        "With 1 worker, the servers run on the last CPU and wrk on the others (taskset; Docker: --cpuset-cpus), "
        "so the scheduler never puts them on one core; with 2 they share every core."
        if args.pin
        else "Servers and wrk run on any core (--no-pin)."
    )
    lines = [
        "# Benchmark: the generated service against bare FastAPI",
        "",
        f"Written by `bench/run.py` on {results['date']} ({results['minutes']:.1f} min). It is a benchmark, not a",
        "test: figures move with the machine and what else runs on it. Rerun it with `make bench`; how it",
        "measures and why: [performance.md](performance.md).",
        "",
        f"- Machine: {facts['cpu']}; {facts['os']}. Load average (1, 5, 15 min) before: "
        f"{results['load_before']}, after: {results['load_after']}.",
        f"- Load: {facts['wrk']}, on the same machine, `--threads {args.threads} --connections {args.connections}`, "
        f"GET / over keep-alive on 127.0.0.1; {args.rounds} round(s) of {args.duration:.0f} s per configuration "
        f"after a {args.warmup:.0f} s warm-up, interleaved (order rotating); figures are the median of the rounds, "
        f"errors their sum. {pinning}",
        "- Versions: " + ", ".join(f"{name} {version}" for name, version in versions.items()) + ".",
        "- (a) the baseline: bare FastAPI written the documented way, its route on an `APIRouter` added with "
        "`include_router`, under Uvicorn with no access log, from the uvicorn project's virtualenv (same route, "
        "return type and body as the service's `/`); with 2 workers, `uvicorn --workers 2`. "
        "(b) the ceiling: a raw ASGI callable under Uvicorn. The `@app.get` row is (a) without the router.",
        "- Projects baked with the default answers"
        + (f" but project_name={args.project_name!r}" if args.project_name else "")
        + f" (python_version {HOST_PYTHON} on the host, {DOCKER_PYTHON} in Docker).",
        "- Generated projects run with their own `make run` (HOST, PORT, WEB_CONCURRENCY set), logging as shipped "
        "(access log on) into a pipe the benchmark drains, as journald or Docker would; 'access log off' sets "
        "`<PKG>_ACCESS_LOG=false`. Python writes bytecode caches as usual (PYTHONDONTWRITEBYTECODE is cleared).",
        "",
        "## Targets",
        "",
        *summary_table(results),
        "",
    ]
    if results.get("instructions") is None:
        lines += [f"Callgrind instructions: not counted in this run ({results.get('instructions_skipped')}).", ""]
    lines += ["## Host (Python " + versions.get("python", HOST_PYTHON) + ")", ""]
    for workers in sorted({server.workers for server in servers}):
        group = [server for server in servers if server.workers == workers]
        lines += TABLE_HEAD + server_rows(group, find(group, f"baseline-w{workers}")) + [""]
    lines += [
        "CPU µs/request: user + system CPU time of the server's processes during a round over the requests it "
        "served; it moves less than requests/s when other work shares the cores. wrk CPU µs/request: the same "
        "for wrk. Log lines/request: lines the server wrote during a round over its requests (about 1 with the "
        "access log on, 0 off). RSS per worker is read after the load. Cold start: exec (`make run`, or the "
        "server command) to the first 200 from /readyz (/ for the apps without one), the other servers idle.",
        "",
    ]
    cold = results.get("cold_start")
    if isinstance(cold, dict):
        starts = ", ".join(f"{value:.2f}" for value in cold["all_s"])
        lines += [
            f"Cold start of the uvicorn runner, 1 worker, `make run` to /readyz 200: median {cold['median_s']:.2f} s "
            f"of {len(cold['all_s'])} starts ({starts}); the first start after `make install` (which also compiles "
            f"the bytecode): {cold['first_s']:.2f} s.",
            "",
        ]
    bakes: dict[str, list[float]] = results["bake_s"]  # type: ignore[assignment]
    lines += [
        f"Bake time (`python -m cookiecutter --no-input`, exec to exit; median of {args.bakes}): "
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
            "over the base image. (a) here is the bare app run in the same image through the same port mapping.",
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
        lines += ["## Failures", ""]
        lines += [f"- {server.label}, {server.workers} worker(s): {server.failure}" for server in failed] + [""]
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
    title = f"Generated service vs bare FastAPI ({results['date']}, load average {results['load_before']})"
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def update_readme(summary: str) -> bool:
    """Put the summary between the README's benchmark markers; False when it has none."""
    if not README.exists():
        return False
    text = README.read_text(encoding="utf-8")
    if README_START not in text or README_END not in text:
        return False
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    README.write_text(f"{head}{README_START}\n{summary}\n{README_END}{tail}", encoding="utf-8")
    return True
