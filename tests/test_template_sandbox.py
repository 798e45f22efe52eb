"""The template's Jinja extension (template_sandbox.py): its sandbox, slug guard and py_str filter."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cookiecutter.environment import StrictEnvironment
from jinja2 import StrictUndefined
from jinja2.exceptions import UndefinedError

from template_sandbox import folder_name_problem, python_string_literal

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
    return StrictEnvironment(context={"cookiecutter": {"_extensions": ["template_sandbox.SandboxExtension"]}})


@pytest.mark.parametrize("text", TRICKY)
def test_py_str_is_the_same_text_in_python(text: str) -> None:
    assert ast.literal_eval(python_string_literal(text)) == text


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


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "../x", "/abs", "a\\b", "c:x", "x\0y", "a" * 256])
def test_unsafe_folder_names_are_refused(name: str) -> None:
    assert folder_name_problem(name)


@pytest.mark.parametrize("name", ["svc", "my-service", "a..b", "a" * 255])
def test_plain_folder_names_pass(name: str) -> None:
    assert folder_name_problem(name) is None


def test_templates_cannot_reach_python_internals() -> None:
    template = environment().from_string("{{ cycler.__init__.__globals__ }}")

    with pytest.raises(UndefinedError, match="not allowed in an answer"):
        template.render()


def test_reading_an_unsafe_slug_fails() -> None:
    template = environment().from_string("{{ cookiecutter.project_slug }}")

    with pytest.raises(UndefinedError, match=re.escape("project_slug: '../x'")):
        template.render(cookiecutter={"project_slug": "../x"})


def test_ordinary_templates_render_as_before() -> None:
    template = environment().from_string("{{ cookiecutter.project_slug | replace('-', '_') }} {{ 6 * 7 }}")

    assert template.render(cookiecutter={"project_slug": "my-svc"}) == "my_svc 42"


def test_the_environment_keeps_strict_undefined() -> None:
    assert environment().undefined is StrictUndefined
