"""Baseline (a): a bare FastAPI hello-world, nothing else (no middleware, no logging, no settings).

Its one route does the same work as the generated service's `/`: a declared return type, so FastAPI
serialises with pydantic's core, and the same body. Only what the template adds is then measured.
"""

from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()


class Message(BaseModel):
    message: str


@app.get("/")
async def read_root() -> Message:
    return Message(message="Hello, World!")
