"""The generated project stays one a team can own: within its line budget, app code written as
FastAPI's docs write it, and server internals only in serving/."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

# Lines of src/<package>, comments included (issue: "a generated project a team can own").
BUDGET = {"uvicorn": 700, "gunicorn": 780, "docker": 780}
# What the metrics answer (issue 16, default no) may add: serving/metrics.py and its wiring.
METRICS_EXTRA = 200
# A name's private attribute (`thing._name`), other than the object's own (`self._x`, `cls._x`).
PRIVATE_ATTRIBUTE = re.compile(r"\b(?!self\b|cls\b)[A-Za-z_]\w*\._[a-z]\w*")
APP_CODE = ("main.py", "settings.py", "lifespan.py", "middleware.py", "routers")


def package_dir(project: Path) -> Path:
    (package,) = (path for path in (project / "src").iterdir() if path.is_dir())
    return package


def source_lines(folder: Path) -> int:
    return sum(len(path.read_text().splitlines()) for path in folder.rglob("*.py"))


def app_code_files(project: Path) -> list[Path]:
    package = package_dir(project)
    return [
        path
        for name in APP_CODE
        for path in ([package / name] if name.endswith(".py") else (package / name).rglob("*.py"))
    ]


def bake(cookies: Any, monkeypatch: pytest.MonkeyPatch, runner: str, **answers: str) -> Path:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # as tests/test_bake.py: no uv found by the hooks
    result = cookies.bake(extra_context={"runner": runner, **answers})
    assert result.exception is None, result.exception
    return Path(result.project_path)


@pytest.mark.parametrize("runner", BUDGET)
def test_source_stays_within_its_line_budget(cookies: Any, monkeypatch: pytest.MonkeyPatch, runner: str) -> None:
    assert source_lines(package_dir(bake(cookies, monkeypatch, runner))) <= BUDGET[runner]


@pytest.mark.parametrize("runner", BUDGET)
def test_metrics_stay_within_their_line_budget(cookies: Any, monkeypatch: pytest.MonkeyPatch, runner: str) -> None:
    project = bake(cookies, monkeypatch, runner, metrics="yes")

    assert source_lines(package_dir(project)) <= BUDGET[runner] + METRICS_EXTRA


@pytest.mark.parametrize("runner", BUDGET)
def test_app_code_names_no_private_attribute(cookies: Any, monkeypatch: pytest.MonkeyPatch, runner: str) -> None:
    project = bake(cookies, monkeypatch, runner)
    found = {
        f"{path.name}: {match}"
        for path in app_code_files(project)
        for match in PRIVATE_ATTRIBUTE.findall(path.read_text())
    }

    assert found == set()


@pytest.mark.parametrize("runner", BUDGET)
def test_app_code_imports_no_server(cookies: Any, monkeypatch: pytest.MonkeyPatch, runner: str) -> None:
    project = bake(cookies, monkeypatch, runner)
    server_imports = re.compile(r"^\s*(?:from|import) (?:uvicorn|gunicorn|uvicorn_worker)\b", re.MULTILINE)

    assert [path.name for path in app_code_files(project) if server_imports.search(path.read_text())] == []


@pytest.mark.parametrize("runner", BUDGET)
def test_routers_are_plain_apirouters(cookies: Any, monkeypatch: pytest.MonkeyPatch, runner: str) -> None:
    routers = package_dir(bake(cookies, monkeypatch, runner)) / "routers"
    declarations = [
        line.strip() for path in routers.glob("*.py") for line in path.read_text().splitlines() if "APIRouter(" in line
    ]

    assert sorted(declarations) == ['router = APIRouter(tags=["health"])', 'router = APIRouter(tags=["root"])']


@pytest.mark.parametrize("runner", BUDGET)
def test_no_file_points_at_the_templates_own_files(cookies: Any, monkeypatch: pytest.MonkeyPatch, runner: str) -> None:
    project = bake(cookies, monkeypatch, runner)
    mentions = {
        path.relative_to(project).as_posix()
        for path in project.rglob("*")
        if path.is_file() and "bench/" in path.read_text(errors="replace")
    }

    assert mentions == set()
