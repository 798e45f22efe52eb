"""As FastAPI's SQL Databases tutorial: an engine per process (the lifespan's), a session per request."""

import logging
import time
from collections.abc import Iterator
from typing import Annotated

from anyio import sleep, to_thread
from fastapi import Depends, FastAPI, Request
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, create_engine

from {{ cookiecutter.package_name }}.settings import Settings

logger = logging.getLogger("{{ cookiecutter.package_name }}")
CONNECT_DELAYS = (1, 2, 4, 8, 15)  # seconds between start-up attempts (about 30 s), then the start fails
POOL_SIZE = 10  # connections per worker, and sessions open at once (SessionDep): docs/operations.md


def reachable(engine: Engine) -> str | None:  # None, or why not in one line (no credentials)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except DBAPIError as error:
        return str(error.orig).strip().splitlines()[0]
    return None


async def open_engine(settings: Settings) -> Engine:
    engine = create_engine(
        settings.database_url.get_secret_value(),
        pool_size=POOL_SIZE,
        max_overflow=0,
{%- if cookiecutter.database == "postgres" %}
        pool_pre_ping=True,
        connect_args={"connect_timeout": 2},
{%- else %}
        # Sessions run in FastAPI's thread pool (check_same_thread); a writer waits 5 s for the file's lock.
        connect_args={"check_same_thread": False, "timeout": 5},
{%- endif %}
    )
    for attempt, delay in enumerate((*CONNECT_DELAYS, 0), start=1):
        if (problem := await to_thread.run_sync(reachable, engine)) is None:
            return engine
        logger.warning("database unreachable (attempt %d of %d): %s", attempt, len(CONNECT_DELAYS) + 1, problem)
        await sleep(delay)
    raise RuntimeError(f"database unreachable after {attempt} attempts: {problem}")


async def database_ready(app: FastAPI) -> bool:
    """For /readyz: the database's last answer, asked again once a second at most (no query storm)."""
    if time.monotonic() - app.state.database_checked_at >= 1.0:
        app.state.database_checked_at = time.monotonic()  # probes arriving meanwhile reuse the last answer
        app.state.database_ok = await to_thread.run_sync(reachable, app.state.engine) is None
    return bool(app.state.database_ok)


def get_session(request: Request) -> Iterator[Session]:
    with Session(request.app.state.engine) as session:
        yield session


# At most POOL_SIZE sessions at once, the others waiting on the event loop: waiting in FastAPI's threads,
# they could take them all from the sessions holding the connections (a deadlock: docs/operations.md).
SessionDep = Annotated[Session, Depends(get_session, max_concurrency=POOL_SIZE)]
