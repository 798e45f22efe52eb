"""The baked project's own commands pass: `make install`, `make lint`, `make test`, for every runner."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import RUNNERS, bake_project, project_env, run

pytestmark = pytest.mark.install

LONGEST_SLUG = "a-very-long-service-name-that-fills-the-whole-sixty-four-chars-x"


def assert_make(target: str, project: Path, env: dict[str, str] | None = None) -> None:
    result = run(["make", target], project, env=env)
    assert result.returncode == 0, f"make {target} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"


@pytest.mark.parametrize("runner", RUNNERS)
def test_make_lint_passes(installed_project: Callable[..., Path], runner: str) -> None:
    assert_make("lint", installed_project(runner))


@pytest.mark.parametrize("runner", RUNNERS)
def test_make_test_passes(installed_project: Callable[..., Path], runner: str) -> None:
    assert_make("test", installed_project(runner))


@pytest.mark.parametrize("runner", RUNNERS)
def test_longest_names_still_lint(installed_project: Callable[..., Path], runner: str) -> None:
    assert len(LONGEST_SLUG) == 64
    project = installed_project(runner, variant="longest-name", project_slug=LONGEST_SLUG)

    assert_make("lint", project)


@pytest.mark.slow
def test_install_works_with_only_python_venv_and_pip(tmp_path: Path) -> None:
    """A box without uv: the Makefile falls back to venv + pip, and the tests pass."""
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "python3").symlink_to(sys.executable)
    path = os.pathsep.join([str(tools), "/usr/bin", "/bin"])
    assert not any(Path(folder, "uv").exists() for folder in path.split(os.pathsep))
    project = bake_project(tmp_path, python_version=f"{sys.version_info.major}.{sys.version_info.minor}")
    env = project_env(PATH=path)

    assert_make("install", project, env)
    assert not (project / "uv.lock").exists()  # pip, not uv, did the install
    assert_make("test", project, env)
