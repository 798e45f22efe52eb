"""Shape and check the generated project.

1. Put the chosen runner's files in place from one table (RUNNER_FILES), and the files of each
   optional feature answered "yes" from another (OPTION_FILES); drop every other staged copy. These
   files are staged in .runner-files/ rather than written in place, so a project regenerated with -f
   never has a file of the user's overwritten and then deleted.
2. Record the answers and the template's source and commit in .cruft.json, the form `cruft check`
   and `cruft update` read (git is optional: without it the commit is left null).
3. Check what this run wrote: Python compiles, TOML/JSON/YAML parse, no template markers are left.
4. For the Docker runner, which builds from uv.lock: say that `make image` writes it first. The
   bake itself locks nothing: it stays offline and fast, and needs neither uv nor the project's
   Python (locking took a second of network, or failed without a Python 3.13 at hand).

Standard library plus PyYAML (a dependency of cookiecutter). One line per error, exit 1.
"""

from __future__ import annotations

import json
import os
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
        "src/{package}/serving/server.py": "server_uvicorn.py",
        "tests/test_server.py": "test_server_uvicorn.py",
        "deploy/{slug}.service": "systemd.service",
    },
    "gunicorn": {
        "src/{package}/serving/server.py": "server_gunicorn.py",
        "tests/test_server.py": "test_server_gunicorn.py",
        "src/{package}/serving/gunicorn_conf.py": "gunicorn_conf.py",
        "src/{package}/serving/gunicorn_worker.py": "gunicorn_worker.py",
        "tests/test_gunicorn_worker.py": "test_gunicorn_worker.py",
        "deploy/{slug}.service": "systemd.service",
    },
    "docker": {
        "src/{package}/serving/server.py": "server_uvicorn.py",
        "tests/test_server.py": "test_server_uvicorn.py",
        "src/{package}/serving/healthcheck.py": "healthcheck.py",
        "tests/test_healthcheck.py": "test_healthcheck.py",
        "Dockerfile": "Dockerfile",
        ".dockerignore": "dockerignore",
        "compose.yaml": "compose.yaml",
        ".github/workflows/release.yml": "release.yml",
    },
}
NEEDS_LOCK_FILE = {"docker"}
LOCK_NOTE = (
    "the image installs the exact versions in uv.lock: `make image` writes it first when missing or "
    "older than pyproject.toml (or run `make lock`); commit it"
)

# Optional features: answer -> {path in the project: file in STAGING_DIR}, installed when the answer
# is "yes". pre_gen_project.py has already refused a feature the chosen runner cannot use.
OPTION_FILES: dict[str, dict[str, str]] = {
    "kubernetes": {
        "deploy/kubernetes/base/kustomization.yaml": "kubernetes/base/kustomization.yaml",
        "deploy/kubernetes/base/namespace.yaml": "kubernetes/base/namespace.yaml",
        "deploy/kubernetes/base/deployment.yaml": "kubernetes/base/deployment.yaml",
        "deploy/kubernetes/base/service.yaml": "kubernetes/base/service.yaml",
        "deploy/kubernetes/base/hpa.yaml": "kubernetes/base/hpa.yaml",
        "deploy/kubernetes/base/pdb.yaml": "kubernetes/base/pdb.yaml",
        "deploy/kubernetes/base/networkpolicy.yaml": "kubernetes/base/networkpolicy.yaml",
        "deploy/kubernetes/overlays/production/kustomization.yaml": "kubernetes/overlays/production/kustomization.yaml",
    },
}

# What cruft reads: written here so that plain `cookiecutter` projects can be updated with cruft.
CRUFT_FILE = Path(".cruft.json")
# Cookiecutter's own shorthand for git hosts; cruft needs the full address to clone.
TEMPLATE_ABBREVIATIONS = {
    "gh": "https://github.com/{0}.git",
    "gl": "https://gitlab.com/{0}.git",
    "bb": "https://bitbucket.org/{0}",
}
REMOTE_TEMPLATE = re.compile(r"(?:(?:git|hg)\+)?(?:git|ssh|file|https?)://|[\w.-]+@[\w.-]+:")
GIT_TIMEOUT = 20

# Template syntax that must never reach a generated file (a dollar before double braces is a GitHub
# Actions expression, not ours).
LEFTOVER_MARKERS = re.compile(r"(?<!\$)\{\{|\{[%]|\bcookiecutter\.")
TEMPLATE_PATH_PART = re.compile(r"\{\{\s*cookiecutter\.(\w+)\s*\}\}")


class GenerationError(Exception):
    """A problem with what was generated; its message is the one line the user sees."""


