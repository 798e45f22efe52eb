"""database=sqlite and database=postgres (issue 25): each bakes to a project whose own `make install
lint test` passes (PostgreSQL's against a real server this module starts, as the postgres user when
root), whose migrations can run twice at once (both succeed, one applies), and whose data outlives a
restart of two workers."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import COMBINATIONS, DATABASES, PACKAGINGS, SERVERS, bake_project, project_env, run, tool
from tests.support.live_server import (
    LOOPBACK,
    WRK_MISSING,
    WrkResult,
    live_server,
    package_name,
    wait_until,
    wrk_command,
    wrk_installed,
)
from tests.support.postgres import POSTGRES_MISSING, create_database, postgres_installed
from tests.support.postgres import postgres_server as running_postgres

pytestmark = pytest.mark.xdist_group("database")
INSTALLED = [pytest.mark.install, pytest.mark.live]
WITH_A_DATABASE = [database for database in DATABASES if database != "none"]
APPLIED = "Running upgrade  -> 0001"  # Alembic's line when it applies the first revision


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL on a free port of 127.0.0.1 (tests/support/postgres.py); its server URL."""
    if not postgres_installed():
        pytest.skip(POSTGRES_MISSING)
    with running_postgres() as url:
        yield url


def new_database(server_url: str, tmp_path: Path, database: str) -> str:
    """An empty database for one test: a file in tmp_path, or a new database on the server."""
    if database == "sqlite":
        return f"sqlite:///{tmp_path / 'app.db'}"
    return create_database(server_url, f"t{tmp_path.name.replace('-', '_').lower()}"[:40])


@pytest.fixture
def server_url(request: pytest.FixtureRequest, database: str) -> str:
    """The PostgreSQL server's URL for database=postgres (started on first use), else ''."""
    return str(request.getfixturevalue("postgres_server")) if database == "postgres" else ""


# Each server x packaging with each database; all but the default combination in `make test-all` only.
EVERY_COMBINATION = [
    pytest.param((server, packaging), id=f"{server}-{packaging}", marks=[pytest.mark.slow] * (index > 0))
    for index, (server, packaging) in enumerate(COMBINATIONS)
]


@pytest.fixture
def combination(request: pytest.FixtureRequest) -> tuple[str, str]:
    server, packaging = getattr(request, "param", COMBINATIONS[0])
    return str(server), str(packaging)


@pytest.fixture
def project(installed_project: Callable[..., Path], database: str, combination: tuple[str, str]) -> Path:
    return installed_project(*combination, variant=database, database=database)


@pytest.mark.parametrize("combination", EVERY_COMBINATION, indirect=True)
@pytest.mark.parametrize("database", [pytest.param(database, marks=INSTALLED) for database in WITH_A_DATABASE])
def test_the_project_lints_and_passes_its_tests(project: Path, server_url: str, database: str) -> None:
    env = project_env(TEST_DATABASE_URL=server_url) if server_url else project_env()
    for target in ("lint", "test"):
        result = run(["make", target], project, env=env, timeout=900)
        assert result.returncode == 0, f"make {target} failed:\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}"
    assert " skipped" not in result.stdout.splitlines()[-1], result.stdout[-2000:]
    assert not list(project.glob("*.db")), "the tests wrote a database file into the project"


# Run by the project's Python (which has psycopg): holds the migrations' advisory lock until both
# migrations wait for it, as pg_locks shows, then lets them go. Prints "both waited" or "timed out".
HOLD_THE_MIGRATION_LOCK = """
import sys, time, psycopg
url, key = sys.argv[1].replace("+psycopg", ""), int(sys.argv[2])
with psycopg.connect(url, autocommit=True) as connection:
    connection.execute("SELECT pg_advisory_lock(%s)", (key,))
    print("locked", flush=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        waiting = connection.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        if waiting.fetchone()[0] == 2:
            print("both waited", flush=True)
            break
        time.sleep(0.1)
    else:
        print("timed out", flush=True)
"""


def open_files(pid: int) -> set[str]:
    with contextlib.suppress(OSError):
        return {os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()}
    return set()


