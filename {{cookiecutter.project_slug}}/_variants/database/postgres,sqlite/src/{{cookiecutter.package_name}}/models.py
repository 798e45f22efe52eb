"""Tables and the shapes the API reads and returns, as FastAPI's tutorial splits them (+ a migration)."""

from sqlmodel import Field, SQLModel


class ItemBase(SQLModel):
    # No NUL character: PostgreSQL text cannot hold one (SQLModel passes schema_extra on to pydantic).
    name: str = Field(min_length=1, max_length=100, schema_extra={"pattern": r"^[^\x00]*$"})


class Item(ItemBase, table=True):
    id: int | None = Field(default=None, primary_key=True)


class ItemCreate(ItemBase):
    pass


class ItemPublic(ItemBase):
    id: int
