"""The backtest engine: the live loop's decisions, bar for bar, inside vectorbt.

Why this shape: a backtest is only evidence about live trading if it trades exactly what the live
loop (``trading.loop.run_cycle`` with the ``PaperBroker`` on a replay) would. So the engine does not
approximate the loop with vectorbt's signal helpers; it re-states the loop's cycle in one numba
function, runs every bar through it (``_simulate_nb``, compiled once and cached on disk), and hands the
fills to vectorbt as order records: its ``Portfolio`` (one group, shared cash) derives cash, value,
positions and trades from them. (Its ``from_order_func`` simulator is not cached by numba, so it
cost ~10 s of compilation in every fresh process.) The parity test replays the same bars through the
real loop and compares.

One cycle per bar ``t`` (the replay's quote is bar ``t``: last = close, with its open/high/low):
1. the venue takes the bar (``PaperBroker.on_bar``): a resting stop-loss leg fills when low ≤ stop at
   min(stop, open) × (1 − slippage); else the take-profit leg when high ≥ target at max(target, open),
   no slippage. Stops are tried first, so a bar touching both exits at the stop. An exit pair is
   placed after the entry fills, so **a position's stops can first trigger on the bar after its entry**.
2. exit pairs are re-placed where they are missing (``sync_exits``); a leg the venue refuses (stop at
   or above the last price, target at or below it, notional under the minimum) is not resting.
3. the fallback (``exit_orders``) sells at market — the bar's close less slippage — a long whose stop
   (low ≤ stop) or target (high ≥ target) was hit and whose matching leg does not rest.
4. the portfolio snapshot: equity = cash + Σ quantity × last known close; the day's starting equity
   is the equity at the close of the last bar of an earlier day (UTC calendar day), or the starting
   cash on the first bar.
5. signals in column order (one per symbol; a cell is a signal when its ``confidence`` — else its
   ``strength`` — is a number; the symbol needs a close on the bar). Strength must be > ``min_strength``.
   SELL closes the whole long at close × (1 − slippage) after withdrawing its exit pair. BUY opens or
   adds: refused after a ``max_daily_loss_pct`` loss today, or when the stop is not below the close;
   quantity = min(cap − held, risk budget / stop distance, affordable cash) floored to the lot, where
   cap = ``max_position_pct`` × *current* equity / close and the affordable cash counts the fee and
   slippage of the symbol's exchange (as the risk module does, and as the venue charges);
   refused below ``min_notional``. It fills at close × (1 + slippage); its stop and target replace the
   position's. Equity after each fill moves by exactly ``portfolio.after_fill``'s arithmetic.
6. exit pairs for positions that changed are cancelled and re-placed at the new size and stops.
Fees are ``fee_rate`` × notional per fill; fees and slippage come per exchange (``exchange_costs``,
as the paper broker's), else ``costs``. Long-only, one currency.

Not modelled (the paper broker can do these; the backtest refuses rather than guesses): a bar-volume
cap on fills (``max_volume_share``: partial fills that rest; ``report.volume_breaches`` lists the bars
where it would have bound, and ``backtest_model`` says so in the report), several account currencies and FX.
Cash (and a position) left within 1e-9 relative of zero by a fill is zero, as in vectorbt's ledger;
the paper broker zeroes only below 1e-9 absolute. So once a buy spends the last cash (fine lots, e.g.
1e-8), the dust of less than one lot's cost is gone and later sizes can differ from live by a lot.
Stops and targets are rounded as live (10 decimals in ``latest_signals``, then the tick) with numpy's
rounding, which can differ from Python's ``round`` in the last bit.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
from numba import njit
from vectorbt.utils.math_ import add_nb

from workbench.backtest.result import ORDER_COLUMNS, TRADE_COLUMNS, BacktestResult
from workbench.config import CostModel, RiskLimits
from workbench.data.panel import Panel
from workbench.market import Market, cost_exchange

__all__ = ["REASONS", "run_backtest", "vbt_freq"]

# Order reasons, by the code the numba kernel records.
REASONS = ("entry", "sell_signal", "stop_loss", "take_profit")
_ENTRY, _SELL, _STOP, _TAKE = 0, 1, 2, 3

_UNITS = {"s": "s", "m": "min", "h": "h", "d": "D", "w": "W"}


def vbt_freq(timeframe: str) -> str:
    """ccxt-style timeframe ("1m", "15m", "1h", "4h", "1d", "1w") → pandas frequency ("15min", "1D", ...)."""
    m = re.fullmatch(r"(\d+)([smhdw])", timeframe.strip())
    if not m:
        raise ValueError(f"timeframe {timeframe!r} not understood: use e.g. 1m, 15m, 1h, 4h, 1d, 1w")
    return f"{int(m.group(1))}{_UNITS[m.group(2)]}"


# ---- the cycle, in numba -------------------------------------------------------------------------
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
    """``trading.orders._to_tick``: exit prices sit on the tick grid."""
    if not tick > 0:
        return price
    digits = max(0, -math.floor(math.log10(tick))) + 3
    return round(round(price / tick) * tick, digits)


@njit(cache=True)
def _fill(
    col,
    side,
    qty,
    price,
    fee_rate,
    reason,
    winbar,
    pos,
    fst,
    ist,
    buf_col,
    buf_size,
    buf_price,
    buf_fee,
    log_reason,
    log_win,
):
    """Book one fill as the paper broker does (cash ± notional − fee, ``fee_rate`` × notional) and queue
    it for vectorbt. Cash and position left within 1e-9 (relative) of zero become zero, as in
    vectorbt's own ledger, so the two never disagree. Returns the fee."""
    notional = qty * price
    fee = notional * fee_rate
    booked = qty if side > 0 or qty <= pos[col] else pos[col]  # vectorbt's ledger closes, not overshoots
    if side > 0:
        fst[0] = add_nb(fst[0], -notional - fee)
        pos[col] = add_nb(pos[col], qty)
    else:
        fst[0] = fst[0] + (notional - fee)
        pos[col] = add_nb(pos[col], -qty)
    b = ist[1]
    buf_col[b], buf_size[b], buf_price[b], buf_fee[b] = col, side * booked, price, booked * price * fee_rate
    ist[1] = b + 1
    k = ist[3]
    log_reason[k], log_win[k] = reason, winbar
    ist[3] = k + 1
    return fee


