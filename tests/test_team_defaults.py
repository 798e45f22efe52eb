"""The team-defaults recipes of docs/team-defaults.md: a config file's default_context answers for
everyone, and --replay bakes again with a run's recorded answers."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import HOST_PYTHON, TEMPLATE_DIR, project_env, run

TEAM_DEFAULTS = {
    "author_name": "Platform Team",
    "author_email": "platform@example.com",
    "python_version": HOST_PYTHON,
    "server": "gunicorn",
    "packaging": "docker",
    "kubernetes": "yes",
    "cruft_check": "yes",
}
PROJECT = "my-fastapi-service"


def write_team_config(folder: Path) -> Path:
    """A team config that keeps cookiecutter's caches and replays in `folder`, not in the home folder."""
    config = folder / "team-cookiecutter.yaml"
    settings = {
        "default_context": TEAM_DEFAULTS,
        "cookiecutters_dir": str(folder / "cookiecutters"),
        "replay_dir": str(folder / "replay"),
    }
    config.write_text(yaml.safe_dump(settings))
    return config


def cookiecutter_cli(cwd: Path, *args: str) -> None:
    result = run([sys.executable, "-m", "cookiecutter", *args], cwd, env=project_env())
    assert result.returncode == 0, result.stdout + result.stderr


def recorded_answers(project: Path) -> dict[str, Any]:
    context: dict[str, Any] = json.loads((project / ".cruft.json").read_text())["context"]["cookiecutter"]
    return context


@pytest.fixture(scope="module")
def team_bake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A project baked with --no-input from the team config; returns the config and the project."""
    folder = tmp_path_factory.mktemp("team")
    config = write_team_config(folder)
    cookiecutter_cli(folder, "--no-input", "--config-file", str(config), "--output-dir", "out", str(TEMPLATE_DIR))
    return config, folder / "out" / PROJECT


@pytest.mark.parametrize("name", sorted(TEAM_DEFAULTS))
def test_default_context_answers_the_questions(team_bake: tuple[Path, Path], name: str) -> None:
    assert recorded_answers(team_bake[1])[name] == TEAM_DEFAULTS[name]


def test_default_context_choices_shape_the_project(team_bake: tuple[Path, Path]) -> None:
    project = team_bake[1]
    files = ["deploy/kubernetes/base/deployment.yaml", "Dockerfile", "src/my_fastapi_service/serving/gunicorn_conf.py"]

    assert [name for name in files if not (project / name).is_file()] == []


def test_replay_bakes_the_same_answers_again(team_bake: tuple[Path, Path], tmp_path: Path) -> None:
    config, first = team_bake
    cookiecutter_cli(tmp_path, "--replay", "--config-file", str(config), "--output-dir", "again", str(TEMPLATE_DIR))

    assert recorded_answers(tmp_path / "again" / PROJECT) == recorded_answers(first)


def test_replay_file_bakes_a_committed_answer_set(team_bake: tuple[Path, Path], tmp_path: Path) -> None:
    config, first = team_bake
    replays = list((config.parent / "replay").glob("*.json"))
    assert len(replays) == 1
    answers = shutil.copy(replays[0], tmp_path / "billing-answers.json")

    cookiecutter_cli(tmp_path, "--replay-file", str(answers), "--output-dir", "again", str(TEMPLATE_DIR))

    assert recorded_answers(tmp_path / "again" / PROJECT) == recorded_answers(first)