@pytest.mark.parametrize("database", [pytest.param(database, marks=INSTALLED) for database in WITH_A_DATABASE])
def test_two_migrations_at_once_both_succeed_and_one_applies(
    project: Path, server_url: str, database: str, tmp_path: Path
) -> None:
    """Both start while the database is locked, so they really meet: PostgreSQL's wait on the
    migrations' advisory lock (seen in pg_locks), SQLite's on the file's write lock."""
    url = new_database(server_url, tmp_path, database)
    env = project_env(DATABASE_URL=url)
    python = str(project / ".venv" / "bin" / "python")
    if database == "postgres":
        env_py = (project / "src" / package_name(project) / "migrations" / "env.py").read_text(encoding="utf-8")
        key = re.search(r"^LOCK_KEY = ([\d_]+)", env_py, re.MULTILINE)
        assert key, "env.py names no LOCK_KEY"
        holder = subprocess.Popen(
            [python, "-c", HOLD_THE_MIGRATION_LOCK, url, key[1]], cwd=project, stdout=subprocess.PIPE, text=True
        )
        assert holder.stdout
        assert holder.stdout.readline().strip() == "locked"
    else:
        database_file = tmp_path / "app.db"
        blocker = sqlite3.connect(database_file, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
    runs = [
        subprocess.Popen(
            [python, "-m", package_name(project), "migrate"],
            cwd=project,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    if database == "postgres":
        assert holder.communicate(timeout=120)[0].strip() == "both waited"
    else:
        for process in runs:  # each has the file open: it is at its BEGIN IMMEDIATE, behind the blocker
            wait_until(
                lambda pid=process.pid: str(database_file) in open_files(pid), 60, "the migration to open the file"
            )
        blocker.execute("ROLLBACK")
        blocker.close()
    outputs = [process.communicate(timeout=120)[0] for process in runs]

    assert [process.returncode for process in runs] == [0, 0], outputs
    assert sum(output.count(APPLIED) for output in outputs) == 1, outputs


@pytest.mark.parametrize("combination", EVERY_COMBINATION, indirect=True)
@pytest.mark.parametrize("database", [pytest.param(database, marks=INSTALLED) for database in WITH_A_DATABASE])
def test_an_item_outlives_a_restart_of_two_workers(
    project: Path, server_url: str, database: str, tmp_path: Path
) -> None:
    env = project_env(DATABASE_URL=new_database(server_url, tmp_path, database), WEB_CONCURRENCY="2")
    migrated = run(["make", "migrate"], project, env=env, timeout=120)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr

    with live_server(project, env, tmp_path / "first.log") as server:
        server.wait_ready()
        created = post_json(server.port, "/items/", {"name": "kept"})
        server.signal_server(signal.SIGTERM)
        server.wait_exit(timeout=60)
    with live_server(project, env, tmp_path / "second.log") as server:
        server.wait_ready()
        status, body = server.get(f"/items/{created['id']}")

    assert (status, json.loads(body)) == (200, {"id": created["id"], "name": "kept"})


@pytest.mark.slow  # a minute per database (four make runs of its own project): make test-all
@pytest.mark.parametrize("database", [pytest.param(database, marks=INSTALLED) for database in WITH_A_DATABASE])
def test_a_model_change_becomes_a_revision_that_lints_and_migrates(
    installed_project: Callable[..., Path], server_url: str, database: str, tmp_path: Path
) -> None:
    """As a developer adds a column: edit models.py, `make test` names the missing migration, `make
    revision` writes it (0002, fixed and formatted by ruff), then `make lint migrate test` pass."""
    project = installed_project(SERVERS[0], PACKAGINGS[0], variant=f"revision-{database}", database=database)
    env = project_env(DATABASE_URL=new_database(server_url, tmp_path, database), TEST_DATABASE_URL=server_url)
    models = project / "src" / package_name(project) / "models.py"
    id_line = "    id: int | None = Field(default=None, primary_key=True)\n"
    assert id_line in models.read_text(encoding="utf-8")
    models.write_text(
        models.read_text(encoding="utf-8").replace(id_line, id_line + "    price: float | None = None\n"),
        encoding="utf-8",
    )
    assert run(["make", "migrate"], project, env=env, timeout=120).returncode == 0
    stale = run(["make", "test"], project, env=env, timeout=600)
    assert stale.returncode != 0
    assert "FAILED tests/test_database.py::test_the_migrations_match_the_models" in stale.stdout, stale.stdout[-3000:]

    made = run(["make", "revision", "m=item price"], project, env=env, timeout=120)

    assert made.returncode == 0, made.stdout + made.stderr
    versions = project / "src" / package_name(project) / "migrations" / "versions"
    assert sorted(path.name for path in versions.glob("*.py")) == ["0001_items.py", "0002_item_price.py"]
    written = (versions / "0002_item_price.py").read_text(encoding="utf-8")
    assert 'revision = "0002"\ndown_revision = "0001"' in written
    assert 'op.add_column("item", sa.Column("price", sa.Float(), nullable=True))' in written
    for target in ("lint", "migrate", "test"):
        result = run(["make", target], project, env=env, timeout=600)
        assert result.returncode == 0, f"make {target} failed:\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}"
        assert target != "migrate" or "Running upgrade 0001 -> 0002" in result.stdout + result.stderr


@pytest.mark.load
@pytest.mark.parametrize("database", [pytest.param(database, marks=INSTALLED) for database in WITH_A_DATABASE])
def test_more_requests_in_flight_than_threads_and_connections_never_deadlock_the_pool(
    project: Path, server_url: str, database: str, tmp_path: Path
) -> None:
    """100 requests in flight on one worker, 10 connections, FastAPI's 40 threads. Sessions without a
    limit let the requests waiting for a connection take every thread while the holders wait for one
    to validate their response, until SQLAlchemy's 30 s pool timeout (fastapi/fastapi#12066): 0
    requests/s. SessionDep's max_concurrency keeps the waiting on the event loop."""
    if not wrk_installed():
        pytest.skip(WRK_MISSING)
    env = project_env(DATABASE_URL=new_database(server_url, tmp_path, database), WEB_CONCURRENCY="1")
    assert run(["make", "migrate"], project, env=env, timeout=120).returncode == 0

    with live_server(project, env, tmp_path / "server.log") as server:
        server.wait_ready()
        created = post_json(server.port, "/items/", {"name": "busy"})
        url = f"http://{LOOPBACK}:{server.port}/items/{created['id']}"
        # 15 s of load: a deadlock (30 s) leaves a handful of requests answered; a loaded machine, hundreds.
        command = wrk_command(url, seconds=15, connections=100, threads=1, timeout=10)
        result = WrkResult.parse(subprocess.run(command, capture_output=True, text=True, timeout=90).stdout)

    assert result.requests >= 500, result.summary()  # deadlocked: 50 to 65 requests, here
    assert (result.timeouts, result.non_2xx, result.read_errors) == (0, 0, 0), result.summary()


def post_json(port: int, path: str, payload: dict[str, str]) -> dict[str, object]:
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=10)
    try:
        connection.request("POST", path, body=json.dumps(payload), headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    assert response.status == 201, body
    result: dict[str, object] = json.loads(body)
    return result


# --- the release step in each packaging, read from the baked files -------------------------------------


@pytest.mark.parametrize("database", WITH_A_DATABASE)
def test_the_systemd_unit_migrates_before_each_start(tmp_path: Path, database: str) -> None:
    project = bake_project(tmp_path, packaging="host", database=database)
    unit = (project / "deploy" / f"{project.name}.service").read_text(encoding="utf-8")
    package = package_name(project)

    assert [line for line in unit.splitlines() if line.startswith("ExecStartPre=")] == [
        f"ExecStartPre=/opt/{project.name}/.venv/bin/python -m {package} migrate"
    ]


def test_compose_migrates_once_before_the_app_with_postgres_beside_it(tmp_path: Path) -> None:
    project = bake_project(tmp_path, packaging="docker", database="postgres")
    services = yaml.safe_load((project / "compose.yaml").read_text(encoding="utf-8"))["services"]

    assert services["app"]["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
    assert services["migrate"]["command"][-1] == "migrate"
    assert services["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert "pg_isready" in services["db"]["healthcheck"]["test"]
    assert services["db"]["volumes"] == ["db-data:/var/lib/postgresql/data"]


def test_compose_keeps_sqlite_on_a_volume_and_the_root_read_only(tmp_path: Path) -> None:
    project = bake_project(tmp_path, packaging="docker", database="sqlite")
    compose = yaml.safe_load((project / "compose.yaml").read_text(encoding="utf-8"))
    app, migrate = compose["services"]["app"], compose["services"]["migrate"]

    assert app["read_only"] is True
    assert app["volumes"] == migrate["volumes"] == ["app-data:/app/data"]
    assert app["environment"]["DATABASE_URL"] == migrate["environment"]["DATABASE_URL"] == "sqlite:////app/data/app.db"
    assert "chown 10001:10001 /app/data" in (project / "Dockerfile").read_text(encoding="utf-8")


def test_every_kubernetes_pod_migrates_first_with_the_releases_image(tmp_path: Path) -> None:
    project = bake_project(tmp_path, packaging="docker", kubernetes="yes", database="postgres")
    overlay = project / "deploy" / "kubernetes" / "overlays" / "production"
    result = run([tool("kubectl"), "kustomize", str(overlay)], project, timeout=120)
    assert result.returncode == 0, result.stderr
    (deployment,) = [doc for doc in yaml.safe_load_all(result.stdout) if doc and doc["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (migrate,) = pod["initContainers"]
    (app,) = pod["containers"]
    (image,) = yaml.safe_load((overlay / "kustomization.yaml").read_text(encoding="utf-8"))["images"]

    assert migrate["command"] == ["python", "-m", package_name(project), "migrate"]
    assert migrate["image"] == app["image"] == f"{image['newName']}:{image['newTag']}"
    assert [ref for ref in migrate["envFrom"] if "secretRef" in ref] == [
        {"secretRef": {"name": f"{project.name}-secrets"}}  # DATABASE_URL: not optional for the migrations
    ]
    assert migrate["securityContext"] == app["securityContext"]
    assert not list(project.glob("deploy/kubernetes/migrate*")), "a second place naming the image"


def test_generated_ci_tests_against_a_postgres_service(tmp_path: Path) -> None:
    project = bake_project(tmp_path, database="postgres")
    job = yaml.safe_load((project / ".github" / "workflows" / "ci.yml").read_text(encoding="utf-8"))["jobs"]["test"]

    assert job["services"]["postgres"]["image"].startswith("postgres:")
    assert job["env"]["TEST_DATABASE_URL"].startswith("postgresql+psycopg://")
