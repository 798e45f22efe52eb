"""Day one with a generated project, done as a user does it: bake, edit files, run the project's own
make targets (issue 14).

- A CRUD resource added the way FastAPI's docs add one (an APIRouter in routers/items.py, a 404 from
  HTTPException, a 201 POST of a plain pydantic model, `app.include_router` in main.py) passes
  `make fmt lint test`, and `make run` serves it.
- A developer's .env never changes what `make test` sees.
- A setting added without its line in .env.example fails `make test` naming the variable.
- `make help` shows what a user types.

Each scenario runs once in a module fixture; the tests below it assert one fact each. Everything but
`make help` is the slow tier (each flow installs a project and runs its make targets).
"""

from __future__ import annotations

import http.client
import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import COMBINATIONS, SERVERS, bake_project, project_env, run
from tests.support.live_server import LOOPBACK, live_server, package_name

Installer = Callable[..., Path]

ITEMS_ROUTER = """\
from fastapi import APIRouter, HTTPException
from pydantic import BaseModel

router = APIRouter(prefix="/items", tags=["items"])


class Item(BaseModel):
    name: str
    price: float


items: dict[int, Item] = {}


@router.get("/")
async def list_items() -> list[Item]:
    return list(items.values())


@router.get("/{item_id}")
async def read_item(item_id: int) -> Item:
    if item_id not in items:
        raise HTTPException(status_code=404, detail="Item not found")
    return items[item_id]


@router.post("/", status_code=201)
async def create_item(item: Item) -> Item:
    items[len(items) + 1] = item
    return item
"""

ITEMS_TESTS = """\
from fastapi.testclient import TestClient


def test_created_item_is_read_back(client: TestClient) -> None:
    created = client.post("/items/", json={"name": "Hammer", "price": 9.5})

    assert created.status_code == 201
    assert client.get("/items/1").json() == {"name": "Hammer", "price": 9.5}


def test_unknown_item_is_404(client: TestClient) -> None:
    assert client.get("/items/999").status_code == 404
"""

# The operations the resource adds to the app's OpenAPI schema.
ITEMS_OPERATIONS = ("GET /items/", "GET /items/{item_id}", "POST /items/")


def edit(path: Path, replacements: dict[str, str]) -> None:
    """Replace each text once, as a user edits a file; fails naming the text when it is not there."""
    text = path.read_text()
    for old, new in replacements.items():
        assert text.count(old) == 1, f"{path.name} changed: expected {old.strip()!r} once"
        text = text.replace(old, new)
    path.write_text(text)


def add_items_resource(project: Path) -> None:
    """routers/items.py with its tests, and the two edits to main.py that FastAPI's docs show."""
    package = package_name(project)
    (project / "src" / package / "routers" / "items.py").write_text(ITEMS_ROUTER)
    (project / "tests" / "routers" / "test_items.py").write_text(ITEMS_TESTS)
    edit(
        project / "src" / package / "main.py",
        {
            f"from {package}.routers import health, root\n": f"from {package}.routers import health, items, root\n",
            "    app.include_router(health.router)\n": (
                "    app.include_router(health.router)\n    app.include_router(items.router)\n"
            ),
        },
    )


