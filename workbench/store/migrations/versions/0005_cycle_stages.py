"""Revision 0005: per-cycle stage timings (data, features, inference, signals, risk, orders, portfolio),
the schedule ticks an overrunning cycle skipped, and the venues' circuit breaker states.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 23:45:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "cycle_stages",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.String(length=40), nullable=False),
        sa.Column("total_s", sa.Float(), nullable=True),
        sa.Column("data_s", sa.Float(), nullable=True),
        sa.Column("features_s", sa.Float(), nullable=True),
        sa.Column("inference_s", sa.Float(), nullable=True),
        sa.Column("signals_s", sa.Float(), nullable=True),
        sa.Column("risk_s", sa.Float(), nullable=True),
        sa.Column("orders_s", sa.Float(), nullable=True),
        sa.Column("portfolio_s", sa.Float(), nullable=True),
        sa.Column("skipped_ticks", sa.Integer(), nullable=False),
        sa.Column("venues", sa.String(length=200), nullable=True),
        sa.Column("entries_paused", sa.Boolean(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"]),
        sa.PrimaryKeyConstraint("run_id", "cycle"),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("cycle_stages")
