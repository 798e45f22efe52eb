"""One image name for `make image`, `make up` and compose, and one line when BuildKit is missing.

A recording `docker` stands in for the engine (fast tier): the tests read what make asked of it.
The real builds are the Docker tier's (tests/test_docker.py)."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest
import yaml

from tests.conftest import bake_project, project_env, run

# A docker CLI that logs each call; `build --help` fails as Docker 23+ does without buildx when
# NO_BUILDX is set, and answers as Docker 20.10 (BuildKit built in) otherwise.
RECORDING_DOCKER = """#!/bin/sh
echo "$*" >> "$DOCKER_CALLS"
if [ "$1 $2" = "build --help" ] && [ -n "$NO_BUILDX" ]; then
  echo "ERROR: BuildKit is enabled but the buildx component is missing or broken." >&2
  echo "       Install the buildx component to build images with BuildKit:" >&2
  exit 1
fi
exit 0
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    baked = bake_project(tmp_path_factory.mktemp("image-name"), packaging="docker", kubernetes="yes")
    (baked / "uv.lock").write_text("# stands in for make lock's output\n")
    locked = (baked / "pyproject.toml").stat().st_mtime
    os.utime(baked / "pyproject.toml", (locked - 10, locked - 10))  # older than uv.lock: make needs no lock
    return baked


def make(project: Path, tmp_path: Path, *targets: str, no_buildx: bool = False) -> tuple[int, str, list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    docker = bin_dir / "docker"
    docker.write_text(RECORDING_DOCKER)
    docker.chmod(0o755)
    calls = tmp_path / "calls"
    calls.touch()
    env = project_env(
        PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", DOCKER_CALLS=str(calls), NO_BUILDX="1" if no_buildx else ""
    )
    result = run(["make", "--no-print-directory", *targets], project, env=env)
    return result.returncode, result.stderr, calls.read_text().splitlines()


def compose_image(project: Path, image_tag: str) -> str:
    """compose.yaml's app image, interpolated as compose does with IMAGE_TAG set or not."""
    written = yaml.safe_load((project / "compose.yaml").read_text())["services"]["app"]["image"]
    return re.sub(r"\$\{IMAGE_TAG:-(\w+)\}", image_tag or r"\1", written)


def test_make_image_builds_the_name_compose_runs(project: Path, tmp_path: Path) -> None:
    code, stderr, calls = make(project, tmp_path, "up")

    assert code == 0, stderr
    build = next(call for call in calls if call.startswith("build --tag"))
    built = shlex.split(build)[2]
    assert built == compose_image(project, "0.1.0") == "ghcr.io/your-org/my-fastapi-service:0.1.0"
    assert calls[-1] == "compose up --detach"


def test_image_ref_and_a_bare_compose_share_the_repository(project: Path, tmp_path: Path) -> None:
    ref = run(["make", "--silent", "image-ref"], project).stdout.strip()

    assert ref == compose_image(project, "0.1.0")
    assert compose_image(project, "").rsplit(":", 1)[0] == ref.rsplit(":", 1)[0]


@pytest.mark.parametrize("target", ["image", "lock"])
def test_missing_buildkit_is_one_line_naming_buildx(project: Path, tmp_path: Path, target: str) -> None:
    code, stderr, calls = make(project, tmp_path, target, no_buildx=True)

    assert code != 0
    ours = [line for line in stderr.splitlines() if not line.startswith("make: ***")]  # make's own trailer
    assert len(ours) == 1, stderr
    assert "install it (Debian and Ubuntu: docker-buildx" in stderr
    assert calls == ["build --help"]  # nothing built


def test_a_docker_with_buildkit_built_in_is_not_refused(project: Path, tmp_path: Path) -> None:
    code, stderr, calls = make(project, tmp_path, "image")

    assert code == 0, stderr
    assert calls == ["build --help", "build --tag ghcr.io/your-org/my-fastapi-service:0.1.0 ."]


def test_release_check_compares_the_overlay_with_compose_s_name(project: Path, tmp_path: Path) -> None:
    overlay = project / "deploy/kubernetes/overlays/production/kustomization.yaml"
    assert run(["make", "release-check"], project, env=project_env(TAG="v0.1.0")).returncode == 0
    compose = project / "compose.yaml"
    original = compose.read_text()
    try:
        compose.write_text(original.replace("ghcr.io/your-org/", "registry.example/team/"))
        result = run(["make", "release-check"], project, env=project_env(TAG="v0.1.0"))
        assert result.returncode != 0
        expected = f"{overlay.relative_to(project)} must deploy registry.example/team/my-fastapi-service:0.1.0"
        assert expected in result.stderr
    finally:
        compose.write_text(original)
