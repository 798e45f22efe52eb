"""The database row's baseline: bare FastAPI the way FastAPI's "SQL (Relational) Databases" tutorial
writes it, nothing else. A SQLModel table, one engine made by `create_engine(url)` with the tutorial's
defaults (SQLAlchemy's QueuePool: 5 connections, 10 more on demand), a session per request from a
`get_session` dependency, a sync path operation doing `session.get` or 404. The same psycopg 3 driver as
the service (a `postgresql+psycopg://` URL, from DATABASE_URL) and the same table: the service's
migration made it, so the tutorial's `create_all` finds it there.
"""

import os
from collections.abc import Iterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException
from sqlmodel import Field, Session, SQLModel, create_engine


class Item(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str


engine = create_engine(os.environ["DATABASE_URL"])


def get_session() -> Iterator[Session]:
    with Session(engine) as session:
        yield session


# db-bare-limited (database.py) only: the sessions limited to the pool, as the service limits its own.
LIMIT = int(os.environ["BENCH_MAX_CONCURRENCY"]) if "BENCH_MAX_CONCURRENCY" in os.environ else None
SessionDep = Annotated[Session, Depends(get_session, max_concurrency=LIMIT)]


@asynccontextmanager
async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
    SQLModel.metadata.create_all(engine)
    yield


app = FastAPI(lifespan=lifespan)


@app.get("/items/{item_id}")
def read_item(item_id: int, session: SessionDep) -> Item:
    item = session.get(Item, item_id)
    if not item:
        raise HTTPException(status_code=404, detail="Item not found")
    return item
