"""The backtest engine: the live loop's decisions, bar for bar, with vectorbt's records beside them.

Why this shape: a backtest is only evidence about live trading if it trades exactly what the live
loop (``trading.loop.run_cycle`` with the ``PaperBroker`` on a replay) would. So the engine does not
approximate the loop with vectorbt's signal helpers; it re-states the loop's cycle as one numba
per-bar kernel (``backtest.kernel._cycle_nb``, run for every bar by ``_simulate_nb``, compiled once
and cached on disk). The kernel books the fills and writes cash, equity and each symbol's value at
every close; vectorbt's own trade and position functions turn the fills into the trades, and its
``Portfolio`` (one group, shared cash) over the same fills is built on first use of
``BacktestResult.portfolio`` for its plots and stats (a test checks the two ledgers agree). Its
``from_order_func`` simulator is not used: numba does not cache it, so it cost ~10 s of compilation
in every fresh process. The parity test replays the same bars through the real loop and compares.

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

import re
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from workbench.backtest.kernel import ACCOUNT_DT, BOOK_DT, FILL_DT, LIMITS_DT, RULES_DT, Bars, Tape, _simulate_nb
from workbench.backtest.result import ORDER_COLUMNS, TRADE_COLUMNS, BacktestResult
from workbench.config import CostModel, RiskLimits
from workbench.data.panel import Panel
from workbench.market import Market, cost_exchange

__all__ = ["REASONS", "run_backtest", "vbt_freq"]

# Order reasons, by the code the numba kernel (``backtest.kernel``) records.
REASONS = ("entry", "sell_signal", "stop_loss", "take_profit")

_UNITS = {"s": "s", "m": "min", "h": "h", "d": "D", "w": "W"}


def vbt_freq(timeframe: str) -> str:
    """ccxt-style timeframe ("1m", "15m", "1h", "4h", "1d", "1w") → pandas frequency ("15min", "1D", ...)."""
    m = re.fullmatch(r"(\d+)([smhdw])", timeframe.strip())
    if not m:
        raise ValueError(f"timeframe {timeframe!r} not understood: use e.g. 1m, 15m, 1h, 4h, 1d, 1w")
    return f"{int(m.group(1))}{_UNITS[m.group(2)]}"


# ---- inputs ---------------------------------------------------------------------------------------
def _per_symbol(columns, markets, exchange_costs, costs) -> np.ndarray:
    """The kernel's per-symbol rules (``RULES_DT``): lot, tick, minimum notional, fee and slippage."""
    rules = np.zeros(len(columns), RULES_DT)
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
        fee, slip = ex_costs.get(cost_exchange(sym, m), (costs.fee_rate, costs.slippage_bps / 1e4))
        rules[j] = (m.lot_size, m.tick_size, m.min_notional, fee, slip)
    return rules


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
    stop, take = _wide(frames["stop"], index, columns), _wide(frames["take_profit"], index, columns)
    stamps = pd.DatetimeIndex(index)
    utc = stamps.tz_convert("UTC") if stamps.tz is not None else stamps.tz_localize("UTC")
    # The live day key: the UTC calendar date of the bar (``portfolio.day_key``), as a day number.
    day = np.asarray((utc.normalize() - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(days=1), dtype=np.int64)
    rules = _per_symbol(list(columns), markets, exchange_costs, costs)
    limits = np.array(
        [(risk.max_position_pct, risk.max_daily_loss_pct, risk.min_strength, risk.risk_per_trade_pct)], LIMITS_DT
    )
    # Every exit closes a position an entry opened, so orders ≤ 2 × possible entries.
    fills = np.zeros(int(2 * np.count_nonzero(sig > 0) + 1), FILL_DT)
    account = np.array([(cash, cash, cash, 0, 0)], ACCOUNT_DT)
    book = np.zeros(nc, BOOK_DT)
    for name in ("sl", "tp", "sl_px", "tp_px", "last"):
        book[name] = np.nan
    tape = Tape(np.zeros(nb, np.bool_), np.zeros(nb), np.zeros(nb), np.zeros((nb, nc)), np.zeros((nb, nc)))
    _simulate_nb(Bars(op, hi, lo, cl, sig, strength, stop, take, day), rules, limits, account, book, fills, tape)
    fills = fills[: int(account[0]["fills"])]

    freq = vbt_freq(panel.timeframe)
    orders = _orders_frame(fills, index, columns, windows)
    rec = _order_records(fills)
    trades = _trades_frame(rec, _positions(rec, tape.mark), fills, index, columns, orders)
    return BacktestResult(
        equity=pd.Series(tape.equity, index=index, name="equity"),
        cash=pd.Series(tape.cash, index=index, name="cash"),
        positions_value=pd.DataFrame(tape.value, index=index, columns=columns),
        orders=orders,
        trades=trades,
        halted=pd.Series(tape.halted, index=index, name="halted"),
        init_cash=float(cash),
        freq=freq,
        portfolio_builder=partial(_portfolio, rec, tape.mark, index, columns, freq, float(cash)),
        meta={
            "engine": "live-loop replay (paper broker rules) in a numba kernel; vectorbt Portfolio from its fills",
            "n_symbols": nc,
            "n_bars": nb,
            "exchange": panel.exchange,
            "timeframe": panel.timeframe,
            "risk": risk.model_dump(),
            "costs": costs.model_dump(),
            "exchange_costs": dict(exchange_costs or {}),
            "windows": [] if windows is None else [str(w) for w in pd.unique(windows.dropna())],
            "ledger_equity": pd.Series(tape.equity, index=index, name="equity"),
        },
    )


def _window_labels(windows: pd.Series | None, index: pd.Index, bars: np.ndarray) -> Any:
    """The walk-forward fold label of each bar in ``bars`` ("" where none)."""
    if windows is None:
        return _labels(np.array([""], dtype=object), np.zeros(len(bars), np.int64))
    lab = windows.reindex(index).astype(object).where(lambda s: s.notna(), "").astype(str).to_numpy(dtype=object)
    return _labels(lab, bars)


def _order_records(fills: np.ndarray) -> np.ndarray:
    """The fills as vectorbt order records, in booking order."""
    from vectorbt.portfolio.enums import order_dt

    rec = np.empty(len(fills), dtype=order_dt)
    rec["id"] = np.arange(len(fills))
    rec["col"], rec["idx"] = fills["col"], fills["idx"]
    rec["size"], rec["price"], rec["fees"] = np.abs(fills["size"]), fills["price"], fills["fee"]
    rec["side"] = np.where(fills["size"] > 0, 0, 1)
    return rec


def _portfolio(rec: np.ndarray, marks: np.ndarray, index: pd.Index, columns: pd.Index, freq: str, cash: float) -> Any:
    """vectorbt's ``Portfolio`` over the fills (one group, shared cash), for its plots and stats: it
    books nothing itself but derives from the order records (its simulators are not used: they would
    be compiled afresh in every process). Built on first use of ``BacktestResult.portfolio``."""
    import vectorbt as vbt
    from vectorbt.base.array_wrapper import ArrayWrapper
    from vectorbt.portfolio.enums import log_dt

    # vectorbt checks every output's shape with np.asarray(index), which turns a tz-aware index into
    # Python Timestamps one by one (seconds at 1,260 bars × 20 outputs): it works on the naive UTC index.
    if isinstance(index, pd.DatetimeIndex) and index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    mark = pd.DataFrame(marks, index=index, columns=columns)
    wrapper = ArrayWrapper.from_obj(mark, freq=freq, group_by=True)
    return vbt.Portfolio(wrapper, mark, rec, np.zeros(0, dtype=log_dt), np.array([cash]), True)


def _positions(rec: np.ndarray, marks: np.ndarray) -> np.ndarray:
    """vectorbt's position records from the order records (what ``Portfolio.positions`` computes),
    without building a Portfolio."""
    from vectorbt.portfolio import dispatch
    from vectorbt.records.nb import col_map_nb

    n = marks.shape[1]
    exits = dispatch.get_exit_trades(rec, marks, col_map_nb(rec["col"], n))
    return dispatch.get_positions(exits, col_map_nb(exits["col"], n))


def _labels(values: pd.Index | np.ndarray, codes: np.ndarray) -> Any:
    """``values[codes]`` as an array pandas keeps (no per-element string conversion at 50k rows)."""
    return pd.Index(values).take(codes).array


def _orders_frame(fills: np.ndarray, index: pd.Index, columns: pd.Index, windows: pd.Series | None) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ts": index[fills["idx"]],
            "symbol": _labels(columns, fills["col"]),
            "side": _labels(np.array(["sell", "buy"], dtype=object), (fills["size"] > 0).astype(np.int64)),
            "quantity": np.abs(fills["size"]),
            "price": fills["price"],
            "fee": fills["fee"],
            "reason": _labels(np.array(REASONS, dtype=object), fills["reason"].astype(np.int64)),
            "window": _window_labels(windows, index, fills["win"]),
        },
        columns=list(ORDER_COLUMNS),
    )


