"""Revision 0001: the schema of the release before migrations, exactly.

A database that release made has these tables and no ``alembic_version``: each table that already
exists is adopted after its columns are checked against the definition below (a mismatch stops with
a message, nothing is altered), each one missing is created, and the database is stamped 0001. A new
database simply gets every table. The definitions are frozen here on purpose: later schema changes are
new revisions, never edits to this file.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from workbench.errors import ConfigError

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _table(name: str, *elements: sa.Column[Any] | sa.Constraint) -> None:
    """Create ``name``, or adopt the existing one when its columns are exactly these."""
    inspector = sa.inspect(op.get_bind())
    if not inspector.has_table(name):
        op.create_table(name, *elements)
        return
    want = {e.name for e in elements if isinstance(e, sa.Column)}
    have = {c["name"] for c in inspector.get_columns(name)}
    if have != want:
        raise ConfigError(
            f"table {name!r} in the workbench database does not match the release it claims to be "
            f"(missing columns: {sorted(want - have)}, unknown columns: {sorted(have - want)}). "
            "Nothing was changed. Move the database aside (or point store_url elsewhere) and run `workbench init`."
        )


def _index(name: str, table: str, columns: list[str]) -> None:
    if name not in {ix["name"] for ix in sa.inspect(op.get_bind()).get_indexes(table)}:
        op.create_index(name, table, columns)


def upgrade() -> None:
    _table(
        "adjustments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ts", sa.String(length=40), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("local", sa.Float(), nullable=False),
        sa.Column("broker", sa.Float(), nullable=False),
        sa.Column("delta", sa.Float(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    _index("ix_adjustments_account", "adjustments", ["account"])
    _index("ix_adjustments_run_id", "adjustments", ["run_id"])
    _table(
        "broker_order_refs",
        sa.Column("venue", sa.String(length=40), nullable=False),
        sa.Column("account", sa.String(length=100), nullable=False),
        sa.Column("client_order_id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("ref", sa.String(length=64), nullable=True),
        sa.Column("tag", sa.String(length=64), nullable=True),
        sa.Column("leg", sa.String(length=16), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=True),
        sa.Column("oco_group", sa.String(length=128), nullable=True),
        sa.Column("symbol", sa.String(length=64), nullable=True),
        sa.Column("side", sa.String(length=4), nullable=True),
        sa.Column("type", sa.String(length=16), nullable=True),
        sa.Column("quantity", sa.Float(), nullable=True),
        sa.Column("limit_price", sa.Float(), nullable=True),
        sa.Column("stop_price", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("venue", "account", "client_order_id"),
    )
    _index("ix_broker_order_refs_tag", "broker_order_refs", ["tag"])
    _table(
        "cash_book",
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=16), nullable=False),
        sa.Column("total", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("account", "currency"),
    )
    _table(
        "commands",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ts", sa.String(length=40), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("command", sa.String(length=20), nullable=False),
        sa.Column("consumed_at", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    _table(
        "day_starts",
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("equity", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("account", "day"),
    )
    _table(
        "events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ts", sa.String(length=40), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("level", sa.String(length=8), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    _index("ix_events_run_id", "events", ["run_id"])
    _table(
        "paper_balances",
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("asset", sa.String(length=64), nullable=False),
        sa.Column("total", sa.Float(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.PrimaryKeyConstraint("account", "asset"),
    )
    _table(
        "paper_fills",
        sa.Column("fill_id", sa.String(length=64), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("client_order_id", sa.String(length=64), nullable=False),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.Column("price", sa.Float(), nullable=False),
        sa.Column("fee", sa.Float(), nullable=False),
        sa.Column("fee_currency", sa.String(length=16), nullable=True),
        sa.Column("ts", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("fill_id"),
    )
    _index("ix_paper_fills_account", "paper_fills", ["account"])
    _index("ix_paper_fills_client_order_id", "paper_fills", ["client_order_id"])
    _table(
        "paper_orders",
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("client_order_id", sa.String(length=64), nullable=False),
        sa.Column("broker_order_id", sa.String(length=64), nullable=False),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("type", sa.String(length=8), nullable=False),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.Column("limit_price", sa.Float(), nullable=True),
        sa.Column("stop_price", sa.Float(), nullable=True),
        sa.Column("oco_group", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("filled_quantity", sa.Float(), nullable=False),
        sa.Column("average_price", sa.Float(), nullable=True),
        sa.Column("fee", sa.Float(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.String(length=40), nullable=False),
        sa.Column("updated_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("account", "client_order_id"),
    )
    _index("ix_paper_orders_open", "paper_orders", ["account", "status", "symbol"])
    _table(
        "positions",
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.Column("average_price", sa.Float(), nullable=True),
        sa.Column("stop_loss", sa.Float(), nullable=True),
        sa.Column("take_profit", sa.Float(), nullable=True),
        sa.Column("realized_pnl", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("account", "symbol"),
    )
    _table(
        "runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("started_at", sa.String(length=40), nullable=False),
        sa.Column("ended_at", sa.String(length=40), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("broker", sa.String(length=64), nullable=False),
        sa.Column("environment", sa.String(length=16), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=True),
        sa.Column("model_ref", sa.String(length=200), nullable=True),
        sa.Column("interval_s", sa.Float(), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("heartbeat_at", sa.String(length=40), nullable=True),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("cursor", sa.Integer(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    _table(
        "vault_secrets",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("ciphertext", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.String(length=40), nullable=False),
        sa.Column("expires_at", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    _table(
        "checks",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("ts", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"]),
        sa.PrimaryKeyConstraint("run_id", "seq"),
    )
    _table(
        "cycles",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.String(length=40), nullable=False),
        sa.Column("finished_at", sa.String(length=40), nullable=True),
        sa.Column("bar_ts", sa.String(length=40), nullable=True),
        sa.Column("n_signals", sa.Integer(), nullable=True),
        sa.Column("n_orders", sa.Integer(), nullable=True),
        sa.Column("equity", sa.Float(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"]),
        sa.PrimaryKeyConstraint("run_id", "cycle"),
    )
    _table(
        "equity",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("cycle", sa.Integer(), nullable=True),
        sa.Column("account", sa.String(length=64), nullable=True),
        sa.Column("ts", sa.String(length=40), nullable=False),
        sa.Column("bar_ts", sa.String(length=40), nullable=True),
        sa.Column("cash", sa.Float(), nullable=True),
        sa.Column("positions_value", sa.Float(), nullable=True),
        sa.Column("equity", sa.Float(), nullable=True),
        sa.Column("day_start_equity", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    _index("ix_equity_run_id", "equity", ["run_id"])
    _table(
        "orders",
        sa.Column("client_order_id", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("cycle", sa.Integer(), nullable=True),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("type", sa.String(length=8), nullable=False),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.Column("limit_price", sa.Float(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("broker_order_id", sa.String(length=64), nullable=True),
        sa.Column("filled_quantity", sa.Float(), nullable=False),
        sa.Column("average_price", sa.Float(), nullable=True),
        sa.Column("fee", sa.Float(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("stop_loss", sa.Float(), nullable=True),
        sa.Column("take_profit", sa.Float(), nullable=True),
        sa.Column("stop_price", sa.Float(), nullable=True),
        sa.Column("oco_group", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.String(length=40), nullable=False),
        sa.Column("updated_at", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"]),
        sa.PrimaryKeyConstraint("client_order_id"),
    )
    _index("ix_orders_oco_group", "orders", ["oco_group"])
    _index("ix_orders_run_id", "orders", ["run_id"])
    _index("ix_orders_status", "orders", ["status"])
    _table(
        "signals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("cycle", sa.Integer(), nullable=True),
        sa.Column("bar_ts", sa.String(length=40), nullable=True),
        sa.Column("symbol", sa.String(length=64), nullable=True),
        sa.Column("signal", sa.String(length=8), nullable=True),
        sa.Column("strength", sa.Float(), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("target_price", sa.Float(), nullable=True),
        sa.Column("stop_loss", sa.Float(), nullable=True),
        sa.Column("take_profit", sa.Float(), nullable=True),
        sa.Column("price", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    _index("ix_signals_run_id", "signals", ["run_id"])
    _table(
        "fills",
        sa.Column("fill_id", sa.String(length=64), nullable=False),
        sa.Column("client_order_id", sa.String(length=64), nullable=True),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.Column("price", sa.Float(), nullable=False),
        sa.Column("fee", sa.Float(), nullable=False),
        sa.Column("fee_currency", sa.String(length=16), nullable=True),
        sa.Column("ts", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(["client_order_id"], ["orders.client_order_id"]),
        sa.PrimaryKeyConstraint("fill_id"),
    )
    _index("ix_fills_client_order_id", "fills", ["client_order_id"])
    _table(
        "order_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("client_order_id", sa.String(length=64), nullable=True),
        sa.Column("ts", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["client_order_id"], ["orders.client_order_id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    _index("ix_order_events_client_order_id", "order_events", ["client_order_id"])


def downgrade() -> None:
    """Drop every table (``alembic downgrade base``: all data goes, as the command says)."""
    for name in _DROP_ORDER:
        op.drop_table(name)


_DROP_ORDER = (  # dependants before what they reference
    "order_events",
    "fills",
    "signals",
    "orders",
    "equity",
    "cycles",
    "checks",
    "runs",
    "vault_secrets",
    "positions",
    "paper_orders",
    "paper_fills",
    "paper_balances",
    "events",
    "day_starts",
    "commands",
    "cash_book",
    "broker_order_refs",
    "adjustments",
)
