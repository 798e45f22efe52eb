"""compose.yaml with a database, brought up from scratch for real (issue 25): for database=postgres
(the `db` service, postgres:17 seeded offline) and database=sqlite (a named volume on /app/data), the
one-shot `migrate` service runs before the app, the app turns healthy, an item POSTed through the edge
is still there, read back by its id, after `compose down` (volumes kept) and `up` again.

Per database, a packaging=docker bake (default server, python_version=3.13: the seeded base is 3.13),
its image built by `docker build` under the name compose.yaml gives it, then compose `up --no-build
--wait` under a project name and a network range of its own, the edge's ports on 127.0.0.1 with a
self-signed certificate (the compose helpers and fixtures of tests/test_docker.py). `down -v` at the
end removes the containers, the networks and the volumes; the image is removed too.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests import test_docker as docker_tier
from tests.conftest import bake_project, run
from tests.support import docker_env
from tests.support.live_server import figure, free_port, wait_until
from tests.test_docker import LOOPBACK_PORTS, Compose, docker, docker_only_env, edge_env

pytestmark = [pytest.mark.docker, pytest.mark.xdist_group("docker")]

# The Docker tier's fixtures, the same here: the engine (or a one-line skip), a compose v2 CLI (or a
# one-line skip) and the edge's self-signed certificate.
engine = docker_tier.engine
compose_cli = docker_tier.compose_cli
certificates = docker_tier.certificates

PYTHON_VERSION = "3.13"
DATABASES = ("postgres", "sqlite")
UP_TIMEOUT = 180  # seconds, compose's own --wait-timeout; the command itself gets a minute more
ITEM_NAME = "kept across down and up"


@dataclass
class Project:
    path: Path
    image: str  # the app's image as compose.yaml names it (x-image), IMAGE_TAG unset
    db_image: str | None  # postgres:TAG for database=postgres


@pytest.fixture(scope="module", params=DATABASES)
def database(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, database: str, engine: None) -> Iterator[Project]:
    """The bake, its base images seeded, uv.lock written by `make lock`, its image built; the image is
    removed at the end."""
    path = bake_project(
        tmp_path_factory.mktemp(f"compose-{database}"),
        python_version=PYTHON_VERSION,
        packaging="docker",
        database=database,
        # Short: the edge's nginx variables ($<package>_request_id) must stay within 46 characters.
        project_name=f"Compose DB {database} {os.getpid()}",
    )
    services = yaml.safe_load((path / "compose.yaml").read_text())["services"]
    image = services["app"]["image"].replace("${IMAGE_TAG:-latest}", "latest")
    assert services["migrate"]["image"] == services["app"]["image"], "migrate runs the app's image"
    db_image = services["db"]["image"] if database == "postgres" else None
    python_image, uv_image = docker_env.base_images((path / "Dockerfile").read_text())
    try:
        docker_env.seed_python_image(python_image)
        docker_env.seed_uv_image(uv_image.rsplit(":", 1)[1])
        docker_env.seed_nginx_image(services["edge"]["image"])
        if db_image:
            docker_env.seed_postgres_image(db_image)
    except RuntimeError as error:
        pytest.fail(f"seeding the base images failed: {error}")
    run(["make", "lock"], path, env=docker_only_env(path.parent / "bin"))
    start = time.monotonic()
    built = docker("build", "--quiet", "--tag", image, str(path), timeout=900, check=False)
    assert built.returncode == 0, f"docker build failed:\n{built.stderr[-5000:]}"
    figure(f"{database}: docker build", f"{time.monotonic() - start:.1f} s")
    yield Project(path, image, db_image)
    docker("image", "rm", "--force", image, check=False)


def state(container: str) -> str:
    """`exited 0`, `running healthy`, ...: the container's status, exit code or health."""
    fmt = (
        '{{.State.Status}} {{if eq .State.Status "running"}}{{with .State.Health}}{{.Status}}{{end}}'
        "{{else}}{{.State.ExitCode}}{{end}}"
    )
    return docker("inspect", "--format", fmt, container).stdout.strip()


@dataclass
class Up:
    """What one `up --wait` left: the states of migrate and app."""

    seconds: float
    migrate: str
    app: str


@dataclass
class RoundTrip:
    first: Up
    second: Up
    created: tuple[int, object]
    read_back: tuple[int, object]
    volumes: list[str]  # the project's volumes while it was down (no -v)


