"""(a) and (b): bare FastAPI written the documented way, nothing else (no middleware, no settings):
its one route on an APIRouter added with `app.include_router()`, as in FastAPI's "Bigger
Applications" guide and the generated service. The route is the service's `/`: same declared return
type (so pydantic's core serialises it), same body. Only what the template adds is then measured.
"""

from fastapi import APIRouter, FastAPI
from pydantic import BaseModel


class Message(BaseModel):
    message: str


router = APIRouter()


@router.get("/")
async def read_root() -> Message:
    return Message(message="Hello, World!")


app = FastAPI()
app.include_router(router)
