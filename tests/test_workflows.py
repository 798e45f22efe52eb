"""GitHub configuration, in every generated project and in the template itself.

Dependabot updates each ecosystem weekly, grouped, after a cooldown; every workflow pins its actions
by commit (version in a comment), gives each job only the permissions it needs and keeps no
credentials after checkout; check-jsonschema and `zizmor --offline` accept all of it (marker scan).
The docker packaging's release workflow stops at its first step on a tag other than v<version>, and
pushes the image that `make image` builds and the Kubernetes overlay deploys.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement

from tests.conftest import COMBINATIONS, HOST_PYTHON, SERVERS, TEMPLATE_DIR, bake_project, project_env, run, tool

TOOLS_DIR = Path(sys.executable).parent

# Every server x packaging, and the docker packaging with Kubernetes manifests; cruft_check adds a CI job.
VARIANTS = {
    **{
        f"{server}-{packaging}": {"server": server, "packaging": packaging, "cruft_check": ("no", "yes")[number % 2]}
        for number, (server, packaging) in enumerate(COMBINATIONS)
    },
    f"{SERVERS[-1]}-docker-kubernetes": {
        "server": SERVERS[-1],
        "packaging": "docker",
        "kubernetes": "yes",
        "cruft_check": "yes",
    },
}
DOCKER_VARIANTS = [name for name, answers in VARIANTS.items() if answers["packaging"] == "docker"]
KUBERNETES_VARIANTS = [name for name, answers in VARIANTS.items() if answers.get("kubernetes") == "yes"]
ECOSYSTEMS = {
    "host": {"pip", "github-actions", "pre-commit"},
    "docker": {"uv", "github-actions", "pre-commit", "docker"},
}
# The servers' distributions: each release gets its own pull request (and CI run).
SERVER_DISTRIBUTIONS = {"uvicorn", "gunicorn", "uvicorn-worker", "granian"}
# What each job may do: read the code; the release job also pushes the image.
READ_ONLY = {"contents": "read"}
RELEASE_PERMISSIONS = {"contents": "read", "packages": "write"}
# `uses: owner/repo@<40 hex> # v1.2.3`
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)(?P<rest>.*)$")
PINNED = re.compile(r"^(?P<action>[\w.-]+/[\w.-]+)@(?P<sha>[0-9a-f]{40})$")
VERSION_COMMENT = re.compile(r"^\s+# v\d+(\.\d+){0,2}$")
# Used only by generated projects: the template's own workflows push no image.
ONLY_IN_GENERATED = {"docker/login-action"}
OVERLAY = Path("deploy/kubernetes/overlays/production/kustomization.yaml")
RELEASE = Path(".github/workflows/release.yml")


@pytest.fixture(scope="module")
def baked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {
        name: bake_project(tmp_path_factory.mktemp(name), python_version=HOST_PYTHON, **answers)
        for name, answers in VARIANTS.items()
    }


@pytest.fixture
def project_copy(baked: dict[str, Path], tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """A copy of the variant named by the test's `variant` parameter, free to edit."""
    source = baked[request.node.callspec.params["variant"]]
    return Path(shutil.copytree(source, tmp_path / source.name))


def workflows(project: Path) -> list[Path]:
    return sorted((project / ".github" / "workflows").glob("*.yml"))


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def triggers(workflow: dict[Any, Any]) -> Any:
    # PyYAML reads the key `on` as the boolean True (YAML 1.1).
    return workflow.get("on", workflow.get(True))


def uses_lines(path: Path) -> list[tuple[str, str]]:
    """Every `uses:` of a workflow: (reference, the rest of its line)."""
    return [
        (match["ref"], match["rest"])
        for line in path.read_text(encoding="utf-8").splitlines()
        if (match := USES_LINE.match(line))
    ]


