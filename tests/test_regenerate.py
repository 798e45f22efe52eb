"""Regenerating over an existing project, hooks on a bare machine, and line endings.

- `-f` (overwrite_if_exists) over a project keeps every file the template does not own, whatever
  server and packaging it names; the files of the old answers are kept and listed by the post-gen
  hook. (It rewrites the template's own files, edits in them included: the documented way to
  switch is `cruft update`, tests/test_switch_server.py.)
- The hooks need neither git, uv nor docker on PATH.
- Shell scripts and Makefiles keep LF line endings on a CRLF checkout (core.autocrlf=true), and a
  template checked out with CRLF still generates LF files.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

from tests.conftest import COMBINATIONS, HOST_PYTHON, SERVERS, TEMPLATE_DIR, run
from tests.test_bake import NAME_PART, VARIANTS_DIR, files_under

ANSWERS = {"project_name": "Regen Service", "project_slug": "regen", "package_name": "regen"}
COMBINATION_PARAMS = [pytest.param(server, packaging, id=f"{server}-{packaging}") for server, packaging in COMBINATIONS]


def every_switch(nodes: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """A walk that takes every ordered pair of distinct nodes once (an Euler circuit of the complete
    directed graph, by Hierholzer's algorithm), starting and ending at the first node."""
    unused = {node: [other for other in nodes if other != node] for node in nodes}
    stack, walk = [nodes[0]], []
    while stack:
        if unused[stack[-1]]:
            stack.append(unused[stack[-1]].pop())
        else:
            walk.append(stack.pop())
    return walk[::-1]


# Every switch between two server x packaging combinations, each ordered pair once.
SWITCHES = every_switch(list(COMBINATIONS))


def variant_only(server: str, packaging: str) -> set[str]:
    """The files this server and this packaging add (their `_variants/` folders), in the project."""
    answers = {**ANSWERS, "server": server, "packaging": packaging}
    folders = [VARIANTS_DIR / "server" / server, VARIANTS_DIR / "packaging" / packaging]
    return {
        NAME_PART.sub(lambda match: answers[match[1]], path.as_posix())
        for folder in folders
        for path in files_under(folder)
    }


# The user's own files: code, tests, docs, secrets, binary data, and files no tool would parse.
USER_FILES: dict[str, bytes] = {
    "src/regen/billing.py": b'"""Billing."""\n\nRATE = 3\n',
    "tests/test_billing.py": b"from regen.billing import RATE\n\n\ndef test_rate() -> None:\n    assert RATE == 3\n",
    "docs/notes.md": b"# Notes\n\nDo not lose me.\n",
    ".env": b"REGEN_LOG_LEVEL=debug\n",
    "data/blob.bin": bytes(range(256)),
    "scratch/broken.py": b"def broken(:\n",
    "scratch/broken.yaml": b"key: [unclosed\n",
    "scripts/deploy.sh": b"#!/bin/sh\necho deploy\n",
}


def bake(output_dir: Path, server: str, packaging: str = "host", *, overwrite: bool) -> Path:
    return Path(
        cookiecutter(
            str(TEMPLATE_DIR),
            no_input=True,
            output_dir=str(output_dir),
            overwrite_if_exists=overwrite,
            extra_context={**ANSWERS, "python_version": HOST_PYTHON, "server": server, "packaging": packaging},
        )
    )


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_user_files(project: Path, files: dict[str, bytes]) -> None:
    for name, content in files.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_bytes(content)


def kept_notes(stdout: str) -> set[str]:
    """Paths the post-gen hook reported as another answer's files it kept."""
    return {
        line.split()[1] for line in stdout.splitlines() if re.match(r"note: \S+ belongs to \w+=\w+ and was kept", line)
    }


def test_the_switches_take_every_ordered_pair_once() -> None:
    pairs = list(itertools.pairwise(SWITCHES))

    assert sorted(pairs) == sorted(itertools.permutations(COMBINATIONS, 2))


@pytest.mark.slow
def test_every_switch_keeps_user_files_and_lists_the_old_answers_files(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    project = bake(tmp_path, *SWITCHES[0], overwrite=False)
    write_user_files(project, USER_FILES)
    before = {name: digest(project / name) for name in USER_FILES}
    ever_written: set[str] = variant_only(*SWITCHES[0])
    capfd.readouterr()

    for previous, current in itertools.pairwise(SWITCHES):
        step = f"{'-'.join(previous)} -> {'-'.join(current)}"
        assert bake(tmp_path, *current, overwrite=True) == project
        notes = kept_notes(capfd.readouterr().out)
        owned = variant_only(*current)
        stale = ever_written - owned
        ever_written |= owned

        assert {name: digest(project / name) for name in USER_FILES} == before, step
        assert [name for name in owned if not (project / name).is_file()] == [], step
        # Whatever earlier answers wrote and these do not own is still there, and reported.
        assert [name for name in stale if not (project / name).is_file()] == [], step
        assert notes == stale, step
        assert not (project / "_variants").exists()


def test_server_module_follows_the_server(tmp_path: Path) -> None:
    project = bake(tmp_path, "gunicorn", overwrite=False)
    bake(tmp_path, "uvicorn", overwrite=True)

    assert "uvicorn.run(" in (project / "src/regen/serving/server.py").read_text()


@pytest.mark.parametrize("server", SERVERS)
def test_users_own_dockerfile_survives_a_host_regeneration(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], server: str
) -> None:
    project = bake(tmp_path, "uvicorn", overwrite=False)
    own = {"Dockerfile": b"FROM scratch\n# mine\n", "compose.yaml": b"services: {}\n"}
    write_user_files(project, own)
    capfd.readouterr()

    bake(tmp_path, server, "host", overwrite=True)

    assert {name: (project / name).read_bytes() for name in own} == own
    assert kept_notes(capfd.readouterr().out) >= {"Dockerfile", "compose.yaml"}


def test_git_history_survives_regeneration(tmp_path: Path) -> None:
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    project = bake(tmp_path, "uvicorn", overwrite=False)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "base"]):
        subprocess.run([*git, *args], cwd=project, check=True)

    bake(tmp_path, "uvicorn", overwrite=True)
    status = subprocess.run([*git, "status", "--porcelain"], cwd=project, capture_output=True, text=True, check=True)

    # Same answers: regenerating changes nothing git can see.
    assert status.stdout == ""


