from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from fastapi import APIRouter, Depends, FastAPI, HTTPException, status
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import BaseModel

from {{ cookiecutter.package_name }}.main import app
from {{ cookiecutter.package_name }}.routers import health, root
from {{ cookiecutter.package_name }}.routing import (
    ReplayableRoute,
    include_flat,
    replayable_routes,
)


class Item(BaseModel):
    name: str


def caller_name() -> str:
    return "real"


def items_router(route_class: type[APIRoute] = ReplayableRoute) -> APIRouter:
    """A router using what a resource router uses: prefix, tags, a dependency, responses, a status
    code, a response model and a streamed (JSON lines) response."""
    router = APIRouter(
        prefix="/items",
        tags=["items"],
        responses={status.HTTP_404_NOT_FOUND: {"description": "No such item"}},
        route_class=route_class,
    )

    @router.get("/{name}")
    async def read_item(name: str, caller: str = Depends(caller_name)) -> Item:
        if name == "missing":
            raise HTTPException(status.HTTP_404_NOT_FOUND)
        return Item(name=f"{name} for {caller}")

    @router.post("/", status_code=status.HTTP_201_CREATED, summary="Create an item")
    async def create_item(item: Item) -> Item:
        return item

    @router.get("/")
    async def stream_items() -> AsyncIterator[Item]:
        for name in ("a", "b"):
            yield Item(name=name)

    return router


def app_with(include: Callable[[FastAPI, APIRouter], None], router: APIRouter) -> FastAPI:
    new_app = FastAPI()
    include(new_app, router)
    return new_app


def test_template_routes_are_on_the_app_itself() -> None:
    direct_paths = {route.path for route in app.router.routes if isinstance(route, APIRoute)}

    assert {"/", "/livez", "/readyz"} <= direct_paths


@pytest.mark.parametrize("router", [root.router, health.router], ids=["root", "health"])
def test_template_routers_can_be_included_flat(router: APIRouter) -> None:
    assert replayable_routes(router) is not None


def test_flat_routes_document_the_same_api_as_include_router() -> None:
    flat = app_with(include_flat, items_router())
    nested = app_with(FastAPI.include_router, items_router())

    assert flat.openapi() == nested.openapi()


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/items/pen", None),
        ("GET", "/items/missing", None),
        ("POST", "/items/", {"name": "cup"}),
        ("POST", "/items/", {"wrong": "field"}),
        ("GET", "/items/", None),
        ("PUT", "/items/pen", None),
    ],
    ids=["path-param-and-dependency", "http-exception", "status-code", "validation-error", "json-lines", "405"],
)
def test_flat_routes_answer_as_include_router_does(method: str, path: str, body: dict[str, str] | None) -> None:
    flat = TestClient(app_with(include_flat, items_router())).request(method, path, json=body)
    nested = TestClient(app_with(FastAPI.include_router, items_router())).request(method, path, json=body)

    assert (flat.status_code, flat.headers.get("content-type"), flat.text) == (
        nested.status_code,
        nested.headers.get("content-type"),
        nested.text,
    )


def test_dependency_overrides_reach_flat_routes() -> None:
    flat = app_with(include_flat, items_router())
    flat.dependency_overrides[caller_name] = lambda: "override"

    assert TestClient(flat).get("/items/pen").json() == {"name": "pen for override"}


def test_app_dependencies_apply_to_flat_routes() -> None:
    def refuse() -> None:
        raise HTTPException(status.HTTP_403_FORBIDDEN)

    guarded = FastAPI(dependencies=[Depends(refuse)])
    include_flat(guarded, items_router())

    assert TestClient(guarded).get("/items/pen").status_code == status.HTTP_403_FORBIDDEN


def test_router_of_plain_routes_is_included_the_usual_way() -> None:
    plain = app_with(include_flat, items_router(route_class=APIRoute))

    assert TestClient(plain).get("/items/pen").json() == {"name": "pen for real"}


def test_router_with_a_lifespan_is_included_the_usual_way() -> None:
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(_: APIRouter) -> AsyncIterator[None]:
        events.append("started")
        yield

    router = APIRouter(route_class=ReplayableRoute, lifespan=lifespan)
    with TestClient(app_with(include_flat, router)):
        pass

    assert events == ["started"]