@njit(cache=True)
def _sync_exits(col, lastq, lot, tick, min_notional, pos, book_sl, book_tp, sl_rest, tp_rest, sl_px, tp_px, leg_qty):
    """``OrderManager.sync_exits`` for one symbol: keep one exit pair the size of the position; a
    pair of the wrong size (or none) is cancelled and placed again, each leg checked as the venue
    checks it against the last known price."""
    held = pos[col]
    has = sl_rest[col] or tp_rest[col]
    stops = np.isfinite(book_sl[col]) or np.isfinite(book_tp[col])
    if held <= 0 and not has:
        return
    want = _floor_to_lot(held, lot[col]) if held > 0 and stops else 0.0
    have = leg_qty[col] if has else 0.0
    if abs(have - want) <= 1e-9 * max(1.0, want):
        return
    sl_rest[col] = False
    tp_rest[col] = False
    leg_qty[col] = 0.0
    if want <= 0:
        return
    last = lastq[col]
    if np.isfinite(book_sl[col]):
        px = _to_tick(book_sl[col], tick[col])
        if px < last and want * px >= min_notional[col]:
            sl_rest[col], sl_px[col] = True, px
    if np.isfinite(book_tp[col]):
        px = _to_tick(book_tp[col], tick[col])
        if px > last and want * px >= min_notional[col]:
            tp_rest[col], tp_px[col] = True, px
    if sl_rest[col] or tp_rest[col]:
        leg_qty[col] = want


