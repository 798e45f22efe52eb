"""Template updates with cruft: every project records its template in .cruft.json (written by the
post-gen hook), and `cruft update` brings a later template commit into a project, offline, from a
git copy of this template, without ever dropping a user's own edit."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from cookiecutter.exceptions import FailedHookException
from cookiecutter.main import cookiecutter

from tests.conftest import COMBINATIONS, HOST_PYTHON, TEMPLATE_DIR, bake_project, project_env, run

PROJECT_TEMPLATE = "{{cookiecutter.project_slug}}"
# Left out of a copy of the template: local environments and caches, never template content.
NOT_TEMPLATE = shutil.ignore_patterns(
    ".git", ".venv", "uv.lock", "__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache", "build"
)
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Template Test",
    "GIT_AUTHOR_EMAIL": "template-test@example.com",
    "GIT_COMMITTER_NAME": "Template Test",
    "GIT_COMMITTER_EMAIL": "template-test@example.com",
}
CRUFT_KEYS = ["template", "commit", "checkout", "context", "directory"]


def git(cwd: Path, *args: str) -> str:
    result = run(["git", *args], cwd, env=project_env(**GIT_IDENTITY), timeout=60)
    assert result.returncode == 0, f"git {' '.join(args)}: {result.stderr}"
    return result.stdout.strip()


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "--message", message)
    return git(repo, "rev-parse", "HEAD")


def cruft(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """cruft from the test environment; it clones the template with git (a local path here)."""
    return run([sys.executable, "-m", "cruft", *args], project, env=project_env(**GIT_IDENTITY), timeout=300)


def copy_template(destination: Path) -> Path:
    """This template's working tree (uncommitted changes included), without a repository."""
    shutil.copytree(TEMPLATE_DIR, destination, ignore=NOT_TEMPLATE)
    return destination


def template_repository(destination: Path) -> tuple[Path, str]:
    """A git copy of this template at one commit ("A"); returns it and the commit."""
    repo = copy_template(destination)
    git(repo, "init", "--quiet", "--initial-branch", "main")
    return repo, commit_all(repo, "A: the template as under test")


def bake_from(template: Path, output: Path, **answers: str) -> Path:
    return Path(
        cookiecutter(
            str(template),
            no_input=True,
            output_dir=str(output),
            extra_context={"python_version": HOST_PYTHON, **answers},
        )
    )


def read_cruft_file(project: Path) -> dict[str, Any]:
    state: dict[str, Any] = json.loads((project / ".cruft.json").read_text(encoding="utf-8"))
    return state


# --- what .cruft.json records ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def template_at_a(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    return template_repository(tmp_path_factory.mktemp("template") / "fastapi-template")


@pytest.mark.parametrize(("server", "packaging"), [pytest.param(*pair, id="-".join(pair)) for pair in COMBINATIONS])
def test_cruft_file_has_crufts_keys(
    template_at_a: tuple[Path, str], tmp_path: Path, server: str, packaging: str
) -> None:
    project = bake_from(template_at_a[0], tmp_path, server=server, packaging=packaging)

    assert list(read_cruft_file(project))[: len(CRUFT_KEYS)] == CRUFT_KEYS


def test_cruft_file_records_the_template_and_its_commit(template_at_a: tuple[Path, str], tmp_path: Path) -> None:
    template, commit_a = template_at_a
    state = read_cruft_file(bake_from(template, tmp_path))

    assert (state["template"], state["commit"], state["directory"]) == (str(template), commit_a, None)


def test_cruft_file_records_the_answers(template_at_a: tuple[Path, str], tmp_path: Path) -> None:
    answers = {
        "project_name": "Billing API",
        "server": "gunicorn",
        "packaging": "docker",
        "kubernetes": "yes",
        "cruft_check": "yes",
    }
    recorded = read_cruft_file(bake_from(template_at_a[0], tmp_path, **answers))["context"]["cookiecutter"]

    assert {name: recorded[name] for name in answers} == answers


def test_cruft_file_records_every_question(template_at_a: tuple[Path, str], tmp_path: Path) -> None:
    questions = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text())
    recorded = read_cruft_file(bake_from(template_at_a[0], tmp_path))["context"]["cookiecutter"]

    assert [name for name in questions if not name.startswith("_") and name not in recorded] == []


def test_cruft_file_leaves_out_machine_paths(template_at_a: tuple[Path, str], tmp_path: Path) -> None:
    recorded = read_cruft_file(bake_from(template_at_a[0], tmp_path))["context"]["cookiecutter"]

    assert {"_output_dir", "_repo_dir"} & set(recorded) == set()


def test_cruft_reads_a_fresh_project_as_up_to_date(template_at_a: tuple[Path, str], tmp_path: Path) -> None:
    project = bake_from(template_at_a[0], tmp_path)

    result = cruft(project, "check")

    assert result.returncode == 0, result.stdout + result.stderr


