"""The Docker part: build the docker runner's image (timed, sized) and load it through the published
port next to bare FastAPI run in the same image with the same port mapping.

The engine and the offline-seeded base images come from the Docker tests' helper
(tests/support/docker_env.py).
"""

from __future__ import annotations

import argparse
import os
import re
import time
from pathlib import Path

from bench.load import measure_group
from bench.projects import log
from bench.servers import APPS_DIR, Server, selected
from tests.support import docker_env
from tests.support.live_server import LOOPBACK, free_port, package_name


def build(project: Path, tag: str, *extra: str) -> float:
    """`docker build`, timed; SystemExit saying why when it fails."""
    started = time.perf_counter()
    result = docker_env.docker("build", *extra, "--tag", tag, str(project), timeout=900, check=False)
    if result.returncode != 0:
        raise SystemExit(f"error: docker build failed:\n{result.stderr[-3000:]}")
    return time.perf_counter() - started


def image_size(tag: str) -> int:
    return int(docker_env.docker("image", "inspect", "--format", "{{.Size}}", tag).stdout)


def docker_servers(project: Path, tag: str, workers: int) -> list[Server]:
    """(a) in the image, the service as shipped and with its access log off, each in a container."""
    dockerfile = (project / "Dockerfile").read_text()
    container_port = int(re.search(r"^EXPOSE (\d+)", dockerfile, re.MULTILINE)[1])  # type: ignore[index]
    bare = ["--volume", f"{APPS_DIR}:/bench:ro", tag, "python", "-m", "uvicorn", "--app-dir", "/bench"]
    bare += ["bare_fastapi_router:app", "--host", "0.0.0.0", "--port", str(container_port)]
    bare += ["--workers", str(workers), "--no-access-log", "--log-level", "warning"]
    log_off = ["--env", f"{package_name(project).upper()}_ACCESS_LOG=false", tag]
    servers = []
    for key, label, kind, run_args in (
        ("docker-baseline", "(a) bare FastAPI in the image, no access log", "docker-baseline", bare),
        ("docker", "docker runner, logging as shipped", "docker", [tag]),
        ("docker-log-off", "docker runner, access log off", "docker", log_off),
    ):
        port = free_port()
        name = f"bench-{key}-w{workers}-{os.getpid()}"
        cmd = [docker_env.DOCKER, "run", "--detach", "--name", name]
        cmd += ["--publish", f"{LOOPBACK}:{port}:{container_port}", "--env", f"WEB_CONCURRENCY={workers}", *run_args]
        ready = "/" if kind == "docker-baseline" else "/readyz"
        env = docker_env.docker_env()
        servers.append(
            Server(f"{key}-w{workers}", label, kind, workers, ready, cmd, env=env, port=port, container=name)
        )
    return servers


def docker_part(project: Path, args: argparse.Namespace, logs_dir: Path) -> dict[str, object]:
    """The image's build time and size, and the Docker servers' rounds; {"skipped": why} without an engine."""
    reason = docker_env.engine_unavailable_reason()
    if reason:
        log(f"Docker part skipped: {reason}")
        return {"skipped": reason}
    try:
        base, uv_image = docker_env.base_images((project / "Dockerfile").read_text())
        docker_env.seed_python_image(base)
        docker_env.seed_uv_image(uv_image.rsplit(":", 1)[1])
        if not (project / "uv.lock").exists():
            docker_env.lock_in_base_image(project, base, uv_image)
    except RuntimeError as error:
        log(f"Docker part skipped: {error}")
        return {"skipped": str(error)}
    tag = f"bench-{project.name}:latest"
    # Layers rebuilt from scratch; uv's download cache (a BuildKit cache mount) stays warm, as on
    # a build machine that has built before.
    build_s = build(project, tag, "--no-cache")
    # A source change: only the project's own layers are rebuilt.
    main_py = project / "src" / package_name(project) / "main.py"
    main_py.write_text(main_py.read_text() + f"\n# bench: a source change at {time.time()}\n")  # never cached
    rebuild_s = build(project, tag)
    size, base_size = image_size(tag), image_size(base)
    log(
        f"docker build {build_s:.1f} s (rebuild after a source change {rebuild_s:.1f} s), "
        f"image {size / 1e6:.0f} MB, {(size - base_size) / 1e6:.0f} MB over {base}"
    )
    servers = []
    try:
        for workers in args.docker_workers:
            group = selected(docker_servers(project, tag, workers), args.only)
            if group:
                measure_group(group, args, logs_dir)
                servers += group
    finally:
        docker_env.docker("image", "rm", tag, check=False)
    return {
        "base": base,
        "build_s": build_s,
        "rebuild_s": rebuild_s,
        "image_mb": size / 1e6,
        "over_base_mb": (size - base_size) / 1e6,
        "servers": servers,
    }
