"""Reference: baseline (a) with its route on an APIRouter added by `app.include_router()`, as in
FastAPI's "bigger applications" layout (and the generated service). Since FastAPI 0.137 an included
router stays a nested node that every request is matched through
(https://github.com/fastapi/fastapi/pull/15745): this row shows what that costs by itself.
"""

from bare_fastapi import read_root
from fastapi import APIRouter, FastAPI

router = APIRouter()
router.get("/")(read_root)

app = FastAPI()
app.include_router(router)