def test_bake_without_git_records_no_commit_and_says_so(template_at_a: tuple[Path, str], tmp_path: Path) -> None:
    no_tools = tmp_path / "empty-bin"
    no_tools.mkdir()
    # Cookiecutter runs the Python hooks with its own interpreter, so an empty PATH hides only git.
    result = run(
        [sys.executable, "-m", "cookiecutter", "--no-input", "--output-dir", str(tmp_path), str(template_at_a[0])],
        tmp_path,
        env={**project_env(), "PATH": str(no_tools)},
    )

    assert result.returncode == 0, result.stderr
    assert read_cruft_file(tmp_path / "my-fastapi-service")["commit"] is None
    assert "note: .cruft.json has no template commit" in result.stdout


def test_template_outside_git_records_no_commit(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    template = copy_template(tmp_path / "plain-folder")
    project = bake_from(template, tmp_path / "out")

    assert read_cruft_file(project)["commit"] is None
    assert "note: .cruft.json has no template commit" in capfd.readouterr().out


def test_uncommitted_template_changes_are_reported(
    template_at_a: tuple[Path, str], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    template = shutil.copytree(template_at_a[0], tmp_path / "dirty")
    (template / PROJECT_TEMPLATE / "README.md").write_text("changed, not committed\n")
    bake_from(template, tmp_path / "out")

    assert "but the template had uncommitted changes" in capfd.readouterr().out


def test_a_template_in_a_subfolder_records_the_directory(tmp_path: Path) -> None:
    """`cookiecutter --directory`-style layouts: cruft needs the repository root plus the folder."""
    root = tmp_path / "templates"
    copy_template(root / "fastapi")
    git(root, "init", "--quiet", "--initial-branch", "main")
    commit_all(root, "a repository holding several templates")
    state = read_cruft_file(bake_from(root / "fastapi", tmp_path / "out"))

    assert (state["template"], state["directory"]) == (str(root), "fastapi")


def test_a_cloned_template_records_its_address_and_commit(template_at_a: tuple[Path, str], tmp_path: Path) -> None:
    """A template cookiecutter clones (here over file://, offline) is recorded by its address."""
    template, commit_a = template_at_a
    address = template.as_uri()  # cookiecutter is told the type ("git+"); git and cruft are not
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"cookiecutters_dir": str(tmp_path / "clones"), "replay_dir": str(tmp_path)}))
    project = Path(
        cookiecutter(f"git+{address}", no_input=True, output_dir=str(tmp_path / "out"), config_file=str(config))
    )
    state = read_cruft_file(project)

    assert (state["template"], state["commit"]) == (address, commit_a)
    assert cruft(project, "check").returncode == 0


# --- the leftover-marker check and .cruft.json ----------------------------------------------------


def test_cruft_file_quotes_text_that_looks_like_a_template_marker(
    template_at_a: tuple[Path, str], tmp_path: Path
) -> None:
    """`_extensions` names cookiecutter.extensions...: the marker check must not refuse the data."""
    text = (bake_from(template_at_a[0], tmp_path) / ".cruft.json").read_text()

    assert "cookiecutter.extensions" in text


