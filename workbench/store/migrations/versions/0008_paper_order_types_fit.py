"""Revision 0008: ``paper_orders.type`` and ``orders.type`` 8 → 16 characters, so ``stop_loss`` (9) and
``take_profit`` (11) fit where the length is enforced: on PostgreSQL neither the paper venue nor the order
manager could write an exit order at all (``value too long for type character varying(8)``); SQLite never
enforced it.

Revision ID: 0008
Revises: 0006
Create Date: 2026-11-30 09:15:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


TABLES = ("paper_orders", "orders")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                "type", existing_type=sa.String(length=8), type_=sa.String(length=16), existing_nullable=False
            )


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                "type", existing_type=sa.String(length=16), type_=sa.String(length=8), existing_nullable=False
            )
