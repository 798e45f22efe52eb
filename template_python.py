"""Jinja extension of this template: the default `python_version` answer is the Python running cookiecutter.

Loaded by cookiecutter through `_extensions` in cookiecutter.json, whose `python_version` default is
`{{ default_python_version }}`. A project made on Debian 12 (3.11) or Ubuntu 24.04 (3.12) then installs
with the Python at hand; on a Python the template does not support, the default is the newest it does.

Why not hooks/pre_prompt.py (cookiecutter >= 2.4, which may rewrite cookiecutter.json before the
questions): cookiecutter first copies the whole template folder for it, a `.venv` in the checkout
included (20 s per bake with the test environment's 660 MB, against 0.5 s), and the copy then stands in
for the template, so .cruft.json would record a deleted temporary folder as the template's source.
"""

from __future__ import annotations

import sys

from jinja2 import Environment
from jinja2.ext import Extension

# Newest first. Kept equal to PYTHON_VERSIONS in hooks/pre_gen_project.py by tests/test_hooks.py.
SUPPORTED_PYTHON_VERSIONS = ("3.13", "3.12", "3.11")


def default_python_version(version_info: tuple[int, ...] = tuple(sys.version_info)) -> str:
    """`major.minor` of the given (by default the running) Python when supported, else the newest supported."""
    running = f"{version_info[0]}.{version_info[1]}"
    return running if running in SUPPORTED_PYTHON_VERSIONS else SUPPORTED_PYTHON_VERSIONS[0]


class PythonVersionExtension(Extension):
    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.globals["default_python_version"] = default_python_version()
