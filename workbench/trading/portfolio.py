"""The portfolio at one instant: cash per currency, positions marked to market, equity in the base
currency, fees, realised/unrealised and today's P&L.

Quantities and cash come from the broker (the venue is the source of truth); average prices, stops
and realised P&L come from the store's position book (the broker does not know our cost basis).
Several currencies (INR, USD, USDT …) are converted to the base currency at ``fx`` rates (units of
base per unit), given or read from quotes named ``CCY/BASE``; a currency held without a rate is an
error that says which rate to configure — a guessed rate would be a wrong equity and wrong limits.
The day boundary follows the feed's clock — bar time in a replay — so "today" means the same thing
in a replay as live, and the day's starting equity is persisted so a restart keeps it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from workbench.errors import ConfigError
from workbench.trading.store import Store
from workbench.venues.base import Broker, Quote

__all__ = [
    "Position",
    "PortfolioSnapshot",
    "compute_snapshot",
    "after_fill",
    "owned_copy",
    "day_key",
    "fx_from_quotes",
    "snapshot",
]


@dataclass(frozen=True)
class Position:
    quantity: float
    average_price: float
    market_price: float
    unrealized_pnl: float
    realized_pnl: float = 0.0
    stop_loss: float | None = None
    take_profit: float | None = None
    currency: str | None = None  # the settlement currency; prices are in it
    fx: float = 1.0  # base currency per unit of ``currency``

    @property
    def market_value(self) -> float:
        """In the base currency."""
        return self.quantity * self.market_price * self.fx


@dataclass(frozen=True)
class PortfolioSnapshot:
    ts: pd.Timestamp
    cash: float
    positions: dict[str, Position] = field(default_factory=dict)
    equity: float = 0.0
    day_start_equity: float = 0.0
    daily_pnl: float = 0.0
    daily_pnl_pct: float = 0.0
    base_currency: str = "USD"
    cash_by_currency: dict[str, float] = field(default_factory=dict)
    fx: dict[str, float] = field(default_factory=dict)
    fees: float = 0.0  # fees paid so far by the account (base currency at today's rates)

    @property
    def positions_value(self) -> float:
        return sum(p.market_value for p in self.positions.values())

    @property
    def unrealized_pnl(self) -> float:
        return sum(p.unrealized_pnl for p in self.positions.values())

    @property
    def realized_pnl(self) -> float:
        return sum(p.realized_pnl for p in self.positions.values())

    def rate(self, currency: str | None) -> float:
        """Base units per unit of ``currency`` (1 for the base and for unknown currencies)."""
        if currency is None or currency == self.base_currency:
            return 1.0
        return float(self.fx.get(currency, 1.0))

    def cash_for(self, currency: str | None) -> float:
        """Cash that can pay for an instrument quoted in ``currency``, in the base currency: that
        currency's balance when the account holds it, else the account's cash (it settles there)."""
        if currency is not None and currency in self.cash_by_currency and currency != self.base_currency:
            return self.cash_by_currency[currency] * self.rate(currency)
        if self.cash_by_currency:
            return self.cash_by_currency.get(self.base_currency, self.cash)
        return self.cash

    def settlement(self, currency: str | None) -> str:
        return currency if currency is not None and currency in self.cash_by_currency else self.base_currency

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
    cash: float | Mapping[str, float],
    quantities: Mapping[str, float],
    prices: Mapping[str, float],
    book: Mapping[str, Mapping[str, Any]] | None = None,
    day_start_equity: float | None = None,
    fx: Mapping[str, float] | None = None,
    currencies: Mapping[str, str] | None = None,
    base_currency: str = "USD",
    fees: float = 0.0,
) -> PortfolioSnapshot:
    """Pure arithmetic: equity = Σ cash × fx + Σ quantity × price × fx; unrealised = (price − average)
    × quantity × fx, where the average carries the buy fees; daily P&L against ``day_start_equity``
    (today's equity when not given). A symbol without a price is marked at its average price.
    ``cash`` is one amount in the base currency or a mapping currency → amount; ``currencies`` maps a
    symbol to the currency it is priced in (base when absent)."""
    book = book or {}
    fx = {base_currency: 1.0, **(fx or {})}
    by_ccy = {base_currency: float(cash)} if not isinstance(cash, Mapping) else {k: float(v) for k, v in cash.items()}
    missing = sorted(k for k, v in by_ccy.items() if abs(v) > 1e-12 and k not in fx)
    missing += sorted(
        {c for s, c in (currencies or {}).items() if c not in fx and abs(quantities.get(s, 0.0)) > 1e-12} - set(missing)
    )
    if missing:
        raise ConfigError(
            f"no exchange rate from {', '.join(missing)} to {base_currency}: set live.fx_rates (units of {base_currency} per unit) "
            f"or trade a {missing[0]}/{base_currency} quote"
        )
    cash_base = sum(v * fx[k] for k, v in by_ccy.items())
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
        ccy = (currencies or {}).get(sym, base_currency)
        rate = fx.get(ccy, 1.0)
        positions[sym] = Position(
            quantity=float(q),
            average_price=avg,
            market_price=float(px),
            unrealized_pnl=(float(px) - avg) * float(q) * rate,
            realized_pnl=float(b.get("realized_pnl") or 0.0) * rate,
            stop_loss=b.get("stop_loss"),
            take_profit=b.get("take_profit"),
            currency=ccy,
            fx=rate,
        )
    eq = cash_base + sum(p.market_value for p in positions.values())
    start = float(day_start_equity) if day_start_equity is not None else eq
    pnl = eq - start
    return PortfolioSnapshot(
        ts=pd.Timestamp(ts),
        cash=cash_base,
        positions=positions,
        equity=eq,
        day_start_equity=start,
        daily_pnl=pnl,
        daily_pnl_pct=pnl / start if start > 0 else 0.0,
        base_currency=base_currency,
        cash_by_currency=by_ccy,
        fx=dict(fx),
        fees=float(fees),
    )


def after_fill(
    snap: PortfolioSnapshot,
    symbol: str,
    side: str,
    quantity: float,
    price: float,
    fee: float,
    mark: float,
    currency: str | None = None,
    *,
    owned: bool = False,
) -> PortfolioSnapshot:
    """The snapshot after one fill, without asking the broker again: cash moves by the notional and
    the fee (in the fill's currency), the position by the quantity, marked at ``mark``. Lets a cycle
    with thousands of orders keep exact risk arithmetic at O(1) broker calls per order.

    ``owned``: the caller owns ``snap`` (see ``owned_copy``) and it is updated in place and returned —
    copying 10,000 positions for each of 5,000 orders would be O(orders × positions), and even a new
    frozen snapshot per order (``dataclasses.replace``) costs more than the arithmetic."""
    if quantity <= 0:
        return snap
    ccy = snap.settlement(currency)
    rate = snap.rate(ccy)
    sign = 1.0 if side == "buy" else -1.0
    if owned and snap.cash_by_currency:
        by_ccy = snap.cash_by_currency
    else:
        by_ccy = dict(snap.cash_by_currency) or {snap.base_currency: snap.cash}
    by_ccy[ccy] = by_ccy.get(ccy, 0.0) - sign * quantity * price - fee
    cash = snap.cash + (-sign * quantity * price - fee) * rate
    positions = snap.positions if owned else dict(snap.positions)
    old = positions.get(symbol)
    q0 = old.quantity if old is not None else 0.0
    q1 = q0 + sign * quantity
    if abs(q1) < 1e-12:
        positions.pop(symbol, None)
    else:
        avg = old.average_price if old is not None else price
        if side == "buy":
            avg = (q0 * (old.average_price if old is not None else 0.0) + quantity * price + fee) / q1
        positions[symbol] = Position(
            quantity=q1,
            average_price=avg,
            market_price=mark,
            unrealized_pnl=(mark - avg) * q1 * rate,
            realized_pnl=old.realized_pnl if old is not None else 0.0,
            stop_loss=old.stop_loss if old is not None else None,
            take_profit=old.take_profit if old is not None else None,
            currency=ccy,
            fx=rate,
        )
    equity = (
        snap.equity
        - (old.market_value if old is not None else 0.0)
        + (positions[symbol].market_value if symbol in positions else 0.0)
    )
    equity += (-sign * quantity * price - fee) * rate
    pnl = equity - snap.day_start_equity
    moved: dict[str, Any] = {
        "cash": cash,
        "cash_by_currency": by_ccy,
        "positions": positions,
        "equity": equity,
        "daily_pnl": pnl,
        "daily_pnl_pct": pnl / snap.day_start_equity if snap.day_start_equity > 0 else 0.0,
        "fees": snap.fees + fee * rate,
    }
    if not owned:
        return replace(snap, **moved)
    for k, v in moved.items():  # frozen for everyone else; its owner is the one writer
        object.__setattr__(snap, k, v)
    return snap


def owned_copy(snap: PortfolioSnapshot) -> PortfolioSnapshot:
    """``snap`` with its own position and cash dicts, for ``after_fill(..., owned=True)``."""
    return replace(snap, positions=dict(snap.positions), cash_by_currency=dict(snap.cash_by_currency))


def _currency(broker: Broker, balances: Mapping[str, Any]) -> str:
    cur = getattr(broker, "currency", None)
    if isinstance(cur, str) and cur in balances:
        return cur
    if len(balances) == 1:
        return str(next(iter(balances)))
    raise ValueError(
        f"cannot tell the account currency among {sorted(balances)}: give the broker a 'currency' attribute"
    )


def fx_from_quotes(base: str, quotes: Mapping[str, Quote]) -> dict[str, float]:
    """Rates read from quotes named ``CCY/BASE`` (or ``BASE/CCY``, inverted)."""
    out = {}
    for sym, q in quotes.items():
        a, _, b = sym.rpartition(":")[2].partition("/")
        if not (q.last and math.isfinite(q.last) and q.last > 0):
            continue
        if b == base and a:
            out[a] = float(q.last)
        elif a == base and b:
            out[b] = 1.0 / float(q.last)
    return out


def snapshot(
    broker: Broker,
    store: Store,
    account: str,
    now: pd.Timestamp,
    quotes: Mapping[str, Quote] | None = None,
    fx: Mapping[str, float] | None = None,
    book: Mapping[str, Mapping[str, Any]] | None = None,
) -> PortfolioSnapshot:
    """The portfolio now (feed clock), in the broker's account currency. The day's starting equity is
    the account's last recorded equity before today began (else today's first equity), written once
    per day, so a restart keeps it. ``book``: the account's position rows when the caller holds them
    as they are in the store (a cycle's copy, ``OrderManager.position_book``), else they are read."""
    balances = broker.balances()
    base = _currency(broker, balances)
    cash = {k: b.total for k, b in balances.items()}
    held = broker.positions()
    quotes = dict(quotes or {})
    missing = [s for s in held if s not in quotes]
    if missing:
        quotes.update(broker.quotes(missing))
    prices = {s: q.last for s, q in quotes.items()}
    markets = broker.markets(list(held)) if held else {}
    currencies = {s: (m.quote if m.quote in cash else base) for s, m in markets.items()}
    rates = {**fx_from_quotes(base, quotes), **(fx or {})}
    # A spot venue lists a held coin as a balance too: it is a position, not cash (else counted twice).
    settling = set(currencies.values())  # a set: ``in dict.values()`` scans, O(positions²) at 10,000 held
    for m in markets.values():
        if m.base != base and m.base not in settling:
            cash.pop(m.base, None)
    if broker.environment != "paper":
        # A real account lists assets the workbench never traded (testnets hand out dozens): without a
        # rate they are not part of the trading book. Paper accounts hold only what the user configured.
        keep = {base, *currencies.values()}
        cash = {k: v for k, v in cash.items() if k in keep or k in rates}
    if book is None:
        book = store.position_book(account)
    fees = sum(v * (1.0 if k == base else rates.get(k, 1.0)) for k, v in store.fees_by_currency(account).items())
    snap = compute_snapshot(
        now, cash, held, prices, book, fx=rates, currencies=currencies, base_currency=base, fees=fees
    )
    day = day_key(now)
    start = store.day_start(account, day)
    if start is None:
        before = store.last_equity_before(account, pd.Timestamp(day, tz="UTC"))
        start = store.set_day_start(account, day, before if before is not None else snap.equity)
    pnl = snap.equity - start
    return replace(snap, day_start_equity=start, daily_pnl=pnl, daily_pnl_pct=pnl / start if start > 0 else 0.0)
