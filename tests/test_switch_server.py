"""Switching server or packaging without losing work (issues 14 and 22), with the exact commands the
generated README gives: `cruft update --skip-apply-ask --variables-to-update '{"server": ...}'` in a
committed project (the prompt must be skipped: cruft 2.16 with typer 0.29 crashes at it).

A project baked with the defaults (uvicorn on a host) gets a team's first changes (a dependency, a
setting, a router and its test: tests/support/day_one.py), then switches server, packaging, server
and packaging again, round to where it began: uvicorn-host -> gunicorn-host -> gunicorn-docker ->
uvicorn-docker -> uvicorn-host. Each step runs the command the project's README of that moment
gives. After each: no conflict, every edit still there, the files of the old answer gone and the new
one's present, and `make install` then `make test` pass (the user's own test among them). The
template is a git copy of this checkout, so cruft clones it offline.
"""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import project_env, run, tool
from tests.support.day_one import ROUTER, SETTING, make_first_changes, setting_variable
from tests.test_bake import expected_files
from tests.test_cruft import GIT_IDENTITY, bake_from, commit_all, git, read_cruft_file, template_repository
from tests.test_generated_readme import changed_answers, switching_commands

pytestmark = [pytest.mark.install, pytest.mark.slow]

PACKAGE = "my_fastapi_service"
# (server, packaging) in turn: each server switch and each packaging switch, both ways.
PATH = (("uvicorn", "host"), ("gunicorn", "host"), ("gunicorn", "docker"), ("uvicorn", "docker"), ("uvicorn", "host"))
SWITCHES = list(itertools.pairwise(PATH))
SWITCH_IDS = [f"{'-'.join(old)}-to-{'-'.join(new)}" for old, new in SWITCHES]
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
    """The files the user would commit: git's view, with the project's .gitignore (so without the
    virtualenv, caches and the like), and without files already deleted from the working tree. Nor
    uv.lock: `make install` writes it with uv (the project's to commit, not the template's)."""
    listed = git(project, "ls-files", "--cached", "--others", "--exclude-standard").splitlines()
    return {name for name in listed if (project / name).is_file()} - {"uv.lock"}


def readme_command(project: Path, old: tuple[str, str], new: tuple[str, str]) -> list[str] | None:
    """The project's README command for this switch (the one answer that changes), or None."""
    answer = "server" if old[0] != new[0] else "packaging"
    command = switching_commands((project / "README.md").read_text(encoding="utf-8")).get(answer)
    expected = {"server": new[0]} if answer == "server" else {"packaging": new[1]}
    return command if command and changed_answers(command) == expected else None


@pytest.fixture(scope="module")
def switches(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[tuple[str, str], tuple[str, str]], dict[str, Any]]:
    root = tmp_path_factory.mktemp("switch-server")
    template, _ = template_repository(root / "template")
    project = bake_from(template, root / "projects", server=PATH[0][0], packaging=PATH[0][1])
    git(project, "init", "--quiet", "--initial-branch", "main")
    commit_all(project, "Generated from the template")
    make_first_changes(project, PACKAGE)
    install = run(["make", "install"], project)
    assert install.returncode == 0, install.stdout + install.stderr
    commit_all(project, "Our first changes")
    user_files = {name: digest(project / name) for name in USER_FILES}

    results: dict[tuple[tuple[str, str], tuple[str, str]], dict[str, Any]] = {}
    for old, new in SWITCHES:
        command = readme_command(project, old, new)
        result: dict[str, Any] = {"command": command}
        if command is not None:
            # The README's command as written; `cruft` is the test environment's.
            update = run([tool("cruft"), *command[1:]], project, env=project_env(**GIT_IDENTITY), timeout=300)
            status = git(project, "status", "--porcelain")
            rejects = sorted(str(path.relative_to(project)) for path in project.rglob("*.rej"))
            answers = read_cruft_file(project)["context"]["cookiecutter"]
            result |= {
                "update": update,
                "conflicts": [line for line in status.splitlines() if line[:2] in {"UU", "AA", "DU", "UD"}] + rejects,
                "user_files": {name: digest(project / name) == user_files[name] for name in USER_FILES},
                "user_lines": {
                    edit: line in (project / path).read_text(encoding="utf-8")
                    for edit, (path, line) in USER_LINES.items()
                },
                "files": project_files(project),
                "expected_files": expected_files(answers) | set(USER_FILES),
                "recorded": (answers["server"], answers["packaging"]),
                "install": run(["make", "install"], project),
                "test": run(["make", "test"], project, env=project_env(PYTEST_ADDOPTS="-v")),
            }
        # As the README says; --allow-empty keeps the path going when a broken switch changed nothing.
        git(project, "add", "--all")
        git(project, "commit", "--quiet", "--allow-empty", "--message", f"Switch to {'-'.join(new)}")
        results[(old, new)] = result
    return results


