"""Shape and check the generated project.

1. Put the chosen runner's files in place from one table (RUNNER_FILES) and drop the others' staged
   copies. Runner files are staged in .runner-files/ rather than written in place, so a project
   regenerated with -f never has a file of the user's overwritten and then deleted.
2. Check what this run wrote: Python compiles, TOML/JSON/YAML parse, no template markers are left.
3. With uv installed, lock the dependencies for the Docker build (network allowing); never required.

Standard library plus PyYAML (a dependency of cookiecutter). One line per error, exit 1.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

# The answers arrive as JSON data, never as code (see pre_gen_project.py).
ANSWERS = json.loads(r""" {{ cookiecutter | tojson }} """)

STAGING_DIR = Path(".runner-files")

# runner -> {path in the project: file in STAGING_DIR}. "{package}" and "{slug}" are filled in.
RUNNER_FILES: dict[str, dict[str, str]] = {
    "uvicorn": {
        "src/{package}/server.py": "server_uvicorn.py",
        "tests/test_server.py": "test_server_uvicorn.py",
        "deploy/{slug}.service": "systemd.service",
    },
    "gunicorn": {
        "src/{package}/server.py": "server_gunicorn.py",
        "tests/test_server.py": "test_server_gunicorn.py",
        "src/{package}/gunicorn_worker.py": "gunicorn_worker.py",
        "tests/test_gunicorn_worker.py": "test_gunicorn_worker.py",
        "gunicorn.conf.py": "gunicorn.conf.py",
        "deploy/{slug}.service": "systemd.service",
    },
    "docker": {
        "src/{package}/server.py": "server_uvicorn.py",
        "tests/test_server.py": "test_server_uvicorn.py",
        "src/{package}/healthcheck.py": "healthcheck.py",
        "tests/test_healthcheck.py": "test_healthcheck.py",
        "Dockerfile": "Dockerfile",
        ".dockerignore": "dockerignore",
        "compose.yaml": "compose.yaml",
    },
}
NEEDS_LOCK_FILE = {"docker"}

# Template syntax that must never reach a generated file (a dollar before double braces is a GitHub
# Actions expression, not ours).
LEFTOVER_MARKERS = re.compile(r"(?<!\$)\{\{|\{[%]|\bcookiecutter\.")
TEMPLATE_PATH_PART = re.compile(r"\{\{\s*cookiecutter\.(\w+)\s*\}\}")


class GenerationError(Exception):
    """A problem with what was generated; its message is the one line the user sees."""


def runner_files(runner: str) -> dict[Path, Path]:
    """The runner's files: destination in the project -> staged source."""
    names = {"package": ANSWERS["package_name"], "slug": ANSWERS["project_slug"]}
    return {Path(dest.format(**names)): STAGING_DIR / staged for dest, staged in RUNNER_FILES[runner].items()}


def staged_files() -> set[Path]:
    return {path for path in STAGING_DIR.rglob("*") if path.is_file()}


def check_staging_matches_table() -> None:
    """Every staged file belongs to some runner and every listed one exists: the table is the truth."""
    listed = {STAGING_DIR / name for files in RUNNER_FILES.values() for name in files.values()}
    present = staged_files()
    if present - listed:
        names = ", ".join(sorted(str(path) for path in present - listed))
        raise GenerationError(f"staged runner files missing from RUNNER_FILES: {names}")
    if listed - present:
        names = ", ".join(sorted(str(path) for path in listed - present))
        raise GenerationError(f"RUNNER_FILES lists files the template does not have: {names}")


def install_runner_files(runner: str) -> list[Path]:
    """Copy the runner's staged files into place, then remove every staged file."""
    installed = []
    for destination, staged in runner_files(runner).items():
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(staged, destination)
        installed.append(destination)
    for staged in staged_files():
        staged.unlink()
    STAGING_DIR.rmdir()  # empty now; fails loudly if anything else is in it
    return installed


