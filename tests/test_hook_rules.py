"""Unit tests of the pre-gen hook's rules: the hook is rendered with a real context (as cookiecutter
renders it) into a module and imported, so its check_<field> functions can be called directly."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from cookiecutter.generate import generate_context
from cookiecutter.prompt import prompt_for_config
from cookiecutter.utils import create_env_with_context

from tests.conftest import TEMPLATE_DIR

PRE_GEN_HOOK = TEMPLATE_DIR / "hooks" / "pre_gen_project.py"


def render_hook(tmp_path: Path, hook: Path, **answers: str) -> ModuleType:
    context = generate_context(context_file=str(TEMPLATE_DIR / "cookiecutter.json"), extra_context=answers)
    context["cookiecutter"] = prompt_for_config(context, no_input=True)
    source = create_env_with_context(context).from_string(hook.read_text()).render(**context)
    module_file = tmp_path / f"rendered_{hook.stem}.py"
    module_file.write_text(source)
    spec = importlib.util.spec_from_file_location(module_file.stem, module_file)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def hook(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    return render_hook(tmp_path_factory.mktemp("hook"), PRE_GEN_HOOK)


def test_default_answers_pass(hook: Any) -> None:
    assert hook.find_errors(hook.ANSWERS) == []


def test_answers_arrive_as_data_even_with_quotes_and_backslashes(tmp_path: Path) -> None:
    name = 'O\'Reilly "API" \\ r""" \'\'\''
    rendered = render_hook(tmp_path, PRE_GEN_HOOK, project_name=name, project_slug="api", package_name="api")

    assert rendered.ANSWERS["project_name"] == name


# Checked by cookiecutter itself against their lists in cookiecutter.json (tests/test_bad_answers.py
# proves an unknown value is refused): the hook repeats no list of servers, packagings or databases.
CHOSEN_FROM_COOKIECUTTER_JSON = {"server", "packaging", "database"}


def test_every_other_answer_has_a_check(hook: Any) -> None:
    answers = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text())

    assert set(hook.CHECKS) == {name for name in answers if not name.startswith("_")} - CHOSEN_FROM_COOKIECUTTER_JSON


@pytest.mark.parametrize(
    ("answers", "reason"),
    [
        ({"kubernetes": "yes", "packaging": "host"}, "needs packaging docker"),
        ({"kubernetes": "yes", "packaging": "docker", "database": "sqlite"}, "cannot go with database 'sqlite'"),
        ({"kubernetes": "yes", "packaging": "docker", "project_slug": "my_svc"}, "Kubernetes accepts as a name"),
        ({"kubernetes": "yes", "packaging": "docker", "project_slug": "a" * 64}, "Kubernetes accepts as a name"),
    ],
    ids=["host", "sqlite", "underscore-slug", "64-character-slug"],
)
def test_kubernetes_needs_docker_and_a_kubernetes_name(hook: Any, answers: dict[str, str], reason: str) -> None:
    assert reason in hook.check_kubernetes_fits({**hook.ANSWERS, **answers})


def test_kubernetes_fits_docker_with_postgres(hook: Any) -> None:
    answers = {**hook.ANSWERS, "kubernetes": "yes", "packaging": "docker", "database": "postgres"}

    assert hook.check_kubernetes_fits(answers) is None


@pytest.mark.parametrize("packaging", ["host", "docker"])
def test_kubernetes_no_fits_every_packaging(hook: Any, packaging: str) -> None:
    assert hook.check_kubernetes_fits({**hook.ANSWERS, "kubernetes": "no", "packaging": packaging}) is None


@pytest.mark.parametrize(
    ("check", "value"),
    [
        ("check_project_slug", "my-service"),
        ("check_project_slug", "svc_2"),
        ("check_package_name", "my_service"),
        ("check_package_name", "matcher"),  # starts like a soft keyword
        ("check_port", "1"),
        ("check_port", "65535"),
        ("check_version", "0.1.0"),
        ("check_version", "1.0.0rc1"),
        ("check_version", "2!1.0.post1.dev2+local.7"),
        ("check_author_email", ""),
        ("check_author_email", "o'neil+tag@mail.example.co.uk"),
        ("check_project_name", 'O\'Reilly "Quoted" API — Ünïcödé 🚀'),
        ("check_description", "d" * 2000),
    ],
)
def test_valid_value_passes(hook: Any, check: str, value: str) -> None:
    assert getattr(hook, check)(value) is None


@pytest.mark.parametrize(
    ("check", "value", "reason"),
    [
        ("check_project_slug", "fastapi", "dependency"),
        ("check_project_slug", "uvicorn-worker", "dependency"),
        ("check_project_slug", "nul", "Windows"),
        ("check_project_slug", "a" * 65, "at most"),
        ("check_package_name", "match", "keyword"),
        ("check_package_name", "sys", "standard-library"),
        ("check_package_name", "starlette", "dependency"),
        ("check_package_name", "conftest", "reserved"),
        ("check_port", "08000", "leading zeros"),
        ("check_port", "65536", "1 to 65535"),
        ("check_version", "1" * 65, "at most"),
        ("check_version", "1.0-final!", "PEP 440"),
        ("check_author_email", "a@b", "name@example.com"),
        ("check_author_email", 'x"y@example.com', "name@example.com"),
        ("check_project_name", "bad\u200bname", "control characters"),
        ("check_project_name", "{" + "{ x }" + "}", "template markers"),
        ("check_description", "{" + "% if %" + "}", "template markers"),
        ("check_author_name", " padded", "spaces"),
        ("check_yes_no", "true", "one of"),
        ("check_python_version", "3.10", "one of"),
    ],
)
def test_invalid_value_gives_its_reason(hook: Any, check: str, value: str, reason: str) -> None:
    assert reason in getattr(hook, check)(value)


def test_a_missing_answer_is_an_error_not_a_crash(hook: Any) -> None:
    answers = {**hook.ANSWERS}
    del answers["port"]

    assert hook.find_errors(answers) == ["port: must be text (got None)"]


def test_main_prints_one_line_per_error_and_exits_1(
    hook: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(hook, "ANSWERS", {**hook.ANSWERS, "port": "0", "version": "x"})

    assert hook.main() == 1
    assert capsys.readouterr().err.splitlines() == [
        "error: version: 'x' must be a PEP 440 version such as 0.1.0 or 1.0.0rc1",
        "error: port: '0' must be a whole number from 1 to 65535 (no leading zeros)",
    ]


def test_long_values_are_cut_in_the_message(hook: Any) -> None:
    [error] = hook.find_errors({**hook.ANSWERS, "description": "d" * 5000})

    assert len(error) < 200