def switched(switches: dict[Any, dict[str, Any]], switch: Any) -> dict[str, Any]:
    result = switches[switch]
    if result["command"] is None:
        pytest.fail("the README gives no `cruft update --variables-to-update` for this switch")
    return result


@pytest.mark.parametrize("switch", SWITCHES, ids=SWITCH_IDS)
def test_the_readme_gives_the_command(switches: dict[Any, dict[str, Any]], switch: Any) -> None:
    assert switches[switch]["command"] is not None


@pytest.mark.parametrize("switch", SWITCHES, ids=SWITCH_IDS)
def test_cruft_update_succeeds(switches: dict[Any, dict[str, Any]], switch: Any) -> None:
    update = switched(switches, switch)["update"]

    assert update.returncode == 0, update.stdout + update.stderr


@pytest.mark.parametrize("switch", SWITCHES, ids=SWITCH_IDS)
def test_the_switch_has_no_conflict(switches: dict[Any, dict[str, Any]], switch: Any) -> None:
    assert switched(switches, switch)["conflicts"] == []


@pytest.mark.parametrize("switch", SWITCHES, ids=SWITCH_IDS)
def test_cruft_records_the_new_answers(switches: dict[Any, dict[str, Any]], switch: Any) -> None:
    assert switched(switches, switch)["recorded"] == switch[1]


@pytest.mark.parametrize("name", USER_FILES)
@pytest.mark.parametrize("switch", SWITCHES, ids=SWITCH_IDS)
def test_the_users_files_come_through_unchanged(switches: dict[Any, dict[str, Any]], switch: Any, name: str) -> None:
    assert switched(switches, switch)["user_files"][name]


@pytest.mark.parametrize("edit", USER_LINES)
@pytest.mark.parametrize("switch", SWITCHES, ids=SWITCH_IDS)
def test_the_users_edit_of_a_template_file_stays(switches: dict[Any, dict[str, Any]], switch: Any, edit: str) -> None:
    assert switched(switches, switch)["user_lines"][edit]


@pytest.mark.parametrize("switch", SWITCHES, ids=SWITCH_IDS)
def test_the_project_has_exactly_the_new_answers_files(switches: dict[Any, dict[str, Any]], switch: Any) -> None:
    """The new answer's files arrive, the old one's go (none was edited), nothing else appears."""
    result = switched(switches, switch)
    files, expected = result["files"], result["expected_files"]

    assert (sorted(files - expected), sorted(expected - files)) == ([], [])


@pytest.mark.parametrize("switch", SWITCHES, ids=SWITCH_IDS)
def test_make_install_after_the_switch(switches: dict[Any, dict[str, Any]], switch: Any) -> None:
    result = switched(switches, switch)["install"]

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("switch", SWITCHES, ids=SWITCH_IDS)
def test_make_test_after_the_switch(switches: dict[Any, dict[str, Any]], switch: Any) -> None:
    result = switched(switches, switch)["test"]

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr


@pytest.mark.parametrize("switch", SWITCHES, ids=SWITCH_IDS)
def test_the_users_test_runs_after_the_switch(switches: dict[Any, dict[str, Any]], switch: Any) -> None:
    assert USER_TEST in switched(switches, switch)["test"].stdout
