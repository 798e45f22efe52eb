"""The project's Python version (issue 14, item 4): proposed from the Python running cookiecutter,
pinned in .python-version, and checked by `make install` before it creates anything.

The install itself with the default answer is in tests/test_first_changes.py."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from local_extensions import SUPPORTED_PYTHON_VERSIONS
from tests.conftest import HOST_PYTHON, TEMPLATE_DIR, TOOLS_DIR, bake_project, project_env, run

SUPPORTED = SUPPORTED_PYTHON_VERSIONS
# An older python3 than any supported version.
OLD_PYTHON = (3, 10, 13)


# How the default is chosen: tests/test_local_extensions.py.


def test_no_input_pins_the_running_python(tmp_path: Path) -> None:
    expected = HOST_PYTHON if HOST_PYTHON in SUPPORTED else SUPPORTED[0]

    assert (bake_project(tmp_path) / ".python-version").read_text() == f"{expected}\n"


def test_pressing_enter_takes_the_running_python(tmp_path: Path) -> None:
    """Every question answered with Enter, as a user accepting the proposals would."""
    result = subprocess.run(
        [sys.executable, "-m", "cookiecutter", str(TEMPLATE_DIR), "--output-dir", str(tmp_path)],
        input="\n" * 20,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    expected = HOST_PYTHON if HOST_PYTHON in SUPPORTED else SUPPORTED[0]

    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "my-fastapi-service" / ".python-version").read_text() == f"{expected}\n"


@pytest.mark.parametrize("version", SUPPORTED)
def test_the_answer_is_pinned(tmp_path: Path, version: str) -> None:
    assert (bake_project(tmp_path, python_version=version) / ".python-version").read_text() == f"{version}\n"


def test_ci_takes_the_pinned_version(tmp_path: Path) -> None:
    workflow = yaml.safe_load((bake_project(tmp_path, python_version="3.12") / ".github/workflows/ci.yml").read_text())
    setup = [step["with"] for step in workflow["jobs"]["test"]["steps"] if "setup-python" in step.get("uses", "")]

    assert setup == [{"python-version-file": ".python-version"}]


# --- make install refuses what it cannot use, in one line, before it creates anything -------------

STAND_IN = '''#!{executable}
"""python3 as Python {version} answers the Makefile: -V and -c as that version; -m (venv) stops."""
import sys

if sys.argv[1:] in (["-V"], ["--version"]):
    print("Python {version}")
    raise SystemExit
sys.version_info = {version_info!r}
if sys.argv[1:2] != ["-c"]:
    raise SystemExit("stand-in python3: reached " + " ".join(sys.argv[1:3]))
code = sys.argv[2]
sys.argv = ["-c", *sys.argv[3:]]
exec(code)
'''


def stand_in_python(folder: Path, version_info: tuple[int, int, int]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "python3"
    version = ".".join(map(str, version_info))
    path.write_text(
        STAND_IN.format(executable=sys.executable, version=version, version_info=(*version_info, "final", 0)),
        encoding="utf-8",
    )
    path.chmod(0o755)
    return path


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    """What the user is told, without make's own `make: *** ... Error 1` line."""
    return [line for line in result.stderr.splitlines() if not line.startswith("make: ***")]


def test_the_old_stand_in_reports_its_version(tmp_path: Path) -> None:
    python = stand_in_python(tmp_path, OLD_PYTHON)
    result = run([str(python), "-c", "import sys; print(sys.version_info >= (3, 11))"], tmp_path)

    assert result.stdout == "False\n"


@pytest.mark.parametrize("version", SUPPORTED)
def test_pip_install_on_an_older_python_stops_with_one_line(tmp_path: Path, version: str) -> None:
    project = bake_project(tmp_path / "out", python_version=version)
    python = stand_in_python(tmp_path / "old", OLD_PYTHON)
    # UV= : the venv + pip way, as on a machine without uv.
    result = run(["make", "install", "UV=", f"PYTHON={python}"], project)

    assert result.returncode != 0
    assert error_lines(result) == [
        f"error: make install needs Python {version} or newer (.python-version), and {python} is"
        f" Python 3.10.13: install Python {version} or newer, then run make install PYTHON=python{version}"
    ]
    assert not (project / ".venv").exists()


@pytest.mark.parametrize(("pinned", "running"), [("3.11", (3, 11, 2)), ("3.11", (3, 13, 0)), ("3.12", (3, 14, 1))])
def test_pip_install_goes_on_with_the_pinned_python_or_newer(
    tmp_path: Path, pinned: str, running: tuple[int, int, int]
) -> None:
    """The check lets it through: the next step, `python3 -m venv`, is reached (and stopped by the stand-in)."""
    project = bake_project(tmp_path / "out", python_version=pinned)
    python = stand_in_python(tmp_path / "new", running)
    result = run(["make", "install", "UV=", f"PYTHON={python}"], project)

    assert error_lines(result) == ["stand-in python3: reached -m venv"]


def test_uv_install_without_the_pinned_python_stops_with_one_line(tmp_path: Path) -> None:
    """uv finds no Python 3.x (only uv and cat on PATH, no managed Pythons) and downloads none."""
    project = bake_project(tmp_path, python_version=HOST_PYTHON)
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool, found in {"uv": shutil.which("uv", path=str(TOOLS_DIR)), "cat": shutil.which("cat")}.items():
        assert found, f"{tool} not found"
        (tools / tool).symlink_to(found)
    env = project_env(PATH=str(tools), UV_PYTHON_INSTALL_DIR=str(tmp_path / "no-pythons"))
    env.pop("UV_PYTHON_DOWNLOADS")
    make = shutil.which("make")
    assert make

    result = run([make, "install"], project, env=env)

    assert result.returncode != 0
    assert error_lines(result) == [
        f"error: make install needs Python {HOST_PYTHON} (.python-version) and uv finds none: install it"
        f" (uv python install {HOST_PYTHON}, or your system's package), then run make install again"
    ]
    assert not (project / ".venv").exists()
