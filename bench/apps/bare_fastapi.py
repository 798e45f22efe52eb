"""Reference: baseline (a) with its route on `@app.get` instead of an included APIRouter. Since
FastAPI 0.137 an included router stays a nested node every request is matched through
(https://github.com/fastapi/fastapi/pull/15745); this row shows what that costs by itself.
"""

from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()


class Message(BaseModel):
    message: str


@app.get("/")
async def read_root() -> Message:
    return Message(message="Hello, World!")
