"""Reject bad answers before cookiecutter writes anything.

Each broken rule prints one line naming the field, the value and the rule; the hook then exits 1 and
cookiecutter removes the half-made project folder. Standard library only.
"""

from __future__ import annotations

import json
import keyword
import re
import sys
import unicodedata

# The answers arrive as JSON data, never as code: no quote, backslash or template marker in an answer
# can break this file. (The spaces keep the JSON's own quotes apart from the raw string's.)
ANSWERS = json.loads(r""" {{ cookiecutter | tojson }} """)

# Kept equal to local_extensions.py's versions by tests/test_hooks.py. (The server and packaging
# answers are checked by cookiecutter itself against cookiecutter.json's lists, their one source.)
PYTHON_VERSIONS = ("3.13", "3.12", "3.11")
YES_NO = ("no", "yes")
# The metrics' port (local_extensions.py's ConstantsExtension, its one source).
METRICS_PORT = "{{ metrics_port }}"

# Import names the generated project depends on (runtime and dev); a package with one of these names
# would shadow it.
DEPENDENCY_IMPORT_NAMES = frozenset(
    {
        "alembic", "annotated_types", "anyio", "click", "dotenv", "email_validator", "fastapi", "granian",
        "gunicorn", "h11", "httpcore", "httpcore2", "httptools", "httpx", "httpx2", "hypothesis", "idna", "mypy",
        "opentelemetry", "packaging", "prometheus_client", "psycopg", "pydantic", "pydantic_core",
        "pydantic_settings", "pytest", "requests", "ruff", "schemathesis", "sentry_sdk", "sniffio", "sqlalchemy",
        "sqlmodel", "starlette", "typing_extensions", "typing_inspection", "urllib3",
        "uvicorn", "uvicorn_worker", "uvloop", "watchfiles", "websockets", "werkzeug", "yaml",
    }
)  # fmt: skip
# Distribution names (PEP 503 normalised) of the direct dependencies: a project with one of these
# names cannot depend on it (the installer sees the project depending on itself).
DEPENDENCY_DISTRIBUTION_NAMES = frozenset(
    {
        "alembic", "fastapi", "granian", "gunicorn", "hatchling", "httpx2", "mypy", "prometheus-client",
        "psycopg", "pydantic", "pydantic-settings", "pytest", "ruff", "schemathesis", "sentry-sdk", "sqlalchemy",
        "sqlmodel", "starlette", "uvicorn", "uvicorn-worker",
    }
)  # fmt: skip
# Names Windows refuses for a file or folder, whatever the extension.
WINDOWS_RESERVED_NAMES = frozenset(
    {"con", "prn", "aux", "nul", *(f"com{n}" for n in range(10)), *(f"lpt{n}" for n in range(10))}
)
RESERVED_PACKAGE_NAMES = frozenset({"test", "tests", "conftest", "src", "site", "main"})
# Soft keywords differ between Python versions; the union of those the generated project supports.
SOFT_KEYWORDS = frozenset(getattr(keyword, "softkwlist", [])) | {"_", "case", "match", "type"}

SLUG_RE = re.compile(r"[a-z](?:[a-z0-9_-]*[a-z0-9])?")
# The slug names the Namespace, Service and Deployment: an RFC 1035 label (no '_', at most 63).
KUBERNETES_NAME_RE = re.compile(r"[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?")
PACKAGE_RE = re.compile(r"[a-z][a-z0-9_]*")
# A practical address shape (ASCII; no quotes, spaces or brackets): what packaging metadata accepts
# everywhere the address is written.
EMAIL_RE = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)
# PEP 440 public and local versions, case-insensitive, as `packaging` accepts them.
VERSION_RE = re.compile(
    r"v?(?:\d+!)?\d+(?:\.\d+)*"
    r"(?:[-_.]?(?:a|b|c|rc|alpha|beta|pre|preview)[-_.]?\d*)?"
    r"(?:-\d+|[-_.]?(?:post|rev|r)[-_.]?\d*)?"
    r"(?:[-_.]?dev[-_.]?\d*)?"
    r"(?:\+[a-z0-9]+(?:[-_.][a-z0-9]+)*)?",
    re.IGNORECASE,
)

# Template syntax in an answer would be left in the generated files (the post-gen hook refuses that);
# written in two halves because this file is itself a template.
TEMPLATE_MARKERS = ("{" + "{", "{" + "%", "{" + "#")

MAX_NAME_LENGTH = 100
MAX_SLUG_LENGTH = 64
MAX_DESCRIPTION_LENGTH = 2000
MAX_EMAIL_LENGTH = 254
MAX_VERSION_LENGTH = 64


def has_control_characters(text: str) -> bool:
    return any(unicodedata.category(char) in {"Cc", "Cf", "Zl", "Zp"} for char in text)


def check_free_text(value: str, *, max_length: int, required: bool) -> str | None:
    """Rules shared by every human-readable answer; the reason it breaks one, or None."""
    if required and not value.strip():
        return "must not be empty"
    if value != value.strip():
        return "must not start or end with spaces"
    if has_control_characters(value):
        return "must be one line without control characters"
    if len(value) > max_length:
        return f"must be at most {max_length} characters (got {len(value)})"
    if any(marker in value for marker in TEMPLATE_MARKERS):
        return "must not contain template markers (double braces, brace-percent, brace-hash)"
    return None


def check_project_name(value: str) -> str | None:
    return check_free_text(value, max_length=MAX_NAME_LENGTH, required=True)


