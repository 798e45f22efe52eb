"""The report: the issue's targets met or not, docs/benchmark.md, the README's benchmark block."""

from __future__ import annotations

import os
import platform
import statistics
from pathlib import Path
from typing import Any

from tests.conftest import SERVERS, TEMPLATE_DIR
from tools.bench import database
from tools.bench.load import median
from tools.bench.servers import configs

README_START, README_END = "<!-- benchmark:start -->", "<!-- benchmark:end -->"
# Issue 22's targets, against (a) and (b) of the same run. Nothing here fails the run.
LOG_OFF_RPS, LOG_OFF_INSTRUCTIONS = 0.92, 1.10  # x (a)
SHIPPED_RPS, SHIPPED_INSTRUCTIONS, SHIPPED_P99 = 1.0, 1.0, 1.25  # x (b)
COLD_START_S = BAKE_S = 1.0  # the earlier issues' limits, kept
# Issue 24's targets for Granian as shipped: requests/s x (a) with 1 and with 2 workers, CPU per request
# x Uvicorn's service as shipped, resident memory after 100,000 requests x Uvicorn's, and its growth
# from the first block of 100,000 to the last (2 %: the allocator's noise, not a leak).
GRANIAN_RPS = {1: 1.2, 2: 1.1}
GRANIAN_CPU, GRANIAN_RSS, RSS_GROWTH = 0.9, 1.10, 1.02
# The database issue's target: `GET /items/{id}` as shipped x the bare SQL app, 1 and 2 workers, and no
# pool exhaustion under wrk.
DATABASE_RPS = 1.0
LABELS = {config.key: config.label for config in [*configs(), *database.CONFIGS]}


def machine() -> str:
    names = [
        line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in line
    ]
    cpu = names[0] if names else platform.processor()
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def ratio(results: dict[str, Any], workers: int, key: str, figure: str, base: str) -> float:
    rounds = results["load"][workers]
    return median(rounds[key], figure) / median(rounds[base], figure)


def instructions_ratio(results: dict[str, Any], key: str, base: str) -> float:
    counts = results["instructions"]
    return counts[key] / counts[base] if counts else float("nan")


def per_workers(results: dict[str, Any], key: str, figure: str, base: str) -> dict[int, float]:
    return {workers: ratio(results, workers, key, figure, base) for workers in results["load"]}


def text(values: dict[int, float], digits: int = 2) -> str:
    return "; ".join(
        f"{value:.{digits}f} x ({workers} worker{'s' * (workers > 1)})" for workers, value in values.items()
    )


def check(
    name: str, sign: str, limit: float, base: str, values: dict[int, float], digits: int = 2
) -> tuple[str, str, str, bool]:
    """A target row over worker counts: every value at least (sign "≥") or at most ("≤") limit x base."""
    met = min(values.values()) >= limit if sign == "≥" else max(values.values()) <= limit
    return name, f"{sign} {limit} x ({base})", text(values, digits), met


