"""Resting exit pairs: which longs need a (new) OCO pair of stop-loss and take-profit sells, and the
orders that make one. Pure: the order manager reads the book and the open orders, cancels what the
plan replaces and sends what it asks for (``OrderManager.sync_exits``).

One pair per long that has stops, sized to the position less its other open sells. A pair of the
wrong size (or split over several OCO groups) is cancelled and replaced. The ids are deterministic in
(run, cycle, symbol, how many pairs this run placed for it), so a re-run of a crashed cycle finds its
own orders instead of sending new ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from workbench.trading.order_state import OrderIntent, client_order_id
from workbench.venues.base import EXIT_TYPES, OrderRequest, floor_to_lot

__all__ = ["PAIR_NUMBERS", "Wanted", "plan_exits", "exit_intents", "to_tick"]

# A pair's number goes into its ids modulo this: ``client_order_id`` keeps three characters of the purpose
# ("s" + number), so "s100" … "s109" would all read "s10", and a symbol's 101st and 102nd pair, made in one
# cycle, would share ids. The ids carry the cycle too, so 100 numbers per (run, cycle, symbol) are plenty.
PAIR_NUMBERS = 100


class Wanted(NamedTuple):
    """A new exit pair: its size and the position's stops (either may be absent: one leg)."""

    symbol: str
    quantity: float
    stop_loss: float | None
    take_profit: float | None


def plan_exits(
    book: Mapping[str, Mapping[str, Any]], open_rows: Iterable[Mapping[str, Any]], lot_size: Callable[[str], float]
) -> tuple[list[str], list[Wanted]]:
    """The exit orders to cancel (client ids) and the pairs to place, from the position book
    (symbol -> row with quantity, stop_loss, take_profit) and the account's open order rows.
    ``lot_size(symbol)``: the symbol's lot (0 when unknown), asked only for longs with stops."""
    exits_of: dict[str, list[Mapping[str, Any]]] = {}  # one pass over the open orders: each symbol's exits ...
    other_sells: dict[str, float] = {}  # ... and what its other open sells still hold
    for r in open_rows:
        sym = r["symbol"]
        if r["type"] in EXIT_TYPES:
            exits_of.setdefault(sym, []).append(r)
        elif r["side"] == "sell":
            other_sells[sym] = other_sells.get(sym, 0.0) + float(r["quantity"]) - float(r["filled_quantity"] or 0)
    stale: list[str] = []
    wanted: list[Wanted] = []
    for sym, pos in book.items():
        qty = float(pos["quantity"] or 0.0)
        exits = exits_of.get(sym)
        if qty <= 0 and not exits:
            continue
        sl, tp = pos.get("stop_loss"), pos.get("take_profit")
        want = 0.0
        if qty > 0 and (sl is not None or tp is not None):
            want = floor_to_lot(qty - other_sells.get(sym, 0.0), lot_size(sym))
        if exits:
            one_group = len({r["oco_group"] for r in exits}) <= 1
            have = max(float(r["quantity"]) - float(r["filled_quantity"] or 0) for r in exits)
        else:
            one_group, have = True, 0.0
        if one_group and abs(have - want) <= 1e-9 * max(1.0, want):
            continue
        stale += [r["client_order_id"] for r in exits or ()]
        if want > 0:
            wanted.append(Wanted(sym, want, sl, tp))
    return stale, wanted


def exit_intents(
    wanted: Iterable[Wanted],
    placed: Mapping[str, int],
    run_id: int | None,
    cycle: int | None,
    tick_size: Callable[[str], float],
) -> list[OrderIntent]:
    """The legs of each wanted pair (stop-loss, then take-profit), one OCO group per pair, prices on
    the symbol's tick grid. ``placed``: exit pairs this run already placed per symbol (the pair's
    number in its ids)."""
    run = run_id if run_id is not None else 0
    out = []
    for sym, want, sl, tp in wanted:
        k = placed.get(sym, 0) % PAIR_NUMBERS
        tick = tick_size(sym)
        stop_id = client_order_id(run, cycle or 0, sym, "sell", f"s{k}")
        group = "g" + stop_id
        if sl is not None:
            px = to_tick(sl, tick)
            req = OrderRequest(stop_id, sym, "sell", want, "stop_loss", stop_price=px, oco_group=group)
            out.append(OrderIntent(req, run_id, cycle, f"exit stop_loss {px:.6g} for {want:g} {sym}"))
        if tp is not None:
            px = to_tick(tp, tick)
            tp_id = client_order_id(run, cycle or 0, sym, "sell", f"t{k}")
            req = OrderRequest(tp_id, sym, "sell", want, "take_profit", limit_price=px, oco_group=group)
            out.append(OrderIntent(req, run_id, cycle, f"exit take_profit {px:.6g} for {want:g} {sym}"))
    return out


def to_tick(price: float, tick: float) -> float:
    """``price`` on the tick grid (unchanged without a tick)."""
    if not tick or tick <= 0:
        return float(price)
    digits = max(0, -math.floor(math.log10(tick))) + 3
    return round(round(price / tick) * tick, digits)
