"""Shared fixtures: baking the template and installing baked projects (cached per test process)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cookiecutter.main import cookiecutter

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
# The answers' choices, from their one source: cookiecutter.json (the hooks lay out _variants/ from them).
CHOICES = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text(encoding="utf-8"))
SERVERS: tuple[str, ...] = tuple(CHOICES["server"])
PACKAGINGS: tuple[str, ...] = tuple(CHOICES["packaging"])
# The databases a project can have; the first, "none", is the default.
DATABASES: tuple[str, ...] = tuple(CHOICES["database"])
# Every server in every packaging, as (server, packaging); the defaults first.
COMBINATIONS: tuple[tuple[str, str], ...] = tuple((server, packaging) for packaging in PACKAGINGS for server in SERVERS)
# Projects installed on this machine target the Python that runs the tests.
HOST_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
# The tools the tests use (uv among them) live beside the interpreter running pytest.
TOOLS_DIR = Path(sys.executable).parent


def folder_is_chosen(values_folder: Path, answers: dict[str, str]) -> bool:
    """Whether `_variants/<a>+<b>/<values a>+<values b>/` is laid in for these answers: each part of the
    folder's name lists, separated by commas, the values of its answer that choose it."""
    names, parts = values_folder.parent.name.split("+"), values_folder.name.split("+")
    return len(names) == len(parts) and all(
        answers[name] in part.split(",") for name, part in zip(names, parts, strict=True)
    )


def tool(name: str) -> str:
    """A tool from the test environment (the template's `test` dependency group), else from PATH."""
    found = shutil.which(name, path=f"{TOOLS_DIR}{os.pathsep}{os.environ.get('PATH', '')}")
    if found is None:
        pytest.fail(f"{name} is not installed: install the template's test dependency group")
    return found


def project_env(**overrides: str) -> dict[str, str]:
    """Environment for commands run in a baked project: our tools first, no surprise downloads."""
    env = dict(os.environ)
    env["PATH"] = f"{TOOLS_DIR}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("UV_PYTHON_DOWNLOADS", "never")
    env.pop("VIRTUAL_ENV", None)
    # A baked project's make runs as a top-level make, even when the suite itself runs under `make test`.
    for name in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES"):
        env.pop(name, None)
    for name in ("HOST", "PORT", "WEB_CONCURRENCY"):
        env.pop(name, None)
    env.update(overrides)
    return env


def run(
    args: list[str], cwd: Path, *, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run a command to completion, capturing its output (asserting is the caller's job)."""
    return subprocess.run(
        args, cwd=cwd, env=env or project_env(), capture_output=True, text=True, timeout=timeout, check=False
    )


def bake_project(output_dir: Path, **answers: str) -> Path:
    """Generate a project without prompts; returns its folder. Raises what cookiecutter raises."""
    return Path(cookiecutter(str(TEMPLATE_DIR), no_input=True, output_dir=str(output_dir), extra_context=answers))


@pytest.fixture(scope="session")
def installed_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Path]]:
    """Factory: a baked project with its .venv installed by `make install`, made once per test process
    for each (server, packaging, variant). `customize(project)` runs before the install, for variants
    such as a test-only slow route; give each customisation its own `variant` name."""
    made: dict[tuple[str, str, str], Path] = {}

    def make(
        server: str = SERVERS[0],
        packaging: str = PACKAGINGS[0],
        *,
        variant: str = "plain",
        customize: Callable[[Path], None] | None = None,
        **answers: Any,
    ) -> Path:
        key = (server, packaging, variant)
        if key not in made:
            output = tmp_path_factory.mktemp(f"{server}-{packaging}-{variant}")
            answers = {"python_version": HOST_PYTHON, **answers, "server": server, "packaging": packaging}
            project = bake_project(output, **answers)
            if customize:
                customize(project)
            result = run(["make", "install"], project)
            assert result.returncode == 0, f"make install failed:\n{result.stdout}\n{result.stderr}"
            made[key] = project
        return made[key]

    yield make
    for project in made.values():
        shutil.rmtree(project / ".venv", ignore_errors=True)