def placed(table: dict[str, str]) -> dict[Path, Path]:
    """One table row set as paths: destination in the project -> staged source."""
    names = {"package": ANSWERS["package_name"], "slug": ANSWERS["project_slug"]}
    return {Path(dest.format(**names)): STAGING_DIR / staged for dest, staged in table.items()}


def runner_files(runner: str) -> dict[Path, Path]:
    """The runner's files: destination in the project -> staged source."""
    return placed(RUNNER_FILES[runner])


def selected_files(runner: str) -> dict[Path, Path]:
    """The runner's files plus those of every optional feature answered "yes"."""
    files = runner_files(runner)
    for option, table in OPTION_FILES.items():
        if ANSWERS.get(option) == "yes":
            files.update(placed(table))
    return files


def staged_files() -> set[Path]:
    return {path for path in STAGING_DIR.rglob("*") if path.is_file()}


def check_staging_matches_table() -> None:
    """Every staged file belongs to some table row and every listed one exists: the tables are the truth."""
    tables = [*RUNNER_FILES.values(), *OPTION_FILES.values()]
    listed = {STAGING_DIR / name for files in tables for name in files.values()}
    present = staged_files()
    if present - listed:
        names = ", ".join(sorted(str(path) for path in present - listed))
        raise GenerationError(f"staged runner files missing from RUNNER_FILES: {names}")
    if listed - present:
        names = ", ".join(sorted(str(path) for path in listed - present))
        raise GenerationError(f"RUNNER_FILES lists files the template does not have: {names}")


def install_runner_files(runner: str) -> list[Path]:
    """Copy the selected staged files into place, then remove every staged file."""
    installed = []
    for destination, staged in selected_files(runner).items():
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(staged, destination)
        installed.append(destination)
    for staged in staged_files():
        staged.unlink()
    # Deepest folders first; each is empty now, and rmdir fails loudly if anything else is in one.
    for folder in sorted((path for path in STAGING_DIR.rglob("*") if path.is_dir()), reverse=True):
        folder.rmdir()
    STAGING_DIR.rmdir()
    return installed


def other_answers_leftovers(runner: str) -> list[tuple[Path, str]]:
    """Files other answers would install that exist here (written by an earlier generation, not this
    one), each with the owner to name: "another runner" or the option's name."""
    mine = set(selected_files(runner))
    owners = {path: "another runner" for name in RUNNER_FILES for path in runner_files(name)}
    for option, table in OPTION_FILES.items():
        owners.update(dict.fromkeys(placed(table), f"the {option} option"))
    return sorted((path, owner) for path, owner in owners.items() if path not in mine and path.exists())


def template_dir() -> Path | None:
    """The folder holding cookiecutter.json, absolute, when it can be found from here."""
    repo_dir = ANSWERS.get("_repo_dir")
    if not repo_dir:
        return None
    candidates = [Path(repo_dir)]
    if not candidates[0].is_absolute() and os.environ.get("PWD"):
        # Cookiecutter runs this hook inside the new project, but a template given as a relative path
        # (`cookiecutter ../template`) is relative to where it was started, which a shell keeps in PWD.
        candidates = [Path(os.environ["PWD"], repo_dir)]
    for candidate in candidates:
        if candidate.is_absolute() and (candidate / "cookiecutter.json").is_file():
            return candidate
    return None


