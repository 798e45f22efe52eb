"""Code written the way FastAPI's docs write it passes the generated project's `make lint` (issue 26,
item 6): the docs leave out return annotations and import inside a function at times. App code accepts
that; `serving/` (the process's own code) keeps the strict rules."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import HOST_PYTHON, bake_project, project_env, run

pytestmark = pytest.mark.install

# A router as the docs' tutorial writes one: no return annotations, a lazy import in a function.
DOCS_ROUTER = """from fastapi import APIRouter, HTTPException

router = APIRouter(prefix="/users", tags=["users"])

fake_users = {"rick": {"username": "rick"}, "morty": {"username": "morty"}}


@router.get("/")
async def read_users():
    return list(fake_users.values())


@router.get("/{username}")
async def read_user(username: str):
    if username not in fake_users:
        raise HTTPException(status_code=404, detail="User not found")
    return fake_users[username]


def slugify(name: str):
    import re

    return re.sub(r"[^a-z0-9]+", "-", name.lower())
"""


def lint(project: Path, tools: Path) -> list[tuple[int, str]]:
    env = project_env()
    results = [
        run([str(tools / "ruff"), "check", "--no-cache", "."], project, env=env),
        run([str(tools / "mypy"), "--no-incremental"], project, env=env),
    ]
    return [(result.returncode, result.stdout[-2000:]) for result in results]


def test_a_docs_router_passes_lint(installed_project: Callable[..., Path], tmp_path: Path) -> None:
    tools = installed_project() / ".venv" / "bin"
    project = bake_project(tmp_path, python_version=HOST_PYTHON)
    package = next(path for path in (project / "src").iterdir() if path.is_dir())
    (package / "routers" / "users.py").write_text(DOCS_ROUTER, encoding="utf-8")

    results = lint(project, tools)
    assert results == [(0, out) for _, out in results]


def test_serving_stays_strict(installed_project: Callable[..., Path], tmp_path: Path) -> None:
    tools = installed_project() / ".venv" / "bin"
    project = bake_project(tmp_path, python_version=HOST_PYTHON)
    package = next(path for path in (project / "src").iterdir() if path.is_dir())
    (package / "serving" / "extra.py").write_text(DOCS_ROUTER, encoding="utf-8")

    (_, ruff_out), (_, mypy_out) = lint(project, tools)
    assert "PLC0415" in ruff_out
    assert "missing a return type annotation" in mypy_out
