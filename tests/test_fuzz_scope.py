"""The generated fuzz test (tests/test_openapi.py) with a textbook resource added (issue 26, item 7).

A team adds, as a user does (editing files): a products router whose price route calls an upstream
pricing service through an HTTP client and answers its declared 502 while that service is down; an
in-memory store set up and emptied by the lifespan, as FastAPI's "Lifespan Events" page keeps its
models; and its own tests, one of which (tests/test_products.py, run after tests/test_openapi.py in
pytest's order) expects a fresh app to hold no product. The project's own `make test` passes: a 5xx
the route declares conforms, and every generated case runs in an app of its own, started and stopped
by its lifespan, so what the fuzzer stored is gone before the next test.

The same resource with the 502 left undeclared fails the fuzz test: it still catches a 5xx no route
documents.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import project_env, run
from tests.support.day_one import add_dependency, replace_once
from tests.support.live_server import package_name

pytestmark = [pytest.mark.install, pytest.mark.slow]

Installer = Callable[..., Path]

# An HTTP client the service now needs at run time (the project's tests already use it).
CLIENT_DEPENDENCY = "httpx2>=2.16,<3"
# Nothing listens on the discard port of loopback: the upstream is down, at once, without a network.
PRICING_URL = "http://127.0.0.1:9"
DECLARED_502 = '    responses={502: {"model": Problem, "description": "The pricing service is unavailable"}},\n'

PRODUCTS_ROUTER = '''\
"""Products, kept in memory, priced by an upstream pricing service."""

from typing import Annotated

import httpx2
from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel

from {package}.settings import Settings, get_settings

router = APIRouter(prefix="/products", tags=["products"])


class Product(BaseModel):
    name: str


class Price(BaseModel):
    amount: float


class Problem(BaseModel):
    detail: str


# Filled by requests, emptied by the lifespan at shutdown (FastAPI's "Lifespan Events").
products: dict[int, Product] = {{}}


@router.get("/")
async def list_products() -> list[Product]:
    return list(products.values())


@router.post("/", status_code=201)
async def create_product(product: Product) -> Product:
    products[len(products) + 1] = product
    return product


@router.get(
    "/{{product_id}}/price",
{declared}
)
async def read_price(product_id: int, settings: Annotated[Settings, Depends(get_settings)]) -> Price:
    try:
        async with httpx2.AsyncClient(base_url=settings.pricing_url, timeout=2) as client:
            response = await client.get(f"/prices/{{product_id}}")
            response.raise_for_status()
    except httpx2.HTTPError:
        raise HTTPException(status_code=502, detail="The pricing service is unavailable") from None
    return Price.model_validate(response.json())
'''

# Named to run after tests/test_openapi.py: the fuzzer's products must not reach it.
PRODUCTS_TESTS = """\
from fastapi.testclient import TestClient


def test_a_new_app_has_no_product(client: TestClient) -> None:
    assert client.get("/products/").json() == []


def test_a_created_product_is_listed(client: TestClient) -> None:
    client.post("/products/", json={"name": "Hammer"})

    assert client.get("/products/").json() == [{"name": "Hammer"}]


def test_price_is_502_while_the_pricing_service_is_down(client: TestClient) -> None:
    assert client.get("/products/1/price").status_code == 502
"""

# The operations of the app's OpenAPI schema with the products router: the fuzz test runs once for each.
OPERATIONS = (
    "GET /livez",
    "GET /readyz",
    "GET /",
    "GET /products/",
    "POST /products/",
    "GET /products/{product_id}/price",
)


def add_products_resource(project: Path, *, declared: bool = True) -> None:
    package = package_name(project)
    add_dependency(project, CLIENT_DEPENDENCY)
    # A setting at the end of the Settings class, with its line in .env.example (tests/test_settings.py).
    replace_once(
        project / "src" / package / "settings.py",
        r"^(class Settings\(BaseSettings\):\n(?:(?:    .*)?\n)*?)(?=\n*\S)",
        rf'\1\n    # The upstream pricing service.\n    pricing_url: str = "{PRICING_URL}"\n',
    )
    with (project / ".env.example").open("a", encoding="utf-8") as file:
        file.write(f"\n# The upstream pricing service.\n{package.upper()}_PRICING_URL={PRICING_URL}\n")
    router = PRODUCTS_ROUTER.format(package=package, declared=DECLARED_502.rstrip("\n") if declared else "")
    (project / "src" / package / "routers" / "products.py").write_text(router, encoding="utf-8")
    (project / "tests" / "test_products.py").write_text(PRODUCTS_TESTS, encoding="utf-8")
    main = project / "src" / package / "main.py"
    replace_once(
        main, rf"^from {package}\.routers import health, root$", f"from {package}.routers import health, products, root"
    )
    replace_once(main, r"^( +)app\.include_router\(health\.router\)\n", r"\g<0>\1app.include_router(products.router)\n")
    lifespan = project / "src" / package / "lifespan.py"
    replace_once(
        lifespan, r"^from fastapi import FastAPI\n", rf"\g<0>\nfrom {package}.routers.products import products\n"
    )
    replace_once(lifespan, r"^( +)yield\n", r"\g<0>\1products.clear()\n")


def make_test(project: Path) -> subprocess.CompletedProcess[str]:
    return run(["make", "test"], project, env=project_env(PYTEST_ADDOPTS="-v -p no:cacheprovider"))


def failure(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}:\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}"


@pytest.fixture(scope="module")
def products_test(installed_project: Installer) -> subprocess.CompletedProcess[str]:
    return make_test(installed_project(variant="products", customize=add_products_resource))


@pytest.fixture(scope="module")
def undeclared_test(installed_project: Installer) -> subprocess.CompletedProcess[str]:
    project = installed_project(
        variant="products-undeclared-502", customize=lambda project: add_products_resource(project, declared=False)
    )
    return make_test(project)


@pytest.mark.xdist_group("fuzz-scope")
def test_make_test_passes_with_an_upstream_call_and_an_in_memory_store(
    products_test: subprocess.CompletedProcess[str],
) -> None:
    assert products_test.returncode == 0, failure(products_test)


@pytest.mark.xdist_group("fuzz-scope")
def test_fuzz_test_ran_once_per_operation(products_test: subprocess.CompletedProcess[str]) -> None:
    # schemathesis names no operation in pytest's verbose lines: count them.
    runs = products_test.stdout.count("tests/test_openapi.py::test_api_conforms_to_its_schema PASSED")

    assert runs == len(OPERATIONS), failure(products_test)


@pytest.mark.xdist_group("fuzz-scope")
@pytest.mark.parametrize(
    "test_name",
    [
        "test_a_new_app_has_no_product",
        "test_a_created_product_is_listed",
        "test_price_is_502_while_the_pricing_service_is_down",
    ],
)
def test_the_teams_tests_after_the_fuzz_test_pass(
    products_test: subprocess.CompletedProcess[str], test_name: str
) -> None:
    order = products_test.stdout.find("tests/test_openapi.py::"), products_test.stdout.find(f"::{test_name} PASSED")

    assert -1 < order[0] < order[1], failure(products_test)


@pytest.mark.xdist_group("fuzz-scope")
def test_an_undeclared_5xx_still_fails_the_fuzz_test(undeclared_test: subprocess.CompletedProcess[str]) -> None:
    failed = [line for line in undeclared_test.stdout.splitlines() if line.startswith("FAILED ")]

    assert undeclared_test.returncode != 0
    assert [line.split(" ")[1].split("[")[0] for line in failed] == [
        "tests/test_openapi.py::test_api_conforms_to_its_schema"
    ], failure(undeclared_test)
