"""The live loop's cycle as one numba per-bar kernel, and the backtest as a loop over it.

Why record arrays: the per-symbol rules, the per-symbol book (position, stops, resting exit legs,
last price), the account and the fill ledger are each one numpy record array. numba passes every
array argument with its own reference count and a dozen fields, so helpers that took a dozen arrays
cost more per call than the work they did (about 0.5 µs × 2 calls × every symbol × every bar was
most of the backtest's time); a helper that takes the book takes one array.

``_cycle_nb`` is one ``run_cycle`` at bar ``i`` (see ``backtest.engine``'s docstring for the rules);
``_simulate_nb`` runs it for every bar. Both are cached on disk (``workbench init`` compiles them).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit
from vectorbt.utils.math_ import add_nb

__all__ = ["ACCOUNT_DT", "BOOK_DT", "FILL_DT", "LIMITS_DT", "RULES_DT", "Bars", "Tape"]

# Order reasons, by the code the kernel records (``engine.REASONS`` names them).
_ENTRY, _SELL, _STOP, _TAKE = 0, 1, 2, 3

# Per symbol: the venue's trading rules and the exchange's costs (slip is a fraction, not bps).
RULES_DT = np.dtype([("lot", "f8"), ("tick", "f8"), ("min_notional", "f8"), ("fee", "f8"), ("slip", "f8")])
# Per symbol: what the account holds and what rests at the venue. sl/tp: the position's stop and
# target (NaN when flat); win: the bar of the entry whose signal set them; sl_rest/tp_rest, sl_px/tp_px,
# leg_qty: the resting exit pair; last: the last known positive close (the valuation price).
BOOK_DT = np.dtype(
    [("pos", "f8"), ("sl", "f8"), ("tp", "f8"), ("win", "i8"), ("sl_rest", "?"), ("tp_rest", "?"),
     ("sl_px", "f8"), ("tp_px", "f8"), ("leg_qty", "f8"), ("last", "f8")]
)  # fmt: skip
# One element: cash; equity at the close of the last cycle; the day's starting equity and its day
# number; how many fills the ledger holds.
ACCOUNT_DT = np.dtype([("cash", "f8"), ("equity", "f8"), ("day_start", "f8"), ("day", "i8"), ("fills", "i8")])
# One element: the risk limits the cycle applies.
LIMITS_DT = np.dtype([("max_position", "f8"), ("max_daily_loss", "f8"), ("min_strength", "f8"), ("risk", "f8")])
# One row per fill, in booking order: size is signed (+ buy, − sell); win is the bar of the signal
# behind it (the entry's for stop and target exits).
FILL_DT = np.dtype(
    [("col", "i8"), ("idx", "i8"), ("size", "f8"), ("price", "f8"), ("fee", "f8"), ("reason", "i1"), ("win", "i8")]
)


class Bars(NamedTuple):
    """The kernel's inputs per bar and symbol (bars × symbols, C order), and the day number per bar."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    sig: np.ndarray  # int8: +1 buy, −1 sell, 0 no signal
    strength: np.ndarray
    stop: np.ndarray  # as the signal frame gives it (the kernel rounds it to 10 decimals)
    take: np.ndarray
    day: np.ndarray  # int64: the UTC calendar day of the bar (the live day key)


class Tape(NamedTuple):
    """The kernel's outputs per bar: entries blocked by the daily-loss limit, closing cash and equity,
    each symbol's market value and its valuation price (the last known close; bars × symbols)."""

    halted: np.ndarray
    cash: np.ndarray
    equity: np.ndarray
    value: np.ndarray
    mark: np.ndarray


@njit(cache=True)
def _floor_to_lot(quantity, lot):
    """``workbench.market.floor_to_lot``."""
    if not (quantity > 0) or not np.isfinite(quantity):
        return 0.0
    if not lot > 0:
        return quantity
    x = quantity / lot
    n = math.floor(x + max(1e-9, x * 1e-12))
    digits = max(0, -math.floor(math.log10(lot))) + 3
    q = round(n * lot, digits)
    while q > quantity * (1 + 1e-12) and n > 0:
        n -= 1
        q = round(n * lot, digits)
    return max(q, 0.0)


@njit(cache=True)
def _to_tick(price, tick):
    """``trading.exits.to_tick``: exit prices sit on the tick grid."""
    if not tick > 0:
        return price
    digits = max(0, -math.floor(math.log10(tick))) + 3
    return round(round(price / tick) * tick, digits)


