"""The scanners a platform team would run, on every server x packaging's baked project (all from PyPI, offline
except pip-audit, which needs the advisory database and only reports).

hadolint (Dockerfile), checkov (Dockerfile, GitHub workflow; compose has no checkov framework, so
check-jsonschema validates it), bandit (generated code), shellcheck (every shell script, and the
workflows' `run:` steps), check-jsonschema (compose; the workflows and dependabot.yml in
test_workflows.py, with zizmor), pip-audit (locked dependencies).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import COMBINATIONS, HOST_PYTHON, TEMPLATE_DIR, project_env, run, tool

pytestmark = pytest.mark.scan

TOOLS_DIR = Path(sys.executable).parent
VARIANTS = [f"{server}-{packaging}" for server, packaging in COMBINATIONS]
DOCKER_VARIANTS = [f"{server}-{packaging}" for server, packaging in COMBINATIONS if packaging == "docker"]


@pytest.fixture(scope="module")
def baked(cookies_session: Any) -> dict[str, Path]:
    """One project per server x packaging, baked once for this module, with metrics (the most code to scan)."""
    projects = {}
    for server, packaging in COMBINATIONS:
        answers = {"server": server, "packaging": packaging, "python_version": HOST_PYTHON, "metrics": "yes"}
        result = cookies_session.bake(extra_context=answers)
        assert result.exception is None, result.exception
        projects[f"{server}-{packaging}"] = result.project_path
    return projects


def scan(args: list[str], cwd: Path) -> Any:
    return run(args, cwd, env=project_env(), timeout=300)


# --- Dockerfile -------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", DOCKER_VARIANTS)
def test_hadolint_finds_nothing_in_the_dockerfile(baked: dict[str, Path], variant: str) -> None:
    result = scan([tool("hadolint"), "--format", "tty", "Dockerfile"], baked[variant])

    assert (result.returncode, result.stdout) == (0, "")


def checkov(project: Path, frameworks: list[str]) -> dict[str, dict[str, int]]:
    """checkov's summary per framework: passed, failed, skipped, parsing_errors."""
    result = scan(
        [tool("checkov"), "--directory", ".", "--skip-download", "--quiet", "--compact", "--output", "json",
         "--framework", *frameworks],
        project,
    )  # fmt: skip
    assert result.returncode in {0, 1}, result.stderr[-2000:]
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    return {report["check_type"]: report["summary"] for report in reports}


@pytest.mark.parametrize("variant", VARIANTS)
def test_checkov_finds_no_failed_check(baked: dict[str, Path], variant: str) -> None:
    frameworks = ["github_actions", *(["dockerfile"] if variant in DOCKER_VARIANTS else [])]
    summaries = checkov(baked[variant], frameworks)

    # Each framework really ran checks (a scan of nothing would pass too) and none failed.
    assert sorted(summaries) == sorted(frameworks)
    assert {name: summary["passed"] > 0 for name, summary in summaries.items()} == dict.fromkeys(frameworks, True)
    assert {name: summary["failed"] for name, summary in summaries.items()} == dict.fromkeys(frameworks, 0)
    assert {name: summary["parsing_errors"] for name, summary in summaries.items()} == dict.fromkeys(frameworks, 0)


# --- code -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_bandit_finds_nothing_in_the_generated_code(baked: dict[str, Path], variant: str) -> None:
    project = baked[variant]
    result = scan([tool("bandit"), "--quiet", "--format", "json", "--recursive", "src"], project)
    report = json.loads(result.stdout)

    assert report["metrics"]["_totals"]["loc"] > 0
    assert [(r["filename"], r["line_number"], r["test_id"]) for r in report["results"]] == []


def shell_scripts(folder: Path) -> list[Path]:
    """Files that are shell scripts: *.sh, or a shell shebang."""
    scripts = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or {".git", ".venv"} & set(path.parts):
            continue
        with path.open("rb") as handle:
            first_line = handle.readline(100)
        if path.suffix == ".sh" or (first_line.startswith(b"#!") and first_line.rstrip().endswith((b"sh", b"bash"))):
            scripts.append(path)
    return scripts


def workflow_run_steps(workflow: Path) -> list[str]:
    jobs = yaml.safe_load(workflow.read_text())["jobs"]
    return [step["run"] for job in jobs.values() for step in job["steps"] if "run" in step]