def failure(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"


# --- a CRUD resource, the FastAPI docs' way ------------------------------------------------------


@pytest.fixture(scope="module")
def items_project(installed_project: Installer) -> Path:
    return installed_project("uvicorn", "host", variant="items", customize=add_items_resource)


@pytest.fixture(scope="module")
def items_make(items_project: Path) -> dict[str, subprocess.CompletedProcess[str]]:
    """`make fmt`, `make lint`, `make test` in that order, as a user runs them before committing
    (pytest verbose, to count the runs of the fuzz test)."""
    env = project_env(PYTEST_ADDOPTS="-v")
    return {target: run(["make", target], items_project, env=env) for target in ("fmt", "lint", "test")}


@pytest.mark.install
@pytest.mark.slow
@pytest.mark.xdist_group("day-one-items")
@pytest.mark.parametrize("target", ["fmt", "lint", "test"])
def test_items_resource_passes_make(items_make: dict[str, subprocess.CompletedProcess[str]], target: str) -> None:
    result = items_make[target]

    assert result.returncode == 0, failure(result)


@pytest.fixture(scope="module")
def items_operations(items_project: Path) -> list[str]:
    """The operations of the app's OpenAPI schema, as "METHOD /path"."""
    probe = (
        f"from {package_name(items_project)}.main import app; "
        "print('\\n'.join(f'{m.upper()} {p}' for p, ops in app.openapi()['paths'].items() for m in ops))"
    )
    result = run([".venv/bin/python", "-c", probe], items_project)
    assert result.returncode == 0, failure(result)
    return result.stdout.split("\n")[:-1]


@pytest.mark.install
@pytest.mark.slow
@pytest.mark.xdist_group("day-one-items")
@pytest.mark.parametrize("operation", ITEMS_OPERATIONS)
def test_schema_has_the_new_operation(items_operations: list[str], operation: str) -> None:
    assert operation in items_operations


@pytest.mark.install
@pytest.mark.slow
@pytest.mark.xdist_group("day-one-items")
def test_fuzz_test_runs_once_per_operation(
    items_make: dict[str, subprocess.CompletedProcess[str]], items_operations: list[str]
) -> None:
    # schemathesis names no operation in pytest's verbose lines: count them.
    runs = items_make["test"].stdout.count("tests/test_openapi.py::test_api_conforms_to_its_schema PASSED")

    assert runs == len(items_operations)


@pytest.mark.install
@pytest.mark.slow
@pytest.mark.xdist_group("day-one-items")
def test_users_own_items_tests_ran(items_make: dict[str, subprocess.CompletedProcess[str]]) -> None:
    assert "tests/routers/test_items.py::test_unknown_item_is_404 PASSED" in items_make["test"].stdout


def call(port: int, method: str, path: str, body: object = None) -> tuple[int, object]:
    """One request to 127.0.0.1 with an optional JSON body: (status, decoded JSON body)."""
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
    try:
        payload = None if body is None else json.dumps(body)
        connection.request(method, path, body=payload, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


@pytest.fixture(scope="module")
def items_served(items_project: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, object]]:
    """`make run`, then the resource used over HTTP: create one item, read it, list, miss one."""
    log = tmp_path_factory.mktemp("day-one-run") / "server.log"
    with live_server(items_project, project_env(), log) as server:
        server.wait_ready()
        return {
            "create": call(server.port, "POST", "/items/", {"name": "Hammer", "price": 9.5}),
            "read": call(server.port, "GET", "/items/1"),
            "list": call(server.port, "GET", "/items/"),
            "missing": call(server.port, "GET", "/items/999"),
        }


@pytest.mark.install
@pytest.mark.slow
@pytest.mark.live
@pytest.mark.xdist_group("day-one-items")
@pytest.mark.parametrize(
    ("request_name", "answer"),
    [
        ("create", (201, {"name": "Hammer", "price": 9.5})),
        ("read", (200, {"name": "Hammer", "price": 9.5})),
        ("list", (200, [{"name": "Hammer", "price": 9.5}])),
        ("missing", (404, {"detail": "Item not found"})),
    ],
)
def test_make_run_serves_the_new_routes(
    items_served: dict[str, tuple[int, object]], request_name: str, answer: tuple[int, object]
) -> None:
    assert items_served[request_name] == answer


# --- a developer's .env --------------------------------------------------------------------------

# What a developer's .env may hold for a run of their own (without the package prefix).
DOTENV_LINES = {"production": "ENVIRONMENT=production", "allowed-hosts": "ALLOWED_HOSTS=api.example.com"}


@pytest.fixture(scope="module", params=SERVERS)
def dotenv_project(request: pytest.FixtureRequest, installed_project: Installer) -> Path:
    return installed_project(request.param, "host", variant="dotenv")


def write_dotenv(project: Path, line: str) -> Path:
    dotenv = project / ".env"
    dotenv.write_text(f"{package_name(project).upper()}_{line}\n")
    return dotenv


@pytest.mark.install
@pytest.mark.slow
@pytest.mark.xdist_group("day-one-dotenv")
@pytest.mark.parametrize("line", DOTENV_LINES.values(), ids=list(DOTENV_LINES))
def test_make_test_ignores_the_developers_dotenv(dotenv_project: Path, line: str) -> None:
    dotenv = write_dotenv(dotenv_project, line)
    try:
        result = run(["make", "test"], dotenv_project)
    finally:
        dotenv.unlink()

    assert result.returncode == 0, failure(result)


@pytest.mark.install
@pytest.mark.slow
@pytest.mark.xdist_group("day-one-dotenv")
def test_the_app_itself_reads_the_dotenv(dotenv_project: Path) -> None:
    """The other side: outside the tests the same .env applies (so the test above can fail)."""
    package = package_name(dotenv_project)
    dotenv = write_dotenv(dotenv_project, DOTENV_LINES["allowed-hosts"])
    try:
        result = run(
            [".venv/bin/python", "-c", f"from {package}.settings import Settings; print(Settings().allowed_hosts)"],
            dotenv_project,
        )
    finally:
        dotenv.unlink()

    assert result.stdout.strip() == "('api.example.com',)", failure(result)


# --- a new setting without its .env.example line -------------------------------------------------


def add_feature_flag_setting(project: Path) -> None:
    """A new field on Settings, right after its model_config, and nothing in .env.example."""
    settings = project / "src" / package_name(project) / "settings.py"
    text = settings.read_text()
    config = re.search(r"\n    model_config = SettingsConfigDict\(\n.*?\n    \)\n", text, re.DOTALL)
    assert config, "settings.py changed: no `model_config = SettingsConfigDict(...)` block in Settings"
    settings.write_text(text[: config.end()] + "    feature_flag: bool = False\n" + text[config.end() :])


@pytest.fixture(scope="module")
def new_setting_test_run(installed_project: Installer) -> tuple[str, subprocess.CompletedProcess[str]]:
    project = installed_project("uvicorn", "host", variant="new-setting", customize=add_feature_flag_setting)
    return f"{package_name(project).upper()}_FEATURE_FLAG", run(["make", "test"], project)


@pytest.mark.install
@pytest.mark.slow
def test_setting_missing_from_env_example_fails_make_test(
    new_setting_test_run: tuple[str, subprocess.CompletedProcess[str]],
) -> None:
    _, result = new_setting_test_run

    assert result.returncode != 0, failure(result)


@pytest.mark.install
@pytest.mark.slow
def test_env_example_failure_names_the_variable(
    new_setting_test_run: tuple[str, subprocess.CompletedProcess[str]],
) -> None:
    variable, result = new_setting_test_run

    assert f".env.example lacks {variable}: add each with its default" in result.stdout, failure(result)


# --- make help -----------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=COMBINATIONS, ids=lambda combination: "-".join(combination))
def help_text(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """(package name, `make help` output) of a fresh bake of each server in each packaging."""
    server, packaging = request.param
    project = bake_project(tmp_path_factory.mktemp(f"help-{server}-{packaging}"), server=server, packaging=packaging)
    result = run(["make", "help"], project)
    assert result.returncode == 0, failure(result)
    return package_name(project), result.stdout


def test_make_help_shows_no_make_escapes(help_text: tuple[str, str]) -> None:
    assert "$$" not in help_text[1]


def test_make_help_says_what_make_run_starts(help_text: tuple[str, str]) -> None:
    package, text = help_text
    (run_line,) = [line for line in text.splitlines() if line.strip().startswith("make run ")]

    assert f"python -m {package} starts " in run_line
