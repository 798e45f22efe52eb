"""Baking: the exact file set per runner, no template leftovers, and awkward answers that still parse."""

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

COMMON_FILES = {
    ".cruft.json",
    ".editorconfig",
    ".env.example",
    ".gitattributes",
    ".github/dependabot.yml",
    ".github/workflows/ci.yml",
    ".gitignore",
    ".python-version",
    ".pre-commit-config.yaml",
    "Makefile",
    "README.md",
    "pyproject.toml",
    "docs/observability.md",
    "docs/operations.md",
    "src/{package}/__init__.py",
    "src/{package}/__main__.py",
    "src/{package}/lifespan.py",
    "src/{package}/main.py",
    "src/{package}/middleware.py",
    "src/{package}/py.typed",
    "src/{package}/routers/__init__.py",
    "src/{package}/routers/health.py",
    "src/{package}/routers/root.py",
    "src/{package}/serving/__init__.py",
    "src/{package}/serving/logging_config.py",
    "src/{package}/serving/protocol.py",
    "src/{package}/serving/server.py",
    "src/{package}/settings.py",
    "tests/__init__.py",
    "tests/conftest.py",
    "tests/routers/__init__.py",
    "tests/routers/test_health.py",
    "tests/routers/test_root.py",
    "tests/test_lifespan.py",
    "tests/test_logging_config.py",
    "tests/test_main.py",
    "tests/test_middleware.py",
    "tests/test_openapi.py",
    "tests/test_protocol.py",
    "tests/test_server.py",
    "tests/test_settings.py",
}
RUNNER_ONLY_FILES = {
    "uvicorn": {"deploy/{slug}.service"},
    "gunicorn": {
        "deploy/{slug}.service",
        "src/{package}/serving/gunicorn_conf.py",
        "src/{package}/serving/gunicorn_worker.py",
        "tests/test_gunicorn_worker.py",
    },
    "docker": {
        ".dockerignore",
        ".github/workflows/release.yml",
        "Dockerfile",
        "compose.yaml",
        "src/{package}/serving/healthcheck.py",
        "tests/test_healthcheck.py",
    },
}
KUBERNETES_FILES = {
    "deploy/kubernetes/base/deployment.yaml",
    "deploy/kubernetes/base/hpa.yaml",
    "deploy/kubernetes/base/kustomization.yaml",
    "deploy/kubernetes/base/namespace.yaml",
    "deploy/kubernetes/base/networkpolicy.yaml",
    "deploy/kubernetes/base/pdb.yaml",
    "deploy/kubernetes/base/service.yaml",
    "deploy/kubernetes/overlays/production/kustomization.yaml",
}
METRICS_FILES = {"src/{package}/serving/metrics.py", "tests/test_metrics.py"}
KUBERNETES_METRICS_FILES = {
    "deploy/kubernetes/components/servicemonitor/kustomization.yaml",
    "deploy/kubernetes/components/servicemonitor/service.yaml",
    "deploy/kubernetes/components/servicemonitor/servicemonitor.yaml",
}
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


def expected_files(runner: str, answers: dict[str, str], extra: set[str] | None = None) -> set[str]:
    names = {"package": answers["package_name"], "slug": answers["project_slug"]}
    return {path.format(**names) for path in COMMON_FILES | RUNNER_ONLY_FILES[runner] | (extra or set())}


def baked_files(project: Path) -> set[str]:
    return {path.relative_to(project).as_posix() for path in project.rglob("*") if path.is_file()}


def bake(cookies: Any, monkeypatch: pytest.MonkeyPatch, **answers: str) -> Any:
    # A PATH without the test's tools: the same file set on every machine.
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    return cookies.bake(extra_context=answers)


