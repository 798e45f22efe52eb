"""items: the example table (models.Item)."""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "item", sa.Column("id", sa.Integer(), primary_key=True), sa.Column("name", sa.String(100), nullable=False)
    )


def downgrade() -> None:
    op.drop_table("item")
