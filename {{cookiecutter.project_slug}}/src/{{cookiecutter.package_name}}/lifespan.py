"""Startup and shutdown of the app: create shared clients here, never at import time."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from {{ cookiecutter.package_name }} import __version__

logger = logging.getLogger("{{ cookiecutter.package_name }}")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    logger.info("lifespan startup: %s %s", app.title, __version__)
    # Open database pools and HTTP clients here, before readiness turns on.
    # What exists now (modules, the app, settings) lives as long as the process: keep it out of the
    # garbage collector's full passes, which under load otherwise scan it all about once a second,
    # a 25-30 ms pause each (measured by the template's bench/run.py: most of the p99).
    gc.collect()
    gc.freeze()
    app.state.readiness = "ready"
    yield
    app.state.readiness = "stopping"
    gc.unfreeze()
    logger.info("lifespan shutdown: in-flight requests are done, closing")