@njit(cache=True)
def _fill(i, col, side, qty, price, reason, win, rules, account, book, fills):
    """Book one fill as the paper broker does (cash ± notional − fee, ``fee`` × notional) and write
    it to the ledger. Cash and position left within 1e-9 (relative) of zero become zero, as in
    vectorbt's own ledger, so the two never disagree. Returns the fee."""
    a, b, fee_rate = account[0], book[col], rules[col].fee
    notional = qty * price
    fee = notional * fee_rate
    booked = qty if side > 0 or qty <= b.pos else b.pos  # vectorbt's ledger closes, not overshoots
    if side > 0:
        a.cash = add_nb(a.cash, -notional - fee)
        b.pos = add_nb(b.pos, qty)
    else:
        a.cash = a.cash + (notional - fee)
        b.pos = add_nb(b.pos, -qty)
    f = fills[a.fills]
    f.col, f.idx, f.size, f.price, f.fee, f.reason, f.win = (
        col,
        i,
        side * booked,
        price,
        booked * price * fee_rate,
        reason,
        win,
    )
    a.fills += 1
    return fee


@njit(cache=True)
def _withdraw(b):
    """The exit pair is cancelled (a closing sell withdraws it; a filled leg takes its twin with it)."""
    b.sl_rest, b.tp_rest, b.leg_qty = False, False, 0.0


@njit(cache=True)
def _forget_if_flat(b):
    if b.pos == 0.0:
        b.sl, b.tp = np.nan, np.nan


@njit(cache=True)
def _sync_exits(col, rules, book):
    """``OrderManager.sync_exits`` for one symbol: keep one exit pair the size of the position; a
    pair of the wrong size (or none) is cancelled and placed again, each leg checked as the venue
    checks it against the last known price."""
    b = book[col]
    held = b.pos
    has = b.sl_rest or b.tp_rest
    if held <= 0 and not has:
        return
    r = rules[col]
    stops = np.isfinite(b.sl) or np.isfinite(b.tp)
    want = _floor_to_lot(held, r.lot) if held > 0 and stops else 0.0
    have = b.leg_qty if has else 0.0
    if abs(have - want) <= 1e-9 * max(1.0, want):
        return
    _withdraw(b)
    if want <= 0:
        return
    if np.isfinite(b.sl):
        px = _to_tick(b.sl, r.tick)
        if px < b.last and want * px >= r.min_notional:
            b.sl_rest, b.sl_px = True, px
    if np.isfinite(b.tp):
        px = _to_tick(b.tp, r.tick)
        if px > b.last and want * px >= r.min_notional:
            b.tp_rest, b.tp_px = True, px
    if b.sl_rest or b.tp_rest:
        b.leg_qty = want


@njit(cache=True)
def _round10(x):
    """numpy's ``np.round(x, 10)`` (multiply, round half to even, divide): stops and targets are
    rounded as ``latest_signals`` rounds them, here only where a signal is read."""
    return np.rint(x * 1e10) / 1e10


@njit(cache=True)
def _quoted(c):
    return np.isfinite(c) and c > 0


