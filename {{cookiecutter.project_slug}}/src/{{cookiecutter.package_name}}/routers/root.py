from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from {{ cookiecutter.package_name }}.routing import ReplayableRoute

router = APIRouter(tags=["root"], route_class=ReplayableRoute)


class Message(BaseModel):
    message: str


# A declared return type lets FastAPI serialise with pydantic's compiled core (its fast path).
@router.get("/")
async def read_root() -> Message:
    return Message(message="Hello, World!")
