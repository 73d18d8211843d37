"""Revision 0006: the universe a run trades (``runs.universe``, ``universe_size``, ``universe_symbols``)
and commands long enough for ``close:<symbol>`` of any symbol (``commands.command`` 20 → 200 characters).

Runs from before it keep NULL: they traded their model's universe.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 03:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("universe", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("universe_size", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("universe_symbols", sa.Text(), nullable=True))
    with op.batch_alter_table("commands", schema=None) as batch_op:
        batch_op.alter_column(
            "command", existing_type=sa.String(length=20), type_=sa.String(length=200), existing_nullable=False
        )


def downgrade() -> None:
    with op.batch_alter_table("commands", schema=None) as batch_op:
        batch_op.alter_column(
            "command", existing_type=sa.String(length=200), type_=sa.String(length=20), existing_nullable=False
        )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("universe_symbols")
        batch_op.drop_column("universe_size")
        batch_op.drop_column("universe")
