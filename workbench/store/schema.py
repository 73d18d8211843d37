"""Every table of the operational store in ONE ``MetaData``: the live process's books (runs, orders,
fills, positions, equity, events, commands), the paper venue's books, the order ledger, the users with
their sessions, permissions, audit trail and per-user vaults.

Why one module: a table change is one edit here plus one Alembic migration beside it
(``workbench/store/migrations/versions``, written by ``python -m workbench.store revision "what changed"``
and read before committing); ``tests/unit/store`` fails when the two disagree.
The modules that query these tables (``workbench.trading.store``, ``workbench.venues.paper.book``,
``workbench.venues.ledger``, ``workbench.security.vault``) import them from here and create none.

Times are stored as UTC ISO-8601 strings of one fixed format (``iso``), so they sort as text on
every backend and read back unambiguously.
"""

from __future__ import annotations

import math
from typing import Any, overload

import pandas as pd
from sqlalchemy import Boolean, Column, Float, ForeignKey, Index, Integer, MetaData, String, Table, Text

__all__ = [
    "adjustments",
    "audit",
    "broker_order_refs",
    "cash_book",
    "checks",
    "commands",
    "cycle_stages",
    "cycles",
    "day_starts",
    "equity",
    "events",
    "fee_totals",
    "fills",
    "iso",
    "metadata",
    "order_events",
    "orders",
    "paper_balances",
    "paper_fills",
    "paper_orders",
    "positions",
    "runs",
    "sessions",
    "signals",
    "user_keys",
    "user_permissions",
    "user_risk",
    "user_secrets",
    "users",
    "utcnow",
    "vault_secrets",
]  # fmt: skip

_ISO = "%Y-%m-%dT%H:%M:%S.%f+00:00"


def utcnow() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")


@overload
def iso(ts: pd.Timestamp) -> str: ...
@overload
def iso(ts: Any) -> str | None: ...
def iso(ts: Any) -> str | None:
    """One text form for every time: UTC, microseconds, explicit offset (sorts as text)."""
    if ts is None or (isinstance(ts, float) and math.isnan(ts)):
        return None
    t = pd.Timestamp(ts)
    if pd.isna(t):  # NaT
        return None
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return t.strftime(_ISO)