def check_description(value: str) -> str | None:
    return check_free_text(value, max_length=MAX_DESCRIPTION_LENGTH, required=True)


def check_author_name(value: str) -> str | None:
    return check_free_text(value, max_length=MAX_NAME_LENGTH, required=True)


def check_project_slug(value: str) -> str | None:
    if not SLUG_RE.fullmatch(value):
        return (
            "must be lowercase letters, digits, '-' or '_', start with a letter and end with a"
            " letter or digit (no path separators, dots or spaces)"
        )
    if len(value) > MAX_SLUG_LENGTH:
        return f"must be at most {MAX_SLUG_LENGTH} characters"
    if re.sub(r"[-_.]+", "-", value) in DEPENDENCY_DISTRIBUTION_NAMES:
        return "is the name of a dependency (the project would depend on itself)"
    if value in WINDOWS_RESERVED_NAMES:
        return "is a reserved device name on Windows"
    return None


def check_package_name(value: str) -> str | None:
    if not PACKAGE_RE.fullmatch(value):
        return "must be a lowercase Python identifier (letters, digits, '_'; starts with a letter)"
    if keyword.iskeyword(value) or value in SOFT_KEYWORDS:
        return "is a Python keyword"
    if value in sys.stdlib_module_names:
        return "is a standard-library module name and would shadow it"
    if value in DEPENDENCY_IMPORT_NAMES:
        return "is the import name of a dependency and would shadow it"
    if value in RESERVED_PACKAGE_NAMES:
        return "is reserved (test and tool folder names)"
    if len(value) > MAX_SLUG_LENGTH:
        return f"must be at most {MAX_SLUG_LENGTH} characters"
    return None


def check_author_email(value: str) -> str | None:
    if not value:
        return None
    if len(value) > MAX_EMAIL_LENGTH or not EMAIL_RE.fullmatch(value):
        return "must look like name@example.com (or be empty)"
    return None


def check_version(value: str) -> str | None:
    if len(value) > MAX_VERSION_LENGTH:
        return f"must be at most {MAX_VERSION_LENGTH} characters"
    if not VERSION_RE.fullmatch(value):
        return "must be a PEP 440 version such as 0.1.0 or 1.0.0rc1"
    return None


def check_port(value: str) -> str | None:
    # No leading zero: the port is written as a Python integer literal, where 08000 is an error.
    if not re.fullmatch(r"[1-9][0-9]{0,4}", value) or not 1 <= int(value) <= 65535:
        return "must be a whole number from 1 to 65535 (no leading zeros)"
    return None


def check_python_version(value: str) -> str | None:
    if value not in PYTHON_VERSIONS:
        return f"must be one of {', '.join(PYTHON_VERSIONS)}"
    return None


def check_yes_no(value: str) -> str | None:
    if value not in YES_NO:
        return f"must be one of {', '.join(YES_NO)}"
    return None


def check_kubernetes_fits(answers: dict[str, object]) -> str | None:
    """kubernetes=yes needs the docker packaging, a database its replicas can share, and a slug
    Kubernetes accepts as a name."""
    if answers.get("kubernetes") != "yes":
        return None
    packaging = answers.get("packaging")
    if packaging != "docker":
        return f"needs packaging docker (the manifests run the project's image), not {packaging!r}"
    if answers.get("database") == "sqlite":
        return (
            "cannot go with database 'sqlite' (one file on one host: the Deployment's replicas, each with a"
            " read-only root, cannot share it): answer database postgres, or kubernetes no"
        )
    slug = str(answers.get("project_slug"))
    if not KUBERNETES_NAME_RE.fullmatch(slug):
        return (
            f"needs a project_slug Kubernetes accepts as a name (lowercase letters, digits and '-',"
            f" at most 63 characters), not {slug[:80]!r}"
        )
    return None


def check_metrics_fits(answers: dict[str, object]) -> str | None:
    """metrics=yes serves the metrics on their own port, which the service's port must not take."""
    if answers.get("metrics") == "yes" and answers.get("port") == METRICS_PORT:
        return f"cannot go with port {METRICS_PORT!r}, the metrics' own port: answer another port, or metrics no"
    return None


CHECKS = {
    "project_name": check_project_name,
    "project_slug": check_project_slug,
    "package_name": check_package_name,
    "description": check_description,
    "author_name": check_author_name,
    "author_email": check_author_email,
    "version": check_version,
    "python_version": check_python_version,
    "port": check_port,
    "kubernetes": check_yes_no,
    "metrics": check_yes_no,
    "sentry": check_yes_no,
    "cruft_check": check_yes_no,
}
# Rules between answers: field -> check of all the answers (run when the field itself is valid).
CROSS_CHECKS = {
    "kubernetes": check_kubernetes_fits,
    "metrics": check_metrics_fits,
}


def find_errors(answers: dict[str, object]) -> list[str]:
    """One line per broken rule: field, value and rule."""
    errors = []
    for field, check in CHECKS.items():
        value = answers.get(field)
        if not isinstance(value, str):
            errors.append(f"{field}: must be text (got {value!r})")
            continue
        reason = check(value)
        if not reason and field in CROSS_CHECKS:
            reason = CROSS_CHECKS[field](answers)
        if reason:
            errors.append(f"{field}: {value[:80]!r} {reason}")
    return errors


def main() -> int:
    errors = find_errors(ANSWERS)
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
