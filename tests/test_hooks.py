"""Unit tests of the hooks: each is rendered with a context, as cookiecutter does, then imported."""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from cookiecutter.environment import StrictEnvironment

import local_extensions
from tests.conftest import COMBINATIONS, TEMPLATE_DIR, folder_is_chosen

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
    "server": "uvicorn",
    "packaging": "host",
    "port": "8000",
    "kubernetes": "no",
    "metrics": "no",
    "sentry": "no",
    "database": "none",
    "cruft_check": "no",
}


def load_hook(name: str, tmp_path: Path, **answers: Any) -> ModuleType:
    """Render hooks/<name>.py with these answers and import it (its main() does not run)."""
    context = {"cookiecutter": {**VALID_ANSWERS, "_extensions": COOKIECUTTER_JSON["_extensions"], **answers}}
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
        ("kubernetes", "maybe", "one of"),
        ("sentry", "maybe", "one of"),
        ("package_name", "sentry_sdk", "dependency"),
        ("project_slug", "sentry-sdk", "dependency"),
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


def test_kubernetes_on_a_host_is_refused_in_one_line(pre_gen: ModuleType) -> None:
    errors = pre_gen.find_errors({**VALID_ANSWERS, "packaging": "host", "kubernetes": "yes"})

    assert errors == ["kubernetes: 'yes' needs packaging docker (the manifests run the project's image), not 'host'"]


@pytest.mark.parametrize("server", sorted({server for server, _ in COMBINATIONS}))
def test_kubernetes_with_docker_passes(pre_gen: ModuleType, server: str) -> None:
    assert pre_gen.find_errors({**VALID_ANSWERS, "server": server, "packaging": "docker", "kubernetes": "yes"}) == []


def test_the_kubernetes_question_comes_right_after_the_packaging_question() -> None:
    """Cookiecutter asks every question (no conditional ones): it is asked next to the answer it needs."""
    questions = list(COOKIECUTTER_JSON)

    assert questions.index("kubernetes") == questions.index("packaging") + 1


def test_python_versions_match_the_default_chooser(pre_gen: ModuleType) -> None:
    assert pre_gen.PYTHON_VERSIONS == local_extensions.SUPPORTED_PYTHON_VERSIONS


def test_main_exits_1_and_prints_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hook = load_hook("pre_gen_project", tmp_path, port="http")

    assert hook.main() == 1
    assert capsys.readouterr().err == "error: port: 'http' must be a whole number from 1 to 65535 (no leading zeros)\n"


# --- post_gen_project and the _variants/ tree ------------------------------------------------------

PROJECT_TEMPLATE = TEMPLATE_DIR / "{{cookiecutter.project_slug}}"
VARIANTS_DIR = PROJECT_TEMPLATE / "_variants"
NAME_PART = re.compile(r"\{\{\s*cookiecutter\.(\w+)\s*\}\}")
COMBINATION_PARAMS = [pytest.param(server, packaging, id=f"{server}-{packaging}") for server, packaging in COMBINATIONS]


def variant_folders() -> list[Path]:
    """Every `_variants/<answers>/<values>/` folder of the template."""
    return sorted(values for answers in VARIANTS_DIR.iterdir() for values in answers.iterdir())


def variant_folder_problem(folder: Path) -> str | None:
    names, values = folder.parent.name.split("+"), folder.name.split("+")
    if len(names) != len(values):
        return f"{len(names)} answers but {len(values)} values"
    for name, value_list in zip(names, values, strict=True):
        if not isinstance(COOKIECUTTER_JSON.get(name), list):
            return f"{name} is no choice answer of cookiecutter.json"
        for value in value_list.split(","):
            if value not in COOKIECUTTER_JSON[name]:
                return f"{value} is not one of {name}'s choices {COOKIECUTTER_JSON[name]}"
    return None


def test_the_template_has_variant_folders() -> None:
    assert len(variant_folders()) >= len(COMBINATIONS)


@pytest.mark.parametrize("folder", variant_folders(), ids=lambda folder: f"{folder.parent.name}/{folder.name}")
def test_each_variant_folder_names_answers_and_their_values(folder: Path) -> None:
    assert variant_folder_problem(folder) is None


@pytest.mark.parametrize(
    ("answers", "values"),
    [
        ("runner", "uvicorn"),
        ("server", "hypercorn"),
        ("kubernetes+metrics", "yes"),
        ("server", "uvicorn+host"),
        ("database", "postgres,mysql"),
    ],
)
def test_a_misnamed_variant_folder_would_be_caught(answers: str, values: str) -> None:
    assert variant_folder_problem(VARIANTS_DIR / answers / values)


