"""The generated README: what it tells a user on day one (issue 14, items 2, 3 and 11; issue 22), for
every server x packaging. Its switching commands are run as written by tests/test_switch_server.py."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable

import pytest
import yaml

from tests.conftest import COMBINATIONS, HOST_PYTHON, PACKAGINGS, SERVERS, bake_project

COMBINATION_PARAMS = [pytest.param(server, packaging, id=f"{server}-{packaging}") for server, packaging in COMBINATIONS]
# cruft 2.16 with typer 0.29 raises AssertionError at its confirmation prompt: the command must skip it.
SKIPS_THE_PROMPT = {"-y", "--skip-apply-ask"}


_readmes: dict[tuple[tuple[str, str], ...], str] = {}


@pytest.fixture(scope="module")
def readme(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., str]:
    """The README of a bake with these answers (each answer set baked once per test process)."""

    def bake(**answers: str) -> str:
        key = tuple(sorted(answers.items()))
        if key not in _readmes:
            project = bake_project(tmp_path_factory.mktemp("readme"), python_version=HOST_PYTHON, **answers)
            _readmes[key] = (project / "README.md").read_text()
        return _readmes[key]

    return bake


def section(text: str, heading: str) -> str:
    """The `## <heading>...` section (the first whose heading starts so), without its heading line."""
    match = re.search(rf"^## {re.escape(heading)}.*\n", text, re.MULTILINE)
    assert match, f"no section starting '## {heading}'"
    return text[match.end() :].split("\n## ", 1)[0]


def switching_commands(text: str) -> dict[str, list[str]]:
    """The `cruft update` commands of the README's switching section, as argument lists, keyed by
    the answers they change (`server`, `packaging`, `packaging+kubernetes`...)."""
    commands = {}
    for line in section(text, "Switching").splitlines():
        if line.startswith("cruft update"):
            args = shlex.split(line.split(" #", 1)[0])
            answers = json.loads(args[args.index("--variables-to-update") + 1])
            commands["+".join(answers)] = args
    return commands


def changed_answers(args: list[str]) -> dict[str, str]:
    answers: dict[str, str] = json.loads(args[args.index("--variables-to-update") + 1])
    return answers


def other(values: tuple[str, ...], value: str) -> str:
    return next(candidate for candidate in values if candidate != value)


@pytest.mark.parametrize("fact", ["`pyproject.toml`", "`make install`", "`settings.py`", "`.env.example`"])
def test_adding_a_dependency_or_a_setting_names(readme: Callable[..., str], fact: str) -> None:
    assert fact in section(readme(), "Adding a dependency or a setting")


@pytest.mark.parametrize("server", SERVERS)
def test_adding_a_dependency_for_the_image_says_make_lock(readme: Callable[..., str], server: str) -> None:
    text = readme(server=server, packaging="docker")

    assert "`make lock`" in section(text, "Adding a dependency or a setting")


@pytest.mark.parametrize(("server", "packaging"), COMBINATION_PARAMS)
def test_switching_server_is_one_cruft_update_of_the_answer(
    readme: Callable[..., str], server: str, packaging: str
) -> None:
    commands = switching_commands(readme(server=server, packaging=packaging))

    assert changed_answers(commands["server"]) == {"server": other(SERVERS, server)}


@pytest.mark.parametrize(("server", "packaging"), COMBINATION_PARAMS)
def test_switching_packaging_is_one_cruft_update_of_the_answer(
    readme: Callable[..., str], server: str, packaging: str
) -> None:
    commands = switching_commands(readme(server=server, packaging=packaging))

    assert changed_answers(commands["packaging"]) == {"packaging": other(PACKAGINGS, packaging)}


@pytest.mark.parametrize(("server", "packaging"), COMBINATION_PARAMS)
def test_every_switching_command_skips_crufts_prompt(readme: Callable[..., str], server: str, packaging: str) -> None:
    commands = switching_commands(readme(server=server, packaging=packaging))

    assert commands
    assert {key: bool(SKIPS_THE_PROMPT & set(args)) for key, args in commands.items()} == dict.fromkeys(commands, True)


@pytest.mark.parametrize("server", SERVERS)
def test_with_kubernetes_a_server_switch_keeps_the_manifests(readme: Callable[..., str], server: str) -> None:
    """The server changes inside the same image: the manifests still run it."""
    commands = switching_commands(readme(server=server, packaging="docker", kubernetes="yes"))

    assert changed_answers(commands["server"]) == {"server": other(SERVERS, server)}


@pytest.mark.parametrize("server", SERVERS)
def test_with_kubernetes_leaving_docker_answers_kubernetes_no(readme: Callable[..., str], server: str) -> None:
    """kubernetes=yes needs the docker packaging (the pre-gen hook refuses it on a host)."""
    commands = switching_commands(readme(server=server, packaging="docker", kubernetes="yes"))

    assert changed_answers(commands["packaging+kubernetes"]) == {"packaging": "host", "kubernetes": "no"}


@pytest.mark.parametrize(("server", "packaging"), COMBINATION_PARAMS)
def test_the_readme_says_why_uvicorn_runs_fastapi(readme: Callable[..., str], server: str, packaging: str) -> None:
    """The beginner's question, "why Uvicorn with FastAPI?", answered in every project."""
    text = section(readme(server=server, packaging=packaging), "Why Uvicorn to run FastAPI")

    assert "ASGI" in text
    assert "Uvicorn" in text


@pytest.mark.parametrize(("server", "packaging"), COMBINATION_PARAMS)
def test_the_description_appears_once(readme: Callable[..., str], server: str, packaging: str) -> None:
    """The default description, "A FastAPI service.", once followed a line starting the same way."""
    assert readme(server=server, packaging=packaging).count("A FastAPI service") == 1


@pytest.mark.parametrize(("server", "packaging"), COMBINATION_PARAMS)
def test_no_command_assumes_uvx(readme: Callable[..., str], server: str, packaging: str) -> None:
    assert "uvx" not in readme(server=server, packaging=packaging, cruft_check="yes")


@pytest.mark.parametrize(("server", "packaging"), COMBINATION_PARAMS)
def test_the_readme_answers_which_runner(readme: Callable[..., str], server: str, packaging: str) -> None:
    text = section(readme(server=server, packaging=packaging), "Which runner")

    assert "`server`" in text
    assert "`packaging`" in text


def test_readme_promises_the_default_log_format(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Issue 26 item 13: the README promised JSON logs while the settings' default is text."""
    project = bake_project(tmp_path_factory.mktemp("logs"), python_version=HOST_PYTHON)
    settings = next(project.glob("src/*/settings.py")).read_text()
    default = re.search(r'log_format: Literal\[[^]]*\] = "(\w+)"', settings)
    readme = (project / "README.md").read_text().splitlines()
    observability = next(line for line in readme if "**Observability**" in line)

    assert default is not None
    assert f"{default.group(1)} log lines" in observability


def test_compose_restarts_are_bounded_and_the_readme_says_why(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Issue 26 item 11, in the fast tier: a bad setting is no silent restart loop."""
    project = bake_project(tmp_path_factory.mktemp("compose"), python_version=HOST_PYTHON, packaging="docker")
    app = yaml.safe_load((project / "compose.yaml").read_text())["services"]["app"]
    readme = (project / "README.md").read_text()

    assert re.fullmatch(r"on-failure:[1-5]", app["restart"]), app["restart"]
    assert "docker compose logs app" in readme
    assert "docker compose ps --all" in readme