def test_docker_bake_says_how_the_lock_file_is_written(
    cookies: Any, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    result = bake(cookies, monkeypatch, runner="docker")

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

    result = cookies.bake(extra_context={"runner": "docker"})

    assert (result.exit_code, ran.exists()) == (0, False)


@pytest.mark.parametrize("runner", ["uvicorn", "gunicorn", "docker"])
def test_runner_bakes_exactly_its_files(cookies: Any, monkeypatch: pytest.MonkeyPatch, runner: str) -> None:
    result = bake(cookies, monkeypatch, runner=runner)

    assert result.exit_code == 0, result.exception
    assert baked_files(result.project_path) == expected_files(runner, result.context)


def test_docker_with_kubernetes_adds_the_manifests(cookies: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    result = bake(cookies, monkeypatch, runner="docker", kubernetes="yes")

    assert result.exit_code == 0, result.exception
    assert baked_files(result.project_path) == expected_files("docker", result.context) | KUBERNETES_FILES


@pytest.mark.parametrize("runner", ["uvicorn", "gunicorn", "docker"])
def test_metrics_yes_adds_the_metrics_module_and_its_tests(
    cookies: Any, monkeypatch: pytest.MonkeyPatch, runner: str
) -> None:
    result = bake(cookies, monkeypatch, runner=runner, metrics="yes")

    assert result.exit_code == 0, result.exception
    assert baked_files(result.project_path) == expected_files(runner, result.context, METRICS_FILES)


def test_kubernetes_with_metrics_adds_the_servicemonitor_component(
    cookies: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = bake(cookies, monkeypatch, runner="docker", kubernetes="yes", metrics="yes")

    assert result.exit_code == 0, result.exception
    assert baked_files(result.project_path) == expected_files(
        "docker", result.context, METRICS_FILES | KUBERNETES_FILES | KUBERNETES_METRICS_FILES
    )


def test_cruft_file_records_the_answers(cookies: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    result = bake(cookies, monkeypatch, runner="gunicorn", port="9000")
    recorded = json.loads((result.project_path / ".cruft.json").read_text(encoding="utf-8"))

    assert {key: recorded["context"]["cookiecutter"][key] for key in ("runner", "port")} == {
        "runner": "gunicorn",
        "port": "9000",
    }


def test_defaults_bake_with_the_uvicorn_runner(cookies: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    result = bake(cookies, monkeypatch)

    assert result.exit_code == 0, result.exception
    assert result.project_path.name == "my-fastapi-service"
    assert (result.project_path / "deploy/my-fastapi-service.service").is_file()


def test_no_staging_folder_is_left(cookies: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    result = bake(cookies, monkeypatch, runner="docker")

    assert not (result.project_path / ".runner-files").exists()


@pytest.mark.parametrize("metrics", ["no", "yes"])
@pytest.mark.parametrize("runner", ["uvicorn", "gunicorn", "docker"])
def test_no_template_markers_are_left(cookies: Any, monkeypatch: pytest.MonkeyPatch, runner: str, metrics: str) -> None:
    result = bake(
        cookies, monkeypatch, runner=runner, metrics=metrics, kubernetes="yes" if runner == "docker" else "no"
    )

    leftovers = [
        f"{path}: {match.group()}"
        for path in result.project_path.rglob("*")
        if path.is_file() and path.name not in NOT_SCANNED_FOR_LEFTOVERS
        for match in [LEFTOVER.search(path.read_text(encoding="utf-8"))]
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


@pytest.mark.parametrize("runner", ["uvicorn", "gunicorn", "docker"])
@pytest.mark.parametrize("answers", TRICKY_ANSWERS)
def test_tricky_answers_bake_to_files_that_parse(
    cookies: Any, monkeypatch: pytest.MonkeyPatch, runner: str, answers: dict[str, str]
) -> None:
    result = bake(cookies, monkeypatch, runner=runner, **answers)

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


@pytest.mark.parametrize("runner", ["uvicorn", "gunicorn", "docker"])
def test_the_run_command_is_written_once(cookies: Any, monkeypatch: pytest.MonkeyPatch, runner: str) -> None:
    """Makefile, Dockerfile and systemd unit all start `python -m <package>`; none spells out a server."""
    result = bake(cookies, monkeypatch, runner=runner)
    project, package = result.project_path, result.context["package_name"]
    starters = [
        text
        for name in ("Makefile", "Dockerfile", f"deploy/{result.context['project_slug']}.service")
        if (project / name).is_file()
        for text in [(project / name).read_text(encoding="utf-8")]
    ]

    assert all(f"-m {package}" in text or f'"-m", "{package}"' in text for text in starters)
    assert not any(re.search(r"^\s*(ExecStart=|CMD ).*\b(uvicorn|gunicorn)\b", text, re.M) for text in starters)


@pytest.mark.parametrize("runner", ["uvicorn", "gunicorn"])
def test_systemd_unit_allows_a_file_per_connection(cookies: Any, monkeypatch: pytest.MonkeyPatch, runner: str) -> None:
    result = bake(cookies, monkeypatch, runner=runner)
    project, package = result.project_path, result.context["package_name"]
    unit = (project / f"deploy/{result.context['project_slug']}.service").read_text(encoding="utf-8")
    protocol = (project / f"src/{package}/serving/protocol.py").read_text(encoding="utf-8")
    max_connections = int(re.search(r"^MAX_CONNECTIONS = (\d+)", protocol, re.M)[1])  # type: ignore[index]
    limits = [int(value) for value in re.findall(r"^LimitNOFILE=(\d+)$", unit, re.M)]

    # Each connection is an open file; the rest (the app's own files, sockets to a database) need room too.
    assert [limit >= 2 * max_connections > 0 for limit in limits] == [True]


def systemd_unit(cookies: Any, monkeypatch: pytest.MonkeyPatch, runner: str) -> str:
    result = bake(cookies, monkeypatch, runner=runner)
    return (result.project_path / f"deploy/{result.context['project_slug']}.service").read_text(encoding="utf-8")


@pytest.mark.parametrize("runner", ["uvicorn", "gunicorn"])
def test_systemd_unit_restarts_no_bad_setting_nor_failed_start(
    cookies: Any, monkeypatch: pytest.MonkeyPatch, runner: str
) -> None:
    unit = systemd_unit(cookies, monkeypatch, runner)

    # The exit codes of both runners: 2 a bad setting, 3 a failed start (the app, or the port taken).
    assert re.findall(r"^RestartPreventExitStatus=(.*)$", unit, re.M) == ["2 3"]


@pytest.mark.parametrize("runner", ["uvicorn", "gunicorn"])
def test_systemd_unit_sends_sigterm_to_the_main_process_only(
    cookies: Any, monkeypatch: pytest.MonkeyPatch, runner: str
) -> None:
    unit = systemd_unit(cookies, monkeypatch, runner)

    # The supervisor closes its listening socket, then stops its workers: stopped first, they left
    # new clients queued for no one (the default KillMode signals every process at once).
    assert re.findall(r"^KillMode=(.*)$", unit, re.M) == ["mixed"]


def test_gunicorn_unit_says_how_a_reload_keeps_queued_connections(
    cookies: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = bake(cookies, monkeypatch, runner="gunicorn")
    unit = (result.project_path / f"deploy/{result.context['project_slug']}.service").read_text(encoding="utf-8")

    assert "net.ipv4.tcp_migrate_req=1" in unit
