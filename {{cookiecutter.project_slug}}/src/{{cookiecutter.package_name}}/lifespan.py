"""Startup and shutdown of the app: create shared clients here, never at import time."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

logger = logging.getLogger("{{ cookiecutter.package_name }}")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    logger.info("lifespan startup: %s %s", app.title, app.version)
    # Open database pools and HTTP clients here; /readyz answers 200 from the next line on.
    app.state.readiness = "ready"
    yield
    app.state.readiness = "stopping"
    logger.info("lifespan shutdown: in-flight requests are done")