def _trades_frame(
    rec: np.ndarray, p: np.ndarray, fills: np.ndarray, index: pd.Index, columns: pd.Index, orders: pd.DataFrame
) -> pd.DataFrame:
    """One row per position (first entry → the sell that closed it), from vectorbt's position records."""
    nb = len(index)
    # Key (col, bar, side) is unique: one signal per symbol per bar, one exit per position.
    key = (rec["col"].astype(np.int64) * nb + rec["idx"]) * 2 + rec["side"]
    order = np.argsort(key, kind="stable")

    def lookup(col, idx, side):
        k = (col.astype(np.int64) * nb + idx) * 2 + side
        return order[np.searchsorted(key[order], k)]

    closed = p["status"] == 1
    entry_o = lookup(p["col"], p["entry_idx"], 0) if len(p) else np.zeros(0, np.int64)
    exit_o = lookup(p["col"][closed], p["exit_idx"][closed], 1) if closed.any() else np.zeros(0, np.int64)
    reason = np.full(len(p), len(REASONS), np.int64)  # "open"
    reason[closed] = fills["reason"][exit_o]
    last = len(index) - 1
    exit_ts = pd.Series(index[np.where(closed, p["exit_idx"], 0)]).where(closed)  # NaT while open
    return pd.DataFrame(
        {
            "symbol": _labels(columns, p["col"]),
            "entry_ts": index[p["entry_idx"]],
            "exit_ts": exit_ts.array,
            "quantity": p["size"],
            "entry_price": p["entry_price"],
            "exit_price": p["exit_price"],
            "pnl": p["pnl"],
            "return_pct": p["return"],
            "fees": p["entry_fees"] + p["exit_fees"],
            "exit_reason": _labels(np.array([*REASONS, "open"], dtype=object), reason),
            "window": _labels(orders["window"].array, entry_o),
            "bars_held": np.where(closed, p["exit_idx"], last) - p["entry_idx"],
        },
        columns=list(TRADE_COLUMNS),
    )
