"""The template's Jinja extensions, in the module cookiecutter looks for beside cookiecutter.json.

- `PythonVersionExtension`: the default `python_version` answer is the Python running cookiecutter,
  so a project made on Debian 12 (3.11) or Ubuntu 24.04 (3.12) installs with the Python at hand; on a
  Python the template does not support, the newest it does. (Not hooks/pre_prompt.py: cookiecutter
  first copies the whole template folder for it, a checkout's .venv included, and .cruft.json would
  then record that deleted copy as the template's source.)
- `ConstantsExtension`: facts that are no question but appear in several files, written once here as
  template globals: `metrics_port`, the Prometheus metrics' port (the setting's default, the image's,
  compose's and the manifests' port, and the port answer the pre-gen hook refuses with metrics=yes).
- `FolderNameExtension`: cookiecutter creates the project folder from `project_slug` before the
  pre-gen hook can check it, so a slug such as `a/b` or `../x` (a typo, or a replayed answer) would
  make folders outside the output folder, or leave `a/` behind when the hook then refuses it. The
  folder's name is rendered through the `folder_name` filter, which refuses such a name with an
  undefined-variable error (cookiecutter names the answer and writes nothing). Every other rule
  lives in hooks/pre_gen_project.py. It also adds `py_str`: an answer as a Python string literal
  quoted the way ruff format quotes it, so generated files with quotes in an answer stay formatted.
- `AnswerGuardExtension`: cookiecutter renders every answer as a template, before any hook runs, so an
  answer such as `{{ cycler.__init__.__globals__.os.system(...) }}` (a typo'd or a shared replay
  file's) would run code while baking. Jinja compiles every `a.b` and `a[b]` to the environment's
  `getattr`/`getitem`; this environment's refuse a name that starts with `_`, the only way from a
  template to Python's internals. Nothing in the template's own files uses one.
"""

from __future__ import annotations

import sys
from typing import Any

from jinja2 import Environment
from jinja2.exceptions import UndefinedError
from jinja2.ext import Extension

# Newest first. hooks/pre_gen_project.py checks the answer against the same list (tests/test_hooks.py).
SUPPORTED_PYTHON_VERSIONS = ("3.13", "3.12", "3.11")
# The project template's folder name, which cookiecutter renders into the project's folder name.
PROJECT_FOLDER = "{{cookiecutter.project_slug}}"
MAX_FOLDER_NAME_BYTES = 255  # the longest file name most file systems take
METRICS_PORT = "9000"  # the metrics' own port by default (metrics=yes)


def default_python_version(version_info: tuple[int, ...] = tuple(sys.version_info)) -> str:
    """`major.minor` of the given (by default the running) Python when supported, else the newest supported."""
    running = f"{version_info[0]}.{version_info[1]}"
    return running if running in SUPPORTED_PYTHON_VERSIONS else SUPPORTED_PYTHON_VERSIONS[0]


def folder_name_problem(value: object) -> str | None:
    """Why `value` cannot be the name of the one folder cookiecutter creates, or None."""
    text = str(value)
    if text in {"", ".", ".."} or any(char in text for char in "/\\:\0"):
        return "must be one plain folder name (no '/', '\\', ':', and not '.' or '..')"
    if len(text.encode("utf-8", "surrogatepass")) > MAX_FOLDER_NAME_BYTES:
        return f"must be at most {MAX_FOLDER_NAME_BYTES} bytes long to be a folder name"
    return None


def folder_name(value: object) -> str:
    problem = folder_name_problem(value)
    if problem:
        raise UndefinedError(f"project_slug: {str(value)[:80]!r} {problem}")
    return str(value)


def python_string_literal(value: object) -> str:
    """`value` as a Python string literal in ruff format's preferred style: double quotes, unless the
    text holds more double than single quotes. Answers are one line (the pre-gen hook checks)."""
    text = str(value)
    quote = "'" if text.count('"') > text.count("'") else '"'
    return quote + text.replace("\\", "\\\\").replace(quote, "\\" + quote) + quote


class PythonVersionExtension(Extension):
    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.globals["default_python_version"] = default_python_version()


class ConstantsExtension(Extension):
    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.globals["metrics_port"] = METRICS_PORT


class UnsafeAnswerError(UndefinedError):
    """An answer the template refuses to render (an UndefinedError, so cookiecutter names the field)."""


class AnswerGuardExtension(Extension):
    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        plain_getattr, plain_getitem = environment.getattr, environment.getitem

        def getattr_(obj: Any, attribute: str) -> Any:
            refuse_private(attribute)
            return plain_getattr(obj, attribute)

        def getitem(obj: Any, argument: Any) -> Any:
            refuse_private(argument)
            return plain_getitem(obj, argument)

        environment.getattr, environment.getitem = getattr_, getitem  # type: ignore[method-assign]


def refuse_private(name: object) -> None:
    if isinstance(name, str) and name.startswith("_"):
        raise UnsafeAnswerError(f"{name!r}: an answer may not reach Python's internals (names starting with '_')")


class FolderNameExtension(Extension):
    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.filters["folder_name"] = folder_name
        environment.filters["py_str"] = python_string_literal

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        return "{{ cookiecutter.project_slug | folder_name }}" if source == PROJECT_FOLDER else source
