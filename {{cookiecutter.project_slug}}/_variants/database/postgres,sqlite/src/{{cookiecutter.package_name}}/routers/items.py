"""The example resource on the database: copy it, then delete it (with models.Item and its migration)."""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query
from sqlmodel import select

from {{ cookiecutter.package_name }}.database import SessionDep
from {{ cookiecutter.package_name }}.models import Item, ItemCreate, ItemPublic

router = APIRouter(prefix="/items", tags=["items"])
MAX_ID = 2**31 - 1  # the id column's INTEGER


@router.post("/", response_model=ItemPublic, status_code=201)
def create_item(item: ItemCreate, session: SessionDep):
    db_item = Item.model_validate(item)
    session.add(db_item)
    session.commit()
    session.refresh(db_item)
    return db_item


@router.get("/", response_model=list[ItemPublic])
def read_items(
    session: SessionDep,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 100,
):
    return session.exec(select(Item).offset(offset).limit(limit)).all()


@router.get("/{item_id}", response_model=ItemPublic)
def read_item(item_id: Annotated[int, Path(ge=1, le=MAX_ID)], session: SessionDep):
    item = session.get(Item, item_id)
    if not item:
        raise HTTPException(status_code=404, detail="Item not found")
    return item
