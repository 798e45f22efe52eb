"""Wire the application together: settings, middleware, routers. Nothing else runs at import."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.telemetry import TelemetryConfig

from {{ cookiecutter.package_name }} import __version__
from {{ cookiecutter.package_name }}.lifespan import lifespan
from {{ cookiecutter.package_name }}.middleware import EdgeMiddleware
from {{ cookiecutter.package_name }}.routers import health, root
from {{ cookiecutter.package_name }}.routing import include_flat
from {{ cookiecutter.package_name }}.security import (
    DOCUMENT_HEADERS,
    PROBE_PATHS,
    SECURITY_HEADERS,
    HostCheckMiddleware,
    internal_error,
)
from {{ cookiecutter.package_name }}.settings import Settings, get_settings

DESCRIPTION = {{ cookiecutter.description | py_str }}
# FastAPI's instrumentation switched off, per-request check included (settings.telemetry).
TELEMETRY_OFF: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title=settings.app_name,
        description=DESCRIPTION,
        version=__version__,
        lifespan=lifespan,
        debug=settings.debug,
        telemetry=None if settings.telemetry else TELEMETRY_OFF,
    )
    app.state.settings = settings
    app.state.readiness = "starting"
    # app.include_router() without its per-request cost (routing.py says why).
    include_flat(app, root.router)
    include_flat(app, health.router)
    if not settings.debug:
        app.add_exception_handler(Exception, internal_error)
    # add_middleware wraps what is there: the last added runs first on a request.
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_credentials=settings.cors_allow_credentials,
            allow_methods=["*"],
            allow_headers=["*"],
        )
    if "*" not in settings.allowed_hosts:
        app.add_middleware(HostCheckMiddleware, allowed_hosts=settings.allowed_hosts, exempt_paths=PROBE_PATHS)
    app.add_middleware(
        EdgeMiddleware,
        max_body_bytes=settings.max_body_bytes,
        access_log=settings.access_log,
        response_headers=SECURITY_HEADERS,
        document_headers=DOCUMENT_HEADERS,
    )
    return app


app = create_app()
