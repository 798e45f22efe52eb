"""Unit tests of the hooks: each is rendered with a context, as cookiecutter does, then imported."""

from __future__ import annotations

import ast
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from cookiecutter.environment import StrictEnvironment

import template_python
from tests.conftest import TEMPLATE_DIR

HOOKS_DIR = TEMPLATE_DIR / "hooks"
COOKIECUTTER_JSON = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text(encoding="utf-8"))
VALID_ANSWERS = {
    "project_name": "My FastAPI Service",
    "project_slug": "my-fastapi-service",
    "package_name": "my_fastapi_service",
    "description": "A FastAPI service.",
    "author_name": "Your Name",
    "author_email": "you@example.com",
    "version": "0.1.0",
    "python_version": "3.13",
    "runner": "uvicorn",
    "port": "8000",
    "kubernetes": "no",
    "cruft_check": "no",
}


def load_hook(name: str, tmp_path: Path, **answers: Any) -> ModuleType:
    """Render hooks/<name>.py with these answers and import it (its main() does not run)."""
    context = {"cookiecutter": {**VALID_ANSWERS, **answers}}
    source = StrictEnvironment(context=context).from_string((HOOKS_DIR / f"{name}.py").read_text()).render(**context)
    path = tmp_path / f"{name}.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(f"rendered_{name}", path)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def pre_gen(tmp_path: Path) -> ModuleType:
    return load_hook("pre_gen_project", tmp_path)


# --- pre_gen_project ---------------------------------------------------------------------------


def test_valid_answers_pass(pre_gen: ModuleType) -> None:
    assert pre_gen.find_errors(VALID_ANSWERS) == []


def test_answers_reach_the_hook_as_data(tmp_path: Path) -> None:
    nasty = 'x""" + __import__("os").getcwd() + r"""\\'
    hook = load_hook("pre_gen_project", tmp_path, project_name=nasty)

    assert hook.ANSWERS["project_name"] == nasty


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("project_slug", "../evil", "lowercase letters"),
        ("package_name", "class", "keyword"),
        ("package_name", "match", "keyword"),
        ("package_name", "json", "standard-library"),
        ("package_name", "fastapi", "dependency"),
        ("package_name", "tests", "reserved"),
        ("port", "65536", "1 to 65535"),
        ("version", "1.0-banana", "PEP 440"),
        ("author_email", "not-an-email", "name@example.com"),
        ("project_name", "  ", "empty"),
        ("description", "two\nlines", "one line"),
        ("runner", "waitress", "one of"),
    ],
)
def test_each_error_is_one_line_naming_field_and_rule(
    pre_gen: ModuleType, field: str, value: str, fragment: str
) -> None:
    errors = pre_gen.find_errors({**VALID_ANSWERS, field: value})

    assert len(errors) == 1
    assert errors[0].startswith(f"{field}: ")
    assert fragment in errors[0]
    assert "\n" not in errors[0]


def test_runners_match_cookiecutter_json(pre_gen: ModuleType) -> None:
    assert list(pre_gen.RUNNERS) == COOKIECUTTER_JSON["runner"]


def test_the_kubernetes_question_comes_right_after_the_runner_question() -> None:
    """Cookiecutter asks every question (no conditional ones): it is asked next to the answer it needs."""
    questions = list(COOKIECUTTER_JSON)

    assert questions.index("kubernetes") == questions.index("runner") + 1


def test_python_versions_match_the_default_chooser(pre_gen: ModuleType) -> None:
    assert pre_gen.PYTHON_VERSIONS == template_python.SUPPORTED_PYTHON_VERSIONS


def test_main_exits_1_and_prints_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hook = load_hook("pre_gen_project", tmp_path, port="http")

    assert hook.main() == 1
    assert capsys.readouterr().err == "error: port: 'http' must be a whole number from 1 to 65535 (no leading zeros)\n"


# --- post_gen_project --------------------------------------------------------------------------