def pins(paths: list[Path]) -> dict[str, set[str]]:
    """action -> every `sha # version` it is pinned to in these workflows."""
    found: dict[str, set[str]] = {}
    for path in paths:
        for ref, rest in uses_lines(path):
            action, _, sha = ref.partition("@")
            found.setdefault(action, set()).add(f"{sha}{rest}")
    return found


def step(workflow: Path, name: str) -> dict[str, Any]:
    steps = [s for job in load(workflow)["jobs"].values() for s in job["steps"] if s.get("name") == name]
    assert len(steps) == 1, f"expected one step named {name!r} in {workflow.name}"
    return steps[0]


def run_step(project: Path, name: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run a release workflow step's script as GitHub would (bash -e), with `env` for its expressions."""
    script = step(project / RELEASE, name)["run"]
    return run(["bash", "-e", "-c", script], project, env=project_env(**env), timeout=60)


def make_image_tag(project: Path) -> str:
    """The tag `make image` gives the image, from make's dry run (uv.lock made up to date first)."""
    lock = project / "uv.lock"
    lock.touch()
    later = time.time() + 60
    os.utime(lock, (later, later))
    result = run(["make", "--dry-run", "image"], project, timeout=60)
    assert result.returncode == 0, result.stderr
    tags = re.findall(r"docker build .*--tag (\S+)", result.stdout)
    assert len(tags) == 1, result.stdout
    return tags[0]


def overlay_image(project: Path) -> str:
    (entry,) = load(project / OVERLAY)["images"]
    return f"{entry['newName']}:{entry['newTag']}"


# --- dependabot -------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_dependabot_updates_each_ecosystem(baked: dict[str, Path], variant: str) -> None:
    updates = load(baked[variant] / ".github" / "dependabot.yml")["updates"]

    assert {update["package-ecosystem"] for update in updates} == ECOSYSTEMS[VARIANTS[variant]["packaging"]]


@pytest.mark.parametrize("variant", VARIANTS)
def test_dependabot_runs_weekly_after_a_cooldown(baked: dict[str, Path], variant: str) -> None:
    updates = load(baked[variant] / ".github" / "dependabot.yml")["updates"]

    assert {(u["schedule"]["interval"], u["cooldown"]["default-days"] >= 7) for u in updates} == {("weekly", True)}


@pytest.mark.parametrize("variant", VARIANTS)
def test_dependabot_groups_minor_and_patch_updates(baked: dict[str, Path], variant: str) -> None:
    updates = load(baked[variant] / ".github" / "dependabot.yml")["updates"]
    grouped = [
        [sorted(group["update-types"]) for group in update["groups"].values()] == [["minor", "patch"]]
        for update in updates
    ]

    assert all(grouped)


@pytest.mark.parametrize("variant", VARIANTS)
def test_servers_update_alone(baked: dict[str, Path], variant: str) -> None:
    """A server release is its own pull request, whose CI runs the tests on it."""
    (python,) = [
        update
        for update in load(baked[variant] / ".github" / "dependabot.yml")["updates"]
        if update["package-ecosystem"] in {"pip", "uv"}
    ]

    assert python["groups"]["python"]["exclude-patterns"] == ["uvicorn*", "gunicorn", "granian"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_server_pins_admit_their_whole_major_series(baked: dict[str, Path], variant: str) -> None:
    """Public APIs only: a new minor release of a server installs without a template change
    (`uvicorn>=0.55,<1`, `gunicorn>=27.0.1,<28`, `granian>=2.8.3,<3`)."""
    pyproject = tomllib.loads((baked[variant] / "pyproject.toml").read_text(encoding="utf-8"))
    requirements = [Requirement(text) for text in pyproject["project"]["dependencies"]]
    ceilings = {
        requirement.name: [spec.version for spec in requirement.specifier if spec.operator == "<"]
        for requirement in requirements
        if requirement.name in SERVER_DISTRIBUTIONS
    }

    assert ("granian" if variant.startswith("granian") else "uvicorn") in ceilings
    assert {name: [len(v.split(".")) for v in versions] for name, versions in ceilings.items()} == {
        name: [1] for name in ceilings
    }


# --- every workflow ----------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_actions_are_pinned_by_commit_with_their_version(baked: dict[str, Path], variant: str) -> None:
    lines = [line for path in workflows(baked[variant]) for line in uses_lines(path)]
    unpinned = [ref + rest for ref, rest in lines if not (PINNED.match(ref) and VERSION_COMMENT.match(rest))]

    assert len(lines) >= 3
    assert unpinned == []


@pytest.mark.parametrize("variant", VARIANTS)
def test_workflows_grant_nothing_by_default(baked: dict[str, Path], variant: str) -> None:
    granted = {path.name: load(path)["permissions"] for path in workflows(baked[variant])}

    assert granted == {name: {} for name in granted}


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_job_reads_the_code_and_only_the_release_pushes(baked: dict[str, Path], variant: str) -> None:
    granted = {
        f"{path.name}:{name}": job["permissions"]
        for path in workflows(baked[variant])
        for name, job in load(path)["jobs"].items()
    }
    expected = dict.fromkeys(granted, READ_ONLY)
    if "release.yml:image" in granted:
        expected["release.yml:image"] = RELEASE_PERMISSIONS

    assert granted == expected


@pytest.mark.parametrize("variant", VARIANTS)
def test_checkout_keeps_no_credentials(baked: dict[str, Path], variant: str) -> None:
    checkouts = [
        step.get("with", {}).get("persist-credentials")
        for path in workflows(baked[variant])
        for job in load(path)["jobs"].values()
        for step in job["steps"]
        if step.get("uses", "").startswith("actions/checkout@")
    ]

    assert checkouts
    assert set(checkouts) == {False}


def test_generated_workflows_pin_the_template_s_own_versions(baked: dict[str, Path]) -> None:
    """Dependabot updates the template's own workflows; the generated ones must follow (by hand)."""
    generated = pins([path for project in baked.values() for path in workflows(project)])
    own = pins(workflows(TEMPLATE_DIR))

    assert {action: refs for action, refs in generated.items() if action in own} == {
        action: own[action] for action in generated if action in own
    }
    assert set(generated) - set(own) == ONLY_IN_GENERATED


# --- the release (docker packaging) ----------------------------------------------------------------------


@pytest.mark.parametrize("variant", DOCKER_VARIANTS)
def test_release_runs_on_version_tags_and_by_hand(baked: dict[str, Path], variant: str) -> None:
    on = triggers(load(baked[variant] / RELEASE))

    assert on == {"push": {"tags": ["v*"]}, "workflow_dispatch": None}


@pytest.mark.parametrize("variant", DOCKER_VARIANTS)
def test_release_checks_the_tag_before_anything_else(baked: dict[str, Path], variant: str) -> None:
    steps = load(baked[variant] / RELEASE)["jobs"]["image"]["steps"]

    assert [steps[0]["uses"].partition("@")[0], steps[1]["run"]] == ["actions/checkout", "make --silent release-check"]


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("platforms", "linux/amd64,linux/arm64"),
        ("push", True),
        ("provenance", "mode=max"),
        ("sbom", True),
        ("cache-from", "type=gha"),
        ("cache-to", "type=gha,mode=max"),
    ],
)
def test_release_build(baked: dict[str, Path], setting: str, expected: object) -> None:
    (build,) = [
        step
        for step in load(baked[DOCKER_VARIANTS[0]] / RELEASE)["jobs"]["image"]["steps"]
        if step.get("uses", "").startswith("docker/build-push-action@")
    ]

    assert build["with"][setting] == expected