@njit(cache=True)
def _cycle_nb(
    i,
    open_,
    high,
    low,
    close,
    sig,
    strength,
    stop,
    take,
    day,
    lot,
    tick,
    min_notional,
    fee,
    slip,
    prm,
    fst,
    ist,
    pos,
    book_sl,
    book_tp,
    book_win,
    sl_rest,
    tp_rest,
    sl_px,
    tp_px,
    leg_qty,
    lastq,
    buf_col,
    buf_size,
    buf_price,
    buf_fee,
    log_reason,
    log_win,
    halted,
    eq_post,
):
    """One ``run_cycle`` at bar ``i``; fills go to the buffers for vectorbt. ``prm`` = (max_position_pct,
    max_daily_loss_pct, min_strength, risk_per_trade_pct)."""
    n = close.shape[1]
    max_pos, max_loss, min_strength, rpt = prm[0], prm[1], prm[2], prm[3]
    # 1. the venue takes the bar: resting legs (all stops, then all take-profits).
    for col in range(n):
        c = close[i, col]
        if np.isfinite(c) and c > 0:
            lastq[col] = c
    for rank in range(2):
        for col in range(n):
            c = close[i, col]
            if not (np.isfinite(c) and c > 0) or leg_qty[col] <= 0:
                continue
            o, h, lo = open_[i, col], high[i, col], low[i, col]
            o = o if np.isfinite(o) and o > 0 else c
            h = h if np.isfinite(h) and h > 0 else c
            lo = lo if np.isfinite(lo) and lo > 0 else c
            if rank == 0 and sl_rest[col] and lo <= sl_px[col]:
                px = min(sl_px[col], o) * (1 - slip[col])
                reason = _STOP
            elif rank == 1 and tp_rest[col] and h >= tp_px[col]:
                px = max(tp_px[col], o)
                reason = _TAKE
            else:
                continue
            _fill(
                col,
                -1,
                leg_qty[col],
                px,
                fee[col],
                reason,
                book_win[col],
                pos,
                fst,
                ist,
                buf_col,
                buf_size,
                buf_price,
                buf_fee,
                log_reason,
                log_win,
            )
            sl_rest[col], tp_rest[col], leg_qty[col] = False, False, 0.0
            if pos[col] == 0.0:
                book_sl[col], book_tp[col] = np.nan, np.nan
    # 2. exit pairs where missing; 3. the market-sell fallback for stops that do not rest.
    for col in range(n):
        _sync_exits(col, lastq, lot, tick, min_notional, pos, book_sl, book_tp, sl_rest, tp_rest, sl_px, tp_px, leg_qty)
    for col in range(n):
        c = close[i, col]
        if pos[col] <= 0 or not (np.isfinite(c) and c > 0):
            continue
        lo = low[i, col] if np.isfinite(low[i, col]) else c
        h = high[i, col] if np.isfinite(high[i, col]) else c
        if np.isfinite(book_sl[col]) and lo <= book_sl[col] and not sl_rest[col]:
            reason = _STOP
        elif np.isfinite(book_tp[col]) and h >= book_tp[col] and not tp_rest[col]:
            reason = _TAKE
        else:
            continue
        qty = _floor_to_lot(pos[col], lot[col])
        if qty <= 0:
            continue
        sl_rest[col], tp_rest[col], leg_qty[col] = False, False, 0.0  # a closing sell withdraws the pair
        if qty * c < min_notional[col]:
            continue  # the venue refuses it
        _fill(
            col,
            -1,
            qty,
            c * (1 - slip[col]),
            fee[col],
            reason,
            book_win[col],
            pos,
            fst,
            ist,
            buf_col,
            buf_size,
            buf_price,
            buf_fee,
            log_reason,
            log_win,
        )
        if pos[col] == 0.0:
            book_sl[col], book_tp[col] = np.nan, np.nan
    # 4. the snapshot and the day's starting equity.
    mv = 0.0
    for col in range(n):
        if pos[col] != 0.0:
            mv += pos[col] * lastq[col]
    equity = fst[0] + mv
    if i == 0 or day[i] != ist[0]:
        fst[2] = fst[1] if i > 0 else equity
        ist[0] = day[i]
    start = fst[2]
    # 5. the signals, in column order.
    for col in range(n):
        s = sig[i, col]
        if s == 0:
            continue
        c = close[i, col]
        if not (np.isfinite(c) and c > 0):
            continue  # no quote
        if not min(max(strength[i, col], 0.0), 1.0) > min_strength:
            continue
        held = pos[col]
        if s < 0:
            if held <= 0:
                continue
            qty = _floor_to_lot(held, lot[col])
            if qty <= 0:
                continue
            sl_rest[col], tp_rest[col], leg_qty[col] = False, False, 0.0
            if qty * c < min_notional[col]:
                continue
            px = c * (1 - slip[col])
            f = _fill(
                col,
                -1,
                qty,
                px,
                fee[col],
                _SELL,
                i,
                pos,
                fst,
                ist,
                buf_col,
                buf_size,
                buf_price,
                buf_fee,
                log_reason,
                log_win,
            )
            equity = equity - held * c + pos[col] * c
            equity += qty * px - f
            if pos[col] == 0.0:
                book_sl[col], book_tp[col] = np.nan, np.nan
            continue
        pnl_pct = (equity - start) / start if start > 0 else 0.0
        if not pnl_pct > -max_loss:
            halted[i] = True
            continue
        sl = stop[i, col]
        if not (np.isfinite(sl) and sl > 0 and sl < c):
            continue
        cap_value = max_pos * equity
        if held * c >= cap_value * (1 - 1e-9):
            continue
        if not (equity > 0):
            continue
        cap = max_pos * equity / c - max(held, 0.0)
        risk = np.inf
        if abs(c - sl) > 0:
            risk = rpt * equity / abs(c - sl)
        cash = fst[0]
        cost_factor = (1.0 + slip[col]) * (1.0 + fee[col])  # risk.entry_cost_factor of the exchange's costs
        afford = max(cash, 0.0) / (c * cost_factor)
        qty = _floor_to_lot(min(cap, risk, afford), lot[col])
        if qty <= 0 or qty * c < min_notional[col]:
            continue
        if qty * c * cost_factor > cash + 1e-9 or (held + qty) * c > cap_value * (1 + 1e-9):
            continue
        px = c * (1 + slip[col])
        if qty * px * (1 + fee[col]) > cash + 1e-9:
            continue  # the venue refuses (a last-bit rounding difference from the risk rules' sum)
        f = _fill(
            col,
            1,
            qty,
            px,
            fee[col],
            _ENTRY,
            i,
            pos,
            fst,
            ist,
            buf_col,
            buf_size,
            buf_price,
            buf_fee,
            log_reason,
            log_win,
        )
        equity = equity - held * c + pos[col] * c
        equity += -(qty * px) - f
        book_sl[col], book_tp[col], book_win[col] = sl, take[i, col], i
    # 6. exit pairs follow the positions; the cycle's closing equity.
    mv = 0.0
    for col in range(n):
        _sync_exits(col, lastq, lot, tick, min_notional, pos, book_sl, book_tp, sl_rest, tp_rest, sl_px, tp_px, leg_qty)
        if pos[col] != 0.0:
            mv += pos[col] * lastq[col]
    fst[1] = fst[0] + mv
    eq_post[i] = fst[1]


