"""The app: settings, middleware and routers wired together. Nothing else runs at import."""

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.telemetry import TelemetryConfig
from starlette.middleware.body_limit import RequestBodyLimitMiddleware

from {{ cookiecutter.package_name }} import __version__, middleware
{%- if cookiecutter.sentry == "yes" %}
from {{ cookiecutter.package_name }}.error_tracking import init_error_tracking
{%- endif %}
from {{ cookiecutter.package_name }}.lifespan import lifespan
from {{ cookiecutter.package_name }}.routers import health, {% if cookiecutter.database != "none" %}items, {% endif %}root
{%- if cookiecutter.metrics == "yes" %}
from {{ cookiecutter.package_name }}.serving.metrics import MetricsMiddleware
{%- endif %}
from {{ cookiecutter.package_name }}.settings import Settings, get_settings

# FastAPI's OpenTelemetry instrumentation, off unless settings.telemetry: docs/observability.md.
TELEMETRY_OFF: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
{%- if cookiecutter.sentry == "yes" %}
    init_error_tracking(settings)  # before the app is built, as Sentry's FastAPI guide does
{%- endif %}
    app = FastAPI(
        title=settings.app_name,
        description={{ cookiecutter.description | py_str }},
        version=__version__,
        lifespan=lifespan,
        debug=settings.debug,
        telemetry={"auto_configure": True} if settings.telemetry else TELEMETRY_OFF,
        openapi_url="/openapi.json" if settings.environment != "production" or settings.docs_in_production else None,
    )
    app.dependency_overrides[get_settings] = lambda: settings  # `Depends(get_settings)` gives these settings
    app.state.readiness = "starting"
{%- if cookiecutter.database != "none" %}
    app.state.settings = settings  # the lifespan opens the database with them
{%- endif %}

    app.include_router(root.router)
    app.include_router(health.router)
{%- if cookiecutter.database != "none" %}
    app.include_router(items.router)
{%- endif %}

    # The last added runs first. The body limit: a route's own `max_body_size` overrides it, larger or smaller.
    app.add_middleware(RequestBodyLimitMiddleware, max_body_size=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_credentials=settings.cors_allow_credentials,
            allow_methods=["*"],
            allow_headers=["*"],
        )
    if "*" not in settings.allowed_hosts:
        app.add_middleware(middleware.HostCheckMiddleware, allowed_hosts=settings.allowed_hosts)
    if settings.limit_concurrency:
        app.add_middleware(middleware.InFlightLimitMiddleware, limit=settings.limit_concurrency)
    app.add_middleware(middleware.RequestContextMiddleware, access_log=settings.access_log, tracing=settings.telemetry)
{%- if cookiecutter.metrics == "yes" %}
    if settings.metrics_port:  # outermost: every answer counts, those of the middleware above included
        app.add_middleware(MetricsMiddleware)
{%- endif %}
    return app


app = create_app()
