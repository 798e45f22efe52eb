"""Hostile answers: every bad one is refused with one line naming the field, and leaves no folder.

Injection payloads go into every free-text answer: none may run code (a payload that ran would
create a file named PWNED) or write outside the output folder; the valid-but-nasty ones must bake
into files that parse and lint (ruff + mypy --strict).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import COMBINATIONS, HOST_PYTHON, TEMPLATE_DIR, project_env, run

# Answers that keep the rest valid while one field is under test.
SAFE = {"project_slug": "svc", "package_name": "svc"}


def case(case_id: str, field: str, value: str, **others: str) -> Any:
    """One bad answer: `field` gets `value`, the other answers stay valid."""
    overrides = {**(SAFE if field not in {"project_slug", "package_name"} else {}), **others, field: value}
    return pytest.param(field, overrides, id=case_id)


BAD_ANSWERS = [
    # project_slug: the folder cookiecutter creates, and the distribution name.
    case("slug-traversal-parent", "project_slug", "../escaped", package_name="svc"),
    case("slug-traversal-deep", "project_slug", "../../../escaped", package_name="svc"),
    case("slug-nested-path", "project_slug", "a/b/c", package_name="svc"),
    case("slug-backslash-path", "project_slug", "a\\b", package_name="svc"),
    case("slug-dot-dot", "project_slug", "..", package_name="svc"),
    case("slug-dot", "project_slug", ".", package_name="svc"),
    case("slug-empty", "project_slug", "", package_name="svc"),
    case("slug-drive-colon", "project_slug", "c:evil", package_name="svc"),
    case("slug-uppercase", "project_slug", "MyService", package_name="svc"),
    case("slug-space", "project_slug", "my service", package_name="svc"),
    case("slug-leading-digit", "project_slug", "1service", package_name="svc"),
    case("slug-leading-dash", "project_slug", "-service", package_name="svc"),
    case("slug-trailing-dash", "project_slug", "service-", package_name="svc"),
    case("slug-dotted", "project_slug", "my.service", package_name="svc"),
    case("slug-unicode", "project_slug", "café", package_name="svc"),
    case("slug-too-long", "project_slug", "a" * 65, package_name="svc"),
    case("slug-folder-name-too-long", "project_slug", "a" * 300, package_name="svc"),
    case("slug-dependency-name", "project_slug", "fastapi", package_name="svc"),
    case("slug-dependency-name-underscore", "project_slug", "pydantic_settings", package_name="svc"),
    case("slug-windows-device-name", "project_slug", "con", package_name="svc"),
    # package_name: the import name.
    case("package-keyword-class", "package_name", "class", project_slug="svc"),
    case("package-keyword-import", "package_name", "import", project_slug="svc"),
    case("package-soft-keyword-match", "package_name", "match", project_slug="svc"),
    case("package-soft-keyword-case", "package_name", "case", project_slug="svc"),
    case("package-soft-keyword-type", "package_name", "type", project_slug="svc"),
    case("package-underscore-only", "package_name", "_", project_slug="svc"),
    case("package-stdlib-json", "package_name", "json", project_slug="svc"),
    case("package-stdlib-asyncio", "package_name", "asyncio", project_slug="svc"),
    case("package-stdlib-logging", "package_name", "logging", project_slug="svc"),
    case("package-dependency-fastapi", "package_name", "fastapi", project_slug="svc"),
    case("package-dependency-pydantic", "package_name", "pydantic", project_slug="svc"),
    case("package-dependency-uvicorn-worker", "package_name", "uvicorn_worker", project_slug="svc"),
    case("package-dependency-httpx2", "package_name", "httpx2", project_slug="svc"),
    case("package-dependency-schemathesis", "package_name", "schemathesis", project_slug="svc"),
    case("package-reserved-tests", "package_name", "tests", project_slug="svc"),
    case("package-dash", "package_name", "my-pkg", project_slug="svc"),
    case("package-uppercase", "package_name", "MyPkg", project_slug="svc"),
    case("package-leading-digit", "package_name", "1pkg", project_slug="svc"),
    case("package-dotted", "package_name", "my.pkg", project_slug="svc"),
    case("package-traversal", "package_name", "../pkg", project_slug="svc"),
    case("package-empty", "package_name", "", project_slug="svc"),
    # port
    case("port-zero", "port", "0"),
    case("port-too-high", "port", "65536"),
    case("port-negative", "port", "-1"),
    case("port-word", "port", "http"),
    case("port-decimal", "port", "80.5"),
    case("port-leading-zero", "port", "08000"),
    case("port-padded", "port", " 8000"),
    case("port-huge", "port", "99999999999999999999"),
    case("port-fullwidth-digits", "port", "\uff18\uff10\uff10\uff10"),
    case("port-empty", "port", ""),
    # version
    case("version-word", "version", "latest"),
    case("version-double-dot", "version", "1..0"),
    case("version-space", "version", "1.0 beta"),
    case("version-empty", "version", ""),
    case("version-tilde", "version", "1.0.0~rc1"),
    case("version-code-injection", "version", '1.0"; import os; os.system("touch PWNED") #'),
    case("version-too-long", "version", "1." + "0." * 40 + "0"),
    # author_email
    case("email-no-at", "author_email", "you.example.com"),
    case("email-two-ats", "author_email", "a@b@example.com"),
    case("email-space", "author_email", "you @example.com"),
    case("email-no-domain-dot", "author_email", "you@localhost"),
    case("email-display-name", "author_email", "You <you@example.com>"),
    case("email-quote-injection", "author_email", "\"; import os; os.system('touch PWNED')\"@x.com"),
    case("email-too-long", "author_email", "a" * 250 + "@example.com"),
    # names and free text
    case("name-empty", "project_name", ""),
    case("name-blank", "project_name", "   "),
    case("name-leading-space", "project_name", " Service"),
    case("name-newline", "project_name", "My\nService"),
    case("name-tab", "project_name", "My\tService"),
    case("name-nul", "project_name", "My\x00Service"),
    case("name-terminal-escape", "project_name", "\x1b[31mRed"),
    case("name-bidi-override", "project_name", "\u202eecivreS"),
    case("name-line-separator", "project_name", "My\u2028Service"),
    case("name-too-long", "project_name", "x" * 101),
    case("name-template-marker", "project_name", "{% raw %}{{ not_rendered }}{% endraw %}"),
    case("description-empty", "description", ""),
    case("description-newline", "description", "line one\nline two"),
    case("description-too-long", "description", "d" * 2001),
    case("author-empty", "author_name", ""),
    case("author-bell", "author_name", "Ann\x07"),
    case("author-too-long", "author_name", "a" * 101),
    # choices given on the command line
    case("server-unknown", "server", "nginx"),
    case("server-old-runner-value", "server", "docker"),
    case("packaging-unknown", "packaging", "vm"),
    case("database-unknown", "database", "mysql"),
    # answers that do not go together
    case("kubernetes-on-a-host", "kubernetes", "yes", packaging="host"),
    # issue 26: accepted, then `make run` exited 2 and `make test` errored (both servers on one port)
    case("metrics-on-the-service-port", "metrics", "yes", port="9000"),
    case("python-version-unknown", "python_version", "2.7"),
    case("python-version-too-old", "python_version", "3.10"),
    case("python-version-with-patch", "python_version", "3.11.4"),
]


def rejection_lines(result: Any, captured_err: str) -> list[str]:
    """What the user is told: the hook's stderr lines, else cookiecutter's own error."""
    lines = [line for line in captured_err.splitlines() if line.startswith("error: ")]
    error = result.exception
    if error is not None:
        lines += str(getattr(error, "error", None) or error).splitlines()
    return lines


def files_under(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if not path.is_dir())


def test_there_are_at_least_40_bad_answers() -> None:
    assert len(BAD_ANSWERS) >= 40


@pytest.mark.parametrize(("field", "overrides"), BAD_ANSWERS)
def test_bad_answer_is_refused_naming_the_field(
    cookies: Any, tmpdir: Any, capfd: pytest.CaptureFixture[str], field: str, overrides: dict[str, str]
) -> None:
    result = cookies.bake(extra_context=overrides)
    lines = rejection_lines(result, capfd.readouterr().err)
    workspace = Path(str(tmpdir))

    assert result.exit_code != 0
    assert any(re.search(rf"(^error: |^|choice variable ){field}\b", line) for line in lines), lines
    # Nothing written: not in the output folder, not beside it (traversal), no stray folder.
    assert files_under(workspace) == []
    assert sorted(p.relative_to(workspace).as_posix() for p in workspace.rglob("*")) in (
        ["cookies"],
        ["cookies", "cookies/bake00"],
    )


def test_answer_mentioning_cookiecutter_bakes(cookies: Any) -> None:
    """The post-gen hook's leftover-marker check does not mistake an answer's words for a marker."""
    result = cookies.bake(extra_context={"description": "Made from cookiecutter.json answers"})

    assert result.exception is None, result.exception


def test_each_broken_rule_is_one_error_line(cookies: Any, capfd: pytest.CaptureFixture[str]) -> None:
    result = cookies.bake(extra_context={**SAFE, "port": "0", "version": "x", "author_email": "nope"})
    errors = capfd.readouterr().err.splitlines()

    assert result.exit_code != 0
    assert [line.split(":")[1].strip() for line in errors] == ["author_email", "version", "port"]


def test_metrics_on_the_service_port_is_one_line_naming_both(cookies: Any, capfd: pytest.CaptureFixture[str]) -> None:
    """port=9000 metrics=yes: one line that names both answers and what to change."""
    result = cookies.bake(extra_context={**SAFE, "port": "9000", "metrics": "yes"})
    errors = [line for line in capfd.readouterr().err.splitlines() if line.startswith("error: ")]

    assert result.exit_code != 0
    assert len(errors) == 1, errors
    assert "metrics" in errors[0], errors
    assert "port '9000'" in errors[0], errors


def test_metrics_on_another_port_bakes(cookies: Any) -> None:
    result = cookies.bake(extra_context={**SAFE, "port": "9001", "metrics": "yes"})

    assert result.exception is None, result.exception


@pytest.mark.parametrize(
    "answer",
    ["project_slug=../escaped", "port=99999", "package_name=class"],
    ids=["traversal", "port", "keyword"],
)
def test_command_line_exits_non_zero_without_a_folder(tmp_path: Path, answer: str) -> None:
    output = tmp_path / "out"
    output.mkdir()
    result = run(
        [sys.executable, "-m", "cookiecutter", "--no-input", str(TEMPLATE_DIR), "-o", str(output), answer],
        cwd=tmp_path,
        timeout=120,
    )

    assert result.returncode != 0
    assert answer.split("=")[0] in result.stdout + result.stderr
    assert [path.name for path in tmp_path.rglob("*")] == ["out"]


# --- injection -------------------------------------------------------------------------------------

MARKER = "PWNED"
# Each would create a file named PWNED if any of it ran: in Python, Jinja, a shell or make.
PAYLOADS = {
    "python-triple-quote": '"""; import os; os.system("touch PWNED") #',
    "python-single-triple-quote": "'''; __import__('os').system('touch PWNED') #",
    "python-fstring": "{__import__('os').system('touch PWNED')}",
    "jinja-globals": "{{ cycler.__init__.__globals__.os.system('touch PWNED') }}",
    "jinja-subclasses": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "jinja-self-context": "{{ self._TemplateReference__context }}",
    "jinja-statement": "{% for c in [].__class__.__base__.__subclasses__() %}{% endfor %}",
    "shell-backticks": "`touch PWNED`",
    "shell-substitution": "$(touch PWNED)",
    "shell-semicolon": '"; touch PWNED; echo "',
    "make-shell": "$(shell touch PWNED)",
    "path-traversal": "../../PWNED",
    "quotes-and-backslashes": 'O\'Reilly "Quoted" \\ back\\slash \\n \\\\',
    "toml-breakout": '"\n[tool.evil]\nx = "PWNED',
    "yaml-breakout": "x\n- !!python/object/apply:os.system ['touch PWNED']",
    "markdown-html": "<script>alert('PWNED')</script> [x](javascript:alert(1))",
    "env-interpolation": "${HOME} $HOME %PATH%",
}
FREE_TEXT_FIELDS = ("project_name", "description", "author_name", "author_email")


