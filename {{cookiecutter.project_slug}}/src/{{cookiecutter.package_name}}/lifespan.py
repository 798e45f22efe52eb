"""Startup and shutdown of the app: create shared clients here, never at import time."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
{%- if cookiecutter.database != "none" %}

from {{ cookiecutter.package_name }}.database import open_engine
{%- endif %}

logger = logging.getLogger("{{ cookiecutter.package_name }}")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    logger.info("lifespan startup: %s %s", app.title, app.version)
{%- if cookiecutter.database != "none" %}
    app.state.engine = await open_engine(app.state.settings)
    app.state.database_checked_at, app.state.database_ok = float("-inf"), True
{%- endif %}
    # Open database pools and HTTP clients here; /readyz answers 200 from the next line on.
    app.state.readiness = "ready"
    yield
    app.state.readiness = "stopping"
{%- if cookiecutter.database != "none" %}
    app.state.engine.dispose()
{%- endif %}
    logger.info("lifespan shutdown: in-flight requests are done")
