"""One module per resource, each with its own `APIRouter`; main.py adds each with `app.include_router()`."""
