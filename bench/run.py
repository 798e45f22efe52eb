#!/usr/bin/env python3
"""Benchmark the generated service against bare FastAPI, in the same run, on this machine.

    python bench/run.py                 # make bench: everything, Docker and callgrind included when present
    python bench/run.py --quick         # 1 short round, no callgrind: checks the benchmark, not the figures
    python bench/run.py --quick --no-docker --only baseline,uvicorn-log-off

1. Bakes the default project once per runner with the cookiecutter CLI (timed: the bake time), and
   the uvicorn one again with metrics=yes, and `make install`s the host ones with the host's Python
   (projects.py).
2. For WEB_CONCURRENCY=1 and 2 starts side by side, each on its own 127.0.0.1 port (servers.py):
   (a) the baseline, bare FastAPI written the documented way (its route on an APIRouter added with
   include_router) under Uvicorn with no access log (bench/apps/bare_fastapi_router.py); (b) the
   ceiling, a raw ASGI callable under Uvicorn; the generated projects with their own `make run`,
   logging as shipped, the uvicorn one again with <PKG>_ACCESS_LOG=false, the metrics=yes one; with 1 worker also
   the route on @app.get and (a) with Uvicorn's own access log, for reference. Cold start (exec to
   the first /readyz 200) is timed at each start.
3. Loads them with wrk in interleaved rounds, the order rotating (load.py); one-worker servers get
   a core of their own and wrk the others (--no-pin to let the scheduler place them).
4. Docker (container.py; --no-docker skips it): the docker runner's image built (timed, sized) and
   loaded through the published port next to (a) in the same image.
5. Callgrind instructions per GET / (instructions.py; --no-instructions skips it).
6. Writes docs/benchmark.md and docs/benchmark.png, and the targets table into README.md between
   its benchmark markers (report.py).

It is a benchmark, not a test: it asserts nothing and exits 0 whatever the figures. It only ever
connects to 127.0.0.1, every load run is time-bounded, and it stops every process and container it
started. Needs: wrk (installed with apt-get when missing and run as root), make, uv (for
`make install`), cookiecutter and matplotlib in this Python; valgrind for the instruction counts.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

# `python bench/run.py` puts bench/ on sys.path, not the template root the imports start from.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import instructions, report
from bench.container import docker_part
from bench.load import ensure_wrk, measure_group
from bench.projects import (
    HOST_PYTHON,
    VERSIONS_OF,
    VERSIONS_OF_GUNICORN,
    bake,
    bake_all,
    install,
    log,
    venv_python,
    venv_versions,
)
from bench.servers import CONFIGS, host_servers, measure_cold_start, selected

EXPERIMENTS_DIR = Path(tempfile.gettempdir()) / "fastapi-template-bench"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved load rounds per configuration (5)")
    parser.add_argument("--duration", type=float, default=6, help="seconds of load per round (6)")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of warm-up load per server (2)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (64)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (1: the other core serves)")
    parser.add_argument(
        "--no-pin", dest="pin", action="store_false", help="let one-worker servers and wrk run on any core"
    )
    parser.add_argument("--workers", default="1,2", help="WEB_CONCURRENCY values for the host runs (1,2)")
    parser.add_argument("--docker-workers", default="1", help="WEB_CONCURRENCY values in Docker (1)")
    parser.add_argument("--no-docker", dest="docker", action="store_false", help="skip the Docker part")
    parser.add_argument(
        "--instructions",
        action=argparse.BooleanOptionalAction,
        help="count callgrind instructions per request (default: when valgrind is installed, not with --quick)",
    )
    parser.add_argument(
        "--only",
        default="",
        help=f"comma-separated configurations to load, of: {', '.join(CONFIGS)} (default: all)",
    )
    parser.add_argument("--bakes", type=int, default=3, help="bakes per runner, for the bake time (3)")
    parser.add_argument("--cold-starts", type=int, default=5, help="extra cold starts of the uvicorn runner (5)")
    parser.add_argument(
        "--project-name",
        help="bake with this project_name instead of the default (a machine shared with other runs of the template)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="1 round of 3 s, 1 s warm-up, 1 bake, 2 cold starts, no callgrind"
    )
    parser.add_argument("--work-dir", type=Path, help="where projects are baked (default: a temporary folder)")
    parser.add_argument(
        "--out", type=Path, help=f"where benchmark.md/.png go (docs/; with --quick or --only: {EXPERIMENTS_DIR})"
    )
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.duration, args.warmup, args.bakes, args.cold_starts = 1, 3, 1, 1, 2
    if args.instructions is None:
        args.instructions = not args.quick and shutil.which("valgrind") is not None
    elif args.instructions and not shutil.which("valgrind"):
        parser.error("--instructions needs valgrind (apt-get install valgrind)")
    args.workers = [int(value) for value in args.workers.split(",")]
    args.docker_workers = [int(value) for value in args.docker_workers.split(",")]
    args.only = {name for name in args.only.split(",") if name}
    if unknown := args.only - set(CONFIGS):
        parser.error(f"--only: unknown configuration(s) {', '.join(sorted(unknown))}; known: {', '.join(CONFIGS)}")
    # A short or partial run is an experiment: the published figures in docs/ stay.
    args.whole = not (args.quick or args.only)
    args.out = args.out or (report.DOCS_DIR if args.whole else EXPERIMENTS_DIR)
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
    ensure_wrk()
    results: dict[str, object] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_before": report.load_average(),
        "machine": report.machine_facts(),
    }
    log(f"load average {results['load_before']}; {results['machine']['cpu']}")  # type: ignore[index]
    with work_dir(args.work_dir) as work:
        logs_dir = work / "logs"
        logs_dir.mkdir(exist_ok=True)
        projects, results["bake_s"] = bake_all(work, args.bakes, args.project_name)
        # Issue 16's cost of metrics: the uvicorn project again with metrics=yes (not in the bake times).
        metrics_bake = bake("uvicorn", HOST_PYTHON, work / "metrics", args.project_name, "metrics=yes")
        projects["uvicorn-metrics"] = metrics_bake[0]
        for runner in ("uvicorn", "gunicorn", "uvicorn-metrics"):
            install(projects[runner], runner)
        results["versions"] = venv_versions(venv_python(projects["uvicorn"]), VERSIONS_OF)
        results["versions"] |= venv_versions(venv_python(projects["gunicorn"]), VERSIONS_OF_GUNICORN)  # type: ignore[operator]
        results["cold_start"] = measure_cold_start(projects["uvicorn"], logs_dir, args.cold_starts)
        servers = []
        for workers in args.workers:
            group = selected(host_servers(projects, workers), args.only)
            if group:
                log(f"host, WEB_CONCURRENCY={workers}")
                measure_group(group, args, logs_dir)
                servers += group
        results["servers"] = servers
        if args.docker:
            log("Docker")
            results["docker"] = docker_part(projects["docker"], args, logs_dir)
        if args.instructions:
            log("callgrind instructions per request (uvicorn project, 1 connection)")
            results["instructions"] = instructions.per_request(
                projects["uvicorn"], metrics_project=projects["uvicorn-metrics"]
            )
        else:
            results["instructions_skipped"] = "valgrind missing" if not shutil.which("valgrind") else "switched off"
    results["load_after"] = report.load_average()
    results["minutes"] = (time.monotonic() - began) / 60
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "benchmark.md").write_text(report.write_markdown(results, args), encoding="utf-8")
    report.write_chart(results, args.out / "benchmark.png")
    log(f"wrote {args.out / 'benchmark.md'} and {args.out / 'benchmark.png'}")
    # Only a whole run written to docs/ changes the README's figures.
    if (
        args.whole
        and args.out.resolve() == report.DOCS_DIR.resolve()
        and report.update_readme(report.readme_summary(results))
    ):
        log("updated the benchmark table in README.md")
    print("\n".join(report.summary_table(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