@njit(cache=True)
def _simulate_nb(
    open_,
    high,
    low,
    close,
    sig,
    strength,
    stop,
    take,
    day,
    lot,
    tick,
    min_notional,
    fee,
    slip,
    prm,
    fst,
    ist,
    pos,
    book_sl,
    book_tp,
    book_win,
    sl_rest,
    tp_rest,
    sl_px,
    tp_px,
    leg_qty,
    lastq,
    buf_col,
    buf_size,
    buf_price,
    buf_fee,
    log_reason,
    log_win,
    halted,
    eq_post,
    buf_idx,
):
    """Every cycle in bar order; the fills land in the order buffers (``ist[1]`` of them) with their bar."""
    for i in range(close.shape[0]):
        first = ist[1]
        _cycle_nb(
            i, open_, high, low, close, sig, strength, stop, take, day, lot, tick, min_notional, fee, slip, prm,
            fst, ist, pos, book_sl, book_tp, book_win, sl_rest, tp_rest, sl_px, tp_px, leg_qty, lastq,
            buf_col, buf_size, buf_price, buf_fee, log_reason, log_win, halted, eq_post,
        )  # fmt: skip
        for k in range(first, ist[1]):
            buf_idx[k] = i


def _order_records(n: int, buf_idx, buf_col, buf_size, buf_price, buf_fee) -> np.ndarray:
    """The fills as vectorbt order records (in booking order), so its Portfolio derives the rest."""
    from vectorbt.portfolio.enums import order_dt

    rec = np.empty(n, dtype=order_dt)
    rec["id"] = np.arange(n)
    rec["col"], rec["idx"] = buf_col[:n], buf_idx[:n]
    rec["size"], rec["price"], rec["fees"] = np.abs(buf_size[:n]), buf_price[:n], buf_fee[:n]
    rec["side"] = np.where(buf_size[:n] > 0, 0, 1)
    return rec


