"""Tables (SQLModel) and the shapes the API reads and returns, split as FastAPI's tutorial splits them.
A new table needs a migration too (migrations/versions/)."""

from sqlmodel import Field, SQLModel


class ItemBase(SQLModel):
    name: str = Field(min_length=1, max_length=100, regex=r"^[^\x00]*$")  # PostgreSQL text holds no NUL


class Item(ItemBase, table=True):
    id: int | None = Field(default=None, primary_key=True)


class ItemCreate(ItemBase):
    pass


class ItemPublic(ItemBase):
    id: int
