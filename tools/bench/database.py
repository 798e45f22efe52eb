"""The database row: `GET /items/{id}` against PostgreSQL, the service as shipped against bare FastAPI
written from the docs' SQL tutorial (bare_sql_app.py), same driver, same database, same virtualenv.

A throwaway PostgreSQL (tests/support/postgres.py) with max_connections above both sides' pools; a
project baked with database=postgres (the uvicorn server, host packaging, the rest default) and installed
with its `make install`; its `make migrate` on a fresh database; one item inserted with psql. Then for
each worker count, side by side: the service with its `make run` (DATABASE_URL set) and the bare SQL
app under plain Uvicorn with its own access log (`make bare APP=bare_sql_app:app`), loaded in
interleaved rounds on `GET /items/1` (load.py). Pool exhaustion: a non-2xx answer, or a "QueuePool
limit" or TimeoutError line in the server's log. While they are loaded, a sampler in the project's
Python reads pg_stat_activity ten times a second: each side's peak of open connections (each side
names itself with the URL's application_name).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.conftest import PACKAGINGS, SERVERS, project_env, run
from tests.support.live_server import LOOPBACK, package_name
from tests.support.postgres import PG_BIN, as_postgres, create_database, postgres_server
from tools.bench import load, projects
from tools.bench.servers import Config, serving

SERVER = SERVERS[0]  # Uvicorn: the bare app's server too
PATH = "/items/1"
CONFIGS = [
    Config("db-shipped", "service, database=postgres, as shipped", SERVER, True, path=PATH),
    Config(
        "db-bare", "bare FastAPI, SQL tutorial, Uvicorn's own access log", None, True, path=PATH, app="bare_sql_app:app"
    ),
    # The tutorial deadlocks its pool when more requests are in flight than threads + connections
    # (fastapi/fastapi#12066); this one limits its sessions to its pool as the service does.
    Config(
        "db-bare-limited",
        "bare FastAPI, SQL tutorial, sessions limited to its pool",
        None,
        True,
        path=PATH,
        app="bare_sql_app:app",
    ),
]
BASE = "db-bare"
MAX_CONNECTIONS = 200  # above the pools at 2 workers (2 x (10 + 15 + 15)) with room to spare
EXHAUSTION = re.compile(r"QueuePool limit|TimeoutError")

# Run by the project's Python (which has psycopg): each application_name's peak of open connections
# to this database, printed as a JSON line whenever a peak grows; ended by SIGTERM.
SAMPLER = """
import json, sys, time, psycopg
peaks = {}
with psycopg.connect(sys.argv[1], autocommit=True, application_name="bench-sampler") as connection:
    while True:
        rows = connection.execute(
            "SELECT application_name, count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name <> 'bench-sampler' GROUP BY 1"
        ).fetchall()
        if any(count > peaks.get(name, 0) for name, count in rows):
            peaks |= {name: max(count, peaks.get(name, 0)) for name, count in rows}
            print(json.dumps(peaks), flush=True)
        time.sleep(0.1)
"""

# The pool settings of each side, read from the installed packages (not restated here).
POOLS = """
import inspect, json, re, sys
from sqlalchemy.pool import QueuePool
from {package}.database import POOL_SIZE
defaults = inspect.signature(QueuePool.__init__).parameters
source = open(sys.argv[1]).read()
overflow = re.search(r"max_overflow=(\\d+)", source)
limit = "max_concurrency=POOL_SIZE" in source
bare = f"pool_size {{defaults['pool_size'].default}}, max_overflow {{defaults['max_overflow'].default}}"
print(json.dumps({{
    "db-bare": f"{{bare}} (SQLAlchemy's defaults), timeout {{defaults['timeout'].default:g}} s",
    "capacity": defaults["pool_size"].default + defaults["max_overflow"].default,
    "db-shipped": f"pool_size {{POOL_SIZE}}, max_overflow {{overflow[1] if overflow else '?'}},"
    f" timeout {{defaults['timeout'].default:g}} s" + (", pre-ping" if "pool_pre_ping=True" in source else "")
    + (f", sessions max_concurrency={{POOL_SIZE}}" if limit else ""),
}}))
"""


def pg_url(url: str) -> str:
    """SQLAlchemy's URL as libpq's."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def prepare(work: Path) -> Path:
    """The database=postgres project, baked and installed."""
    project, _ = projects.bake(work / "bake-database", SERVER, PACKAGINGS[0], database="postgres")
    projects.install(project)
    return project


