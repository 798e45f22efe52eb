"""The template's Jinja extensions (local_extensions.py, where cookiecutter looks for them): the
`folder_name` guard on the project folder's name, the `py_str` filter, and the default Python version."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cookiecutter.environment import StrictEnvironment
from cookiecutter.exceptions import CookiecutterException
from cookiecutter.main import cookiecutter
from jinja2 import StrictUndefined
from jinja2.exceptions import UndefinedError

import local_extensions
from local_extensions import (
    PROJECT_FOLDER,
    SUPPORTED_PYTHON_VERSIONS,
    default_python_version,
    folder_name_problem,
    python_string_literal,
)
from tests.conftest import HOST_PYTHON, TEMPLATE_DIR

COOKIECUTTER_JSON = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text(encoding="utf-8"))
TRICKY = [
    "plain",
    "O'Reilly",
    'say "hi"',
    "both ' and \"",
    'more "double" than \'single\' "quotes"',
    "back\\slash",
    "trailing backslash \\",
    '"""; import os #',
    "'''",
    "{__import__('os')}",
    "Ünïcödé — 🚀",
    "\\N{BULLET} \\x00 \\u0027",
]


def environment() -> StrictEnvironment:
    """Cookiecutter's environment with the template's extensions, as cookiecutter makes it."""
    return StrictEnvironment(context={"cookiecutter": {"_extensions": COOKIECUTTER_JSON["_extensions"]}})


# --- py_str -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", TRICKY)
def test_py_str_is_the_same_text_in_python(text: str) -> None:
    assert ast.literal_eval(python_string_literal(text)) == text


@pytest.mark.parametrize("text", TRICKY)
def test_py_str_filter_renders_the_literal(text: str) -> None:
    rendered = environment().from_string("{{ cookiecutter.project_name | py_str }}")

    assert rendered.render(cookiecutter={"project_name": text}) == python_string_literal(text)


def test_py_str_is_what_ruff_format_would_write(tmp_path: Path) -> None:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff not installed")
    source = "".join(f"VALUE_{n} = {python_string_literal(text)}\n" for n, text in enumerate(TRICKY))
    (tmp_path / "literals.py").write_text(source, encoding="utf-8")
    result = subprocess.run(
        [ruff, "format", "--isolated", "--diff", "literals.py"], cwd=tmp_path, capture_output=True, text=True
    )

    assert (result.returncode, result.stdout) == (0, "")


# --- the project folder's name ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "../x", "/abs", "a\\b", "c:x", "x\0y", "a" * 256])
def test_unsafe_folder_names_are_refused(name: str) -> None:
    assert folder_name_problem(name)


@pytest.mark.parametrize("name", ["svc", "my-service", "a..b", "a" * 255])
def test_plain_folder_names_pass(name: str) -> None:
    assert folder_name_problem(name) is None


def test_the_project_folder_name_refuses_an_unsafe_slug() -> None:
    template = environment().from_string(PROJECT_FOLDER)

    with pytest.raises(UndefinedError, match=re.escape("project_slug: '../x'")):
        template.render(cookiecutter={"project_slug": "../x"})


def test_the_project_folder_name_is_the_slug() -> None:
    assert environment().from_string(PROJECT_FOLDER).render(cookiecutter={"project_slug": "my-svc"}) == "my-svc"


def test_the_template_folder_is_the_one_guarded() -> None:
    """The guard rewrites exactly the folder cookiecutter creates first: the template's one folder."""
    assert [path.name for path in TEMPLATE_DIR.glob("{{*}}")] == [PROJECT_FOLDER]


def test_other_templates_render_as_before() -> None:
    template = environment().from_string("{{ cookiecutter.project_slug | replace('-', '_') }} {{ 6 * 7 }}")

    assert template.render(cookiecutter={"project_slug": "my-svc"}) == "my_svc 42"


@pytest.mark.parametrize("slug", ["a/b", "../x", "../../escaped", "/tmp/abs"])
def test_an_unsafe_slug_is_refused_before_any_folder_is_made(tmp_path: Path, slug: str) -> None:
    output = tmp_path / "out"
    output.mkdir()

    with pytest.raises(CookiecutterException, match=r"project_slug"):
        cookiecutter(
            str(TEMPLATE_DIR),
            no_input=True,
            output_dir=str(output),
            extra_context={"project_slug": slug, "package_name": "svc", "python_version": HOST_PYTHON},
        )

    assert sorted(path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("*")) == ["out"]
    assert not Path("/tmp/abs").exists()


def test_cookiecutters_environment_class_is_left_alone() -> None:
    """The extensions add filters and a global; they reassign no class of cookiecutter's environment."""
    env = environment()

    assert type(env) is StrictEnvironment
    assert env.undefined is StrictUndefined
    assert {"folder_name", "py_str"} <= set(env.filters)


# --- the default Python version --------------------------------------------------------------------


@pytest.mark.parametrize("version", SUPPORTED_PYTHON_VERSIONS)
def test_a_supported_running_python_is_proposed(version: str) -> None:
    major, minor = map(int, version.split("."))

    assert default_python_version((major, minor, 0, "final", 0)) == version


@pytest.mark.parametrize("running", [(3, 10, 13), (3, 14, 1), (3, 15, 0)], ids=["3.10", "3.14", "3.15"])
def test_otherwise_the_newest_supported_is_proposed(running: tuple[int, ...]) -> None:
    assert default_python_version(running) == SUPPORTED_PYTHON_VERSIONS[0] == "3.13"


def test_the_supported_versions_are_newest_first() -> None:
    versions = [tuple(map(int, version.split("."))) for version in SUPPORTED_PYTHON_VERSIONS]

    assert versions == sorted(versions, reverse=True)


def test_the_python_version_question_defaults_to_the_running_python() -> None:
    default = environment().from_string(COOKIECUTTER_JSON["python_version"]).render()

    assert (
        default
        == local_extensions.default_python_version()
        == (HOST_PYTHON if HOST_PYTHON in SUPPORTED_PYTHON_VERSIONS else SUPPORTED_PYTHON_VERSIONS[0])
    )
