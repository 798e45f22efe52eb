from fastapi import APIRouter
from pydantic import BaseModel

router = APIRouter(tags=["root"])


class Message(BaseModel):
    message: str


# A declared return type lets FastAPI serialise with pydantic's compiled core (its fast path).
@router.get("/")
async def read_root() -> Message:
    return Message(message="Hello, World!")
