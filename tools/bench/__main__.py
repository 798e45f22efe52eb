"""`make bench` (python -m tools.bench): the generated service against bare FastAPI, same machine, same run.

1. Bakes every server x packaging of cookiecutter.json with the cookiecutter CLI (timed), installs
   each server's host project, and times its cold start (projects.py).
2. For 1 and 2 workers, starts side by side (servers.py): (a) bare FastAPI under Uvicorn without
   access log, (b) the same with Uvicorn's own access log, and each server's service as shipped and
   with <PKG>_ACCESS_LOG=false; loads them with wrk in interleaved rounds (load.py).
3. Counts callgrind instructions per GET / of each, one worker (instructions.py).
4. Reads each server's resident memory after 100,000, 200,000 and 300,000 requests (memory.py).
5. `GET /items/{id}` against a throwaway PostgreSQL: a database=postgres service as shipped against
   bare FastAPI written from the docs' SQL tutorial, 1 and 2 workers, and pool exhaustion (database.py).
6. Writes docs/benchmark.md and the README's benchmark block (report.py).

A benchmark, not a test: it asserts nothing and exits 0 whatever the figures. It connects to
127.0.0.1 only, every load is bounded in time, and it ends every process it started. Needs wrk,
make, valgrind for the instruction counts and PostgreSQL's server binaries for the database row.
--quick checks the script, not the figures, and writes its report to a temporary folder, as does
any run with --out.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from tests.conftest import TEMPLATE_DIR
from tests.support.live_server import WRK_MISSING, wrk_installed
from tests.support.postgres import POSTGRES_MISSING, postgres_installed
from tools.bench import database, instructions, load, memory, projects, report
from tools.bench.servers import configs, serving

DOCS = TEMPLATE_DIR / "docs"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tools.bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per configuration (5)")
    parser.add_argument("--duration", type=float, default=6, help="seconds of load per round (6)")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of warm-up load per server (2)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (64)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (1)")
    parser.add_argument("--workers", default="1,2", help="worker counts (1,2)")
    parser.add_argument("--bakes", type=int, default=3, help="bakes per combination, for the bake time (3)")
    parser.add_argument("--cold-starts", type=int, default=5, help="cold starts per server after the first (5)")
    parser.add_argument("--no-instructions", dest="instructions", action="store_false", help="skip callgrind")
    parser.add_argument("--block", type=int, default=100_000, help="requests per resident memory block (100,000)")
    parser.add_argument("--no-memory", dest="memory", action="store_false", help="skip the resident memory blocks")
    parser.add_argument("--no-database", dest="database", action="store_false", help="skip the PostgreSQL row")
    parser.add_argument(
        "--quick", action="store_true", help="1 round of 2 s, 1 bake, 1 cold start, no callgrind, memory in 2,000s"
    )
    parser.add_argument("--out", type=Path, help="where benchmark.md goes (docs/; --quick: a temporary folder)")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.duration, args.warmup, args.bakes, args.cold_starts = 1, 2, 1, 1, 1
        args.instructions, args.block = False, 2_000
    args.instructions = args.instructions and shutil.which("valgrind") is not None
    args.workers = [int(value) for value in args.workers.split(",")]
    args.whole = not args.quick and args.out is None  # only a whole run replaces the published figures
    args.out = args.out or (DOCS if args.whole else Path(tempfile.gettempdir()) / "fastapi-template-bench")
    return args


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def main() -> int:
    args = parse_args()
    if not wrk_installed():
        raise SystemExit(f"error: {WRK_MISSING}")
    began = time.monotonic()
    results: dict[str, object] = {
        "args": args,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": report.machine(),
        "load_before": report.load_average(),
    }
    log(f"{results['machine']}; load average {results['load_before']}")
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        work, logs = Path(tmp), Path(tmp) / "logs"
        logs.mkdir()
        served, results["bake_s"] = projects.bake_all(work, args.bakes)
        log(f"baked {', '.join(results['bake_s'])}")  # type: ignore[arg-type]
        for project in served.values():
            projects.install(project)
        results["versions"] = projects.versions(served)
        log(f"installed: {report.versions(results)}")
        results["cold_start_s"] = projects.cold_starts(served, args.cold_starts, logs)
        results["load"] = {}
        for workers in args.workers:
            log(f"wrk, {workers} worker(s)")
            with serving(configs(), served, workers, logs) as servers:
                results["load"][workers] = load.rounds(servers, workers, args)  # type: ignore[index]
        results["instructions"] = {}
        if args.instructions:
            for config in configs():
                count = instructions.per_request(config, served, logs)
                results["instructions"][config.key] = count  # type: ignore[index]
                log(f"callgrind: {config.label}: {count / 1000:.0f} k instructions per GET /")
        results["memory"] = memory.measure(served, logs, args) if args.memory else {}
        for key, readings in results["memory"].items():  # type: ignore[attr-defined]
            log(f"memory: {key}: " + ", ".join(f"{report.rss(reading) / 1024:.1f} MiB" for reading in readings))
        results["database"] = {}
        if args.database and not postgres_installed():
            log(f"database: skipped: {POSTGRES_MISSING}")
        elif args.database:
            log(f"database: GET {database.PATH} against PostgreSQL")
            results["database"] = database.measure(work, logs, args)
    results["load_after"] = report.load_average()
    results["minutes"] = (time.monotonic() - began) / 60
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "benchmark.md").write_text(report.markdown(results), encoding="utf-8")
    log(f"wrote {args.out / 'benchmark.md'}")
    if args.whole and report.update_readme(report.readme_block(results)):
        log("updated the benchmark block in README.md")
    print("\n".join(report.targets_table(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