# --- a bare machine ----------------------------------------------------------------------------------


def bare_path(tmp_path: Path) -> str:
    """A PATH holding only python and make (no git, uv or docker)."""
    bin_dir = tmp_path / "bare-bin"
    bin_dir.mkdir()
    for name, target in {"python": sys.executable, "python3": sys.executable, "make": shutil.which("make")}.items():
        if target:
            (bin_dir / name).symlink_to(target)
    return str(bin_dir)


@pytest.mark.parametrize(("server", "packaging"), COMBINATION_PARAMS)
def test_hooks_succeed_without_git_uv_or_docker(tmp_path: Path, server: str, packaging: str) -> None:
    env = {**os.environ, "PATH": bare_path(tmp_path)}
    for tool in ("git", "uv", "docker"):
        assert shutil.which(tool, path=env["PATH"]) is None
    output = tmp_path / "out"
    command = [sys.executable, "-m", "cookiecutter", "--no-input", str(TEMPLATE_DIR), "-o", str(output)]
    answers = [f"server={server}", f"packaging={packaging}", f"python_version={HOST_PYTHON}"]
    result = run([*command, *answers], tmp_path, env=env, timeout=120)

    assert result.returncode == 0, result.stderr
    assert (output / "my-fastapi-service" / "src" / "my_fastapi_service" / "serving" / "server.py").is_file()
    if packaging == "docker":
        # No uv, so no lock file: the hook says how to make one instead of failing.
        assert "run `make lock`" in result.stdout


# --- line endings ---------------------------------------------------------------------------------

LF_ONLY = ("Makefile", "*.sh", ".ci/run", "Dockerfile", "*.service")


def crlf_files(folder: Path) -> list[str]:
    found = []
    for pattern in LF_ONLY:
        for path in folder.glob(pattern) if "/" in pattern else folder.rglob(pattern):
            if ".git" not in path.parts and b"\r\n" in path.read_bytes():
                found.append(str(path.relative_to(folder)))
    return found


