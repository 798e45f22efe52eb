"""What each configuration runs, and starting it.

A generated service starts with its own `make run`, as a user starts it; (a) and (b) start with
`make bare` in this folder (bare_app.py under plain Uvicorn, from the same virtualenv). Both go
through the live tests' LiveServer (tests/support/live_server.py): its own session, 127.0.0.1 and
a free port, output into a log file, everything ended at close().
"""

from __future__ import annotations

import contextlib
import http.client
import time
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import SERVERS, project_env
from tests.support.live_server import LiveServer, get, package_name, wait_until

BENCH_DIR = Path(__file__).resolve().parent
READY_TIMEOUT = 60.0


@dataclass(frozen=True)
class Config:
    key: str  # "a", "b", "<server>-shipped", "<server>-log-off"
    label: str
    server: str | None  # None: bare FastAPI, (a) or (b), or the database row's bare SQL app
    access_log: bool
    path: str = "/"  # what wrk loads
    app: str = "bare_app:app"  # bare FastAPI's module:app (server None)

    @property
    def ready_path(self) -> str:
        return self.path if self.server is None else "/readyz"


def configs() -> list[Config]:
    """(a), (b), then every server of cookiecutter.json as shipped and with its access log off."""
    found = [
        Config("a", "(a) bare FastAPI, Uvicorn, no access log", None, False),
        Config("b", "(b) bare FastAPI, Uvicorn's own access log", None, True),
    ]
    for server in SERVERS:
        found.append(Config(f"{server}-shipped", f"service, server={server}, as shipped", server, True))
        found.append(Config(f"{server}-log-off", f"service, server={server}, access log off", server, False))
    return found


def where(
    config: Config, projects: dict[str, Path], workers: int, extra_env: dict[str, str] | None = None
) -> tuple[Path, str, dict[str, str]]:
    """(folder, make target, environment) that serve the configuration with this many workers.
    (a) and (b) run in the virtualenv of the first server's project: same FastAPI, same Uvicorn."""
    env = project_env(WEB_CONCURRENCY=str(workers), **(extra_env or {}))
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # bytecode cached, as on most machines
    if config.server is None:
        env["PYTHON"] = str(projects[SERVERS[0]] / ".venv" / "bin" / "python")
        env["OPTIONS"] = "" if config.access_log else "--no-access-log"
        env["APP"] = config.app
        return BENCH_DIR, "bare", env
    project = projects[config.server]
    if not config.access_log:
        env[f"{package_name(project).upper()}_ACCESS_LOG"] = "false"
    return project, "run", env


def answers(port: int, path: str) -> bool:
    try:
        return get(port, path, timeout=2.0)[0] == 200
    except (OSError, http.client.HTTPException):
        return False


def start(
    config: Config, projects: dict[str, Path], workers: int, log_path: Path, extra_env: dict[str, str] | None = None
) -> tuple[LiveServer, float]:
    """The configuration serving, all its workers up; (server, seconds from exec to the first 200)."""
    folder, target, env = where(config, projects, workers, extra_env)
    server = LiveServer.start(folder, env, log_path, target=target)
    try:
        wait_until(lambda: server.check_running() or answers(server.port, config.ready_path), READY_TIMEOUT, "ready")
        elapsed = time.monotonic() - server.started
        if workers > 1:  # the first worker answers before the others have started
            server.wait_for_workers(workers)
    except AssertionError:
        server.close()
        raise SystemExit(f"error: {config.label} did not start:\n{server.log()[-3000:]}") from None
    return server, elapsed


@contextlib.contextmanager
def serving(  # type: ignore[no-untyped-def]
    configs: list[Config],
    projects: dict[str, Path],
    workers: int,
    logs: Path,
    envs: dict[str, dict[str, str]] | None = None,
):
    """Every configuration started side by side, each on its own port (with envs[its key] added to its
    environment); all stopped at exit."""
    servers: dict[str, LiveServer] = {}
    try:
        for config in configs:
            log_path = logs / f"{config.key}-w{workers}.log"
            servers[config.key], _ = start(config, projects, workers, log_path, (envs or {}).get(config.key))
        yield servers
    finally:
        for server in servers.values():
            server.close()