def assert_nothing_ran(*folders: Path) -> None:
    for folder in folders:
        assert not list(folder.rglob(MARKER)), f"a payload ran: {MARKER} exists under {folder}"


@pytest.mark.parametrize("field", FREE_TEXT_FIELDS)
@pytest.mark.parametrize("payload", list(PAYLOADS.values()), ids=list(PAYLOADS))
def test_injection_payload_runs_nothing_and_stays_inside(
    cookies: Any, tmpdir: Any, monkeypatch: pytest.MonkeyPatch, field: str, payload: str
) -> None:
    workspace = Path(str(tmpdir))
    monkeypatch.chdir(workspace)  # a relative `touch PWNED` from this process would land here
    result = cookies.bake(extra_context={**SAFE, field: payload})

    assert_nothing_ran(workspace, Path.cwd())
    outside = [p for p in workspace.iterdir() if p.name != "cookies"]
    assert outside == []
    if result.exception is None:
        # Baked: the answer is data in every file (the post-gen hook parsed them all).
        assert result.project_path.parent == workspace / "cookies" / "bake00"


# Valid but nasty: these must bake, and the project must still lint. One bake per server x packaging,
# the payloads spread over the three free-text fields that accept them.
NASTY_VALID = [
    PAYLOADS["python-triple-quote"],
    PAYLOADS["python-single-triple-quote"],
    PAYLOADS["python-fstring"],
    PAYLOADS["shell-backticks"],
    PAYLOADS["shell-substitution"],
    PAYLOADS["shell-semicolon"],
    PAYLOADS["quotes-and-backslashes"],
    PAYLOADS["markdown-html"],
    PAYLOADS["env-interpolation"],
]


