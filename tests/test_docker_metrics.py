"""The Docker packaging's image of each server with metrics=yes, run as in production (read-only, /tmp a
tmpfs, no capabilities) with WEB_CONCURRENCY=2: every scrape of the published metrics port reads the sum
over both workers; a killed worker's counts stay; a restarted container counts from 0.

Needs a Docker engine (tests/support/docker_env.py starts one when it can; else skipped with the reason).
"""

from __future__ import annotations

import http.client
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from tests.conftest import SERVERS, bake_project, run
from tests.support import docker_env
from tests.support.live_server import free_port, get, wait_until
from tests.test_docker import docker, docker_only_env
from tests.test_observability import requests_to_root

pytestmark = [pytest.mark.docker, pytest.mark.xdist_group("docker")]

REQUESTS = 40
SCRAPES = 3
# The workers inside the container: the children of PID 1 (Uvicorn's supervisor or Gunicorn's master),
# less the resource tracker Python's multiprocessing starts beside Uvicorn's workers.
FIND_WORKERS = (
    "import os\n"
    "for pid in filter(str.isdigit, os.listdir('/proc')):\n"
    "    with open(f'/proc/{pid}/stat', 'rb') as stat, open(f'/proc/{pid}/cmdline', 'rb') as cmdline:\n"
    "        parent = stat.read().rsplit(b')', 1)[1].split()[1]\n"
    "        if parent == b'1' and b'resource_tracker' not in cmdline.read(): print(pid)\n"
)


@dataclass
class Observed:
    scrapes: list[float] = field(default_factory=list)
    before_kill: float = 0.0
    after_kill: float = -1.0
    after_restart: float = -1.0


def workers(container: str) -> set[int]:
    output = docker("exec", container, "python", "-c", FIND_WORKERS).stdout
    return {int(line) for line in output.split()}


def scrape(port: int) -> float:
    status, body = get(port, "/metrics")
    assert status == 200
    return requests_to_root(body.decode())


def serving(port: int) -> bool:
    try:
        return get(port, "/livez", timeout=2)[0] == 200
    except (OSError, http.client.HTTPException):
        return False


@pytest.fixture(scope="module", params=SERVERS)
def observed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Observed]:
    reason = docker_env.engine_unavailable_reason()
    if reason:
        pytest.skip(f"no Docker engine: {reason}")
    project = bake_project(
        tmp_path_factory.mktemp("docker-metrics"),
        python_version="3.13",
        server=request.param,
        packaging="docker",
        metrics="yes",
        project_name=f"Metrics Docker Probe {os.getpid()}",
    )
    python_image, uv_image = docker_env.base_images((project / "Dockerfile").read_text())
    docker_env.seed_python_image(python_image)
    docker_env.seed_uv_image(uv_image.rsplit(":", 1)[1])
    locked = run(["make", "lock"], project, env=docker_only_env(project.parent / "bin"))
    assert locked.returncode == 0, locked.stderr[-3000:]
    tag = f"metrics-probe-{request.param}-{os.getpid()}"
    result = docker("build", "--tag", tag, str(project), timeout=900, check=False)
    assert result.returncode == 0, result.stderr[-5000:]
    port, metrics_port = free_port(), free_port()
    exposed = json.loads(docker("image", "inspect", "--format", "{{json .Config.ExposedPorts}}", tag).stdout)
    assert set(exposed) == {"8000/tcp", "9000/tcp"}
    container = docker(
        "run", "--detach", "--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL", "--env", "WEB_CONCURRENCY=2",
        "--publish", f"127.0.0.1:{port}:8000", "--publish", f"127.0.0.1:{metrics_port}:9000", tag,
    ).stdout.strip()  # fmt: skip
    seen = Observed()
    try:
        wait_until(lambda: serving(port) and len(workers(container)) == 2, 60, "the container's two workers")
        for _ in range(REQUESTS):
            assert get(port, "/")[0] == 200
        seen.scrapes = [scrape(metrics_port) for _ in range(SCRAPES)]

        seen.before_kill = scrape(metrics_port)
        victim = min(workers(container))
        docker("exec", container, "python", "-c", f"import os, signal; os.kill({victim}, signal.SIGKILL)")
        wait_until(lambda: len(workers(container) - {victim}) == 2, 60, "a replacement worker")
        seen.after_kill = scrape(metrics_port)

        docker("restart", "--time", "30", container, timeout=120)
        wait_until(lambda: serving(port), 60, "the restarted container")
        seen.after_restart = scrape(metrics_port)
        yield seen
    finally:
        docker("rm", "--force", container, check=False)
        docker("image", "rm", "--force", tag, check=False)


def test_every_scrape_of_the_container_reads_both_workers_requests(observed: Observed) -> None:
    assert observed.scrapes == [REQUESTS] * SCRAPES


def test_a_killed_worker_in_the_container_keeps_its_counts(observed: Observed) -> None:
    assert observed.after_kill >= observed.before_kill == REQUESTS


def test_a_restarted_container_counts_from_zero(observed: Observed) -> None:
    assert observed.after_restart == 0