def git(folder: Path, *args: str) -> str | None:
    """A git query's one-line answer, or None when git is missing or says no (not a repository...)."""
    executable = shutil.which("git")
    if executable is None:
        return None
    # GIT_DIR and friends from a surrounding git hook would point git at another repository.
    env = {name: value for name, value in os.environ.items() if not name.startswith("GIT_")}
    try:
        result = subprocess.run(
            [executable, *args], cwd=folder, env=env, capture_output=True, text=True, timeout=GIT_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def template_address() -> str:
    """The template as it was asked for, in a form git can clone (shorthands such as gh: expanded)."""
    template = str(ANSWERS.get("_template", ""))
    # Cookiecutter's "git+" marks the repository type; git itself does not know the scheme.
    template = template.removeprefix("git+")
    prefix, _, rest = template.partition(":")
    if prefix in TEMPLATE_ABBREVIATIONS and rest and not rest.startswith("//"):
        return TEMPLATE_ABBREVIATIONS[prefix].format(rest)
    return template


def recorded_answers(folder: Path | None) -> dict[str, object]:
    """The answers as cruft records them: in cookiecutter.json's order, with its private `_` entries
    (such as `_extensions`) but none of cookiecutter's own (`_output_dir`, `_repo_dir`...)."""
    order: list[str] = []
    if folder:
        try:
            order = list(json.loads((folder / "cookiecutter.json").read_text(encoding="utf-8")))
        except (OSError, ValueError):
            order = []
    names = [name for name in order if name in ANSWERS and not name.startswith("__")]
    names += sorted(name for name in ANSWERS if not name.startswith("_") and name not in names)
    return {name: ANSWERS[name] for name in names}


def cruft_state() -> tuple[dict[str, object], list[str]]:
    """The content of .cruft.json, and notes on what could not be recorded."""
    notes = []
    address = template_address()
    folder = template_dir()
    top = git(folder, "rev-parse", "--show-toplevel") if folder else None
    commit = git(folder, "rev-parse", "HEAD") if folder and top else None
    directory = None
    if folder and top and folder.resolve().is_relative_to(Path(top).resolve()):
        relative = folder.resolve().relative_to(Path(top).resolve()).as_posix()
        directory = None if relative == "." else relative
        if git(folder, "status", "--porcelain", "--untracked-files=no", "--", "."):
            notes.append(f".cruft.json records template commit {commit}, but the template had uncommitted changes")
    if not REMOTE_TEMPLATE.match(address):
        # A local folder: cruft clones it by its absolute path (the repository root, not a subfolder).
        address = top or (str(folder) if folder else address)
    if commit is None:
        notes.append(
            ".cruft.json has no template commit (git missing, or the template is not a git checkout):"
            " `cruft update` needs one (`cruft link` can record it)"
        )
    checkout = ANSWERS.get("_checkout")
    state = {
        "template": address,
        "commit": commit,
        "checkout": checkout if isinstance(checkout, str) else None,
        "context": {"cookiecutter": {**recorded_answers(folder), "_template": address, "_commit": commit}},
        "directory": directory,
        # The lock file is the project's own (`make lock`); cruft leaves it alone.
        "skip": ["uv.lock"],
    }
    if ANSWERS.get("cruft_check") == "yes" and not REMOTE_TEMPLATE.match(address):
        notes.append(f"cruft_check is on, but CI cannot clone a local template ({address}): edit .cruft.json")
    return state, notes


def write_cruft_file() -> list[str]:
    """Write .cruft.json as cruft itself does; returns notes for the user."""
    state, notes = cruft_state()
    text = json.dumps(state, ensure_ascii=False, indent=2, separators=(",", ": ")) + "\n"
    CRUFT_FILE.write_text(text, encoding="utf-8")
    return notes


def files_written_this_run(installed: list[Path]) -> list[Path]:
    """The template's own files as this run named them, from the template folder when known.

    Only these are checked, so a user's own files in a project regenerated with -f are left alone.
    """
    source_dir = template_dir()
    project_template = source_dir / "{{ '{{cookiecutter.project_slug}}' }}" if source_dir else None
    if project_template is None or not project_template.is_dir():
        # Generated elsewhere (e.g. a fresh temporary folder): everything here is the template's.
        return sorted(path for path in Path().rglob("*") if path.is_file() and ".git" not in path.parts)
    written = set(installed)
    for source in project_template.rglob("*"):
        relative = source.relative_to(project_template)
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
    except Exception as error:
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
        # .cruft.json is data this hook wrote, not a rendered template: it quotes the answers and the
        # template's address, where any text may appear. It must still parse.
        marker = None if path == CRUFT_FILE else leftover_marker(text)
        if marker:
            line = text.count("\n", 0, marker.start()) + 1
            problems.append(f"{path}:{line}: leftover template marker {marker.group()!r}")
        problem = parse_problem(path, text)
        if problem:
            problems.append(f"{path}: does not parse: {problem}")
    if problems:
        raise GenerationError("; ".join(problems))


def main() -> int:
    runner = ANSWERS["runner"]
    notes = []
    try:
        check_staging_matches_table()
        installed = install_runner_files(runner)
        # cruft passes its own "_commit" and writes .cruft.json itself (`cruft create`, and the two
        # renderings `cruft update` compares, which must not differ in it).
        if "_commit" not in ANSWERS:
            notes = write_cruft_file()
            installed.append(CRUFT_FILE)
        check_generated_files(files_written_this_run(installed))
    except (GenerationError, OSError) as error:
        print(f"error: generated project is broken: {error}", file=sys.stderr)
        return 1
    for note in notes:
        print(f"note: {note}")
    for path, owner in other_answers_leftovers(runner):
        print(f"note: {path} belongs to {owner} and was kept (delete it if unused)")
    # Not in cruft's renderings (temporary folders, never with a uv.lock): `cruft update` switching
    # from docker to another runner would print it too.
    if runner in NEEDS_LOCK_FILE and not Path("uv.lock").exists() and "_commit" not in ANSWERS:
        print(f"note: {LOCK_NOTE}")
    return 0

if __name__ == "__main__":
    sys.exit(main())