def test_leftover_marker_check_still_catches_real_leftovers(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    template = copy_template(tmp_path / "broken-template")
    readme = template / PROJECT_TEMPLATE / "README.md"
    # Renders to the literal text "cookiecutter.project_slug", as a mistyped variable would.
    readme.write_text(readme.read_text() + "\n{% raw %}cookiecutter.project_slug{% endraw %}\n")

    with pytest.raises(FailedHookException):
        bake_from(template, tmp_path / "out")

    assert "README.md:" in capfd.readouterr().err


# --- generated CI -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("answer", "expected"), [("yes", True), ("no", False)])
def test_ci_runs_cruft_check_when_asked(tmp_path: Path, answer: str, expected: bool) -> None:
    project = bake_project(tmp_path, python_version=HOST_PYTHON, cruft_check=answer)
    workflow = yaml.safe_load((project / ".github/workflows/ci.yml").read_text())
    commands = [step.get("run", "") for job in workflow["jobs"].values() for step in job["steps"]]

    assert any("cruft" in command and "check" in command for command in commands) is expected


# --- cruft update, end to end ---------------------------------------------------------------------

TEMPLATE_README_LINE = "`make help` lists every command."
NEW_TEST_FILE = "tests/test_template_update.py"
NEW_TEST = '''"""Arrived with a template update."""

from {package} import __version__


def test_the_package_has_a_version_after_a_template_update() -> None:
    assert __version__
'''


def start_project(tmp_path: Path) -> tuple[Path, Path]:
    """A template repository at commit A and a project baked from it, committed in its own repository."""
    template, _ = template_repository(tmp_path / "template")
    project = bake_from(template, tmp_path / "projects", server="uvicorn", packaging="host", cruft_check="yes")
    git(project, "init", "--quiet", "--initial-branch", "main")
    commit_all(project, "Generated from the template")
    return template, project


def change_template_readme(template: Path, new_line: str) -> None:
    readme = template / PROJECT_TEMPLATE / "README.md"
    text = readme.read_text()
    assert TEMPLATE_README_LINE in text
    readme.write_text(text.replace(TEMPLATE_README_LINE, new_line))


@pytest.fixture(scope="module")
def updated_project(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Template commit B changes a README line and adds a test; the project takes it with cruft."""
    template, project = start_project(tmp_path_factory.mktemp("update"))
    change_template_readme(template, "`make help` lists every command (template commit B).")
    new_test = template / PROJECT_TEMPLATE / NEW_TEST_FILE
    new_test.write_text(NEW_TEST.format(package="{{ cookiecutter.package_name }}"))
    commit_b = commit_all(template, "B: a README line and a test")
    before = cruft(project, "check")
    update = cruft(project, "update", "--skip-apply-ask")
    return {"project": project, "commit_b": commit_b, "check_before": before, "update": update}


@pytest.mark.slow
def test_cruft_check_sees_the_new_template_commit(updated_project: dict[str, Any]) -> None:
    assert updated_project["check_before"].returncode == 1


@pytest.mark.slow
def test_cruft_update_succeeds(updated_project: dict[str, Any]) -> None:
    update = updated_project["update"]

    assert update.returncode == 0, update.stdout + update.stderr


@pytest.mark.slow
def test_update_brings_the_changed_line(updated_project: dict[str, Any]) -> None:
    readme = (updated_project["project"] / "README.md").read_text()

    assert "`make help` lists every command (template commit B)." in readme


@pytest.mark.slow
def test_update_brings_the_new_file(updated_project: dict[str, Any]) -> None:
    assert (updated_project["project"] / NEW_TEST_FILE).is_file()


@pytest.mark.slow
def test_update_has_no_conflicts(updated_project: dict[str, Any]) -> None:
    project = updated_project["project"]
    status = git(project, "status", "--porcelain")
    rejects = sorted(str(path.relative_to(project)) for path in project.rglob("*.rej"))

    assert ([line for line in status.splitlines() if line[:2] in {"UU", "AA", "DU", "UD"}], rejects) == ([], [])


@pytest.mark.slow
def test_update_records_the_new_commit(updated_project: dict[str, Any]) -> None:
    assert read_cruft_file(updated_project["project"])["commit"] == updated_project["commit_b"]


@pytest.mark.slow
def test_cruft_check_passes_after_the_update(updated_project: dict[str, Any]) -> None:
    result = cruft(updated_project["project"], "check")

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
@pytest.mark.install
def test_updated_project_passes_its_own_tests(updated_project: dict[str, Any]) -> None:
    project = updated_project["project"]
    install = run(["make", "install"], project)
    assert install.returncode == 0, install.stdout + install.stderr

    result = run(["make", "test"], project, env=project_env(PYTEST_ADDOPTS="-v"))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "test_the_package_has_a_version_after_a_template_update PASSED" in result.stdout


@pytest.mark.slow
def test_users_edit_of_a_changed_line_survives_the_update(tmp_path: Path) -> None:
    template, project = start_project(tmp_path)
    readme = project / "README.md"
    readme.write_text(readme.read_text().replace(TEMPLATE_README_LINE, "`make help` lists every command (our team)."))
    commit_all(project, "Our own wording")
    change_template_readme(template, "`make help` lists every command (template commit B).")
    commit_all(template, "B: the same line, reworded")

    update = cruft(project, "update", "--skip-apply-ask")

    assert update.returncode == 0, update.stdout + update.stderr
    text = readme.read_text()
    rejected = Path(f"{readme}.rej")
    conflict_kept_both = "<<<<<<<" in text and "(template commit B)" in text
    assert "(our team)" in text
    assert conflict_kept_both or rejected.is_file()


def test_cruft_create_works_with_the_template(template_at_a: tuple[Path, str], tmp_path: Path) -> None:
    """`cruft create` writes .cruft.json itself; the hook leaves it to cruft and has nothing to report."""
    template, commit_a = template_at_a
    result = cruft(tmp_path, "create", "--no-input", "--output-dir", str(tmp_path / "out"), str(template))

    assert result.returncode == 0, result.stdout + result.stderr
    assert read_cruft_file(tmp_path / "out" / "my-fastapi-service")["commit"] == commit_a
    assert ".cruft.json" not in result.stdout
