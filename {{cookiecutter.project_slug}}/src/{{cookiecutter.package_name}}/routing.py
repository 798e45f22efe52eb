"""Include a resource's router flat: its routes join the app's own router, as if declared with
`@app.get`.

Since FastAPI 0.137, `app.include_router()` keeps the included router nested
([fastapi/fastapi#15745](https://github.com/fastapi/fastapi/pull/15745)), and every request walks
it: a version check of the router tree and the route match, each twice. That is about an eighth
of a bare FastAPI request's work (the template's bench/run.py measures it). `include_flat()` does
what `include_router()` did before: each route is declared again on the app's router, with the
exact arguments its own router built it with. The app's router then merges its own settings
(dependencies, tags, responses, response class...) as `include_router()` would, and the app
becomes the routes' dependency-overrides provider, so `app.dependency_overrides` works as usual.

Routers made with `APIRouter(route_class=ReplayableRoute)` can be included flat. Any other router
(another route class, websocket or mounted routes, router-wide form limits, a router lifespan or
startup handler) is included with `app.include_router()`: correct, just slower.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

# Not an argument of APIRouter.add_api_route: the app's router supplies its own (the app).
OVERRIDES_PROVIDER = "dependency_overrides_provider"


class ReplayableRoute(APIRoute):
    """An APIRoute that keeps the arguments its router built it with, to be built again."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **options: Any) -> None:
        super().__init__(path, endpoint, **options)
        self.build_arguments = (path, endpoint, options)


def include_flat(app: FastAPI, router: APIRouter) -> None:
    """`app.include_router(router)`, without the per-request cost of a nested router."""
    routes = replayable_routes(router)
    if routes is None:
        app.include_router(router)
        return
    for route in routes:
        path, endpoint, options = route.build_arguments
        arguments = {name: value for name, value in options.items() if name != OVERRIDES_PROVIDER}
        app.router.add_api_route(path, endpoint, route_class_override=type(route), **arguments)


def replayable_routes(router: APIRouter) -> list[ReplayableRoute] | None:
    """The router's routes, when each can be built again and the router has nothing else to merge."""
    routes = [route for route in router.routes if isinstance(route, ReplayableRoute)]
    plain_lifespan = type(APIRouter().lifespan_context)
    if (
        len(routes) == len(router.routes)
        and not router.form_limits  # applied per request by the router itself
        and not router.on_startup
        and not router.on_shutdown
        and type(router.lifespan_context) is plain_lifespan
    ):
        return routes
    return None
