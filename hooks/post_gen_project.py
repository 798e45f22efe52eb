"""Shape and check the generated project.

1. Lay out the answers' files. `_variants/<answer>/<value>/` holds the files an answer's value adds,
   at their paths in the project (`_variants/server/gunicorn/src/<package>/serving/gunicorn_conf.py`);
   `_variants/<a>+<b>/<value a>+<value b>/` those of two answers together, and `<value>,<value>/`
   those that several values of an answer share (`database/postgres,sqlite/`). The chosen folders are
   laid over the project, then `_variants/` is removed: the folder tree is the only table there is.
   Adding a server or a packaging is adding its folder (and its value in cookiecutter.json).
2. Record the answers and the template's source and commit in .cruft.json, the form `cruft check`
   and `cruft update` read (git is optional: without it the commit is left null).
3. Check what this run wrote: Python compiles, TOML/JSON/YAML parse, no template markers are left.
4. For the Docker packaging, which builds from uv.lock: say that `make image` writes it first. The
   bake itself locks nothing: it stays offline and fast, and needs neither uv nor the project's
   Python.

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

VARIANTS_DIR = Path("_variants")
LOCK_NOTE = (
    "the image installs the exact versions in uv.lock: `make image` writes it first when missing or "
    "older than pyproject.toml (or run `make lock`); commit it"
)


class GenerationError(Exception):
    """A problem with what was generated; its message is the one line the user sees."""


def variant_folders() -> dict[Path, bool]:
    """Every `_variants/<answers>/<values>/` folder, and whether this project's answers choose it."""
    folders = {}
    for answers in sorted(path for path in VARIANTS_DIR.iterdir() if path.is_dir()):
        names = answers.name.split("+")
        unknown = [name for name in names if name not in ANSWERS]
        if unknown:
            raise GenerationError(f"{answers} names no answer of cookiecutter.json: {', '.join(unknown)}")
        for values in sorted(path for path in answers.iterdir() if path.is_dir()):
            # A comma lists the values that share a folder: `database/postgres,sqlite/` is either.
            parts = values.name.split("+")
            folders[values] = len(parts) == len(names) and all(
                str(ANSWERS[name]) in part.split(",") for name, part in zip(names, parts, strict=True)
            )
    return folders


def files_in(folder: Path) -> dict[Path, Path]:
    """The folder's files: path in the project -> file in the folder."""
    return {path.relative_to(folder): path for path in sorted(folder.rglob("*")) if path.is_file()}


def install_variant_files() -> tuple[list[Path], list[tuple[Path, str]]]:
    """Lay the chosen folders over the project and remove `_variants/`. Returns the files installed,
    and the files of values not chosen that exist in the project (written by an earlier generation
    with other answers, kept), each with the answer that owns them."""
    folders = variant_folders()
    installed: dict[Path, Path] = {}
    for folder, chosen in folders.items():
        if chosen:
            installed.update(files_in(folder))
    others = {}
    for folder, chosen in folders.items():
        if not chosen:
            owner = f"{folder.parent.name}={folder.name}"
            others.update({path: owner for path in files_in(folder) if path not in installed and path.exists()})
    for destination, source in installed.items():
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination)
    shutil.rmtree(VARIANTS_DIR)
    return sorted(installed), sorted(others.items())


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
        if source.is_file() and relative.parts[0] != VARIANTS_DIR.name:
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
    notes = []
    try:
        installed, others = install_variant_files()
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
    for path, owner in others:
        print(f"note: {path} belongs to {owner} and was kept (delete it if unused)")
    # Not in cruft's renderings (temporary folders, never with a uv.lock).
    if ANSWERS["packaging"] == "docker" and not Path("uv.lock").exists() and "_commit" not in ANSWERS:
        print(f"note: {LOCK_NOTE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
