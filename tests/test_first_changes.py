"""Day one with a project baked with every default answer, done as a user does it (issue 14, items 2
and 4): `make install` works with the Python at hand; then a dependency, a setting and a router that
uses both, `make install` and `make test`; and a bad value of the new setting stops `make run` with
one line naming it."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import HOST_PYTHON, bake_project, project_env, run
from tests.support.day_one import make_first_changes, run_bounded, setting_variable

pytestmark = [pytest.mark.install, pytest.mark.slow]

PACKAGE = "my_fastapi_service"
DEPENDENCY_NAME = "humanize"  # tests/support/day_one.py adds it
# make's own line when a recipe fails: "make: *** [Makefile:37: run] Error 2" names the command's status.
MAKE_FAILURE = re.compile(r"^make: \*\*\* .*Error (\d+)$")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def installed_version(project: Path, distribution: str) -> str:
    """The version of `distribution` in the project's .venv, or "missing"."""
    script = f"""import importlib.metadata as m
try:
    print(m.version({distribution!r}))
except m.PackageNotFoundError:
    print("missing")
"""
    return run([str(project / ".venv/bin/python"), "-c", script], project).stdout.strip()


@pytest.fixture(scope="module")
def day_one(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    # Every answer left at its default, python_version included: what `cookiecutter --no-input` gives.
    project = bake_project(tmp_path_factory.mktemp("day-one"))
    first_install = run(["make", "install"], project)
    version = "import sys; print(*sys.version_info[:2], sep='.')"
    venv_python = run([str(project / ".venv/bin/python"), "-c", version], project)
    dependency_before = installed_version(project, DEPENDENCY_NAME)
    make_first_changes(project, PACKAGE)
    install = run(["make", "install"], project)
    dependency_after = installed_version(project, DEPENDENCY_NAME)
    test = run(["make", "test"], project, env=project_env(PYTEST_ADDOPTS="-v"))
    bad_value = run_bounded(
        ["make", "run"],
        project,
        env=project_env(**{setting_variable(PACKAGE): "fifty", "PORT": str(free_port())}),
        timeout=60,
    )
    return {
        "project": project,
        "first_install": first_install,
        "venv_python": venv_python.stdout.strip(),
        "dependency_before": dependency_before,
        "install": install,
        "dependency_after": dependency_after,
        "test": test,
        "bad_value": bad_value,
    }


def test_default_bake_pins_the_running_python(day_one: dict[str, Any]) -> None:
    assert (day_one["project"] / ".python-version").read_text() == f"{HOST_PYTHON}\n"


def test_default_bake_installs(day_one: dict[str, Any]) -> None:
    result = day_one["first_install"]

    assert result.returncode == 0, result.stdout + result.stderr


def test_default_bake_installs_the_running_python(day_one: dict[str, Any]) -> None:
    assert day_one["venv_python"] == HOST_PYTHON


def test_install_after_the_first_changes_succeeds(day_one: dict[str, Any]) -> None:
    result = day_one["install"]

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_new_dependency_was_not_installed_before(day_one: dict[str, Any]) -> None:
    assert day_one["dependency_before"] == "missing"


def test_install_brings_the_new_dependency(day_one: dict[str, Any]) -> None:
    assert day_one["dependency_after"].startswith("4.")


def test_make_test_passes_with_the_first_changes(day_one: dict[str, Any]) -> None:
    result = day_one["test"]

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr


def test_make_test_ran_the_new_routers_test(day_one: dict[str, Any]) -> None:
    assert "test_count_items_reads_the_new_dependency_and_setting PASSED" in day_one["test"].stdout


def test_bad_value_of_the_new_setting_stops_the_service_with_exit_code_2(day_one: dict[str, Any]) -> None:
    failures = [MAKE_FAILURE.match(line) for line in day_one["bad_value"].stderr.splitlines()]

    assert [match.group(1) for match in failures if match] == ["2"], day_one["bad_value"].stderr


def test_bad_value_of_the_new_setting_is_one_line_naming_it(day_one: dict[str, Any]) -> None:
    lines = [line for line in day_one["bad_value"].stderr.splitlines() if not MAKE_FAILURE.match(line)]

    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: invalid setting {setting_variable(PACKAGE)}='fifty'")
