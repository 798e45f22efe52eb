"""A team's first changes to a baked project, made the way a user makes them: by editing its files.

Each edit finds its place in the generated file as a person would (the list of dependencies, the
router imports, the end of the Settings class) and fails loudly when the file no longer has it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.conftest import project_env, tool

# A small pure-Python package no generated project depends on, even indirectly.
DEPENDENCY = "humanize>=4.9,<5"
ROUTER = "items"
SETTING = "page_size"
SETTING_DEFAULT = 50

ROUTER_MODULE = '''"""Items: the team's first resource."""

from typing import Annotated

import humanize
from fastapi import APIRouter, Depends

from {package}.settings import Settings, get_settings

router = APIRouter(prefix="/items", tags=["items"])


# A setting read the way FastAPI's docs read one ("Settings and Environment Variables").
@router.get("/count")
def count_items(settings: Annotated[Settings, Depends(get_settings)]) -> dict[str, str]:
    return {{"count": humanize.intcomma(1234567), "page_size": str(settings.page_size)}}
'''
# The settings given to create_app() are the ones the route's Depends(get_settings) reads (issue 26, item 5).
ROUTER_TEST = """from fastapi.testclient import TestClient

from {package}.main import create_app
from {package}.settings import Settings


def test_count_items_reads_the_new_dependency_and_setting() -> None:
    with TestClient(create_app(Settings(_env_file=None, page_size=7))) as client:
        response = client.get("/items/count")

    assert response.json() == {{"count": "1,234,567", "page_size": "7"}}
"""


def replace_once(path: Path, pattern: str, replacement: str | Callable[[re.Match[str]], str]) -> None:
    text = path.read_text(encoding="utf-8")
    new_text, count = re.subn(pattern, replacement, text, count=1, flags=re.MULTILINE)
    assert count == 1, f"{path.name}: no place for the edit ({pattern!r})"
    path.write_text(new_text, encoding="utf-8")


def add_dependency(project: Path, requirement: str = DEPENDENCY) -> None:
    """`uv add` the requirement, as a user adds one (--frozen: pyproject.toml only, no lock or install
    yet). uv appends it to the unsorted [project] dependencies; a server switch later must merge around
    it (issue 26, item 4)."""
    subprocess.run(
        [tool("uv"), "add", "--frozen", requirement], cwd=project, env=project_env(), check=True, capture_output=True
    )


def add_router(project: Path, package: str) -> None:
    """routers/items.py with its test, and the two lines in main.py that include it."""
    (project / "src" / package / "routers" / f"{ROUTER}.py").write_text(
        ROUTER_MODULE.format(package=package), encoding="utf-8"
    )
    tests = project / "tests" / "routers"
    tests.mkdir(parents=True, exist_ok=True)
    (tests / f"test_{ROUTER}.py").write_text(ROUTER_TEST.format(package=package), encoding="utf-8")
    main = project / "src" / package / "main.py"
    replace_once(
        main,
        rf"^from {package}\.routers import (.+)$",
        lambda match: f"from {package}.routers import {', '.join(sorted([*match.group(1).split(', '), ROUTER]))}",
    )
    # A copy of the line that includes the health router (`app.include_router(health.router)`).
    replace_once(main, r"^( +)(\S.*?)health\.router\)\n", rf"\g<0>\1\g<2>{ROUTER}.router)\n")


def add_setting(project: Path, package: str) -> None:
    """A field at the end of the Settings class, and its line in .env.example."""
    replace_once(
        project / "src" / package / "settings.py",
        r"^(class Settings\(BaseSettings\):\n(?:(?:    .*)?\n)*?)(?=\n*\S)",
        rf"\1\n    # Items per page of a listing.\n    {SETTING}: int = {SETTING_DEFAULT}\n",
    )
    env_example = project / ".env.example"
    with env_example.open("a", encoding="utf-8") as file:
        file.write(f"\n# Items per page of a listing.\n{setting_variable(package)}={SETTING_DEFAULT}\n")


def setting_variable(package: str) -> str:
    return f"{package.upper()}_{SETTING.upper()}"


def make_first_changes(project: Path, package: str) -> None:
    add_dependency(project)
    add_setting(project, package)
    add_router(project, package)


def run_bounded(args: list[str], cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run a command that should stop by itself; past the timeout, stop its whole process group."""
    with subprocess.Popen(
        args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
            stderr += f"\n(still running after {timeout} s: stopped by the test)"
    return subprocess.CompletedProcess(args, process.returncode, stdout, stderr)