# ---- inputs ---------------------------------------------------------------------------------------
def _per_symbol(columns, markets, exchange_costs, costs):
    lot, tick, mn, fee, slip = (np.empty(len(columns)) for _ in range(5))
    ex_costs = {k: (float(f), float(s) / 1e4) for k, (f, s) in (exchange_costs or {}).items()}
    missing = [s for s in columns if markets is not None and s not in markets]
    if missing:
        raise ValueError(
            f"no trading rules (Market) for {missing[:5]}{'…' if len(missing) > 5 else ''}: pass a Market for every traded symbol"
        )
    for j, sym in enumerate(columns):
        if markets is not None:
            m = markets[sym]
        else:  # the paper broker's default market for an unknown symbol
            exch, _, rest = sym.rpartition(":")
            m = Market(
                symbol=sym, base=rest.partition("/")[0], quote=rest.partition("/")[2] or "USD", exchange=exch or None
            )
        lot[j], tick[j], mn[j] = m.lot_size, m.tick_size, m.min_notional
        fee[j], slip[j] = ex_costs.get(cost_exchange(sym, m), (costs.fee_rate, costs.slippage_bps / 1e4))
    return lot, tick, mn, fee, slip


def _wide(df: pd.DataFrame, index, columns) -> np.ndarray:
    return np.ascontiguousarray(df.reindex(index=index, columns=columns).to_numpy(dtype=float))