@pytest.mark.slow
@pytest.mark.parametrize(("server", "packaging"), [pytest.param(*pair, id="-".join(pair)) for pair in COMBINATIONS])
def test_nasty_valid_answers_bake_and_lint(
    cookies: Any,
    tmpdir: Any,
    monkeypatch: pytest.MonkeyPatch,
    installed_project: Any,
    server: str,
    packaging: str,
) -> None:
    workspace = Path(str(tmpdir))
    monkeypatch.chdir(workspace)
    offset = COMBINATIONS.index((server, packaging)) * 3 % len(NASTY_VALID)
    answers = {
        "project_name": NASTY_VALID[offset],
        "description": NASTY_VALID[offset + 1],
        "author_name": NASTY_VALID[offset + 2],
        "project_slug": "nasty",
        "package_name": "nasty",
        "python_version": HOST_PYTHON,
        "server": server,
        "packaging": packaging,
    }
    result = cookies.bake(extra_context=answers)
    assert result.exception is None, result.exception
    # The tools of an installed project of the same combination lint this one (mypy reads it from src/).
    tools = installed_project(server, packaging) / ".venv" / "bin"
    env = project_env(MYPY_CACHE_DIR=str(workspace / "mypy-cache"))
    lint = [
        run([str(tools / "ruff"), "check", "--no-cache", "."], result.project_path, env=env),
        run([str(tools / "ruff"), "format", "--check", "--no-cache", "."], result.project_path, env=env),
        run([str(tools / "mypy")], result.project_path, env=env),
    ]

    assert_nothing_ran(workspace)
    assert [(r.returncode, r.stdout[-2000:]) for r in lint] == [(0, r.stdout[-2000:]) for r in lint]


def test_payloads_go_into_every_free_text_answer() -> None:
    answers = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text())
    structured = {"project_slug", "package_name", "version", "python_version", "port"}
    free_text = {name for name, value in answers.items() if isinstance(value, str) and not name.startswith("_")}

    assert free_text - structured == set(FREE_TEXT_FIELDS)


def test_marker_would_be_seen(tmp_path: Path) -> None:
    """The detector works: a payload that did run is caught."""
    subprocess.run(["touch", MARKER], cwd=tmp_path, check=True)

    with pytest.raises(AssertionError):
        assert_nothing_ran(tmp_path)
