"""Jinja extension of this template, loaded by cookiecutter through `_extensions` in cookiecutter.json.

Cookiecutter renders every answer given on the command line, in a config or a replay file as a Jinja
template, in an unsandboxed environment, and it creates the project folder from `project_slug` before
the pre-gen hook can look at the answers. So without this extension an answer such as
`{{ cycler.__init__.__globals__.os.system(...) }}` runs code, and a slug such as `../../x` or `a/b`
makes folders outside the output folder or leaves `a/` behind when the hook rejects it.

SandboxExtension turns cookiecutter's environment into Jinja's SandboxedEnvironment (no underscore
attributes, no unsafe callables) and refuses, when it is read, a `project_slug` that is not one plain
folder name. Both failures are undefined-variable errors, which cookiecutter reports naming the
answer ("Unable to render variable 'project_name'") and stops before it writes anything. Every other
rule lives in hooks/pre_gen_project.py. The template's own files use nothing the sandbox forbids.

It also adds the `py_str` filter: an answer as a Python string literal quoted the way ruff format
quotes it, so a generated file with quotes in an answer still passes `ruff format --check`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import Environment
from jinja2.exceptions import UndefinedError
from jinja2.ext import Extension
from jinja2.runtime import Undefined
from jinja2.sandbox import SandboxedEnvironment, safe_range

# The longest file name most file systems take, in bytes.
MAX_FOLDER_NAME_BYTES = 255


class UnsafeAnswerError(UndefinedError):
    """An answer the template refuses to render (an UndefinedError, so cookiecutter names the field)."""


def folder_name_problem(value: object) -> str | None:
    """Why `value` cannot be the name of the one folder cookiecutter creates, or None."""
    if not isinstance(value, str):
        return None
    if value in {"", ".", ".."} or any(char in value for char in "/\\:\0"):
        return "must be one plain folder name (no '/', '\\', ':', and not '.' or '..')"
    if len(value.encode("utf-8", "surrogatepass")) > MAX_FOLDER_NAME_BYTES:
        return f"must be at most {MAX_FOLDER_NAME_BYTES} bytes long to be a folder name"
    return None


def python_string_literal(value: object) -> str:
    """`value` as a Python string literal in ruff format's preferred style: double quotes, unless the
    text holds more double than single quotes. Answers are one line (the pre-gen hook checks)."""
    text = str(value)
    quote = "'" if text.count('"') > text.count("'") else '"'
    return quote + text.replace("\\", "\\\\").replace(quote, "\\" + quote) + quote


class _GuardedSandbox(SandboxedEnvironment):
    """Sandbox whose answer lookups refuse a project_slug that would leave the output folder."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        return self._guard(obj, attribute, super().getattr(obj, attribute))

    def getitem(self, obj: Any, argument: Any) -> Any:
        return self._guard(obj, argument, super().getitem(obj, argument))

    def _guard(self, obj: Any, name: Any, value: Any) -> Any:
        if name == "project_slug" and isinstance(obj, Mapping):
            problem = folder_name_problem(value)
            if problem:
                return self.undefined(f"project_slug: {value!r} {problem}", name=name, exc=UnsafeAnswerError)
        return value

    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        return self.undefined(
            f"access to attribute {attribute!r} of {type(obj).__name__!r} is not allowed in an answer",
            name=attribute,
            obj=obj,
            exc=UnsafeAnswerError,
        )


class SandboxExtension(Extension):
    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.filters["py_str"] = python_string_literal
        if isinstance(environment, _GuardedSandbox):
            return
        # The same environment object (cookiecutter holds it) with a sandboxed class: the compiler emits
        # checked attribute, item and call operations for every template compiled from now on.
        environment.__class__ = type("Sandboxed" + type(environment).__name__, (_GuardedSandbox, type(environment)), {})
        sandboxed: Any = environment
        sandboxed.globals["range"] = safe_range
        sandboxed.binop_table = SandboxedEnvironment.default_binop_table.copy()
        sandboxed.unop_table = SandboxedEnvironment.default_unop_table.copy()

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        # An answer with a lone surrogate (invalid UTF-8 bytes on the command line) would crash
        # cookiecutter while it writes the hook, after it made the project folder.
        try:
            source.encode("utf-8")
        except UnicodeEncodeError as error:
            raise UnsafeAnswerError(f"{source[:40]!r} is not valid UTF-8 text ({error.reason})") from None
        return source
