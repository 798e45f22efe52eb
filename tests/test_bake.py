"""Baking: the exact file set per server x packaging (and with kubernetes, metrics, sentry), read from the
template's `_variants/` tree; no template leftovers; awkward answers that still parse."""

from __future__ import annotations

import ast
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from dotenv import dotenv_values

from tests.conftest import COMBINATIONS, SERVERS, TEMPLATE_DIR, folder_is_chosen

PROJECT_TEMPLATE = TEMPLATE_DIR / "{{cookiecutter.project_slug}}"
VARIANTS_DIR = PROJECT_TEMPLATE / "_variants"
# A file or folder name the template writes with an answer in it: `{{cookiecutter.package_name}}`.
NAME_PART = re.compile(r"\{\{\s*cookiecutter\.(\w+)\s*\}\}")
COMBINATION_PARAMS = [pytest.param(server, packaging, id=f"{server}-{packaging}") for server, packaging in COMBINATIONS]
DOCKER_SERVERS = [pytest.param(server, id=f"{server}-docker") for server in SERVERS]
# .cruft.json records the answers, template settings included (their names contain the marker text).
NOT_SCANNED_FOR_LEFTOVERS = {".cruft.json"}
LEFTOVER = re.compile(r"(?<!\$)\{\{|\{%|\{#|cookiecutter\.")

TRICKY_ANSWERS = [
    pytest.param({"project_name": 'O\'Reilly "Quoted" API'}, id="quotes-and-apostrophe"),
    pytest.param({"project_name": "Café Ünïcødé 服务"}, id="unicode-name"),
    pytest.param({"project_name": "Back\\slash \\n API"}, id="backslashes"),
    pytest.param(
        {"description": "Says \"hi\", 'bye', \\ and \\\\; costs $5 & <b>less</b> # not a comment"},
        id="description-punctuation",
    ),
    pytest.param({"description": "x" * 1999 + "."}, id="description-2000-chars"),
    pytest.param({"author_name": 'Ann \\ O"Neil-Ñúñez', "author_email": ""}, id="author-odd-no-email"),
    pytest.param({"version": "1.0.0rc1+local.7"}, id="pre-release-local-version"),
    pytest.param({"port": "65535"}, id="highest-port"),
    pytest.param({"project_slug": "svc", "package_name": "svc_core"}, id="explicit-slug-and-package"),
]


def files_under(folder: Path) -> set[Path]:
    return {path.relative_to(folder) for path in folder.rglob("*") if path.is_file()}


def expected_files(answers: dict[str, str]) -> set[str]:
    """What a bake with these answers must hold, read from the template's own tree: its common files,
    plus the files of every `_variants/<answers>/<values>/` folder whose values are these answers'
    (`kubernetes+metrics/yes+yes` for two answers together), plus .cruft.json the post-gen hook writes."""
    files = {path for path in files_under(PROJECT_TEMPLATE) if path.parts[0] != VARIANTS_DIR.name}
    for answer_folder in VARIANTS_DIR.iterdir():
        for values_folder in answer_folder.iterdir():
            if folder_is_chosen(values_folder, answers):
                files |= files_under(values_folder)
    return {NAME_PART.sub(lambda match: answers[match[1]], path.as_posix()) for path in files} | {".cruft.json"}


def baked_files(project: Path) -> set[str]:
    return {path.relative_to(project).as_posix() for path in project.rglob("*") if path.is_file()}


def bake(cookies: Any, monkeypatch: pytest.MonkeyPatch, **answers: str) -> Any:
    # A PATH without the test's tools: the same file set on every machine.
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    return cookies.bake(extra_context=answers)


def assert_exact_files(result: Any) -> None:
    """Both ways: a file the template does not define for these answers fails, so does a missing one."""
    assert result.exit_code == 0, result.exception
    baked, expected = baked_files(result.project_path), expected_files(result.context)
    assert (sorted(baked - expected), sorted(expected - baked)) == ([], [])