@pytest.mark.parametrize("variant", VARIANTS)
def test_shellcheck_passes_every_shell_script_and_workflow_step(
    baked: dict[str, Path], tmp_path: Path, variant: str
) -> None:
    project = baked[variant]
    scripts = [str(path) for path in shell_scripts(project)]
    # The workflows' run steps are bash scripts too (GitHub runs them with `bash -e`).
    workflows = sorted(project.glob(".github/workflows/*.yml"))
    steps = [step for workflow in workflows for step in workflow_run_steps(workflow)]
    for number, step in enumerate(steps):
        script = tmp_path / f"workflow-step-{number}.sh"
        # GitHub expressions are replaced before the shell sees the step.
        script.write_text("#!/bin/bash\nset -e\n" + step.replace("${{", "${").replace("}}", "}") + "\n")
        scripts.append(str(script))
    result = scan([tool("shellcheck"), "--severity=style", *scripts], project)

    assert len(scripts) >= 2
    assert (result.returncode, result.stdout) == (0, "")


def test_shellcheck_passes_the_template_ci_script() -> None:
    ci_script = TEMPLATE_DIR / ".ci" / "run"
    if not ci_script.is_file():
        pytest.skip(".ci/run is not in this checkout yet")
    result = scan([tool("shellcheck"), "--severity=style", str(ci_script)], TEMPLATE_DIR)

    assert (result.returncode, result.stdout) == (0, "")


# --- schemas ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", DOCKER_VARIANTS)
def test_compose_file_matches_its_schema(baked: dict[str, Path], variant: str) -> None:
    compose = baked[variant] / "compose.yaml"
    result = scan([tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(compose)], compose.parent)

    assert result.returncode == 0, result.stdout + result.stderr


# --- dependencies -----------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_pip_audit_reports_on_locked_dependencies(baked: dict[str, Path], tmp_path: Path, variant: str) -> None:
    """Reported, not gating: advisories appear over time. Fails only if the audit cannot be made
    from the lock file; skips when PyPI (the advisory source) is unreachable."""
    project = baked[variant]
    uv = shutil.which("uv", path=f"{TOOLS_DIR}{os.pathsep}{os.environ.get('PATH', '')}")
    if uv is None:
        pytest.skip("uv is not installed: it writes the lock file pip-audit reads")
    if not (project / "uv.lock").exists():
        lock = run([uv, "lock", "--quiet"], project, timeout=300)
        if lock.returncode != 0:
            pytest.skip(f"uv lock failed (offline?): {lock.stderr.strip()[-300:]}")
    exported = run(
        [uv, "export", "--frozen", "--no-emit-project", "--no-hashes", "--format", "requirements-txt", "--quiet"],
        project,
    )
    assert exported.returncode == 0, exported.stderr
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(exported.stdout)
    report_file = tmp_path / "audit.json"
    audit = run(
        [tool("pip-audit"), "--requirement", str(requirements), "--no-deps", "--disable-pip",
         "--progress-spinner", "off", "--format", "json", "--output", str(report_file)],
        project,
        timeout=300,
    )  # fmt: skip
    if audit.returncode not in {0, 1} or not report_file.exists():
        pytest.skip(f"pip-audit could not reach the advisory database: {audit.stderr.strip()[-300:]}")
    dependencies = json.loads(report_file.read_text())["dependencies"]
    audited = [d for d in dependencies if "skip_reason" not in d]
    if not audited:
        # PyPI answers every version lookup with 404 where only its package index is reachable.
        pytest.skip(f"pip-audit audited none of {len(dependencies)} packages: {dependencies[0]['skip_reason']}")
    vulnerable = {f"{d['name']}=={d['version']}": [v["id"] for v in d["vulns"]] for d in audited if d["vulns"]}
    print(
        f"pip-audit ({variant}): {len(audited)} of {len(dependencies)} locked packages audited"
        f" ({len(dependencies) - len(audited)} not found in the advisory source), vulnerable: {vulnerable or 'none'}"
    )
    if vulnerable:
        warnings.warn(f"pip-audit ({variant}): known vulnerabilities in {vulnerable}", stacklevel=1)

    assert all(isinstance(d["vulns"], list) for d in audited)
