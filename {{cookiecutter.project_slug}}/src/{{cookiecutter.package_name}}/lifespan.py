"""Startup and shutdown of the app: create shared clients here, never at import time."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from {{ cookiecutter.package_name }} import __version__

logger = logging.getLogger("{{ cookiecutter.package_name }}")

# The collector looks for garbage once this many more container objects exist than when it last
# looked. Python's 700 (2,000 from 3.13) is less than a busy worker's requests in flight keep alive
# (about 35 objects each): under load it looked over 100 times a second, found next to nothing, and
# moved the live requests' objects into older generations, whose passes then came more often too.
# 2-3 % of a worker's CPU went to that (the template's bench/run.py measures it). Objects freed by
# reference counting, nearly all of them, never wait for the collector; only cyclic garbage does.
YOUNG_COLLECTION_THRESHOLD = 10_000


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    logger.info("lifespan startup: %s %s", app.title, __version__)
    # Open database pools and HTTP clients here, before readiness turns on.
    # What exists now (modules, the app, settings) lives as long as the process: keep it out of the
    # garbage collector's full passes, which under load otherwise scan it all about once a second,
    # a 25-30 ms pause each (measured by the template's bench/run.py: most of the p99).
    gc.collect()
    gc.freeze()
    thresholds = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *thresholds[1:])
    app.state.readiness = "ready"
    yield
    app.state.readiness = "stopping"
    gc.set_threshold(*thresholds)
    gc.unfreeze()
    logger.info("lifespan shutdown: in-flight requests are done, closing")