def git(*args: str, cwd: Path) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def clone_with_autocrlf(source: Path, destination: Path) -> Path:
    git("-c", "core.autocrlf=true", "clone", "-q", "--no-hardlinks", str(source), str(destination), cwd=source)
    return destination


@pytest.fixture
def need_git() -> None:
    if shutil.which("git") is None:
        pytest.skip("git not installed")


@pytest.mark.usefixtures("need_git")
def test_template_checkout_with_autocrlf_keeps_lf_in_scripts(tmp_path: Path) -> None:
    # The template as committed (a copy of the working tree, so uncommitted changes count too).
    source = tmp_path / "template"
    shutil.copytree(TEMPLATE_DIR, source, ignore=shutil.ignore_patterns(".git", ".venv", "*cache*"))
    # Every pattern is exercised even before the repository has such a file of its own.
    for name in (".ci/run", "scripts/check.sh"):
        if not (source / name).exists():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            (source / name).write_bytes(b"#!/bin/sh\necho ok\n")
    git("init", "-q", cwd=source)
    git("add", "-A", cwd=source)
    git("commit", "-qm", "template", cwd=source)
    checkout = clone_with_autocrlf(source, tmp_path / "checkout")
    python_files = [p for p in checkout.rglob("*.py") if b"\r\n" in p.read_bytes()]

    assert (checkout / ".ci" / "run").read_bytes() == (source / ".ci" / "run").read_bytes()
    assert crlf_files(checkout) == []
    # eol=lf everywhere: even Python files stay LF (a sanity check that autocrlf was in force
    # would need a file without the attribute; there is none by design).
    assert python_files == []


@pytest.mark.usefixtures("need_git")
@pytest.mark.parametrize(("server", "packaging"), COMBINATION_PARAMS)
def test_generated_project_checkout_with_autocrlf_keeps_lf_in_scripts(
    tmp_path: Path, server: str, packaging: str
) -> None:
    project = bake(tmp_path / "out", server, packaging, overwrite=False)
    write_user_files(project, {"scripts/deploy.sh": b"#!/bin/sh\necho deploy\n"})
    git("init", "-q", cwd=project)
    git("add", "-A", cwd=project)
    git("commit", "-qm", "project", cwd=project)
    checkout = clone_with_autocrlf(project, tmp_path / "checkout")

    assert (checkout / "Makefile").is_file()
    assert crlf_files(checkout) == []


@pytest.mark.usefixtures("need_git")
def test_autocrlf_would_convert_without_the_attributes(tmp_path: Path) -> None:
    """The check above can fail: the same checkout without .gitattributes has CRLF."""
    source = tmp_path / "plain"
    source.mkdir()
    (source / "Makefile").write_bytes(b"all:\n\ttrue\n")
    git("init", "-q", cwd=source)
    git("add", "-A", cwd=source)
    git("commit", "-qm", "plain", cwd=source)

    assert crlf_files(clone_with_autocrlf(source, tmp_path / "checkout")) == ["Makefile"]


@pytest.mark.parametrize(("server", "packaging"), [COMBINATION_PARAMS[0], COMBINATION_PARAMS[-1]])
def test_template_with_crlf_files_generates_lf_and_make_works(tmp_path: Path, server: str, packaging: str) -> None:
    """A template copied with CRLF line endings (a zip download on Windows): the hooks still run
    and every generated file has LF (cookiecutter.json's _new_lines)."""
    template = tmp_path / "template"
    shutil.copytree(TEMPLATE_DIR, template, ignore=shutil.ignore_patterns(".git", ".venv", "*cache*", "tests"))
    for path in template.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if b"\0" not in data:
                path.write_bytes(data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    assert b"\r\n" in (template / "hooks" / "pre_gen_project.py").read_bytes()
    project = Path(
        cookiecutter(
            str(template),
            no_input=True,
            output_dir=str(tmp_path / "out"),
            extra_context={"python_version": HOST_PYTHON, "server": server, "packaging": packaging},
        )
    )
    with_crlf = [str(p.relative_to(project)) for p in project.rglob("*") if p.is_file() and b"\r" in p.read_bytes()]
    result = run(["make", "help"], project)

    assert with_crlf == []
    assert result.returncode == 0, result.stderr