def other_runner_leftovers(runner: str) -> list[Path]:
    """Files another runner would own that exist here: written by an earlier generation, not this one."""
    mine = set(runner_files(runner))
    others = {path for name in RUNNER_FILES if name != runner for path in runner_files(name)}
    return sorted(path for path in others - mine if path.exists())


def files_written_this_run(installed: list[Path]) -> list[Path]:
    """The template's own files as this run named them, from the template folder when known.

    Only these are checked, so a user's own files in a project regenerated with -f are left alone.
    """
    template_dir = Path(ANSWERS.get("_repo_dir", ""), "{{ '{{cookiecutter.project_slug}}' }}")
    if not ANSWERS.get("_repo_dir") or not template_dir.is_dir():
        # Generated elsewhere (e.g. a fresh temporary folder): everything here is the template's.
        return sorted(path for path in Path().rglob("*") if path.is_file() and ".git" not in path.parts)
    written = set(installed)
    for source in template_dir.rglob("*"):
        relative = source.relative_to(template_dir)
        if source.is_file() and relative.parts[0] != STAGING_DIR.name:
            name = TEMPLATE_PATH_PART.sub(lambda match: str(ANSWERS[match.group(1)]), str(relative))
            written.add(Path(name))
    return sorted(written)


def parse_problem(path: Path, text: str) -> str | None:
    """Why a file does not parse as what its name says, or None."""
    try:
        if path.suffix == ".py":
            compile(text, str(path), "exec")
        elif path.suffix == ".json":
            json.loads(text)
        elif path.suffix == ".toml":
            import tomllib  # Python 3.11+; older Pythons skip this check

            tomllib.loads(text)
        elif path.suffix in {".yaml", ".yml"}:
            import yaml

            yaml.safe_load(text)
    except ImportError:
        return None
    except Exception as error:  # noqa: BLE001 (any parser's error is the message)
        return f"{type(error).__name__}: {error}".splitlines()[0]
    return None


def leftover_marker(text: str) -> re.Match[str] | None:
    """The first template marker in `text` that no answer explains: a description may well say
    "cookiecutter." (the pre-gen hook refuses the brace markers in answers)."""
    answers = [value for name, value in ANSWERS.items() if isinstance(value, str) and not name.startswith("_")]
    for marker in LEFTOVER_MARKERS.finditer(text):
        if not any(marker.group() in answer for answer in answers):
            return marker
    return None


def check_generated_files(paths: list[Path]) -> None:
    problems = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        marker = leftover_marker(text)
        if marker:
            line = text.count("\n", 0, marker.start()) + 1
            problems.append(f"{path}:{line}: leftover template marker {marker.group()!r}")
        problem = parse_problem(path, text)
        if problem:
            problems.append(f"{path}: does not parse: {problem}")
    if problems:
        raise GenerationError("; ".join(problems))


def lock_dependencies() -> str:
    """Try `uv lock` for the Docker build; report what happened. Never fails the generation."""
    uv = shutil.which("uv")
    if uv is None:
        return "uv not found: run `make lock` before `docker build` (the build needs uv.lock)"
    try:
        result = subprocess.run(  # noqa: S603 (fixed arguments)
            [uv, "lock", "--quiet"], capture_output=True, text=True, timeout=120, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"uv lock did not finish ({error}): run `make lock` before `docker build`"
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or ["unknown error"])[-1]
        return f"uv lock failed ({reason}): run `make lock` before `docker build`"
    return "wrote uv.lock with uv"


def main() -> int:
    runner = ANSWERS["runner"]
    try:
        check_staging_matches_table()
        installed = install_runner_files(runner)
        check_generated_files(files_written_this_run(installed))
    except (GenerationError, OSError) as error:
        print(f"error: generated project is broken: {error}", file=sys.stderr)
        return 1
    for path in other_runner_leftovers(runner):
        print(f"note: {path} belongs to another runner and was kept (delete it if unused)")
    if runner in NEEDS_LOCK_FILE:
        print(f"note: {lock_dependencies()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