metadata = MetaData()

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("started_at", String(40), nullable=False),
    Column("ended_at", String(40)),
    Column("status", String(20), nullable=False),
    Column("broker", String(64), nullable=False),
    Column("environment", String(16), nullable=False),
    Column("account", String(64)),
    Column("model_ref", String(200)),
    Column("interval_s", Float),
    Column("pid", Integer),
    Column("heartbeat_at", String(40)),
    Column("cycle", Integer, nullable=False, default=0),
    Column("cursor", Integer),  # replay position: a restart continues from here
    Column("message", Text),
    Column("user_id", Integer, index=True),  # the owner (users.id): who started it, under whom it resumes
    Column("feed", String(8)),  # "LIVE" (venue market data) or "REPLAY" (the lake's old bars); NULL: before 0004
    Column("universe", String(200)),  # the universe as named ("demo", "exchange:NSE", "file:…"); NULL: the model's
    Column("universe_size", Integer),  # how many instruments it traded
    Column("universe_symbols", Text),  # the symbols, comma-separated: what the run was allowed to trade
)
checks = Table(
    "checks",
    metadata,
    Column("run_id", Integer, ForeignKey("runs.id"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("name", String(40), nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("message", Text),
    Column("ts", String(40), nullable=False),
    Column("duration_s", Float),
)
cycles = Table(
    "cycles",
    metadata,
    Column("run_id", Integer, ForeignKey("runs.id"), primary_key=True),
    Column("cycle", Integer, primary_key=True),
    Column("started_at", String(40), nullable=False),
    Column("finished_at", String(40)),
    Column("bar_ts", String(40)),
    Column("n_signals", Integer),
    Column("n_orders", Integer),
    Column("equity", Float),
    Column("message", Text),
)
cycle_stages = Table(  # how long each stage of a cycle took, and what the cycle saw of its venues
    "cycle_stages",
    metadata,
    Column("run_id", Integer, ForeignKey("runs.id"), primary_key=True),
    Column("cycle", Integer, primary_key=True),
    Column("started_at", String(40), nullable=False),
    Column("total_s", Float),
    Column("data_s", Float),
    Column("features_s", Float),
    Column("inference_s", Float),
    Column("signals_s", Float),
    Column("risk_s", Float),
    Column("orders_s", Float),
    Column("portfolio_s", Float),
    Column("skipped_ticks", Integer, nullable=False, default=0),  # schedule ticks lost to this cycle's overrun
    Column("venues", String(200)),  # circuit breaker states, "binance=open"
    Column("entries_paused", Boolean, nullable=False, default=False),
    Column("note", Text),
)
signals = Table(
    "signals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runs.id"), index=True),
    Column("cycle", Integer),
    Column("bar_ts", String(40)),
    Column("symbol", String(64)),
    Column("signal", String(8)),
    Column("strength", Float),
    Column("confidence", Float),
    Column("target_price", Float),
    Column("stop_loss", Float),
    Column("take_profit", Float),
    Column("price", Float),
)
orders = Table(
    "orders",
    metadata,
    Column("client_order_id", String(64), primary_key=True),
    Column("run_id", Integer, ForeignKey("runs.id"), index=True),
    Column("cycle", Integer),
    Column("account", String(64), nullable=False),
    Column("symbol", String(64), nullable=False),
    Column("side", String(4), nullable=False),
    Column("type", String(16), nullable=False),  # stop_loss, take_profit: 0008
    Column("quantity", Float, nullable=False),
    Column("limit_price", Float),
    Column("status", String(20), nullable=False, index=True),
    Column("broker_order_id", String(64)),
    Column("filled_quantity", Float, nullable=False, default=0.0),
    Column("average_price", Float),
    Column("fee", Float, nullable=False, default=0.0),
    Column("reason", Text),
    Column("stop_loss", Float),
    Column("take_profit", Float),
    Column("stop_price", Float),  # a stop_loss order's trigger
    Column("oco_group", String(64), index=True),  # exit pairs: a fill of one cancels the other
    Column("created_at", String(40), nullable=False),
    Column("updated_at", String(40), nullable=False),
    Column("user_id", Integer, index=True),  # the owner (users.id) of the order's account
)
order_events = Table(
    "order_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("client_order_id", String(64), ForeignKey("orders.client_order_id"), index=True),
    Column("ts", String(40), nullable=False),
    Column("status", String(20), nullable=False),
    Column("detail", Text),
)
fills = Table(
    "fills",
    metadata,
    Column("fill_id", String(64), primary_key=True),
    Column("client_order_id", String(64), ForeignKey("orders.client_order_id"), index=True),
    Column("account", String(64), nullable=False),
    Column("symbol", String(64), nullable=False),
    Column("side", String(4), nullable=False),
    Column("quantity", Float, nullable=False),
    Column("price", Float, nullable=False),
    Column("fee", Float, nullable=False),
    Column("fee_currency", String(16)),
    Column("ts", String(40), nullable=False),
    Column("user_id", Integer, index=True),  # the owner of the fill's order
    # The dashboard's tail (account, ts >= cursor) and the owned views (account, newest first): 0009.
    Index("ix_fills_account_ts", "account", "ts"),
)
# Fees paid per account and fee currency, kept in step with ``fills`` in the transaction that inserts a fill
# (0009): the portfolio snapshot reads a few rows twice a cycle instead of summing every fill ever booked.
# ``fee_currency`` is '' for fills that name none (a key column cannot be NULL).
fee_totals = Table(
    "fee_totals",
    metadata,
    Column("account", String(64), primary_key=True),
    Column("fee_currency", String(16), primary_key=True),
    Column("total", Float, nullable=False),
)
positions = Table(
    "positions",
    metadata,
    Column("account", String(64), primary_key=True),
    Column("symbol", String(64), primary_key=True),
    Column("quantity", Float, nullable=False),
    Column("average_price", Float),
    Column("stop_loss", Float),
    Column("take_profit", Float),
    Column("realized_pnl", Float, nullable=False, default=0.0),
    Column("updated_at", String(40), nullable=False),
    Column("user_id", Integer, index=True),  # the owner of the account
)
equity = Table(
    "equity",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runs.id"), index=True),
    Column("cycle", Integer),
    Column("account", String(64)),
    Column("ts", String(40), nullable=False),
    Column("bar_ts", String(40)),
    Column("cash", Float),
    Column("positions_value", Float),
    Column("equity", Float),
    Column("day_start_equity", Float),
)
day_starts = Table(  # day_start_equity per account and (feed-clock) day, so a restart keeps it
    "day_starts",
    metadata,
    Column("account", String(64), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("equity", Float, nullable=False),
)
events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", String(40), nullable=False),
    Column("run_id", Integer, index=True),
    Column("level", String(8), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("message", Text),
)
commands = Table(
    "commands",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", String(40), nullable=False),
    Column("run_id", Integer),
    Column("command", String(200), nullable=False),  # "close:<symbol>": a ccxt contract or option symbol is long
    Column("consumed_at", String(40)),
    Column("user_id", Integer, index=True),  # who sent it (a command for no run binds only that user's runs)
)
# The paper "exchange": its own books, so simulated state survives restarts like a venue's would.
paper_balances = Table(
    "paper_balances",
    metadata,
    Column("account", String(64), primary_key=True),
    Column("asset", String(64), primary_key=True),  # a currency (cash) or a traded symbol (holding)
    Column("total", Float, nullable=False),
    Column("kind", String(8), nullable=False, default="holding"),  # "cash" | "holding"
)
paper_orders = Table(
    "paper_orders",
    metadata,
    Column("account", String(64), primary_key=True),
    Column("client_order_id", String(64), primary_key=True),
    Column("broker_order_id", String(64), nullable=False),
    Column("symbol", String(64), nullable=False),
    Column("side", String(4), nullable=False),
    Column("type", String(16), nullable=False),  # stop_loss, take_profit: 0008
    Column("quantity", Float, nullable=False),
    Column("limit_price", Float),
    Column("stop_price", Float),
    Column("oco_group", String(64)),
    Column("status", String(20), nullable=False),
    Column("filled_quantity", Float, nullable=False, default=0.0),
    Column("average_price", Float),
    Column("fee", Float, nullable=False, default=0.0),
    Column("reason", Text),
    Column("created_at", String(40), nullable=False),
    Column("updated_at", String(40), nullable=False),
    Index("ix_paper_orders_open", "account", "status", "symbol"),
)
paper_fills = Table(
    "paper_fills",
    metadata,
    Column("fill_id", String(64), primary_key=True),
    Column("account", String(64), nullable=False, index=True),
    Column("client_order_id", String(64), nullable=False, index=True),
    Column("symbol", String(64), nullable=False),
    Column("side", String(4), nullable=False),
    Column("quantity", Float, nullable=False),
    Column("price", Float, nullable=False),
    Column("fee", Float, nullable=False),
    Column("fee_currency", String(16)),
    Column("ts", String(40), nullable=False),
)

# The local cash book: what the account should hold per currency by our own records (synced from the
# broker, moved by every booked fill), so a difference with the broker is seen, not papered over.
cash_book = Table(
    "cash_book",
    metadata,
    Column("account", String(64), primary_key=True),
    Column("currency", String(16), primary_key=True),
    Column("total", Float, nullable=False),
    Column("updated_at", String(40), nullable=False),
)
# Explicit adjusting records: every time sync brings the local book to the broker's numbers.
adjustments = Table(
    "adjustments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", String(40), nullable=False),
    Column("run_id", Integer, index=True),
    Column("account", String(64), nullable=False, index=True),
    Column("kind", String(16), nullable=False),  # "position" | "cash"
    Column("key", String(64), nullable=False),  # symbol or currency
    Column("local", Float, nullable=False),
    Column("broker", Float, nullable=False),
    Column("delta", Float, nullable=False),
    Column("reason", Text),
)


# The order ledger (workbench.venues.ledger): venue references for our client order ids.
broker_order_refs = Table(
    "broker_order_refs", metadata,
    Column("venue", String(40), primary_key=True),
    Column("account", String(100), primary_key=True),
    Column("client_order_id", String(128), primary_key=True),
    Column("kind", String(16), nullable=False),  # order | gtt | oco
    Column("ref", String(64)),  # venue order id / GTT trigger id / OCO parent order id
    Column("tag", String(64), index=True),
    Column("leg", String(16)),  # gtt: "0"/"1"; oco: "parent"/"stop"; order: None
    Column("state", String(16)),  # set when our side of the venue object was withdrawn (a GTT leg)
    Column("oco_group", String(128)),
    Column("symbol", String(64)),
    Column("side", String(4)),
    Column("type", String(16)),
    Column("quantity", Float),
    Column("limit_price", Float),
    Column("stop_price", Float),
)  # fmt: skip

# Accounts, sessions, wrapped data keys, per-user secrets and risk, and the audit trail
# (workbench.security.users / vault / access).
users = Table(
    "users", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("must_change_password", Boolean, nullable=False, default=False),
    Column("failed_logins", Integer, nullable=False, default=0),
    Column("locked_until", String(40)),
    Column("created_at", String(40), nullable=False),
    Column("updated_at", String(40), nullable=False),
)  # fmt: skip

user_permissions = Table(
    "user_permissions", metadata,
    Column("user_id", Integer, ForeignKey("users.id"), primary_key=True),
    Column("permission", String(32), primary_key=True),
    Column("granted_by", Integer),
    Column("granted_at", String(40), nullable=False),
)  # fmt: skip

sessions = Table(
    "sessions", metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False, index=True),
    Column("client", String(32), nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("last_seen_at", String(40), nullable=False),
    Column("expires_at", String(40), nullable=False),
    Column("revoked_at", String(40)),
)  # fmt: skip

user_keys = Table(
    "user_keys", metadata,
    Column("user_id", Integer, ForeignKey("users.id"), primary_key=True),
    Column("wrapped_key", Text, nullable=False),
    Column("master_fingerprint", String(16), nullable=False),
    Column("created_at", String(40), nullable=False),
)  # fmt: skip

audit = Table(
    "audit", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", String(40), nullable=False, index=True),
    Column("user_id", Integer),
    Column("username", String(64)),
    Column("action", String(40), nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("detail", Text),
)  # fmt: skip

user_secrets = Table(
    "user_secrets", metadata,
    Column("user_id", Integer, ForeignKey("users.id"), primary_key=True),
    Column("name", String(200), primary_key=True),
    Column("ciphertext", Text, nullable=False),
    Column("updated_at", String(40), nullable=False),
    Column("expires_at", String(40)),
    Column("verified_at", String(40)),
    Column("environment", String(16)),
)  # fmt: skip

# Per-user risk limits: only the fields a user changed; the rest come from the settings' defaults.
user_risk = Table(
    "user_risk", metadata,
    Column("user_id", Integer, ForeignKey("users.id"), primary_key=True),
    Column("limits", Text, nullable=False),  # JSON of RiskLimits fields
    Column("updated_at", String(40), nullable=False),
)  # fmt: skip

# The single-key vault of earlier releases: ciphertext only, read once by
# ``workbench.security.vault.adopt_legacy_secrets`` (at `workbench init`) into the first admin's vault.
vault_secrets = Table(
    "vault_secrets", metadata,
    Column("name", String(200), primary_key=True),
    Column("ciphertext", Text, nullable=False),
    Column("updated_at", String(40), nullable=False),
    Column("expires_at", String(40)),
)  # fmt: skip