@pytest.fixture
def post_gen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The hook, run from a project folder holding every staged runner file (as after rendering)."""
    hook = load_hook("post_gen_project", tmp_path, runner="docker", _repo_dir=str(TEMPLATE_DIR))
    project = tmp_path / "project"
    staging = project / hook.STAGING_DIR
    staging.mkdir(parents=True)
    for files in [*hook.RUNNER_FILES.values(), *hook.OPTION_FILES.values()]:
        for name in files.values():
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            (staging / name).write_text(f"# staged {name}\n", encoding="utf-8")
    monkeypatch.chdir(project)
    return hook


def test_runner_table_covers_every_runner(post_gen: ModuleType) -> None:
    assert list(post_gen.RUNNER_FILES) == COOKIECUTTER_JSON["runner"]


def test_table_matches_the_templates_staged_files(post_gen: ModuleType) -> None:
    staging = TEMPLATE_DIR / "{{cookiecutter.project_slug}}" / ".runner-files"
    staged = {path.relative_to(staging).as_posix() for path in staging.rglob("*") if path.is_file()}
    tables = [*post_gen.RUNNER_FILES.values(), *post_gen.OPTION_FILES.values()]
    listed = {name for files in tables for name in files.values()}

    assert staged == listed


def test_runner_files_are_installed_and_staging_removed(post_gen: ModuleType) -> None:
    installed = post_gen.install_runner_files("docker")

    assert sorted(path.as_posix() for path in installed) == sorted(
        [
            "src/my_fastapi_service/serving/server.py",
            "tests/test_server.py",
            "src/my_fastapi_service/serving/healthcheck.py",
            "tests/test_healthcheck.py",
            "Dockerfile",
            ".dockerignore",
            "compose.yaml",
            ".github/workflows/release.yml",
        ]
    )
    assert Path("Dockerfile").read_text() == "# staged Dockerfile\n"
    assert not post_gen.STAGING_DIR.exists()


def test_unlisted_staged_file_is_an_error(post_gen: ModuleType) -> None:
    (post_gen.STAGING_DIR / "stray.py").write_text("", encoding="utf-8")

    with pytest.raises(post_gen.GenerationError, match=r"stray\.py"):
        post_gen.check_staging_matches_table()


def test_files_of_an_earlier_runner_are_listed_not_deleted(post_gen: ModuleType) -> None:
    earlier = Path("src/my_fastapi_service/serving/gunicorn_conf.py")
    earlier.parent.mkdir(parents=True, exist_ok=True)
    earlier.write_text("# the user's, from an earlier generation\n", encoding="utf-8")
    post_gen.install_runner_files("docker")

    assert post_gen.other_answers_leftovers("docker") == [(earlier, "another runner")]
    assert earlier.is_file()


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        ("a.py", "x = {{ cookiecutter.port }}\n", "leftover template marker"),
        ("a.md", "{% if x %}\n", "leftover template marker"),
        ("a.py", "def broken(:\n", "does not parse"),
        ("a.toml", "key = \n", "does not parse"),
        ("a.yaml", "a: [1, 2\n", "does not parse"),
        ("a.json", "{'single': 'quotes'}\n", "does not parse"),
    ],
)
def test_generated_file_checks_catch_problems(post_gen: ModuleType, name: str, text: str, problem: str) -> None:
    Path(name).write_text(text, encoding="utf-8")

    with pytest.raises(post_gen.GenerationError, match=problem):
        post_gen.check_generated_files([Path(name)])


def test_github_actions_expressions_are_not_leftovers(post_gen: ModuleType) -> None:
    Path("ci.yml").write_text("group: ci-${{ github.ref }}\n", encoding="utf-8")

    post_gen.check_generated_files([Path("ci.yml")])


def test_only_the_templates_own_files_are_checked(post_gen: ModuleType) -> None:
    """A user's own Jinja file in a project regenerated with -f is not the template's business."""
    Path("users-template.html").write_text("{{ user_variable }}\n", encoding="utf-8")

    written = post_gen.files_written_this_run([])

    assert Path("users-template.html") not in written
    assert Path("src/my_fastapi_service/main.py") in written


# --- both --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["pre_gen_project", "post_gen_project"])
def test_hooks_import_only_the_standard_library_and_yaml(name: str) -> None:
    tree = ast.parse((HOOKS_DIR / f"{name}.py").read_text(encoding="utf-8"))
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    } | {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}

    assert imported - set(sys.stdlib_module_names) - {"__future__", "yaml"} == set()
