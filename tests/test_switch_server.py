"""Switching runner without losing work (issue 14, item 3), the way the generated README says:
`cruft update --variables-to-update '{"runner": ...}'` in a committed project.

A project baked with the uvicorn runner gets a team's first changes (a dependency, a setting, a
router and its test: tests/support/day_one.py), then goes uvicorn -> gunicorn -> docker -> uvicorn.
After each switch: no conflict, every edit still there, the old runner's files gone and the new
one's present, and `make install` then `make test` pass (the user's own test among them).
The template is a git copy of this checkout, so cruft clones it offline.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import project_env, run
from tests.support.day_one import ROUTER, SETTING, make_first_changes, setting_variable
from tests.test_cruft import bake_from, commit_all, cruft, git, read_cruft_file, template_repository
from tests.test_hooks import load_hook

pytestmark = [pytest.mark.install, pytest.mark.slow]

PACKAGE = "my_fastapi_service"
RUNNER_PATH = ("uvicorn", "gunicorn", "docker", "uvicorn")
SWITCHES = list(itertools.pairwise(RUNNER_PATH))
SWITCH_IDS = [f"{old}-to-{new}" for old, new in SWITCHES]
# The user's own files: they must come through byte for byte.
USER_FILES = (f"src/{PACKAGE}/routers/{ROUTER}.py", f"tests/routers/test_{ROUTER}.py")
# The user's lines in files the template owns: each must still be there.
USER_LINES = {
    "main.py import": (f"src/{PACKAGE}/main.py", f"from {PACKAGE}.routers import health, {ROUTER}, root\n"),
    "main.py include": (f"src/{PACKAGE}/main.py", f"{ROUTER}.router)\n"),
    "pyproject.toml dependency": ("pyproject.toml", '  "humanize>=4.9,<5",\n'),
    "settings.py field": (f"src/{PACKAGE}/settings.py", f"    {SETTING}: int = 50\n"),
    ".env.example line": (".env.example", f"{setting_variable(PACKAGE)}=50\n"),
}
USER_TEST = "test_count_items_reads_the_new_dependency_and_setting PASSED"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def project_files(project: Path) -> set[str]:
    """The project's files, without its virtualenv and git repository."""
    names = (path.relative_to(project) for path in project.rglob("*") if path.is_file())
    return {name.as_posix() for name in names if name.parts[0] not in {".venv", ".git"}}


@pytest.fixture(scope="module")
def runner_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """Each runner's files, from the post-gen hook's own table."""
    hook = load_hook("post_gen_project", tmp_path_factory.mktemp("hook"))
    return {runner: {path.as_posix() for path in hook.runner_files(runner)} for runner in RUNNER_PATH}


@pytest.fixture(scope="module")
def switches(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], dict[str, Any]]:
    root = tmp_path_factory.mktemp("switch-runner")
    template, _ = template_repository(root / "template")
    project = bake_from(template, root / "projects", runner=RUNNER_PATH[0])
    git(project, "init", "--quiet", "--initial-branch", "main")
    commit_all(project, "Generated from the template")
    make_first_changes(project, PACKAGE)
    install = run(["make", "install"], project)
    assert install.returncode == 0, install.stdout + install.stderr
    commit_all(project, "Our first changes")
    user_files = {name: digest(project / name) for name in USER_FILES}

    results: dict[tuple[str, str], dict[str, Any]] = {}
    for old, new in SWITCHES:
        update = cruft(project, "update", "--skip-apply-ask", "--variables-to-update", json.dumps({"runner": new}))
        status = git(project, "status", "--porcelain")
        rejects = sorted(str(path.relative_to(project)) for path in project.rglob("*.rej"))
        result = {
            "project": project,
            "update": update,
            "conflicts": [line for line in status.splitlines() if line[:2] in {"UU", "AA", "DU", "UD"}] + rejects,
            "user_files": {name: digest(project / name) == user_files[name] for name in USER_FILES},
            "user_lines": {
                edit: line in (project / path).read_text(encoding="utf-8") for edit, (path, line) in USER_LINES.items()
            },
            "files": project_files(project),
            "recorded_runner": read_cruft_file(project)["context"]["cookiecutter"]["runner"],
        }
        result["install"] = run(["make", "install"], project)
        result["test"] = run(["make", "test"], project, env=project_env(PYTEST_ADDOPTS="-v"))
        # As the README says; --allow-empty keeps the path going when a broken switch changed nothing.
        git(project, "add", "--all")
        git(project, "commit", "--quiet", "--allow-empty", "--message", f"Runner: {new}")
        results[(old, new)] = result
    return results


