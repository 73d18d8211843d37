"""The vocabulary of orders: the status machine, deterministic client order ids, and the intent the
loop hands the order manager (``orders.OrderManager``). Pure, so the exit planning (``exits``) and the
manager share it without importing each other.

    NEW ──► SUBMITTED ──► PARTIALLY_FILLED ──► FILLED
     │          │                │
     │          ├──► FILLED      ├──► CANCELLED / EXPIRED
     │          └──► CANCELLED / REJECTED / EXPIRED
     └──► REJECTED / CANCELLED  (refused or withdrawn before the venue accepted it)
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from workbench.errors import InvalidTransition
from workbench.venues.base import FINAL_STATUSES, OrderRequest

__all__ = ["STATUSES", "transition", "path", "client_order_id", "OrderIntent"]

STATUSES = ("NEW", "SUBMITTED", "PARTIALLY_FILLED", "FILLED", "CANCELLED", "REJECTED", "EXPIRED")
_NEXT: dict[str, frozenset[str]] = {
    "NEW": frozenset({"SUBMITTED", "REJECTED", "CANCELLED"}),
    "SUBMITTED": frozenset({"PARTIALLY_FILLED", "FILLED", "CANCELLED", "REJECTED", "EXPIRED"}),
    "PARTIALLY_FILLED": frozenset({"PARTIALLY_FILLED", "FILLED", "CANCELLED", "EXPIRED"}),
    "FILLED": frozenset(),
    "CANCELLED": frozenset(),
    "REJECTED": frozenset(),
    "EXPIRED": frozenset(),
}


def transition(current: str, new: str) -> str:
    """The new status if the move is legal; re-stating the same non-final status is a no-op."""
    for s in (current, new):
        if s not in _NEXT:
            raise (
                InvalidTransition(current, new, ())
                if s == current
                else ValueError(f"unknown order status {new!r}; one of {STATUSES}")
            )
    if new == current and current not in FINAL_STATUSES:
        return new
    if new not in _NEXT[current]:
        raise InvalidTransition(current, new, _NEXT[current])
    return new


def path(current: str, new: str) -> list[str]:
    """Statuses to pass through from ``current`` to ``new`` (a venue may report FILLED for an order we
    still hold as NEW: that is NEW → SUBMITTED → FILLED). Raises ``InvalidTransition`` if no path."""
    if new == current:
        return [] if current in FINAL_STATUSES else [transition(current, new)]
    if new in _NEXT.get(current, ()):
        return [new]
    if current == "NEW" and new in _NEXT["SUBMITTED"]:
        return ["SUBMITTED", new]
    raise InvalidTransition(current, new, _NEXT.get(current, ()))


_SAFE = re.compile(r"[^A-Za-z0-9]")


def client_order_id(run_id: int, cycle: int, symbol: str, side: str, purpose: str = "") -> str:
    """Deterministic, ≤ 36 ASCII chars (Binance's limit), unique per (run, cycle, symbol, side, purpose).

    Readable when it fits (``wb-12-7-AAPL-b``); symbols that lose characters to sanitising or are
    long get a short hash of the original, so "BTC/USDT" and "BTCUSDT" never collide.
    """
    if side not in ("buy", "sell"):
        raise ValueError(f"side must be 'buy' or 'sell', not {side!r}")
    clean = _SAFE.sub("", symbol)
    tag = side[0] + _SAFE.sub("", purpose)[:3]
    cid = f"wb-{run_id}-{cycle}-{clean}-{tag}"
    if clean != symbol or len(cid) > 36:
        h = hashlib.sha1(symbol.encode()).hexdigest()[:6]
        cid = f"wb-{run_id}-{cycle}-{clean[:8]}{h}-{tag}"
    if len(cid) > 36:
        cid = "wb-" + hashlib.sha1(f"{run_id}|{cycle}|{symbol}|{side}|{purpose}".encode()).hexdigest()[:30]
    return cid


@dataclass(frozen=True)
class OrderIntent:
    """What the loop wants, with the context the store keeps next to the order."""

    request: OrderRequest
    run_id: int | None
    cycle: int | None
    reason: str
    stop_loss: float | None = None
    take_profit: float | None = None
