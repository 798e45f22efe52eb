"""The projects: every server x packaging of cookiecutter.json baked with the cookiecutter CLI
(timed: the bake time), each server's host project installed, its versions, its cold start."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import COMBINATIONS, HOST_PYTHON, PACKAGINGS, SERVERS, TEMPLATE_DIR, run
from tools.bench.servers import Config, start

VERSIONS_OF = ("fastapi", "starlette", "pydantic", "pydantic-core", "uvicorn", "uvloop", "httptools")
VERSIONS_OF += ("gunicorn", "uvicorn-worker", "granian")


def bake(out_dir: Path, server: str, packaging: str, **answers: str) -> tuple[Path, float]:
    """One bake with the default answers but these, timed from exec to exit as a user runs it."""
    cmd = [sys.executable, "-m", "cookiecutter", "--no-input", "--output-dir", str(out_dir), str(TEMPLATE_DIR)]
    cmd += [f"python_version={HOST_PYTHON}", f"server={server}", f"packaging={packaging}"]
    cmd += [f"{name}={value}" for name, value in answers.items()]
    out_dir.mkdir(parents=True)
    started = time.perf_counter()
    result = run(cmd, out_dir)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"error: baking {server} x {packaging} failed:\n{result.stderr[-3000:]}")
    (project,) = out_dir.iterdir()
    return project, elapsed


def bake_all(work: Path, bakes: int) -> tuple[dict[str, Path], dict[str, list[float]]]:
    """Every combination baked `bakes` times: ({server: its host project}, {"server x packaging": times})."""
    projects, times = {}, {f"{s} x {p}": [] for s, p in COMBINATIONS}
    for attempt in range(bakes):
        for server, packaging in COMBINATIONS:
            project, elapsed = bake(work / f"bake-{attempt}-{server}-{packaging}", server, packaging)
            times[f"{server} x {packaging}"].append(elapsed)
            if packaging == PACKAGINGS[0]:  # the default packaging: the service straight on this machine
                projects[server] = project
    return projects, times


def install(project: Path) -> None:
    result = run(["make", "install"], project)
    if result.returncode != 0:
        raise SystemExit(f"error: make install failed in {project}:\n{(result.stdout + result.stderr)[-3000:]}")


def versions(projects: dict[str, Path]) -> dict[str, str]:
    """Python's and the serving packages' versions, as installed in the projects."""
    code = (
        "import importlib.metadata as m, json, sys\n"
        "found = {'python': sys.version.split()[0]}\n"
        f"for name in {list(VERSIONS_OF)!r}:\n"
        "    try: found[name] = m.version(name)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(found))\n"
    )
    found: dict[str, str] = {}
    for server in SERVERS:
        python = projects[server] / ".venv" / "bin" / "python"
        output = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout
        found |= json.loads(output)
    return found


def cold_starts(projects: dict[str, Path], starts: int, logs: Path) -> dict[str, list[float]]:
    """Per server, one worker: `make run` exec to the first /readyz 200, `starts` + 1 times; the first
    start after `make install` also compiles the bytecode (reported apart by the report)."""
    found: dict[str, list[float]] = {}
    for server in SERVERS:
        config = Config(f"{server}-shipped", server, server, True)
        found[server] = []
        for attempt in range(starts + 1):
            live, elapsed = start(config, projects, 1, logs / f"cold-start-{server}-{attempt}.log")
            live.close()
            found[server].append(elapsed)
    return found
