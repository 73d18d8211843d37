"""Portfolio sync: the broker's balances and positions against the local book, at Phase 1 and at the
start of every cycle.

Why the local book is kept at all when the venue is the source of truth: the venue does not know our
cost basis, stops or realised P&L, and a difference between what we booked and what the venue holds
is news — a deposit, a withdrawal, a trade made by hand, a fee in the traded asset, a fill we missed.
So a difference is never silently overwritten: it is written as a ``reconcile`` event carrying both
numbers, and the book is brought to the broker's numbers by an explicit adjusting record (the
``adjustments`` table), in one transaction. Differences within half a lot (positions) or within
``cash_tolerance`` (cash; a cent by default, as Alpaca and Kite round cash to it) are rounding, not news.

The first sync of an account takes the broker's balances as the opening cash book (an ``opening``
adjustment, logged as a ``sync`` event, not as a difference). A fill that lands between the broker's
answer and our booking of it shows as a difference once and is undone by the next sync; run the
sync after ``OrderManager.refresh_open``/``reconcile`` so fills already reported are booked first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from workbench.trading.store import Store
from workbench.venues.base import Balance, Broker, Market

__all__ = ["Difference", "SyncReport", "differences", "sync_portfolio"]

_QTY_EPS = 1e-9


@dataclass(frozen=True)
class Difference:
    kind: Literal["position", "cash"]
    key: str  # symbol or currency
    local: float
    broker: float

    @property
    def delta(self) -> float:
        return self.broker - self.local


@dataclass(frozen=True)
class SyncReport:
    """What one sync saw and did."""

    positions: dict[str, float]
    balances: dict[str, Balance]
    differences: tuple[Difference, ...] = ()
    opened: tuple[str, ...] = field(default=())  # currencies taken as the opening cash book

    @property
    def in_sync(self) -> bool:
        return not self.differences

    def summary(self) -> str:
        cash = ", ".join(f"{b.total:,.2f} {k}" for k, b in sorted(self.balances.items())) or "no cash"
        head = f"{len(self.positions)} position(s), {cash}"
        if self.in_sync:
            return f"{head}; local book matches the broker"
        return f"{head}; {len(self.differences)} difference(s) adjusted to the broker: " + "; ".join(
            f"{d.kind} {d.key} local {d.local:.10g} vs broker {d.broker:.10g}" for d in self.differences
        )


def differences(
    local_positions: Mapping[str, float],
    broker_positions: Mapping[str, float],
    local_cash: Mapping[str, float],
    broker_cash: Mapping[str, float],
    markets: Mapping[str, Market] | None = None,
    cash_tolerance: float = 1e-6,
) -> list[Difference]:
    """Pure comparison: positions beyond half a lot (of the symbol's market, else float noise), cash
    beyond ``cash_tolerance`` (absolute) or 1e-9 relative. A currency absent from the local cash
    book is not compared (it has no local record yet: the caller opens it)."""
    out = []
    for sym in sorted(set(local_positions) | set(broker_positions)):
        a, b = float(local_positions.get(sym, 0.0) or 0.0), float(broker_positions.get(sym, 0.0) or 0.0)
        m = (markets or {}).get(sym)
        tol = max(m.lot_size / 2 if m is not None and m.lot_size else 0.0, _QTY_EPS * max(1.0, abs(a), abs(b)))
        if abs(a - b) > tol:
            out.append(Difference("position", sym, a, b))
    for ccy in sorted(local_cash):
        a, b = float(local_cash.get(ccy, 0.0)), float(broker_cash.get(ccy, 0.0))
        if abs(a - b) > max(cash_tolerance, 1e-9 * max(abs(a), abs(b))):
            out.append(Difference("cash", ccy, a, b))
    return out


def sync_portfolio(
    store: Store,
    broker: Broker,
    account: str,
    run_id: int | None = None,
    when: str = "cycle",
    markets: Mapping[str, Market] | None = None,
    cash_tolerance: float = 0.01,
    book: Mapping[str, Mapping[str, Any]] | None = None,
) -> SyncReport:
    """Read the broker's balances and positions, compare them with the store's book (positions
    table and cash book), and adjust the book explicitly where they differ. ``when`` ("phase1",
    "cycle 7") goes into the events so the log says when the difference was seen. ``book``: the
    account's position rows when the caller holds them as they are in the store (else read here); a
    caller that keeps a copy must drop it when the report has a position difference (it was adjusted)."""
    if book is None:
        book = store.position_book(account)
    local_pos = {s: float(r["quantity"] or 0.0) for s, r in book.items()}
    known = dict(markets or {})
    # The book's symbols first: a broker names positions as its caller names symbols once it has
    # been asked about them (a fresh process after a restart has not).
    unknown = [s for s in local_pos if s not in known]
    if unknown:
        known.update(broker.markets(unknown))
    balances = broker.balances()
    held = {s: float(q) for s, q in broker.positions().items()}
    unknown = [s for s in held if s not in known]
    if unknown:
        known.update(broker.markets(unknown))
    # On a spot venue a held coin is also a balance: it is compared as a position, not as cash.
    coins = {m.base for m in known.values() if m.base and m.base != m.quote} - {getattr(broker, "currency", None)}
    local_cash = {k: v for k, v in store.cash_book(account).items() if k not in coins}
    broker_cash = {k: float(b.total) for k, b in balances.items() if k not in coins}
    diffs = differences(local_pos, held, local_cash, broker_cash, known, cash_tolerance)
    rows = []
    for d in diffs:
        what = f"{d.key} position" if d.kind == "position" else f"{d.key} cash"
        rows.append({
            "kind": d.kind, "key": d.key, "local": d.local, "broker": d.broker, "reason": f"sync at {when}",
            "message": (
                f"{when}: {what} differs: local book {d.local:.10g}, broker {d.broker:.10g} "
                f"(difference {d.delta:+.10g}); local book adjusted to the broker"
            ),
        })  # fmt: skip
    opened = tuple(sorted(set(broker_cash) - set(local_cash)))
    for ccy in opened:
        rows.append({
            "kind": "cash", "key": ccy, "local": 0.0, "broker": broker_cash[ccy], "reason": "opening balance",
            "event": "sync", "level": "INFO",
            "message": f"{when}: opening cash book {ccy} {broker_cash[ccy]:,.10g} taken from the broker",
        })  # fmt: skip
    if rows:
        store.adjust(account, rows, run_id)
    return SyncReport(positions=held, balances=dict(balances), differences=tuple(diffs), opened=opened)
