"""Baking the default project per runner (timed), installing it, and reading its versions."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
HOST_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
DOCKER_PYTHON = "3.13"  # the seeded python:3.13-slim base image (tests/support/docker_env.py)
RUNNERS = ("uvicorn", "gunicorn", "docker")
VERSIONS_OF = ("fastapi", "starlette", "pydantic", "pydantic-core", "uvicorn", "uvloop", "httptools")
VERSIONS_OF_GUNICORN = ("gunicorn", "uvicorn-worker")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def tools_env(**overrides: str) -> dict[str, str]:
    """This Python's tools (uv, cookiecutter) first on PATH; no server settings leak in."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("UV_PYTHON_DOWNLOADS", "never")
    env.pop("VIRTUAL_ENV", None)
    for name in ("HOST", "PORT", "WEB_CONCURRENCY", "FORWARDED_ALLOW_IPS", "MAKEFLAGS", "MAKELEVEL", "MFLAGS"):
        env.pop(name, None)
    # Python caches bytecode as it does on most machines (some CI images switch that off, and every
    # start then compiles FastAPI again); the first start after an install is reported on its own.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(overrides)
    return env


def run_checked(args: list[str], cwd: Path, what: str, timeout: float = 900, **kwargs: object) -> str:
    """Run a command to completion; its output, or SystemExit with the end of it when it fails."""
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-20:])
        raise SystemExit(f"error: {what} failed (exit {result.returncode}):\n{tail}")
    return result.stdout


def bake(
    runner: str, python_version: str, out_dir: Path, project_name: str | None = None, *answers: str
) -> tuple[Path, float]:
    """Bake the default project (or with these extra answers) with the cookiecutter CLI, timed from exec to exit."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "cookiecutter", "--no-input", "--output-dir", str(out_dir), str(TEMPLATE_DIR)]
    cmd += [f"python_version={python_version}", f"runner={runner}"]
    if project_name:
        cmd.append(f"project_name={project_name}")
    cmd += answers
    started = time.perf_counter()
    run_checked(cmd, out_dir, f"baking the {runner} project", env=tools_env())
    elapsed = time.perf_counter() - started
    (project,) = (path for path in out_dir.iterdir() if path.is_dir())
    return project, elapsed


def bake_all(work: Path, bakes: int, project_name: str | None) -> tuple[dict[str, Path], dict[str, list[float]]]:
    """Every runner's project, baked `bakes` times (the last bake is kept), and the bake times."""
    projects: dict[str, Path] = {}
    times: dict[str, list[float]] = {runner: [] for runner in RUNNERS}
    for attempt in range(bakes):
        for runner in RUNNERS:
            python_version = DOCKER_PYTHON if runner == "docker" else HOST_PYTHON
            project, elapsed = bake(runner, python_version, work / f"bake-{attempt}" / runner, project_name)
            times[runner].append(elapsed)
            projects[runner] = project
    for runner in RUNNERS:
        log(f"bake {runner}: median {statistics.median(times[runner]):.2f} s of {bakes}")
    return projects, times


def install(project: Path, runner: str) -> None:
    started = time.perf_counter()
    run_checked(["make", "install"], project, f"make install ({runner})", env=tools_env())
    log(f"make install {runner}: {time.perf_counter() - started:.1f} s")


def venv_python(project: Path) -> Path:
    return project / ".venv" / "bin" / "python"


def venv_versions(python: Path, names: tuple[str, ...]) -> dict[str, str]:
    """The installed versions of these distributions (those installed), and Python's as 'python'."""
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        f"for name in {list(names)!r}:\n"
        "    try: out[name] = m.version(name)\n"
        "    except m.PackageNotFoundError: pass\n"
        "out['python'] = sys.version.split()[0]\n"
        "print(json.dumps(out))\n"
    )
    return json.loads(run_checked([str(python), "-c", code], TEMPLATE_DIR, "reading versions"))
