"""The database, as FastAPI's SQL Databases tutorial uses it: one engine per process, opened in the
lifespan (app.state.engine), and a session per request (`SessionDep`)."""

import logging
import time
from collections.abc import Iterator
from typing import Annotated

import anyio
from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, create_engine

from {{ cookiecutter.package_name }}.settings import Settings

logger = logging.getLogger("{{ cookiecutter.package_name }}")
CONNECT_DELAYS = (1, 2, 4, 8, 15)  # seconds between start-up attempts: about half a minute, then exit 3
READY_CACHE_SECONDS = 1.0  # /readyz asks the database at most once a second per worker


def make_engine(settings: Settings) -> Engine:
    url = settings.database_url.get_secret_value()
{%- if cookiecutter.database == "postgres" %}
    # Each worker (WEB_CONCURRENCY) holds up to DATABASE_POOL_SIZE connections: docs/operations.md.
    return create_engine(
        url,
        pool_size=settings.database_pool_size,
        max_overflow=0,
        pool_pre_ping=True,
        connect_args={"connect_timeout": 2},
    )
{%- else %}
    # The tutorial's check_same_thread=False: sessions run in FastAPI's thread pool; wait 5 s for a writer's lock.
    return create_engine(url, connect_args={"check_same_thread": False, "timeout": 5})
{%- endif %}


def reachable(engine: Engine) -> str | None:
    """None when the database answers, else why not (one line, no credentials)."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except DBAPIError as error:
        return str(error.orig).strip().splitlines()[0] if error.orig else type(error).__name__
    return None


async def open_engine(settings: Settings) -> Engine:
    """The engine, once the database answers: bounded retries, one line per failed attempt."""
    engine = make_engine(settings)
    for attempt, delay in enumerate((*CONNECT_DELAYS, None), start=1):
        problem = await run_in_threadpool(reachable, engine)
        if problem is None:
            return engine
        if delay is None:
            break
        logger.warning("database unreachable (attempt %d): %s; retrying in %d s", attempt, problem, delay)
        await anyio.sleep(delay)
    engine.dispose()
    raise RuntimeError(f"database unreachable after {len(CONNECT_DELAYS) + 1} attempts: {problem}")


async def database_ready(app: FastAPI) -> bool:
    """For /readyz: the last answer, asked again when older than READY_CACHE_SECONDS (no query storm)."""
    now = time.monotonic()
    if now - app.state.database_checked_at >= READY_CACHE_SECONDS:
        app.state.database_checked_at = now  # probes arriving meanwhile reuse the last answer
        app.state.database_ok = await run_in_threadpool(reachable, app.state.engine) is None
    return bool(app.state.database_ok)


def get_session(request: Request) -> Iterator[Session]:
    with Session(request.app.state.engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