@pytest.mark.parametrize(("server", "packaging"), COMBINATION_PARAMS)
def test_every_server_and_packaging_has_its_folder(server: str, packaging: str) -> None:
    assert [(VARIANTS_DIR / "server" / server).is_dir(), (VARIANTS_DIR / "packaging" / packaging).is_dir()] == [
        True,
        True,
    ]


def test_variant_folders_are_visible() -> None:
    """No dot-folders: `ls` shows every place a server's or a packaging's files live."""
    hidden = [path.relative_to(PROJECT_TEMPLATE) for path in VARIANTS_DIR.rglob(".*") if path.is_dir()]

    assert [path for path in hidden if path.name != ".github"] == []


def render_path(path: Path, answers: dict[str, str]) -> Path:
    return Path(NAME_PART.sub(lambda match: answers[match[1]], path.as_posix()))


def make_post_gen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **answers: str) -> ModuleType:
    """The hook, run from a project folder holding the template's whole `_variants/` tree, names
    rendered (as after cookiecutter's rendering); each file says where it came from."""
    hook = load_hook("post_gen_project", tmp_path, _repo_dir=str(TEMPLATE_DIR), **answers)
    project = tmp_path / "project"
    context = {**VALID_ANSWERS, **answers}
    for source in VARIANTS_DIR.rglob("*"):
        if source.is_file():
            relative = render_path(source.relative_to(PROJECT_TEMPLATE), context)
            (project / relative).parent.mkdir(parents=True, exist_ok=True)
            (project / relative).write_text(f"# from {relative.as_posix()}\n", encoding="utf-8")
    monkeypatch.chdir(project)
    return hook


@pytest.fixture
def post_gen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return make_post_gen(tmp_path, monkeypatch, server="gunicorn", packaging="docker")


def chosen_files(answers: dict[str, str]) -> dict[str, str]:
    """project path -> the `_variants/` file it comes from, for these answers (read from the template tree)."""
    chosen = {}
    for folder in variant_folders():
        if folder_is_chosen(folder, answers):
            for source in folder.rglob("*"):
                if source.is_file():
                    rendered = render_path(source.relative_to(PROJECT_TEMPLATE), answers).as_posix()
                    chosen[render_path(source.relative_to(folder), answers).as_posix()] = rendered
    return chosen


@pytest.mark.parametrize("metrics", ["no", "yes"])
@pytest.mark.parametrize(("server", "packaging"), COMBINATION_PARAMS)
def test_the_chosen_folders_are_laid_over_the_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: str, packaging: str, metrics: str
) -> None:
    answers = {"server": server, "packaging": packaging, "metrics": metrics}
    hook = make_post_gen(tmp_path, monkeypatch, **answers)
    expected = chosen_files({**VALID_ANSWERS, **answers})

    installed, others = hook.install_variant_files()

    assert sorted(path.as_posix() for path in installed) == sorted(expected)
    assert {name: Path(name).read_text(encoding="utf-8") for name in expected} == {
        name: f"# from {source}\n" for name, source in expected.items()
    }
    assert others == []
    assert not Path("_variants").exists()


def test_two_answers_together_need_both_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hook = make_post_gen(tmp_path, monkeypatch, packaging="docker", kubernetes="yes", metrics="no")
    installed, _ = hook.install_variant_files()
    names = {path.as_posix() for path in installed}

    assert "deploy/kubernetes/base/deployment.yaml" in names
    assert [name for name in names if "servicemonitor" in name] == []


@pytest.mark.parametrize("database", ["none", "postgres", "sqlite"])
def test_a_comma_folder_is_laid_in_for_each_value_it_lists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database: str
) -> None:
    hook = make_post_gen(tmp_path, monkeypatch, database=database)
    installed, _ = hook.install_variant_files()
    names = {path.as_posix() for path in installed}

    assert ("src/my_fastapi_service/database.py" in names) == (database != "none")


def test_a_folder_naming_no_answer_is_an_error(post_gen: ModuleType) -> None:
    (post_gen.VARIANTS_DIR / "runner" / "docker").mkdir(parents=True)

    with pytest.raises(post_gen.GenerationError, match=r"runner names no answer"):
        post_gen.install_variant_files()


def test_files_of_another_value_are_listed_not_deleted(post_gen: ModuleType) -> None:
    """Generated again over a project with other answers (-f): the user's copy stays, and is reported."""
    earlier = Path("deploy/my-fastapi-service.service")
    earlier.parent.mkdir(parents=True, exist_ok=True)
    earlier.write_text("# the user's, from an earlier generation\n", encoding="utf-8")

    _, others = post_gen.install_variant_files()

    assert others == [(earlier, "packaging=host")]
    assert earlier.read_text(encoding="utf-8") == "# the user's, from an earlier generation\n"


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
