"""Wire the application together: settings, middleware, routers. Nothing else runs at import."""

from __future__ import annotations

from fastapi import FastAPI

from {{ cookiecutter.package_name }} import __version__
from {{ cookiecutter.package_name }}.lifespan import lifespan
from {{ cookiecutter.package_name }}.middleware import RequestContextMiddleware
from {{ cookiecutter.package_name }}.routers import health, root
from {{ cookiecutter.package_name }}.settings import Settings, get_settings

DESCRIPTION = {{ cookiecutter.description | py_str }}


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title=settings.app_name,
        description=DESCRIPTION,
        version=__version__,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.readiness = "starting"
    app.include_router(root.router)
    app.include_router(health.router)
    app.add_middleware(RequestContextMiddleware, access_log=settings.access_log)
    return app


app = create_app()