def test_docker_bake_says_how_the_lock_file_is_written(
    cookies: Any, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    result = bake(cookies, monkeypatch, packaging="docker")

    assert result.exit_code == 0, result.exception
    assert "`make image` writes it first" in capfd.readouterr().out


def test_bake_runs_no_uv_even_when_installed(cookies: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Baking stays offline and fast: the lock file is `make image`'s job."""
    tools = tmp_path / "tools"
    tools.mkdir()
    ran = tmp_path / "uv-ran"
    (tools / "uv").write_text(f"#!/bin/sh\ntouch {ran}\n", encoding="utf-8")
    (tools / "uv").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}:/usr/bin:/bin")

    result = cookies.bake(extra_context={"packaging": "docker"})

    assert (result.exit_code, ran.exists()) == (0, False)


@pytest.mark.parametrize(("server", "packaging"), COMBINATION_PARAMS)
def test_each_combination_bakes_exactly_its_files(
    cookies: Any, monkeypatch: pytest.MonkeyPatch, server: str, packaging: str
) -> None:
    assert_exact_files(bake(cookies, monkeypatch, server=server, packaging=packaging))


@pytest.mark.parametrize("server", DOCKER_SERVERS)
def test_kubernetes_adds_exactly_the_manifests(cookies: Any, monkeypatch: pytest.MonkeyPatch, server: str) -> None:
    result = bake(cookies, monkeypatch, server=server, packaging="docker", kubernetes="yes")

    assert_exact_files(result)
    assert (result.project_path / "deploy/kubernetes/base/deployment.yaml").is_file()


@pytest.mark.parametrize(("server", "packaging"), COMBINATION_PARAMS)
def test_metrics_yes_adds_exactly_the_metrics_files(
    cookies: Any, monkeypatch: pytest.MonkeyPatch, server: str, packaging: str
) -> None:
    result = bake(cookies, monkeypatch, server=server, packaging=packaging, metrics="yes")

    assert_exact_files(result)
    assert (result.project_path / f"src/{result.context['package_name']}/serving/metrics.py").is_file()


@pytest.mark.parametrize(("server", "packaging"), COMBINATION_PARAMS)
def test_sentry_yes_adds_exactly_the_error_tracking_files(
    cookies: Any, monkeypatch: pytest.MonkeyPatch, server: str, packaging: str
) -> None:
    result = bake(cookies, monkeypatch, server=server, packaging=packaging, sentry="yes")

    assert_exact_files(result)
    assert (result.project_path / f"src/{result.context['package_name']}/error_tracking.py").is_file()


def sentry_traces(project: Path) -> dict[str, bool]:
    """Where sentry=yes writes itself into the common files."""
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {
        "dependency": any(requirement.startswith("sentry-sdk") for requirement in pyproject["dependencies"]),
        "setting": "SENTRY_DSN" in dotenv_values(project / ".env.example"),
        "readme": "SENTRY_DSN" in (project / "README.md").read_text(encoding="utf-8"),
        "app": "init_error_tracking" in next(project.glob("src/*/main.py")).read_text(encoding="utf-8"),
    }


@pytest.mark.parametrize("sentry", ["no", "yes"])
def test_sentry_answer_decides_its_dependency_setting_and_docs(
    cookies: Any, monkeypatch: pytest.MonkeyPatch, sentry: str
) -> None:
    result = bake(cookies, monkeypatch, **({} if sentry == "no" else {"sentry": "yes"}))  # no: the default

    assert result.exit_code == 0, result.exception
    assert sentry_traces(result.project_path) == dict.fromkeys(
        ("dependency", "setting", "readme", "app"), sentry == "yes"
    )


@pytest.mark.parametrize("server", DOCKER_SERVERS)
def test_kubernetes_with_metrics_adds_the_servicemonitor_component(
    cookies: Any, monkeypatch: pytest.MonkeyPatch, server: str
) -> None:
    result = bake(cookies, monkeypatch, server=server, packaging="docker", kubernetes="yes", metrics="yes")

    assert_exact_files(result)
    assert (result.project_path / "deploy/kubernetes/components/servicemonitor/kustomization.yaml").is_file()


@pytest.mark.parametrize(("server", "packaging"), COMBINATION_PARAMS)
def test_each_answer_brings_its_own_files_and_not_the_others(
    cookies: Any, monkeypatch: pytest.MonkeyPatch, server: str, packaging: str
) -> None:
    """The file set above is read from the template tree; this says what it must mean, written out."""
    result = bake(cookies, monkeypatch, server=server, packaging=packaging)
    files = baked_files(result.project_path)
    package, slug = result.context["package_name"], result.context["project_slug"]
    marks = {
        "gunicorn settings": f"src/{package}/serving/gunicorn_conf.py" in files,
        "server module": {f"src/{package}/serving/server.py", "tests/test_server.py"} <= files,
        "systemd unit": f"deploy/{slug}.service" in files,
        "image": {"Dockerfile", ".dockerignore", "compose.yaml"} <= files,
        "image files": bool({"Dockerfile", ".dockerignore", "compose.yaml"} & files),
        "edge": f"deploy/nginx/{slug}.conf" in files,
        "manifests": any(name.startswith("deploy/kubernetes/") for name in files),
        "metrics": f"src/{package}/serving/metrics.py" in files,
        "sentry": f"src/{package}/error_tracking.py" in files,
    }

    assert marks == {
        "gunicorn settings": server == "gunicorn",
        "server module": True,
        "systemd unit": packaging == "host",
        "image": packaging == "docker",
        "image files": packaging == "docker",
        "edge": True,
        "manifests": False,
        "metrics": False,
        "sentry": False,
    }


def test_cruft_file_records_the_answers(cookies: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    result = bake(cookies, monkeypatch, server="gunicorn", packaging="docker", port="9000")
    recorded = json.loads((result.project_path / ".cruft.json").read_text(encoding="utf-8"))

    assert {key: recorded["context"]["cookiecutter"][key] for key in ("server", "packaging", "port")} == {
        "server": "gunicorn",
        "packaging": "docker",
        "port": "9000",
    }


def test_defaults_bake_uvicorn_on_a_host(cookies: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    result = bake(cookies, monkeypatch)

    assert result.exit_code == 0, result.exception
    assert (result.context["server"], result.context["packaging"]) == ("uvicorn", "host")
    assert result.project_path.name == "my-fastapi-service"
    assert (result.project_path / "deploy/my-fastapi-service.service").is_file()


@pytest.mark.parametrize(("server", "packaging"), COMBINATION_PARAMS)
def test_no_variants_folder_is_left(cookies: Any, monkeypatch: pytest.MonkeyPatch, server: str, packaging: str) -> None:
    result = bake(cookies, monkeypatch, server=server, packaging=packaging)

    assert [path.name for path in result.project_path.rglob("_variants")] == []


@pytest.mark.parametrize("metrics", ["no", "yes"])
@pytest.mark.parametrize(("server", "packaging"), COMBINATION_PARAMS)
def test_no_template_markers_are_left(
    cookies: Any, monkeypatch: pytest.MonkeyPatch, server: str, packaging: str, metrics: str
) -> None:
    kubernetes = "yes" if packaging == "docker" else "no"
    answers = {"metrics": metrics, "kubernetes": kubernetes, "sentry": metrics}  # sentry goes with metrics
    result = bake(cookies, monkeypatch, server=server, packaging=packaging, **answers)

    assert result.exit_code == 0, result.exception
    leftovers = [
        f"{path}: {match.group()}"
        for path in result.project_path.rglob("*")
        if path.name not in NOT_SCANNED_FOR_LEFTOVERS
        for match in [LEFTOVER.search(path.read_text(encoding="utf-8") if path.is_file() else path.name)]
        if match
    ]
    assert leftovers == []


def parse_all(project: Path) -> None:
    """Parse every file whose format has a parser; raises on the first that does not parse."""
    for path in project.rglob("*"):
        text = path.read_text(encoding="utf-8") if path.is_file() else ""
        if path.suffix == ".py":
            ast.parse(text, filename=str(path))
        elif path.suffix == ".toml":
            tomllib.loads(text)
        elif path.suffix in {".yaml", ".yml"}:
            yaml.safe_load(text)
        elif path.suffix == ".json":
            json.loads(text)


def default_app_name(project: Path, package: str) -> Any:
    """The literal default of Settings.app_name, read from the source without importing it."""
    tree = ast.parse((project / "src" / package / "settings.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == "app_name":
            return ast.literal_eval(node.value) if node.value else None
    return None


# Between them, these bakes (one per server) hold every file of the template: each server, each packaging,
# Kubernetes, metrics and sentry (test_a_bake_per_server_holds_every_file checks it).
EVERY_FILE = [
    *(pytest.param({"server": server, "packaging": "host"}, id=f"{server}-host") for server in SERVERS[:-2]),
    pytest.param({"server": SERVERS[-2], "packaging": "host", "database": "sqlite"}, id=f"{SERVERS[-2]}-host-sqlite"),
    pytest.param(
        {
            "server": SERVERS[-1],
            "packaging": "docker",
            "kubernetes": "yes",
            "metrics": "yes",
            "sentry": "yes",
            "database": "postgres",
        },
        id=f"{SERVERS[-1]}-docker-kubernetes-metrics-sentry-postgres",
    ),
]


def test_a_bake_per_server_holds_every_file() -> None:
    answers = {
        "project_slug": "s",
        "package_name": "p",
        "kubernetes": "no",
        "metrics": "no",
        "sentry": "no",
        "database": "none",
    }
    covered = {name for param in EVERY_FILE for name in expected_files({**answers, **param.values[0]})}
    variant_folders = [values for answer in VARIANTS_DIR.iterdir() for values in answer.iterdir()]
    every = {
        NAME_PART.sub(lambda match: answers[match[1]], path.as_posix())
        for folder in [PROJECT_TEMPLATE, *variant_folders]
        for path in files_under(folder)
        if path.parts[0] != VARIANTS_DIR.name
    }

    assert sorted(every - covered) == []


@pytest.mark.parametrize("bake_answers", EVERY_FILE)
@pytest.mark.parametrize("answers", TRICKY_ANSWERS)
def test_tricky_answers_bake_to_files_that_parse(
    cookies: Any, monkeypatch: pytest.MonkeyPatch, bake_answers: dict[str, str], answers: dict[str, str]
) -> None:
    result = bake(cookies, monkeypatch, **bake_answers, **answers)

    assert result.exit_code == 0, result.exception
    parse_all(result.project_path)


@pytest.mark.parametrize("answers", TRICKY_ANSWERS)
def test_answers_survive_the_round_trip(cookies: Any, monkeypatch: pytest.MonkeyPatch, answers: dict[str, str]) -> None:
    result = bake(cookies, monkeypatch, **answers)
    project, context = result.project_path, result.context
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    env_example = dotenv_values(project / ".env.example")
    prefix = context["package_name"].upper()

    assert pyproject["description"] == context["description"]
    assert pyproject["authors"][0]["name"] == context["author_name"]
    assert default_app_name(project, context["package_name"]) == context["project_name"]
    assert env_example[f"{prefix}_APP_NAME"] == context["project_name"]
    assert env_example["PORT"] == context["port"]


def test_empty_email_is_left_out_of_the_authors(cookies: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    result = bake(cookies, monkeypatch, author_email="")
    pyproject = tomllib.loads((result.project_path / "pyproject.toml").read_text(encoding="utf-8"))

    assert "email" not in pyproject["project"]["authors"][0]


def test_slug_and_package_are_derived_from_the_name(cookies: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    result = bake(cookies, monkeypatch, project_name='O\'Reilly "Quoted" API')

    assert (result.context["project_slug"], result.context["package_name"]) == (
        "o-reilly-quoted-api",
        "o_reilly_quoted_api",
    )


@pytest.mark.parametrize(("server", "packaging"), COMBINATION_PARAMS)
def test_the_run_command_is_written_once(
    cookies: Any, monkeypatch: pytest.MonkeyPatch, server: str, packaging: str
) -> None:
    """Makefile, Dockerfile and systemd unit all start `python -m <package>`; none spells out a server."""
    result = bake(cookies, monkeypatch, server=server, packaging=packaging)
    project, package = result.project_path, result.context["package_name"]
    starters = {
        name: (project / name).read_text(encoding="utf-8")
        for name in ("Makefile", "Dockerfile", f"deploy/{result.context['project_slug']}.service")
        if (project / name).is_file()
    }

    assert len(starters) == 2  # the Makefile, and the Dockerfile or the unit
    assert all(f"-m {package}" in text or f'"-m", "{package}"' in text for text in starters.values())
    server_named = re.compile(r"^\s*(ExecStart=|CMD ).*\b(uvicorn|gunicorn)\b", re.M)
    assert [name for name, text in starters.items() if server_named.search(text)] == []


# A project file named in another: `serving/protocol.py`, `docs/operations.md`, `deploy/x.service`
# (not routers/ and tests/: the README names the example files a user adds there).
MENTIONED_FILE = re.compile(r"(?<![\w./-])((?:serving|docs|deploy)/[\w./-]*\w\.(?:py|md|service|yaml))\b")


@pytest.mark.parametrize(("server", "packaging"), COMBINATION_PARAMS)
def test_every_project_file_named_in_the_project_exists(
    cookies: Any, monkeypatch: pytest.MonkeyPatch, server: str, packaging: str
) -> None:
    """A comment or a doc pointing at a removed module (serving/protocol.py) misleads the reader."""
    result = bake(cookies, monkeypatch, server=server, packaging=packaging, metrics="yes", sentry="yes")
    project = result.project_path
    package_dir = project / "src" / result.context["package_name"]
    missing = {
        f"{path.relative_to(project)}: {name}"
        for path in project.rglob("*")
        if path.is_file() and path.name != ".cruft.json"
        for name in MENTIONED_FILE.findall(path.read_text(encoding="utf-8"))
        if not any((folder / name).exists() for folder in (project, package_dir))
    }

    assert missing == set()


def systemd_unit(cookies: Any, monkeypatch: pytest.MonkeyPatch, server: str) -> str:
    result = bake(cookies, monkeypatch, server=server, packaging="host")
    return (result.project_path / f"deploy/{result.context['project_slug']}.service").read_text(encoding="utf-8")


@pytest.mark.parametrize("server", SERVERS)
def test_systemd_unit_restarts_no_bad_setting_nor_failed_start(
    cookies: Any, monkeypatch: pytest.MonkeyPatch, server: str
) -> None:
    unit = systemd_unit(cookies, monkeypatch, server)

    # The exit codes of both servers: 2 a bad setting, 3 a failed start (the app, or the port taken).
    assert re.findall(r"^RestartPreventExitStatus=(.*)$", unit, re.M) == ["2 3"]


@pytest.mark.parametrize("server", SERVERS)
def test_systemd_unit_sends_sigterm_to_the_main_process_only(
    cookies: Any, monkeypatch: pytest.MonkeyPatch, server: str
) -> None:
    unit = systemd_unit(cookies, monkeypatch, server)

    # The supervisor closes its listening socket, then stops its workers: stopped first, they left
    # new clients queued for no one (the default KillMode signals every process at once).
    assert re.findall(r"^KillMode=(.*)$", unit, re.M) == ["mixed"]


@pytest.mark.parametrize("server", SERVERS)
def test_systemd_unit_starts_the_project_the_way_make_run_does(
    cookies: Any, monkeypatch: pytest.MonkeyPatch, server: str
) -> None:
    unit = systemd_unit(cookies, monkeypatch, server)

    assert re.findall(r"^ExecStart=(.*)$", unit, re.M) == [
        "/opt/my-fastapi-service/.venv/bin/python -m my_fastapi_service"
    ]


def test_the_unit_runs_behind_the_edge_on_loopback(cookies: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    unit = systemd_unit(cookies, monkeypatch, "uvicorn")

    assert "deploy/nginx/" in unit
    assert "127.0.0.1" in unit