def run_backtest(
    frames: dict[str, pd.DataFrame],
    panel: Panel,
    risk: RiskLimits,
    costs: CostModel,
    cash: float = 100_000.0,
    *,
    windows: pd.Series | None = None,
    markets: dict[str, Market] | None = None,
    exchange_costs: dict[str, tuple[float, float]] | None = None,
) -> BacktestResult:
    """Trade the signal frames (``signals.signal_frame`` / ``models.inference.signals_for_panel``) over
    the panel as the live loop with the paper broker would, one cycle per frame row.

    ``windows``: the walk-forward fold label per bar (index of the frames), copied to each order
    (the fold whose signal caused it: the entry's for stop and target exits) and trade.
    ``markets``: lot, tick and minimum notional per symbol (default: the paper broker's defaults).
    ``exchange_costs``: exchange → (fee_rate, slippage_bps), as ``PaperAccount.exchange_costs``."""
    import vectorbt as vbt

    side = frames["side"]
    if side.empty:
        raise ValueError("no bars to backtest: the signal frames are empty (check the start/end window)")
    if not cash > 0:
        raise ValueError(f"starting cash must be positive, got {cash!r}")
    index, columns = side.index, side.columns
    nb, nc = len(index), len(columns)
    op, hi, lo, cl = (_wide(panel.field(f), index, columns) for f in ("open", "high", "low", "close"))
    presence = frames.get("confidence", frames["strength"])
    present = np.isfinite(_wide(presence, index, columns))
    sd = _wide(side, index, columns)
    sig = np.where(present & (sd > 0), 1, np.where(present & (sd < 0), -1, 0)).astype(np.int8)
    strength = _wide(frames["strength"], index, columns)
    with np.errstate(invalid="ignore"):
        stop = np.round(_wide(frames["stop"], index, columns), 10)
        take = np.round(_wide(frames["take_profit"], index, columns), 10)
    stamps = pd.DatetimeIndex(index)
    utc = stamps.tz_convert("UTC") if stamps.tz is not None else stamps.tz_localize("UTC")
    # The live day key: the UTC calendar date of the bar (``portfolio.day_key``), as a day number.
    day = np.asarray((utc.normalize() - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(days=1), dtype=np.int64)
    lot, tick, mn, fee, slip = _per_symbol(list(columns), markets, exchange_costs, costs)
    prm = np.array([risk.max_position_pct, risk.max_daily_loss_pct, risk.min_strength, risk.risk_per_trade_pct])

    # Every exit closes a position an entry opened, so orders ≤ 2 × possible entries.
    max_orders = int(2 * np.count_nonzero(sig > 0) + 1)
    fst = np.array([float(cash), float(cash), float(cash)])
    ist = np.zeros(4, np.int64)
    pos, book_sl, book_tp = np.zeros(nc), np.full(nc, np.nan), np.full(nc, np.nan)
    book_win = np.zeros(nc, np.int64)
    sl_rest, tp_rest = np.zeros(nc, np.bool_), np.zeros(nc, np.bool_)
    sl_px, tp_px, leg_qty = np.full(nc, np.nan), np.full(nc, np.nan), np.zeros(nc)
    lastq = np.full(nc, np.nan)
    buf_col, buf_idx = np.zeros(max_orders, np.int64), np.zeros(max_orders, np.int64)
    buf_size, buf_price, buf_fee = (np.zeros(max_orders) for _ in range(3))
    log_reason, log_win = np.zeros(max_orders, np.int8), np.zeros(max_orders, np.int64)
    halted, eq_post = np.zeros(nb, np.bool_), np.full(nb, np.nan)
    args = (op, hi, lo, cl, sig, strength, stop, take, day, lot, tick, mn, fee, slip, prm,
            fst, ist, pos, book_sl, book_tp, book_win, sl_rest, tp_rest, sl_px, tp_px, leg_qty, lastq,
            buf_col, buf_size, buf_price, buf_fee, log_reason, log_win, halted, eq_post)  # fmt: skip

    # Valuation at the last known close (a held symbol without a bar keeps its price), as the live snapshot.
    mark = pd.DataFrame(np.where(cl > 0, cl, np.nan), index=index, columns=columns).ffill()
    freq = vbt_freq(panel.timeframe)
    _simulate_nb(*args, buf_idx)
    n_orders = int(ist[1])
    # vectorbt books nothing itself: it receives the fills as order records and derives cash, value,
    # positions and trades from them (its own simulator would be compiled afresh in every process).
    from vectorbt.base.array_wrapper import ArrayWrapper
    from vectorbt.portfolio.enums import log_dt

    records = _order_records(n_orders, buf_idx, buf_col, buf_size, buf_price, buf_fee)
    # vectorbt checks every output's shape with np.asarray(index), which turns a tz-aware index into
    # Python Timestamps one by one (seconds at 1,260 bars × 20 outputs): it works on the naive UTC
    # index, and the outputs get the frames' own index back.
    if isinstance(index, pd.DatetimeIndex) and index.tz is not None:
        mark = mark.set_axis(index.tz_convert("UTC").tz_localize(None), axis=0)
    wrapper = ArrayWrapper.from_obj(mark, freq=freq, group_by=True)
    pf = vbt.Portfolio(wrapper, mark, records, np.zeros(0, dtype=log_dt), np.array([float(cash)]), True)
    orders = _orders_frame(pf, index, columns, log_reason[:n_orders], log_win[:n_orders], windows)
    trades = _trades_frame(pf, index, columns, orders)
    return BacktestResult(
        equity=pf.value().rename("equity").set_axis(index, axis=0),
        cash=pf.cash().rename("cash").set_axis(index, axis=0),
        positions_value=pf.asset_value(group_by=False).set_axis(index, axis=0),
        orders=orders,
        trades=trades,
        halted=pd.Series(halted, index=index, name="halted"),
        init_cash=float(cash),
        freq=freq,
        portfolio=pf,
        meta={
            "engine": "live-loop replay (paper broker rules) in vectorbt from_order_func",
            "n_symbols": nc,
            "n_bars": nb,
            "exchange": panel.exchange,
            "timeframe": panel.timeframe,
            "risk": risk.model_dump(),
            "costs": costs.model_dump(),
            "exchange_costs": dict(exchange_costs or {}),
            "windows": [] if windows is None else [str(w) for w in pd.unique(windows.dropna())],
            "ledger_equity": pd.Series(eq_post, index=index, name="equity"),
        },
    )


def _window_labels(windows: pd.Series | None, index: pd.Index, bars: np.ndarray) -> np.ndarray:
    if windows is None:
        return np.full(len(bars), "", dtype=object)
    lab = windows.reindex(index).astype(object).where(lambda s: s.notna(), "").astype(str).to_numpy(dtype=object)
    return lab[bars] if len(bars) else np.empty(0, dtype=object)


def _orders_frame(pf, index, columns, reason, winbar, windows) -> pd.DataFrame:
    rec = pf.orders.values
    if len(rec) != len(reason):
        raise RuntimeError(
            f"vectorbt booked {len(rec)} orders but the live rules placed {len(reason)}: the ledgers disagree"
        )
    return pd.DataFrame(
        {
            "ts": index[rec["idx"]],
            "symbol": np.asarray(columns, dtype=object)[rec["col"]],
            "side": np.where(rec["side"] == 0, "buy", "sell"),
            "quantity": rec["size"],
            "price": rec["price"],
            "fee": rec["fees"],
            "reason": np.asarray(REASONS, dtype=object)[reason],
            "window": _window_labels(windows, index, winbar),
        },
        columns=list(ORDER_COLUMNS),
    )


def _trades_frame(pf, index, columns, orders: pd.DataFrame) -> pd.DataFrame:
    """One row per position (first entry → the sell that closed it), from vectorbt's position records."""
    p = pf.positions.values
    orec = pf.orders.values
    nb = len(index)
    # Key (col, bar, side) is unique: one signal per symbol per bar, one exit per position.
    key = (orec["col"].astype(np.int64) * nb + orec["idx"]) * 2 + orec["side"]
    order = np.argsort(key, kind="stable")

    def lookup(col, idx, side):
        k = (col.astype(np.int64) * nb + idx) * 2 + side
        return order[np.searchsorted(key[order], k)]

    closed = p["status"] == 1
    entry_o = lookup(p["col"], p["entry_idx"], 0) if len(p) else np.zeros(0, np.int64)
    exit_o = lookup(p["col"][closed], p["exit_idx"][closed], 1) if closed.any() else np.zeros(0, np.int64)
    exit_reason = np.full(len(p), "open", dtype=object)
    exit_reason[closed] = orders["reason"].to_numpy(dtype=object)[exit_o]
    exit_ts = pd.Series(pd.NaT, index=range(len(p)), dtype=index.dtype)
    exit_ts[closed] = index[p["exit_idx"][closed]]
    last = len(index) - 1
    return pd.DataFrame(
        {
            "symbol": np.asarray(columns, dtype=object)[p["col"]],
            "entry_ts": index[p["entry_idx"]],
            "exit_ts": exit_ts.to_numpy(),
            "quantity": p["size"],
            "entry_price": p["entry_price"],
            "exit_price": p["exit_price"],
            "pnl": p["pnl"],
            "return_pct": p["return"],
            "fees": p["entry_fees"] + p["exit_fees"],
            "exit_reason": exit_reason,
            "window": orders["window"].to_numpy(dtype=object)[entry_o] if len(p) else np.empty(0, dtype=object),
            "bars_held": np.where(closed, p["exit_idx"], last) - p["entry_idx"],
        },
        columns=list(TRADE_COLUMNS),
    )
