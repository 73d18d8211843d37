"""Backtests: trade the signal frames with vectorbt and report what would have happened.

Why this shape: the frames come from ``models.inference.signals_for_panel`` and the entry/exit rule
from ``signals.entry_exit_masks`` — the very functions the live loop uses — so a backtest is the
live strategy run over history, not a re-implementation of it.

Execution model (vectorbt ``Portfolio.from_signals``), long-only, one shared cash pool:
- an entry fills at the signal bar's close (plus slippage and fees); a strong SELL exits likewise;
- each entry carries its own stop-loss and take-profit, set from that bar's signal prices as a
  fraction of the close, checked against later bars' high/low;
- each position is ``risk.max_position_pct`` of the *starting* cash. vectorbt's from_signals can
  size by amount, value or share of *remaining cash* only — not by current equity — and a fixed
  notional keeps the cap honest without compounding. Entries beyond the cash are partly filled.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from workbench.config import CostModel, RiskLimits
from workbench.data.panel import Panel
from workbench.signals import entry_exit_masks

__all__ = ["vbt_freq", "simulate", "report", "run_backtest", "backtest_model", "REPORT_KEYS"]

REPORT_KEYS = (
    "total_return", "sharpe", "max_drawdown", "trades", "win_rate", "exposure", "fees",
    "start", "end", "benchmark_return", "final_value", "n_symbols",
)  # fmt: skip

_UNITS = {"s": "s", "m": "min", "h": "h", "d": "D", "w": "W"}


def vbt_freq(timeframe: str) -> str:
    """ccxt-style timeframe ("1m", "15m", "1h", "4h", "1d", "1w") → pandas frequency ("15min", "1D", ...)."""
    m = re.fullmatch(r"(\d+)([smhdw])", timeframe.strip())
    if not m:
        raise ValueError(f"timeframe {timeframe!r} not understood: use e.g. 1m, 15m, 1h, 4h, 1d, 1w")
    return f"{int(m.group(1))}{_UNITS[m.group(2)]}"


def simulate(frames: dict[str, pd.DataFrame], panel: Panel, risk: RiskLimits, costs: CostModel,
             cash: float = 100_000.0):
    """The vectorbt ``Portfolio`` for the frames (for plots and trade lists in notebooks)."""
    import vectorbt as vbt

    entries, exits = entry_exit_masks(frames, risk.min_strength)
    index, columns = entries.index, entries.columns
    close = panel.close.reindex(index=index, columns=columns)
    high = panel.high.reindex(index=index, columns=columns)
    low = panel.low.reindex(index=index, columns=columns)
    c = close.to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        sl = (c - frames["stop"].reindex_like(close).to_numpy(dtype=float)) / c
        tp = (frames["take_profit"].reindex_like(close).to_numpy(dtype=float) - c) / c
    on_entry = entries.to_numpy()
    sl = np.where(on_entry & np.isfinite(sl) & (sl > 0), sl, np.nan)
    tp = np.where(on_entry & np.isfinite(tp) & (tp > 0), tp, np.nan)
    # An entry or exit needs a price on its bar; vectorbt's "no stop" is NaN.
    has_price = np.isfinite(c) & (c > 0)
    entries = entries & has_price
    exits = exits & has_price
    return vbt.Portfolio.from_signals(
        close,
        entries=entries,
        exits=exits,
        price=close,
        high=high,
        low=low,
        size=risk.max_position_pct * cash,
        size_type="value",
        fees=costs.fee_rate,
        slippage=costs.slippage_bps / 1e4,
        sl_stop=pd.DataFrame(sl, index=index, columns=columns),
        tp_stop=pd.DataFrame(tp, index=index, columns=columns),
        direction="longonly",
        accumulate=False,
        init_cash=cash,
        cash_sharing=True,
        group_by=True,
        freq=vbt_freq(panel.timeframe),
    )


def _bars_per_year(index: pd.DatetimeIndex) -> float:
    span_years = (index[-1] - index[0]).total_seconds() / (365.25 * 86400) if len(index) > 1 else 0.0
    return (len(index) - 1) / span_years if span_years > 0 else float("nan")


def report(pf, panel: Panel) -> dict:
    """Headline numbers of a portfolio, with an equal-weight buy & hold of the same symbols and window."""
    value = pf.value()
    index = value.index
    rets = value.pct_change().iloc[1:]
    sd = float(rets.std(ddof=1)) if len(rets) > 1 else float("nan")
    sharpe = float(rets.mean() / sd * np.sqrt(_bars_per_year(index))) if sd and np.isfinite(sd) and sd > 0 else 0.0
    trades = pf.trades
    closed = trades.closed
    n_closed = int(closed.count())
    win_rate = float((closed.pnl.values > 0).mean()) if n_closed else float("nan")
    gross = pf.asset_value(group_by=False).abs().sum(axis=1)
    exposure = float((gross / value).replace([np.inf, -np.inf], np.nan).fillna(0.0).mean())
    close = panel.close.reindex(index=index, columns=pf.wrapper.columns)
    first = close.bfill().iloc[0]
    last = close.ffill().iloc[-1]
    bench = (last / first - 1.0).replace([np.inf, -np.inf], np.nan)
    return {
        "total_return": float(value.iloc[-1] / value.iloc[0] - 1.0),
        "sharpe": sharpe,
        "max_drawdown": float((value / value.cummax() - 1.0).min()),
        "trades": int(trades.count()),
        "win_rate": win_rate,
        "exposure": exposure,
        "fees": float(pf.orders.fees.sum()),
        "start": index[0].isoformat(),
        "end": index[-1].isoformat(),
        "benchmark_return": float(bench.mean()) if bench.notna().any() else float("nan"),
        "final_value": float(value.iloc[-1]),
        "n_symbols": int(len(pf.wrapper.columns)),
    }


def run_backtest(frames: dict[str, pd.DataFrame], panel: Panel, risk: RiskLimits, costs: CostModel,
                 cash: float = 100_000.0) -> dict:
    """Trade ``signals.signal_frame`` frames over the panel; returns the report dict (``REPORT_KEYS``)."""
    if frames["side"].empty:
        raise ValueError("no bars to backtest: the signal frames are empty (check the start/end window)")
    return report(simulate(frames, panel, risk, costs, cash), panel)


def backtest_model(settings, ref: str = "champion", panel: Panel | None = None, start=None, end=None) -> dict:
    """Backtest a registered model out of sample and log the report to its MLflow run.

    Trades from the model's test window start (or ``start``) to ``end``; the features get
    ``warmup`` bars of history before that so the first traded bar sees converged indicators.
    """
    from workbench.features.pipeline import get_feature_set
    from workbench.models.inference import signals_for_panel
    from workbench.models.registry import Registry

    registry = Registry(settings)
    model = registry.load(ref)
    if panel is None:
        from workbench.data.lake import Lake

        uni = model.universe
        panel = Lake(settings.lake_dir).load_panel(uni["exchange"], uni["timeframe"], list(uni["symbols"]))
    t0 = pd.Timestamp(start if start is not None else model.split["test_start"])
    t0 = t0.tz_localize("UTC") if t0.tzinfo is None else t0.tz_convert("UTC")
    t1 = None
    if end is not None:
        t1 = pd.Timestamp(end)
        t1 = t1.tz_localize("UTC") if t1.tzinfo is None else t1.tz_convert("UTC")
        panel = panel.upto(t1)
    first = int(panel.index.searchsorted(t0))
    if first >= len(panel.index):
        raise ValueError(f"no bars on or after {t0.isoformat()} in the panel (last bar {panel.index[-1]}): pull newer data")
    warm = get_feature_set(model.feature_set).warmup
    panel = panel.iloc(slice(max(0, first - warm), None))
    frames = signals_for_panel(model, panel, settings.signals)
    frames = {k: v.loc[t0:] for k, v in frames.items()}
    traded = panel.iloc(slice(int(panel.index.searchsorted(t0)), None))
    rep = run_backtest(frames, traded, settings.risk, settings.costs, cash=settings.paper.starting_cash)
    rep["model"] = f"{model.ref.name}/{model.ref.version}"
    registry.log_report(model.ref.run_id, {f"backtest_{k}": v for k, v in rep.items()})
    return rep