def seed(project: Path, url: str) -> None:
    """The project's migrations applied to the database, and one item in it (id 1)."""
    migrated = run(["make", "migrate"], project, env=project_env(DATABASE_URL=url), timeout=120)
    if migrated.returncode != 0:
        raise SystemExit(f"error: make migrate failed:\n{(migrated.stdout + migrated.stderr)[-3000:]}")
    port, name = url.rsplit(":", 1)[1].split("/")
    insert = [str(PG_BIN / "psql"), "-h", LOOPBACK, "-p", port, "-U", "postgres", "-d", name, "-tAq"]
    insert += ["-c", "INSERT INTO item (name) VALUES ('bench') RETURNING id"]
    inserted = subprocess.run(as_postgres(insert), capture_output=True, text=True, timeout=60, check=False)
    if inserted.returncode != 0 or inserted.stdout.split() != ["1"]:
        raise SystemExit(f"error: inserting the item failed:\n{inserted.stdout}{inserted.stderr}")


def pools(project: Path) -> tuple[dict[str, str], int]:
    """Each configuration's pool settings, and the tutorial's pool capacity (db-bare-limited's limit)."""
    python = str(project / ".venv" / "bin" / "python")
    source = project / "src" / package_name(project) / "database.py"
    code = POOLS.format(package=package_name(project))
    output = subprocess.run([python, "-c", code, str(source)], capture_output=True, text=True, check=True, cwd=project)
    found = json.loads(output.stdout)
    capacity = int(found.pop("capacity"))
    found["db-bare-limited"] = f"{found['db-bare']}, sessions max_concurrency={capacity}"
    return found, capacity


@contextlib.contextmanager
def peak_connections(project: Path, url: str) -> Iterator[dict[str, int]]:
    """Per application_name, the peak of open connections while the with-block runs (filled at exit)."""
    python = str(project / ".venv" / "bin" / "python")
    sampler = subprocess.Popen([python, "-c", SAMPLER, pg_url(url)], stdout=subprocess.PIPE, text=True)
    peaks: dict[str, int] = {}
    try:
        yield peaks
    finally:
        sampler.send_signal(signal.SIGTERM)
        output, _ = sampler.communicate(timeout=30)
        lines = output.strip().splitlines()
        peaks.update(json.loads(lines[-1]) if lines else {})


def exhaustion_lines(log_path: Path) -> int:
    with log_path.open(errors="replace") as log:
        return sum(1 for line in log if EXHAUSTION.search(line))


def measure(work: Path, logs: Path, args: argparse.Namespace) -> dict[str, Any]:
    """{"pools": each side's pool settings, "load": {workers: {key: rounds}}, "peaks": {workers: {key: n}},
    "exhaustion": {workers: {key: log lines}}}."""
    project = prepare(work)
    settings, capacity = pools(project)
    found: dict[str, Any] = {"pools": settings, "load": {}, "peaks": {}, "exhaustion": {}}
    with postgres_server(f"max_connections={MAX_CONNECTIONS}") as server_url:
        url = create_database(server_url, "bench")
        seed(project, url)
        envs = {config.key: {"DATABASE_URL": f"{url}?application_name={config.key}"} for config in CONFIGS}
        envs["db-bare-limited"]["BENCH_MAX_CONCURRENCY"] = str(capacity)
        for workers in args.workers:
            with (
                serving(CONFIGS, {SERVER: project}, workers, logs, envs) as servers,
                peak_connections(project, url) as peaks,
            ):
                found["load"][workers] = load.rounds(servers, workers, args, PATH)
            found["peaks"][workers] = {config.key: peaks.get(config.key, 0) for config in CONFIGS}
            found["exhaustion"][workers] = {key: exhaustion_lines(server.log_path) for key, server in servers.items()}
    return found