@njit(cache=True)
def _cycle_nb(i, bars, rules, limits, account, book, fills, tape):
    """One ``run_cycle`` at bar ``i``: fills go to the ledger, the bar's closing figures to the tape."""
    n = bars.close.shape[1]
    lim, a = limits[0], account[0]
    # 1. the venue takes the bar: resting legs (all stops, then all take-profits).
    for col in range(n):
        if _quoted(bars.close[i, col]):
            book[col].last = bars.close[i, col]
    for rank in range(2):
        for col in range(n):
            b, c = book[col], bars.close[i, col]
            if not _quoted(c) or b.leg_qty <= 0:
                continue
            o, h, lo = bars.open[i, col], bars.high[i, col], bars.low[i, col]
            o = o if _quoted(o) else c
            h = h if _quoted(h) else c
            lo = lo if _quoted(lo) else c
            if rank == 0 and b.sl_rest and lo <= b.sl_px:
                px = min(b.sl_px, o) * (1 - rules[col].slip)
                reason = _STOP
            elif rank == 1 and b.tp_rest and h >= b.tp_px:
                px = max(b.tp_px, o)
                reason = _TAKE
            else:
                continue
            _fill(i, col, -1, b.leg_qty, px, reason, b.win, rules, account, book, fills)
            _withdraw(b)
            _forget_if_flat(b)
    # 2. exit pairs where missing; 3. the market-sell fallback for stops that do not rest.
    for col in range(n):
        _sync_exits(col, rules, book)
    for col in range(n):
        b, c = book[col], bars.close[i, col]
        if b.pos <= 0 or not _quoted(c):
            continue
        lo = bars.low[i, col] if np.isfinite(bars.low[i, col]) else c
        h = bars.high[i, col] if np.isfinite(bars.high[i, col]) else c
        if np.isfinite(b.sl) and lo <= b.sl and not b.sl_rest:
            reason = _STOP
        elif np.isfinite(b.tp) and h >= b.tp and not b.tp_rest:
            reason = _TAKE
        else:
            continue
        qty = _floor_to_lot(b.pos, rules[col].lot)
        if qty <= 0:
            continue
        _withdraw(b)
        if qty * c < rules[col].min_notional:
            continue  # the venue refuses it
        _fill(i, col, -1, qty, c * (1 - rules[col].slip), reason, b.win, rules, account, book, fills)
        _forget_if_flat(b)
    # 4. the snapshot and the day's starting equity.
    mv = 0.0
    for col in range(n):
        if book[col].pos != 0.0:
            mv += book[col].pos * book[col].last
    equity = a.cash + mv
    if i == 0 or bars.day[i] != a.day:
        a.day_start = a.equity if i > 0 else equity
        a.day = bars.day[i]
    start = a.day_start
    # 5. the signals, in column order.
    for col in range(n):
        s = bars.sig[i, col]
        if s == 0:
            continue
        c = bars.close[i, col]
        if not _quoted(c):
            continue  # no quote
        if not min(max(bars.strength[i, col], 0.0), 1.0) > lim.min_strength:
            continue
        b, r = book[col], rules[col]
        held = b.pos
        if s < 0:
            if held <= 0:
                continue
            qty = _floor_to_lot(held, r.lot)
            if qty <= 0:
                continue
            _withdraw(b)
            if qty * c < r.min_notional:
                continue
            px = c * (1 - r.slip)
            f = _fill(i, col, -1, qty, px, _SELL, i, rules, account, book, fills)
            equity = equity - held * c + b.pos * c
            equity += qty * px - f
            _forget_if_flat(b)
            continue
        pnl_pct = (equity - start) / start if start > 0 else 0.0
        if not pnl_pct > -lim.max_daily_loss:
            tape.halted[i] = True
            continue
        sl = _round10(bars.stop[i, col])
        if not (np.isfinite(sl) and sl > 0 and sl < c):
            continue
        cap_value = lim.max_position * equity
        if held * c >= cap_value * (1 - 1e-9):
            continue
        if not (equity > 0):
            continue
        cap = lim.max_position * equity / c - max(held, 0.0)
        risk = np.inf
        if abs(c - sl) > 0:
            risk = lim.risk * equity / abs(c - sl)
        cash = a.cash
        cost_factor = (1.0 + r.slip) * (1.0 + r.fee)  # risk.entry_cost_factor of the exchange's costs
        afford = max(cash, 0.0) / (c * cost_factor)
        qty = _floor_to_lot(min(cap, risk, afford), r.lot)
        if qty <= 0 or qty * c < r.min_notional:
            continue
        if qty * c * cost_factor > cash + 1e-9 or (held + qty) * c > cap_value * (1 + 1e-9):
            continue
        px = c * (1 + r.slip)
        if qty * px * (1 + r.fee) > cash + 1e-9:
            continue  # the venue refuses (a last-bit rounding difference from the risk rules' sum)
        f = _fill(i, col, 1, qty, px, _ENTRY, i, rules, account, book, fills)
        equity = equity - held * c + b.pos * c
        equity += -(qty * px) - f
        b.sl, b.tp, b.win = sl, _round10(bars.take[i, col]), i
    # 6. exit pairs follow the positions; the cycle's closing figures.
    mv = 0.0
    for col in range(n):
        _sync_exits(col, rules, book)
        b = book[col]
        v = b.pos * b.last if b.pos != 0.0 else 0.0
        tape.value[i, col], tape.mark[i, col] = v, b.last
        mv += v
    a.equity = a.cash + mv
    tape.cash[i], tape.equity[i] = a.cash, a.equity


@njit(cache=True)
def _simulate_nb(bars, rules, limits, account, book, fills, tape):
    """Every cycle in bar order; the ledger ends with ``account[0].fills`` fills."""
    for i in range(bars.close.shape[0]):
        _cycle_nb(i, bars, rules, limits, account, book, fills, tape)
