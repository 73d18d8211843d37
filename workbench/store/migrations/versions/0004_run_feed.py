"""Revision 0004: which market data a run traded on (``runs.feed``: "LIVE" or "REPLAY").

Runs from before it keep NULL (they were replays of the lake: ``live status`` shows them as unknown).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 23:45:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("feed", sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("feed")
