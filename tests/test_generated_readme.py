"""The generated README: what it tells a user on day one (issue 14, items 2, 3 and 11)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import HOST_PYTHON, RUNNERS, bake_project


def readme(tmp_path: Path, **answers: str) -> str:
    return (bake_project(tmp_path, python_version=HOST_PYTHON, **answers) / "README.md").read_text()


def section(text: str, heading: str) -> str:
    return text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


@pytest.mark.parametrize("fact", ["`pyproject.toml`", "`make install`", "`settings.py`", "`.env.example`"])
def test_adding_a_dependency_or_a_setting_names(tmp_path: Path, fact: str) -> None:
    assert fact in section(readme(tmp_path), "Adding a dependency or a setting")


def test_adding_a_dependency_for_the_image_says_make_lock(tmp_path: Path) -> None:
    assert "`make lock`" in section(readme(tmp_path, runner="docker"), "Adding a dependency or a setting")


@pytest.mark.parametrize("runner", RUNNERS)
def test_switching_runner_is_a_cruft_update_of_the_answer(tmp_path: Path, runner: str) -> None:
    text = section(readme(tmp_path, runner=runner), "Switching runner later")

    assert 'cruft update --variables-to-update \'{"runner": ' in text


def test_switching_away_from_kubernetes_answers_kubernetes_no(tmp_path: Path) -> None:
    text = section(readme(tmp_path, runner="docker", kubernetes="yes"), "Switching runner later")

    assert '--variables-to-update \'{"runner": "gunicorn", "kubernetes": "no"}\'' in text


@pytest.mark.parametrize("runner", RUNNERS)
def test_the_description_appears_once(tmp_path: Path, runner: str) -> None:
    """The default description, "A FastAPI service.", once followed a line starting the same way."""
    assert readme(tmp_path, runner=runner).count("A FastAPI service") == 1


@pytest.mark.parametrize("runner", RUNNERS)
def test_no_command_assumes_uvx(tmp_path: Path, runner: str) -> None:
    assert "uvx" not in readme(tmp_path, runner=runner, cruft_check="yes")