@pytest.mark.parametrize("tag", ["v0.1.1", "0.1.0", "v0.1.0.post1", "v0.1", "main", ""])
@pytest.mark.parametrize("variant", DOCKER_VARIANTS)
def test_a_tag_other_than_the_version_stops_the_release(baked: dict[str, Path], variant: str, tag: str) -> None:
    result = run_step(baked[variant], "The tag is the project's version", TAG=tag)

    assert result.returncode != 0
    assert f"error: tag '{tag}' is not v0.1.0" in result.stderr


@pytest.mark.parametrize("variant", DOCKER_VARIANTS)
def test_the_version_tag_passes_the_check(baked: dict[str, Path], variant: str) -> None:
    result = run_step(baked[variant], "The tag is the project's version", TAG="v0.1.0")

    assert (result.returncode, result.stderr) == (0, "")


def test_a_tag_cannot_inject_commands(baked: dict[str, Path], tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    tag = f"v0.1.0\"';touch {marker};'\"$(touch {marker})`touch {marker}`"
    result = run_step(baked[DOCKER_VARIANTS[0]], "The tag is the project's version", TAG=tag)

    assert (result.returncode != 0, marker.exists()) == (True, False)


@pytest.mark.parametrize("variant", KUBERNETES_VARIANTS)
def test_the_release_stops_while_the_overlay_deploys_another_tag(project_copy: Path, variant: str) -> None:
    overlay = project_copy / OVERLAY
    overlay.write_text(overlay.read_text().replace('newTag: "0.1.0"', 'newTag: "0.0.9"'))
    result = run_step(project_copy, "The tag is the project's version", TAG="v0.1.0")

    assert result.returncode != 0
    assert f"error: {OVERLAY} must deploy ghcr.io/your-org/" in result.stderr


@pytest.mark.parametrize("variant", DOCKER_VARIANTS)
def test_the_release_pushes_the_image_make_image_builds(project_copy: Path, tmp_path: Path, variant: str) -> None:
    output = tmp_path / "github-output"
    sha = "0123456789abcdef0123456789abcdef01234567"
    result = run_step(project_copy, "Image name and tags", OWNER="Your-Org", GITHUB_OUTPUT=str(output), GITHUB_SHA=sha)
    pushed = dict(line.split("=", 1) for line in output.read_text().splitlines())
    built = make_image_tag(project_copy)

    assert result.returncode == 0, result.stdout + result.stderr
    assert pushed == {"version": built, "commit": f"{built.rsplit(':', 1)[0]}:sha-{sha}"}


@pytest.mark.parametrize("variant", KUBERNETES_VARIANTS)
def test_the_overlay_deploys_the_image_make_image_builds(project_copy: Path, variant: str) -> None:
    assert overlay_image(project_copy) == make_image_tag(project_copy)


def test_a_local_version_tags_the_image_with_a_dash(tmp_path: Path) -> None:
    """Docker tags have no "+": the Makefile and the overlay both write it as "-"."""
    project = bake_project(
        tmp_path, python_version=HOST_PYTHON, packaging="docker", kubernetes="yes", version="1.0.0rc1+local.7"
    )
    built = make_image_tag(project)
    check = run_step(project, "The tag is the project's version", TAG="v1.0.0rc1+local.7")

    assert built.endswith(":1.0.0rc1-local.7")
    assert overlay_image(project) == built
    assert (check.returncode, check.stderr) == (0, "")


@pytest.mark.parametrize("variant", DOCKER_VARIANTS)
def test_the_release_refuses_an_image_the_token_cannot_push(
    baked: dict[str, Path], tmp_path: Path, variant: str
) -> None:
    github = {"GITHUB_OUTPUT": str(tmp_path / "github-output"), "GITHUB_SHA": "0" * 40}
    result = run_step(baked[variant], "Image name and tags", OWNER="someone-else", **github)

    assert result.returncode != 0
    assert "::error::The Makefile's IMAGE is ghcr.io/your-org/" in result.stdout


# --- scanners ------------------------------------------------------------------------------------------


def check_schema(schema: str, paths: list[Path]) -> subprocess.CompletedProcess[str]:
    return run([tool("check-jsonschema"), "--builtin-schema", schema, *map(str, paths)], TEMPLATE_DIR, timeout=120)


def zizmor_findings(folder: Path) -> list[str]:
    """zizmor's offline findings for a folder's workflows and dependabot.yml: 'audit: where' each."""
    result = run([tool("zizmor"), "--offline", "--format", "json", str(folder)], folder, timeout=120)
    assert result.stdout.startswith("["), result.stderr[-2000:]
    return [
        f"{finding['ident']}: {finding['locations'][0]['symbolic']['key']}" for finding in json.loads(result.stdout)
    ]


@pytest.mark.scan
@pytest.mark.parametrize("variant", VARIANTS)
def test_dependabot_matches_its_schema(baked: dict[str, Path], variant: str) -> None:
    result = check_schema("vendor.dependabot", [baked[variant] / ".github" / "dependabot.yml"])

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.scan
@pytest.mark.parametrize("variant", VARIANTS)
def test_every_workflow_matches_its_schema(baked: dict[str, Path], variant: str) -> None:
    result = check_schema("vendor.github-workflows", workflows(baked[variant]))

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.scan
@pytest.mark.parametrize("variant", VARIANTS)
def test_zizmor_finds_nothing(baked: dict[str, Path], variant: str) -> None:
    assert zizmor_findings(baked[variant]) == []


@pytest.mark.scan
def test_zizmor_finds_an_unpinned_action(baked: dict[str, Path], tmp_path: Path) -> None:
    """The scan has teeth: the same workflow with one action by tag is reported."""
    folder = tmp_path / ".github" / "workflows"
    folder.mkdir(parents=True)
    ci = (baked[next(iter(VARIANTS))] / ".github" / "workflows" / "ci.yml").read_text()
    (folder / "ci.yml").write_text(re.sub(r"actions/setup-python@\S+ # (v[\d.]+)", r"actions/setup-python@\1", ci))

    assert [finding.split(":")[0] for finding in zizmor_findings(tmp_path)] == ["unpinned-uses"]


@pytest.mark.scan
def test_the_template_s_own_github_configuration_matches_its_schemas() -> None:
    github = TEMPLATE_DIR / ".github"
    results = [
        check_schema("vendor.dependabot", [github / "dependabot.yml"]),
        check_schema("vendor.github-workflows", workflows(TEMPLATE_DIR)),
    ]

    assert [result.returncode for result in results] == [0, 0], [r.stdout + r.stderr for r in results]


@pytest.mark.scan
def test_zizmor_finds_nothing_in_the_template_s_own_workflows() -> None:
    assert zizmor_findings(TEMPLATE_DIR / ".github") == []


def test_the_template_s_own_actions_are_pinned_by_commit() -> None:
    lines = [line for path in workflows(TEMPLATE_DIR) for line in uses_lines(path)]
    unpinned = [ref + rest for ref, rest in lines if not (PINNED.match(ref) and VERSION_COMMENT.match(rest))]

    assert len(lines) >= 3
    assert unpinned == []


@pytest.mark.scan
def test_shellcheck_passes_the_template_s_own_workflow_steps(tmp_path: Path) -> None:
    steps = [
        s["run"]
        for path in workflows(TEMPLATE_DIR)
        for job in load(path)["jobs"].values()
        for s in job["steps"]
        if "run" in s
    ]
    scripts = []
    for number, script in enumerate(steps):
        path = tmp_path / f"step-{number}.sh"
        # GitHub replaces its expressions before bash runs the step.
        path.write_text("#!/bin/bash\nset -e\n" + script.replace("${{", "${").replace("}}", "}") + "\n")
        scripts.append(str(path))
    result = run([tool("shellcheck"), "--severity=style", *scripts], tmp_path, timeout=60)

    assert len(scripts) >= 3
    assert (result.returncode, result.stdout) == (0, "")