@pytest.mark.parametrize("switch", SWITCHES, ids=SWITCH_IDS)
def test_cruft_update_succeeds(switches: dict[tuple[str, str], dict[str, Any]], switch: tuple[str, str]) -> None:
    update = switches[switch]["update"]

    assert update.returncode == 0, update.stdout + update.stderr


@pytest.mark.parametrize("switch", SWITCHES, ids=SWITCH_IDS)
def test_the_switch_has_no_conflict(switches: dict[tuple[str, str], dict[str, Any]], switch: tuple[str, str]) -> None:
    assert switches[switch]["conflicts"] == []


@pytest.mark.parametrize("switch", SWITCHES, ids=SWITCH_IDS)
def test_cruft_records_the_new_runner(switches: dict[tuple[str, str], dict[str, Any]], switch: tuple[str, str]) -> None:
    assert switches[switch]["recorded_runner"] == switch[1]


@pytest.mark.parametrize("name", USER_FILES)
@pytest.mark.parametrize("switch", SWITCHES, ids=SWITCH_IDS)
def test_the_users_files_come_through_unchanged(
    switches: dict[tuple[str, str], dict[str, Any]], switch: tuple[str, str], name: str
) -> None:
    assert switches[switch]["user_files"][name]


@pytest.mark.parametrize("edit", USER_LINES)
@pytest.mark.parametrize("switch", SWITCHES, ids=SWITCH_IDS)
def test_the_users_edit_of_a_template_file_stays(
    switches: dict[tuple[str, str], dict[str, Any]], switch: tuple[str, str], edit: str
) -> None:
    assert switches[switch]["user_lines"][edit]


@pytest.mark.parametrize("switch", SWITCHES, ids=SWITCH_IDS)
def test_the_new_runners_files_are_there(
    switches: dict[tuple[str, str], dict[str, Any]], runner_files: dict[str, set[str]], switch: tuple[str, str]
) -> None:
    assert runner_files[switch[1]] - switches[switch]["files"] == set()


@pytest.mark.parametrize("switch", SWITCHES, ids=SWITCH_IDS)
def test_the_old_runners_files_are_gone(
    switches: dict[tuple[str, str], dict[str, Any]], runner_files: dict[str, set[str]], switch: tuple[str, str]
) -> None:
    old, new = switch
    only_old = runner_files[old] - runner_files[new]

    assert only_old & switches[switch]["files"] == set()


@pytest.mark.parametrize("switch", SWITCHES, ids=SWITCH_IDS)
def test_make_install_after_the_switch(
    switches: dict[tuple[str, str], dict[str, Any]], switch: tuple[str, str]
) -> None:
    result = switches[switch]["install"]

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("switch", SWITCHES, ids=SWITCH_IDS)
def test_make_test_after_the_switch(switches: dict[tuple[str, str], dict[str, Any]], switch: tuple[str, str]) -> None:
    result = switches[switch]["test"]

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr


@pytest.mark.parametrize("switch", SWITCHES, ids=SWITCH_IDS)
def test_the_users_test_runs_after_the_switch(
    switches: dict[tuple[str, str], dict[str, Any]], switch: tuple[str, str]
) -> None:
    assert USER_TEST in switches[switch]["test"].stdout
