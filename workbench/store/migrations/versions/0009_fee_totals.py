"""Revision 0009: ``fee_totals`` (fees paid per account and fee currency, kept in step with ``fills`` by the
transaction that inserts each fill) and an index on ``fills(account, ts)``.

Why: the portfolio snapshot summed every fill the account ever booked, twice a cycle, with no index on
``fills.account``: an intraday run writes ~360,000 fills a day, so the cycle slowed down day by day. The
totals are filled here from the fills already recorded, so an upgrade in the middle of an account's history
reports the same fees as before.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 12:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "fee_totals",
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("fee_currency", sa.String(length=16), nullable=False),
        sa.Column("total", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("account", "fee_currency"),
    )
    op.execute(
        "INSERT INTO fee_totals (account, fee_currency, total) "
        "SELECT account, COALESCE(fee_currency, ''), SUM(fee) FROM fills "
        "GROUP BY account, COALESCE(fee_currency, '')"
    )
    op.create_index("ix_fills_account_ts", "fills", ["account", "ts"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_fills_account_ts", table_name="fills")
    op.drop_table("fee_totals")
