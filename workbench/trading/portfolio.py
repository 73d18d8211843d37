"""The portfolio at one instant: cash, positions marked to market, equity and today's P&L.

Quantities and cash come from the broker (the venue is the source of truth); average prices, stops
and realised P&L come from the store's position book (the broker does not know our cost basis).
The day boundary follows the feed's clock — bar time in a replay — so "today" means the same thing
in a replay as live, and the day's starting equity is persisted so a restart keeps it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from workbench.brokers.base import Broker, Quote
from workbench.trading.store import Store

__all__ = ["Position", "PortfolioSnapshot", "compute_snapshot", "day_key", "snapshot"]


@dataclass(frozen=True)
class Position:
    quantity: float
    average_price: float
    market_price: float
    unrealized_pnl: float
    realized_pnl: float = 0.0
    stop_loss: float | None = None
    take_profit: float | None = None

    @property
    def market_value(self) -> float:
        return self.quantity * self.market_price


@dataclass(frozen=True)
class PortfolioSnapshot:
    ts: pd.Timestamp
    cash: float
    positions: dict[str, Position] = field(default_factory=dict)
    equity: float = 0.0
    day_start_equity: float = 0.0
    daily_pnl: float = 0.0
    daily_pnl_pct: float = 0.0

    @property
    def positions_value(self) -> float:
        return sum(p.market_value for p in self.positions.values())

    def quantity(self, symbol: str) -> float:
        p = self.positions.get(symbol)
        return p.quantity if p is not None else 0.0


def day_key(ts: pd.Timestamp) -> str:
    """The trading day of a feed time, as a UTC calendar date (exchange sessions refine this later)."""
    t = pd.Timestamp(ts)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return t.strftime("%Y-%m-%d")


def compute_snapshot(
    ts: pd.Timestamp,
    cash: float,
    quantities: Mapping[str, float],
    prices: Mapping[str, float],
    book: Mapping[str, Mapping] | None = None,
    day_start_equity: float | None = None,
) -> PortfolioSnapshot:
    """Pure arithmetic: equity = cash + Σ quantity × price; unrealised = (price − average) × quantity,
    where the average carries the buy fees; daily P&L against ``day_start_equity`` (today's equity
    when not given). A symbol without a price is marked at its average price."""
    book = book or {}
    positions = {}
    for sym, q in quantities.items():
        if abs(q) < 1e-12:
            continue
        b = book.get(sym, {})
        avg = b.get("average_price")
        px = prices.get(sym)
        if px is None or not math.isfinite(px) or px <= 0:
            px = avg if avg is not None else 0.0
        avg = float(avg) if avg is not None else float(px)
        positions[sym] = Position(
            quantity=float(q), average_price=avg, market_price=float(px), unrealized_pnl=(float(px) - avg) * float(q),
            realized_pnl=float(b.get("realized_pnl") or 0.0), stop_loss=b.get("stop_loss"), take_profit=b.get("take_profit"),
        )
    eq = float(cash) + sum(p.market_value for p in positions.values())
    start = float(day_start_equity) if day_start_equity is not None else eq
    pnl = eq - start
    return PortfolioSnapshot(
        ts=pd.Timestamp(ts), cash=float(cash), positions=positions, equity=eq, day_start_equity=start,
        daily_pnl=pnl, daily_pnl_pct=pnl / start if start > 0 else 0.0,
    )


def _currency(broker: Broker, balances: Mapping) -> str:
    cur = getattr(broker, "currency", None)
    if cur in balances:
        return cur
    if len(balances) == 1:
        return next(iter(balances))
    raise ValueError(f"cannot tell the account currency among {sorted(balances)}: give the broker a 'currency' attribute")


def snapshot(
    broker: Broker, store: Store, account: str, now: pd.Timestamp, quotes: Mapping[str, Quote] | None = None
) -> PortfolioSnapshot:
    """The portfolio now (feed clock). The day's starting equity is the account's last recorded
    equity before today began (else today's first equity), written once per day."""
    balances = broker.balances()
    cash = balances[_currency(broker, balances)].total
    held = broker.positions()
    quotes = dict(quotes or {})
    missing = [s for s in held if s not in quotes]
    if missing:
        quotes.update(broker.quotes(missing))
    prices = {s: q.last for s, q in quotes.items()}
    book = store.position_book(account)
    snap = compute_snapshot(now, cash, held, prices, book)
    day = day_key(now)
    start = store.day_start(account, day)
    if start is None:
        before = store.last_equity_before(account, pd.Timestamp(day, tz="UTC"))
        start = store.set_day_start(account, day, before if before is not None else snap.equity)
    pnl = snap.equity - start
    return PortfolioSnapshot(
        ts=snap.ts, cash=snap.cash, positions=snap.positions, equity=snap.equity, day_start_equity=start,
        daily_pnl=pnl, daily_pnl_pct=pnl / start if start > 0 else 0.0,
    )