@pytest.fixture(scope="module")
def round_trip(
    compose_cli: str, project: Project, certificates: Path, tmp_path_factory: pytest.TempPathFactory, database: str
) -> Iterator[RoundTrip]:
    """up from scratch, POST an item, down (volumes kept), up, GET it back by id; `down -v` at the end."""
    folder = tmp_path_factory.mktemp(f"compose-{database}-files")
    https_port = free_port()
    loopback = folder / "loopback.yaml"
    loopback.write_text(LOOPBACK_PORTS.format(http=free_port(), https=https_port))
    # compose reads .env for its variables, and the app and migrate read it too (env_file).
    (project.path / ".env").write_text(f"POSTGRES_PASSWORD={secrets.token_hex(16)}\n")
    env = edge_env(certificates, folder)
    name = f"{project.path.name}-db"
    files = ("--file", str(project.path / "compose.yaml"), "--file", str(loopback))
    compose = Compose([compose_cli, "--project-name", name, *files], env, project.path)

    def up(which: str) -> Up:
        start = time.monotonic()
        result = compose("up", "--detach", "--no-build", "--wait", "--wait-timeout", str(UP_TIMEOUT))
        seconds = time.monotonic() - start
        logs = "".join(f"\n--- {service}\n{compose.logs(service)[-1500:]}" for service in ("db", "migrate", "app"))
        assert result.returncode == 0, f"compose up ({which}) failed:\n{result.stderr[-3000:]}{logs}"
        figure(f"{database}: compose up --wait ({which})", f"{seconds:.1f} s")
        # --wait takes a running edge (no healthcheck) as up, even one restarting on a bad config.
        try:
            wait_until(lambda: answers("/livez"), 60, "the app's /livez through the edge", interval=0.5)
        except AssertionError as error:
            raise AssertionError(f"{error}\n{compose('ps', '--all').stdout}\n{compose.logs('edge')[-2000:]}") from None
        return Up(seconds, state(compose.container("migrate")), state(compose.container("app")))

    def request(method: str, path: str, body: object = None) -> tuple[int, object]:
        """One request over HTTPS to the edge, for example.com (certificate unchecked); status and JSON."""
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        connection = http.client.HTTPSConnection("127.0.0.1", https_port, timeout=10, context=context)
        try:
            headers = {"Host": "example.com", "Content-Type": "application/json"}
            connection.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
            response = connection.getresponse()
            return response.status, json.loads(response.read() or b"null")
        finally:
            connection.close()

    def answers(path: str) -> bool:
        try:
            return request("GET", path)[0] == 200
        except (OSError, ValueError):  # not listening yet, or not JSON (an nginx error page)
            return False

    try:
        first = up("from scratch")
        created = request("POST", "/items/", {"name": ITEM_NAME})
        down = compose("down", "--timeout", "30", timeout=120)
        assert down.returncode == 0, down.stderr[-2000:]
        label = f"label=com.docker.compose.project={name}"
        volumes = docker("volume", "ls", "--quiet", "--filter", label).stdout.split()
        second = up("again, on the kept volume")
        item_id = created[1].get("id") if isinstance(created[1], dict) else None
        read_back = request("GET", f"/items/{item_id}")
        yield RoundTrip(first, second, created, read_back, volumes)
    finally:
        down = compose("down", "--volumes", "--remove-orphans", "--timeout", "30", timeout=120)
        (project.path / ".env").unlink(missing_ok=True)
        assert down.returncode == 0, f"compose down -v failed: {down.stderr[-2000:]}"


def test_migrate_runs_once_and_exits_0_before_the_app(round_trip: RoundTrip) -> None:
    assert round_trip.first.migrate == "exited 0"
    assert round_trip.second.migrate == "exited 0"  # again on `up`: nothing left to apply


def test_the_app_is_healthy(round_trip: RoundTrip) -> None:
    assert round_trip.first.app == "running healthy"
    assert round_trip.second.app == "running healthy"


def test_an_item_posted_through_the_edge_is_created(round_trip: RoundTrip) -> None:
    status, body = round_trip.created
    assert status == 201, body
    assert isinstance(body, dict), body
    assert body["name"] == ITEM_NAME
    assert isinstance(body["id"], int)


def test_down_keeps_the_data_volume(round_trip: RoundTrip, database: str) -> None:
    volume = "db-data" if database == "postgres" else "app-data"
    assert [name.rsplit("_", 1)[-1] for name in round_trip.volumes] == [volume]


def test_the_item_is_read_back_after_down_and_up(round_trip: RoundTrip) -> None:
    status, body = round_trip.read_back
    assert status == 200, body
    assert body == round_trip.created[1]
