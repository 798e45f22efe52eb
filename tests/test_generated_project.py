"""The baked project's own commands pass: `make install`, `make lint`, `make test`, for every server x
packaging (one installed project each; `make test`'s tier: a newcomer's box needs no Docker for these)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import COMBINATIONS, HOST_PYTHON, bake_project, project_env, run

pytestmark = pytest.mark.install

COMBINATION_PARAMS = [pytest.param(server, packaging, id=f"{server}-{packaging}") for server, packaging in COMBINATIONS]
LONGEST_SLUG = "a-very-long-service-name-that-fills-the-whole-sixty-four-chars-x"


def assert_make(target: str, project: Path, env: dict[str, str] | None = None) -> None:
    result = run(["make", target], project, env=env)
    assert result.returncode == 0, f"make {target} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"


@pytest.mark.parametrize(("server", "packaging"), COMBINATION_PARAMS)
def test_make_lint_passes(installed_project: Callable[..., Path], server: str, packaging: str) -> None:
    assert_make("lint", installed_project(server, packaging))


@pytest.mark.parametrize(("server", "packaging"), COMBINATION_PARAMS)
def test_make_test_passes(installed_project: Callable[..., Path], server: str, packaging: str) -> None:
    assert_make("test", installed_project(server, packaging))


@pytest.mark.parametrize("target", ["lint", "test"])
def test_sentry_yes_passes_make(installed_project: Callable[..., Path], target: str) -> None:
    """Error tracking's dependency installs; its module lints and its tests (no DSN, then a fake one) pass."""
    assert_make(target, installed_project(variant="sentry", sentry="yes"))


@pytest.mark.parametrize(("server", "packaging"), COMBINATION_PARAMS)
def test_longest_names_still_lint(
    installed_project: Callable[..., Path], tmp_path: Path, server: str, packaging: str
) -> None:
    """A 64-character slug and package name: lines still fit ruff's limit and format. Linted with the
    ruff of the combination's installed project, so no second install (names change no types: mypy
    runs in `make lint` above)."""
    assert len(LONGEST_SLUG) == 64
    project = bake_project(
        tmp_path, python_version=HOST_PYTHON, server=server, packaging=packaging, project_slug=LONGEST_SLUG
    )
    tools = installed_project(server, packaging) / ".venv" / "bin"
    env = project_env()
    lint = [
        run([str(tools / "ruff"), "check", "--no-cache", "."], project, env=env),
        run([str(tools / "ruff"), "format", "--check", "--no-cache", "."], project, env=env),
    ]

    assert [(r.returncode, r.stdout[-2000:]) for r in lint] == [(0, r.stdout[-2000:]) for r in lint]


@pytest.mark.slow
def test_install_works_with_only_python_venv_and_pip(tmp_path: Path) -> None:
    """A box without uv: the Makefile falls back to venv + pip, and the tests pass."""
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "python3").symlink_to(sys.executable)
    path = os.pathsep.join([str(tools), "/usr/bin", "/bin"])
    assert not any(Path(folder, "uv").exists() for folder in path.split(os.pathsep))
    project = bake_project(tmp_path, python_version=HOST_PYTHON)
    env = project_env(PATH=path)

    assert_make("install", project, env)
    assert not (project / "uv.lock").exists()  # pip, not uv, did the install
    assert_make("test", project, env)
