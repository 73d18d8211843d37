"""Revision 0003: orders, fills, positions and commands carry their owner (``user_id``), so every query
can be scoped by user without going through a run.

Backfill from ``runs.user_id``: an order takes its run's owner; a fill its order's; a position the
owner of the latest run on its account (accounts are per user from this release on: ``paper:<user>``,
``<broker>@<environment>:<user>``); a command its run's owner. Rows of runs started before users
existed keep NULL (visible to admins only).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 23:31:00.255185

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("commands", "fills", "orders", "positions")

_BACKFILL = (
    "UPDATE orders SET user_id = (SELECT runs.user_id FROM runs WHERE runs.id = orders.run_id) WHERE user_id IS NULL",
    "UPDATE fills SET user_id = (SELECT orders.user_id FROM orders "
    "WHERE orders.client_order_id = fills.client_order_id) WHERE user_id IS NULL",
    "UPDATE positions SET user_id = (SELECT runs.user_id FROM runs WHERE runs.account = positions.account "
    "AND runs.user_id IS NOT NULL ORDER BY runs.id DESC LIMIT 1) WHERE user_id IS NULL",
    "UPDATE commands SET user_id = (SELECT runs.user_id FROM runs WHERE runs.id = commands.run_id) "
    "WHERE user_id IS NULL",
)


def upgrade() -> None:
    """Add the owner columns, then fill them from the runs that own the rows."""
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("user_id", sa.Integer(), nullable=True))
            batch_op.create_index(batch_op.f(f"ix_{table}_user_id"), ["user_id"], unique=False)
    for statement in _BACKFILL:
        op.execute(statement)


def downgrade() -> None:
    """Drop the owner columns (the runs still say who owned what)."""
    for table in reversed(_TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f"ix_{table}_user_id"))
            batch_op.drop_column("user_id")
