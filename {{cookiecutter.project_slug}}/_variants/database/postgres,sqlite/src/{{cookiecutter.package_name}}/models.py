"""Tables and the shapes the API reads and returns, as FastAPI's tutorial splits them (+ a migration)."""

from sqlmodel import Field, SQLModel


class ItemBase(SQLModel):
    name: str = Field(min_length=1, max_length=100, schema_extra={"pattern": r"^[^\x00]*$"})  # no NUL: PostgreSQL


class Item(ItemBase, table=True):
    id: int | None = Field(default=None, primary_key=True)


class ItemCreate(ItemBase):
    pass


class ItemPublic(ItemBase):
    id: int
