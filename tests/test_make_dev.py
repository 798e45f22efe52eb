"""`make dev` is `make run` that restarts on edits: the same settings and logging, started for real
for every server (packaging=host) in a project of its own (the test edits its code). Slow tier."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import SERVERS, project_env
from tests.support.live_server import LiveServer, free_port, live_server, package_name, wait_until

pytestmark = [pytest.mark.live, pytest.mark.slow, pytest.mark.xdist_group("live")]

PACKAGING = "host"

NEW_MESSAGE = "Edited while make dev ran"


@dataclass
class DevSession:
    access_line: str
    after_edit: object
    still_one_server: bool


def get_with_id(server: LiveServer, request_id: str) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("GET", "/", headers={"X-Request-ID": request_id})
    connection.getresponse().read()
    connection.close()


def root_message(server: LiveServer) -> object:
    try:
        status, body = server.get("/", timeout=2)
    except (OSError, http.client.HTTPException):
        return None
    return json.loads(body).get("message") if status == 200 else None


@pytest.fixture(scope="module", params=SERVERS)
def dev_session(
    request: pytest.FixtureRequest, installed_project: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DevSession]:
    server_name: str = request.param
    project = installed_project(server_name, PACKAGING, variant="make-dev")
    log = tmp_path_factory.mktemp(f"dev-{server_name}") / "server.log"
    with live_server(project, project_env(), log, target="dev") as server:
        server.wait_ready()
        get_with_id(server, "dev-session-1")
        wait_until(lambda: "dev-session-1" in server.log(), 10, "the access line")
        access_line = next(line for line in server.log().splitlines() if "dev-session-1" in line)
        root = project / "src" / package_name(project) / "routers" / "root.py"
        root.write_text(root.read_text().replace("Hello, World!", NEW_MESSAGE))

        def serves_the_edit() -> bool:
            # Gunicorn's reloader takes a file's first modification time when it first scans it (once a
            # second): an edit before that scan passes unseen, so the edit is saved again meanwhile.
            if root_message(server) == NEW_MESSAGE:
                return True
            os.utime(root)
            return False

        wait_until(serves_the_edit, 60, "make dev to serve the edited code", interval=1.0)
        yield DevSession(access_line, root_message(server), server.make.poll() is None)


def test_dev_writes_the_services_access_line_with_the_request_id(dev_session: DevSession) -> None:
    assert '[dev-session-1] 127.0.0.1 "GET / HTTP/1.1" 200' in dev_session.access_line


def test_dev_serves_an_edit_without_a_restart_by_hand(dev_session: DevSession) -> None:
    assert dev_session.after_edit == NEW_MESSAGE


@pytest.mark.parametrize("server_name", SERVERS)
def test_dev_refuses_a_bad_setting_with_one_line(
    installed_project: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory, server_name: str
) -> None:
    project = installed_project(server_name, PACKAGING)
    setting = f"{package_name(project).upper()}_LOG_LEVEL"
    log = tmp_path_factory.mktemp(f"dev-bad-{server_name}") / "server.log"
    server = LiveServer.start(project, project_env(**{setting: "loud"}), log, target="dev")
    try:
        server.wait_exit(timeout=60)
    finally:
        server.close()

    assert [line for line in server.log().splitlines() if line.startswith("error:")] == [
        f"error: invalid setting {setting}='loud': Input should be 'debug', 'info', 'warning', 'error' or 'critical'"
    ]


def test_fastapi_dev_serves_the_same_app(installed_project: Callable[..., Path], tmp_path: Path) -> None:
    """FastAPI's first command (`fastapi dev`, its docs' and `fastapi new`'s) finds the app through
    pyproject's [tool.fastapi] entrypoint in the src layout, and serves create_app()'s app: its request-id
    middleware answers (issue 26, item 1)."""
    project = installed_project("uvicorn", PACKAGING)
    port = free_port()
    log = (tmp_path / "fastapi-dev.log").open("w")
    command = [str(project / ".venv" / "bin" / "fastapi"), "dev", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(command, cwd=project, env=project_env(), stdout=log, stderr=subprocess.STDOUT)

    def answer() -> tuple[int, str | None] | None:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/livez", headers={"X-Request-ID": "fastapi-dev-1"})
            response = connection.getresponse()
            response.read()
            return response.status, response.getheader("X-Request-ID")
        except (OSError, http.client.HTTPException):
            return None

    try:
        wait_until(lambda: answer() is not None, 60, "fastapi dev to serve")
        assert answer() == (200, "fastapi-dev-1"), (tmp_path / "fastapi-dev.log").read_text()
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