def targets(results: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """(target, wanted, measured, met) for each of the issue's targets, then cold start and bake time."""
    rows = []
    for server in SERVERS:
        off, shipped = f"{server}-log-off", f"{server}-shipped"
        rows.append(check(f"{LABELS[off]}: requests/s", "≥", LOG_OFF_RPS, "a", per_workers(results, off, "rps", "a")))
        rps = per_workers(results, shipped, "rps", "b")
        rows.append(check(f"{LABELS[shipped]}: requests/s", "≥", SHIPPED_RPS, "b", rps))
        p99 = per_workers(results, shipped, "p99_ms", "b")
        rows.append(check(f"{LABELS[shipped]}: p99", "≤", SHIPPED_P99, "b", p99))
        if results["instructions"]:
            count = {1: instructions_ratio(results, off, "a")}
            rows.append(check(f"{LABELS[off]}: instructions per GET /", "≤", LOG_OFF_INSTRUCTIONS, "a", count, 3))
            count = {1: instructions_ratio(results, shipped, "b")}
            rows.append(check(f"{LABELS[shipped]}: instructions per GET /", "≤", SHIPPED_INSTRUCTIONS, "b", count, 3))
    if "granian" in SERVERS:
        rows += granian_targets(results)
    if results.get("database"):
        rows += database_targets(results["database"])
    cold = {server: statistics.median(times[1:]) for server, times in results["cold_start_s"].items()}
    name = "cold start, `make run` to the first /readyz 200, 1 worker (median)"
    measured = ", ".join(f"{server} {value:.2f} s" for server, value in cold.items())
    rows.append((name, f"≤ {COLD_START_S} s", measured, max(cold.values()) <= COLD_START_S))
    bakes = {name: statistics.median(times) for name, times in results["bake_s"].items()}
    measured = ", ".join(f"{name} {value:.2f} s" for name, value in bakes.items())
    name = "bake, `cookiecutter --no-input` exec to exit (median)"
    rows.append((name, f"≤ {BAKE_S} s", measured, max(bakes.values()) <= BAKE_S))
    return rows


def granian_targets(results: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    shipped, label = "granian-shipped", LABELS["granian-shipped"]
    rows = []
    for workers, value in per_workers(results, shipped, "rps", "a").items():
        limit = GRANIAN_RPS.get(workers, GRANIAN_RPS[2])
        rows.append(check(f"{label}: requests/s", "≥", limit, "a", {workers: value}))
    cpu = {w: ratio(results, w, shipped, "cpu_us", "uvicorn-shipped") for w in results["load"]}
    rows.append(check(f"{label}: CPU µs/request", "≤", GRANIAN_CPU, "uvicorn as shipped", cpu))
    memory = results.get("memory") or {}
    if shipped in memory and "uvicorn-shipped" in memory:
        first = {1: rss(memory[shipped][0]) / rss(memory["uvicorn-shipped"][0])}
        block = f"{results['args'].block:,}"
        rows.append(check(f"{label}: resident memory after {block} requests", "≤", GRANIAN_RSS, "uvicorn", first))
        growth = {1: rss(memory[shipped][-1]) / rss(memory[shipped][0])}
        rows.append(check(f"{label}: resident memory, last {block} over first", "≤", RSS_GROWTH, "itself", growth, 3))
    return rows


def database_ratio(found: dict[str, Any], workers: int, figure: str) -> float:
    rounds = found["load"][workers]
    return quotient(median(rounds["db-shipped"], figure), median(rounds[database.BASE], figure))


def quotient(value: float, base: float) -> float:
    """value / base; inf when only the base served nothing (its pool deadlocked), nan when both did."""
    return value / base if base else float("inf") if value else float("nan")


def exhaustion(found: dict[str, Any], workers: int, key: str) -> dict[str, int]:
    """Signs the pool ran dry: rounds that served nothing (a stall), wrk's time-outs, non-2xx answers, and
    "QueuePool limit"/TimeoutError lines in the server's log."""
    rounds = found["load"][workers][key]
    return {
        "stalled rounds": sum(1 for r in rounds if r["rps"] == 0),
        "time-outs": int(sum(r["timeouts"] for r in rounds)),
        "non-2xx": int(sum(r["non_2xx"] for r in rounds)),
        "log lines": found["exhaustion"][workers][key],
    }


def exhaustion_text(signs: dict[str, int]) -> str:
    return ", ".join(f"{count} {sign}" for sign, count in signs.items() if count) or "none"


def database_targets(found: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    name = f"database GET {database.PATH.replace('/1', '/{id}')}, as shipped"
    rps = {workers: database_ratio(found, workers, "rps") for workers in found["load"]}
    rows = [check(f"{name}: requests/s", "≥", DATABASE_RPS, "bare SQL", rps)]
    dry = {workers: exhaustion(found, workers, "db-shipped") for workers in found["load"]}
    measured = "; ".join(
        f"{exhaustion_text(signs)} ({workers} worker{'s' * (workers > 1)})" for workers, signs in dry.items()
    )
    rows.append((f"{name}: pool exhaustion", "none", measured, not any(any(s.values()) for s in dry.values())))
    return rows


def database_lines(results: dict[str, Any]) -> list[str]:
    found = results.get("database") or {}
    if not found:
        return ["The database row: not measured in this run (--no-database, or PostgreSQL not installed).", ""]
    lines = [
        f"## Database: `GET {database.PATH}` against PostgreSQL",
        "",
        "| configuration | workers | requests/s | x bare SQL | p99 ms | errors | pool exhaustion | peak connections "
        "| pool (per worker) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- |",
    ]
    for workers, rounds in found["load"].items():
        for key, figures in rounds.items():
            times = quotient(median(figures, "rps"), median(rounds[database.BASE], "rps"))
            lines.append(
                f"| {LABELS[key]} | {workers} | {median(figures, 'rps'):,.0f} | {times:.2f} "
                f"| {median(figures, 'p99_ms'):.2f} | {sum(r['errors'] for r in figures):.0f} "
                f"| {exhaustion_text(exhaustion(found, workers, key))} | {found['peaks'][workers][key]} "
                f"| {found['pools'][key]} |"
            )
    return [
        *lines,
        "",
        "A project baked with database=postgres (server uvicorn, packaging host), installed with its `make install`,",
        "migrated with its `make migrate` on a fresh database of a throwaway PostgreSQL on 127.0.0.1, one item in it;",
        "its `make run` with DATABASE_URL set, against bare FastAPI written as FastAPI's SQL Databases tutorial writes",
        "it (tools/bench/bare_sql_app.py: `create_engine(url)`, a `Session` per request, a sync path operation) under",
        "plain Uvicorn with its own access log, from the same virtualenv on the same database. Both loaded as above.",
        "The third configuration is that tutorial app with its sessions limited to its pool's 15 connections",
        "(`Depends(get_session, max_concurrency=15)`), as the service limits its own: without it, more requests in",
        "flight than threads and connections can deadlock the pool (fastapi/fastapi#12066).",
        "Errors: wrk's socket errors and non-2xx answers. Pool exhaustion: rounds that served nothing (the pool",
        "deadlocked: fastapi/fastapi#12066), wrk's time-outs, non-2xx answers and the server log's \"QueuePool limit\"",
        "and TimeoutError lines. Peak connections: the most each side held open at once (all its workers), from",
        "pg_stat_activity ten times a second.",
        "",
    ]


def rss(processes: list[tuple[int, int]]) -> int:
    """The resident memory of a server's processes (RSS, KiB), from memory.py's (RSS, PSS) per process."""
    return sum(process[0] for process in processes)


def memory_lines(results: dict[str, Any]) -> list[str]:
    memory = results.get("memory") or {}
    if not memory:
        return ["Resident memory: not measured in this run (--no-memory).", ""]
    block = results["args"].block
    lines = [
        "## Resident memory, 1 worker, as shipped",
        "",
        f"| configuration | RSS after {block:,} requests | after {2 * block:,} | after {3 * block:,} | RSS per process "
        "| PSS per process |",
        "| --- | ---: | ---: | ---: | --- | --- |",
    ]
    for key, readings in memory.items():
        totals = " | ".join(f"{rss(reading) / 1024:.1f} MiB" for reading in readings)
        per_rss = " + ".join(f"{process[0] / 1024:.1f}" for process in readings[-1])
        per_pss = " + ".join(f"{process[1] / 1024:.1f}" for process in readings[-1])
        lines.append(f"| {LABELS[key]} | {totals} | {per_rss} MiB | {per_pss} MiB |")
    return [
        *lines,
        "",
        f"The resident memory of the server's processes (make's left out) after each block of {block:,} keep-alive",
        "`GET /` from wrk, read from /proc; per process: after the last block, parents first (Gunicorn's and",
        "Granian's main process, then the worker). PSS counts a page shared by n processes 1/n in each: a forked",
        "worker shares its parent's pages, which RSS counts twice.",
        "",
    ]


def targets_table(results: dict[str, Any]) -> list[str]:
    lines = ["| target | wanted | measured | met |", "| --- | --- | --- | --- |"]
    for name, wanted, measured, met in targets(results):
        lines.append(f"| {name} | {wanted} | {measured} | {'yes' if met else '**no**'} |")
    return lines


def load_table(results: dict[str, Any], workers: int) -> list[str]:
    lines = [
        "| configuration | requests/s | x (a) | x (b) | p50 ms | p99 ms | p99 x (b) | errors | CPU µs/request "
        "| log lines/request |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key, rounds in results["load"][workers].items():
        lines.append(
            f"| {LABELS[key]} | {median(rounds, 'rps'):,.0f} | {ratio(results, workers, key, 'rps', 'a'):.2f} "
            f"| {ratio(results, workers, key, 'rps', 'b'):.2f} | {median(rounds, 'p50_ms'):.2f} "
            f"| {median(rounds, 'p99_ms'):.2f} | {ratio(results, workers, key, 'p99_ms', 'b'):.2f} "
            f"| {sum(r['errors'] for r in rounds):.0f} | {median(rounds, 'cpu_us'):.0f} "
            f"| {median(rounds, 'log_lines'):.2f} |"
        )
    return lines


def instructions_table(results: dict[str, Any]) -> list[str]:
    lines = ["| configuration | instructions per GET / | x (a) | x (b) |", "| --- | ---: | ---: | ---: |"]
    for key, count in results["instructions"].items():
        lines.append(
            f"| {LABELS[key]} | {count / 1000:,.0f} k | {instructions_ratio(results, key, 'a'):.3f} "
            f"| {instructions_ratio(results, key, 'b'):.3f} |"
        )
    return lines


def versions(results: dict[str, Any]) -> str:
    return ", ".join(f"{name} {version}" for name, version in results["versions"].items())


def markdown(results: dict[str, Any]) -> str:
    args = results["args"]
    lines = [
        "# Benchmark: the generated service against bare FastAPI",
        "",
        f"Written by `make bench` (tools/bench) on {results['date']} in {results['minutes']:.0f} min. A benchmark, not",
        "a test: the figures move with the machine and whatever else runs on it. How it measures and what",
        "costs what: [performance.md](performance.md).",
        "",
        f"- Machine: {results['machine']}. Load average (1, 5, 15 min) before the run: {results['load_before']};"
        f" after: {results['load_after']}.",
        f"- Versions: {versions(results)}.",
        "- (a): bare FastAPI, its route on an `APIRouter` added with `include_router` (tools/bench/bare_app.py, the"
        " service's `/`), under `uvicorn --no-access-log`; (b): the same under plain `uvicorn`, its own access log"
        " on (its default). Both from the uvicorn project's virtualenv, with `--workers` as many as the service's.",
        "- The service: each server's project baked with the default answers (packaging host), started with its"
        " `make run` (HOST, PORT, WEB_CONCURRENCY set), logging as shipped, or with `<PKG>_ACCESS_LOG=false`."
        " Every server's output goes to a log file.",
        f"- Load: wrk, `--threads {args.threads} --connections {args.connections}`, keep-alive `GET /` on 127.0.0.1,"
        f" same machine; {args.rounds} rounds of {args.duration:.0f} s per configuration after a {args.warmup:.0f} s"
        " warm-up, interleaved (the order rotating); medians of the rounds, errors summed. With 1 worker the servers"
        " run on the last CPU and wrk on the others; with 2 they share every CPU.",
        "",
        "## Targets",
        "",
        *targets_table(results),
        "",
    ]
    for workers in results["load"]:
        title = f"## Requests/s and latency, {workers} worker{'s' * (workers > 1)}"
        lines += [title, "", *load_table(results, workers), ""]
    lines += [
        "CPU µs/request: user + system CPU time of the server's processes over the requests of a round (it moves",
        "less than requests/s when other work shares the cores). Log lines/request: lines the server wrote over",
        "the requests it served (about 1 with an access log, 0 without: the setting took).",
        "",
    ]
    if results["instructions"]:
        lines += [
            "## Instructions per request (callgrind, 1 worker)",
            "",
            *instructions_table(results),
            "",
            "Each configuration under valgrind's callgrind, started as above: 200 requests to warm up, counters",
            "zeroed, 1,000 keep-alive `GET /` one after the other, counters dumped; every process of the server",
            "counts (Gunicorn's master and its worker).",
            "",
        ]
    else:
        lines += ["Instructions: not counted in this run (valgrind missing or --no-instructions).", ""]
    lines += memory_lines(results)
    lines += database_lines(results)
    cold = results["cold_start_s"]
    lines += [
        "## Cold start and bake",
        "",
        *(
            f"- {server}: `make run` to the first /readyz 200, 1 worker: median {statistics.median(t[1:]):.2f} s of"
            f" {len(t) - 1} ({', '.join(f'{v:.2f}' for v in t[1:])}); the first start after `make install`"
            f" (which compiles the bytecode) {t[0]:.2f} s."
            for server, t in cold.items()
        ),
        *(
            f"- bake {name}: median {statistics.median(t):.2f} s of {len(t)} ({', '.join(f'{v:.2f}' for v in t)})."
            for name, t in results["bake_s"].items()
        ),
        "",
    ]
    return "\n".join(lines)


def readme_block(results: dict[str, Any]) -> str:
    """A few lines: what the service costs against bare FastAPI, per server, measured."""
    lines = [
        f"Measured by `make bench` on {results['date']} ({results['machine']}; load average"
        f" {results['load_before']}): [docs/benchmark.md](docs/benchmark.md).",
        "",
        "| the service | requests/s | p99 | instructions per `GET /` |",
        "| --- | --- | --- | --- |",
    ]
    workers = list(results["load"])
    for server in SERVERS:
        for key, base in ((f"{server}-shipped", "b"), (f"{server}-log-off", "a")):
            rps = " / ".join(f"{ratio(results, w, key, 'rps', base):.2f}" for w in workers)
            p99 = " / ".join(f"{ratio(results, w, key, 'p99_ms', base):.2f}" for w in workers)
            count = f"{instructions_ratio(results, key, base):.3f} x ({base})" if results["instructions"] else "n/a"
            lines.append(f"| {LABELS[key].removeprefix('service, ')} | {rps} x ({base}) | {p99} x ({base}) | {count} |")
    found = results.get("database") or {}
    if found:
        rps = " / ".join(f"{database_ratio(found, w, 'rps'):.2f}" for w in found["load"])
        p99 = " / ".join(f"{database_ratio(found, w, 'p99_ms'):.2f}" for w in found["load"])
        label = LABELS["db-shipped"].removeprefix("service, ")
        lines.append(f"| {label}, `GET /items/{{id}}` | {rps} x bare SQL | {p99} x bare SQL | n/a |")
    lines += [
        "",
        f"(a): bare FastAPI under Uvicorn, no access log; (b): the same with Uvicorn's own access log;"
        f" requests/s and p99 with {' / '.join(map(str, workers))} worker(s)."
        + (" Bare SQL: FastAPI's SQL tutorial under Uvicorn, its access log on, same PostgreSQL." if found else ""),
    ]
    return "\n".join(lines)


def update_readme(block: str, readme: Path = TEMPLATE_DIR / "README.md") -> bool:
    """Put the block between the README's benchmark markers; False when it has none."""
    content = readme.read_text(encoding="utf-8")
    if README_START not in content or README_END not in content:
        return False
    head, rest = content.split(README_START, 1)
    tail = rest.split(README_END, 1)[1]
    readme.write_text(f"{head}{README_START}\n{block}\n{README_END}{tail}", encoding="utf-8")
    return True
