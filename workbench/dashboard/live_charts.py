"""The live view's interactive charts: plotly FigureWidgets built once and updated in place.

A PNG re-rendered every refresh cannot be zoomed or hovered and costs a matplotlib draw each time;
a FigureWidget keeps the user's zoom while only the changed arrays go to the browser.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

__all__ = [
    "equity_figure",
    "update_equity",
    "price_figure",
    "update_price",
    "gauge_figure",
    "update_gauges",
    "timing_figure",
    "update_timings",
    "drawdown",
]

_MARGIN = dict(l=50, r=10, t=30, b=30)


def _plain(values: Any) -> list[Any]:
    """Plain lists for the browser: the widget's update messages did not draw numpy arrays (sent as
    typed-array specs) in Voilà, while lists of numbers and ISO time strings draw (seen in Chromium)."""
    if isinstance(values, pd.DatetimeIndex | pd.Series) and pd.api.types.is_datetime64_any_dtype(values):
        return [t.isoformat() for t in pd.DatetimeIndex(values).tz_convert(None)]
    arr = np.asarray(values)
    if arr.dtype.kind == "f":
        return [None if np.isnan(v) else float(v) for v in arr]
    return arr.tolist()


def drawdown(equity: np.ndarray) -> np.ndarray:
    """The fall from the running peak, as a fraction (0 at a new high, -0.1 ten percent below it)."""
    if len(equity) == 0:
        return np.asarray(equity, dtype=float)
    peak = np.maximum.accumulate(equity)
    return np.where(peak > 0, equity / peak - 1.0, 0.0)


def equity_figure() -> go.FigureWidget:
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3], vertical_spacing=0.04)
    fig.add_scatter(name="equity", mode="lines", line=dict(color="#1565c0"), row=1, col=1)
    fig.add_scatter(name="drawdown", mode="lines", fill="tozeroy", line=dict(color="#c62828"), row=2, col=1)
    fig.update_yaxes(title_text="equity", tickformat=",.0f", row=1, col=1)
    fig.update_yaxes(title_text="drawdown", tickformat=".1%", row=2, col=1)
    fig.update_layout(height=320, margin=_MARGIN, showlegend=False, title=dict(text="Equity and drawdown", x=0))
    return go.FigureWidget(fig)


def update_equity(fig: go.FigureWidget, curve: pd.DataFrame) -> None:
    """Replace the two series (hundreds to thousands of points: cheap) keeping the user's zoom."""
    if curve.empty:
        return
    x = pd.to_datetime(curve["bar_ts"].fillna(curve["ts"]), utc=True, format="ISO8601")
    eq = curve["equity"].to_numpy(dtype=float)
    with fig.batch_update():
        fig.data[0].x, fig.data[0].y = _plain(x), _plain(eq)
        fig.data[1].x, fig.data[1].y = _plain(x), _plain(drawdown(eq))


def price_figure() -> go.FigureWidget:
    fig = go.Figure()
    fig.add_scatter(name="price", mode="lines", line=dict(color="#333"))
    fig.add_scatter(name="BUY signal", mode="markers", marker=dict(symbol="triangle-up", size=9, color="#2e7d32"))
    fig.add_scatter(name="SELL signal", mode="markers", marker=dict(symbol="triangle-down", size=9, color="#c62828"))
    fig.add_scatter(name="entry (fill)", mode="markers", marker=dict(symbol="circle", size=10, color="#1565c0"))
    fig.add_scatter(name="exit (fill)", mode="markers", marker=dict(symbol="x", size=10, color="#ef6c00"))
    fig.add_scatter(name="stop", mode="lines", line=dict(color="#c62828", dash="dot", shape="hv"))
    fig.add_scatter(name="target", mode="lines", line=dict(color="#2e7d32", dash="dot", shape="hv"))
    fig.update_layout(height=300, margin=_MARGIN, legend=dict(orientation="h", y=-0.2), title=dict(text="Price", x=0))
    return go.FigureWidget(fig)


def update_price(fig: go.FigureWidget, symbol: str, history: pd.DataFrame, fills: pd.DataFrame) -> None:
    """One instrument: its price per cycle, the signals given, the fills (entries buy, exits sell) and the
    stop and take-profit levels the signals carried."""
    h = history[history["symbol"] == symbol] if len(history) else history
    x: Any = pd.to_datetime(h["bar_ts"], utc=True, format="ISO8601") if len(h) else []
    f = fills[fills["symbol"] == symbol] if len(fills) else fills
    fx = pd.to_datetime(f["ts"], utc=True, format="ISO8601") if len(f) else pd.Series(dtype="datetime64[ns, UTC]")
    xs = _plain(x) if len(h) else []
    with fig.batch_update():
        fig.layout.title.text = f"Price — {symbol}" if symbol else "Price (choose an instrument)"
        fig.data[0].x, fig.data[0].y = xs, _plain(h["price"]) if len(h) else []
        for i, side in ((1, "BUY"), (2, "SELL")):
            m = (h["signal"] == side).to_numpy() if len(h) else np.zeros(0, bool)
            fig.data[i].x = [v for v, k in zip(xs, m, strict=True) if k]
            fig.data[i].y = _plain(h["price"][m]) if len(h) else []
        for i, side in ((3, "buy"), (4, "sell")):
            m = (f["side"] == side).to_numpy() if len(f) else np.zeros(0, bool)
            fig.data[i].x, fig.data[i].y = (_plain(fx[m]), _plain(f["price"][m])) if len(f) else ([], [])
        fig.data[5].x, fig.data[5].y = xs, _plain(h["stop_loss"]) if len(h) else []
        fig.data[6].x, fig.data[6].y = xs, _plain(h["take_profit"]) if len(h) else []


def gauge_figure() -> go.FigureWidget:
    fig = go.Figure()
    titles = ("gross exposure", "largest position", "loss today")
    for i, title in enumerate(titles):
        fig.add_trace(
            go.Indicator(
                mode="gauge+number",
                value=0,
                number=dict(valueformat=".1%"),
                title=dict(text=title, font=dict(size=13)),
                domain=dict(x=[i / 3 + 0.02, (i + 1) / 3 - 0.02], y=[0, 1]),
                gauge=dict(axis=dict(range=[0, 1], tickformat=".0%"), bar=dict(color="#1565c0")),
            )
        )
    fig.update_layout(height=170, margin=dict(l=20, r=20, t=30, b=5))
    return go.FigureWidget(fig)


def update_gauges(fig: go.FigureWidget, values: tuple[float, float, float], limits: tuple[float, float, float]) -> None:
    """Each gauge's value against its limit: the red threshold line is the limit, the bar turns red past it."""
    with fig.batch_update():
        for trace, v, lim in zip(fig.data, values, limits, strict=True):
            top = max(lim * 1.5, v * 1.1, 1e-6)
            trace.value = float(v)
            trace.gauge.axis.range = [0, top]
            trace.gauge.threshold = dict(line=dict(color="#c62828", width=3), thickness=0.8, value=lim)
            trace.gauge.bar.color = "#c62828" if v > lim else "#1565c0"


def timing_figure() -> go.FigureWidget:
    fig = go.Figure()
    fig.update_layout(
        height=230,
        margin=_MARGIN,
        barmode="stack",
        title=dict(text="Cycle time by stage (s)", x=0),
        legend=dict(orientation="h", y=-0.25),
        yaxis=dict(title="s", tickformat=".2f"),
    )
    fig.add_bar(name="total_s")  # present from the start: traces added after display did not draw
    return go.FigureWidget(fig)


def update_timings(fig: go.FigureWidget, timings: pd.DataFrame, stages: list[str]) -> None:
    """Stacked per-stage seconds per cycle when the store has them, else each cycle's wall time."""
    cols = stages or ["total_s"]
    if [t.name for t in fig.data] != cols:  # traces are added outside batch_update (it only batches edits)
        fig.data = ()
        for c in cols:
            fig.add_bar(name=c)  # "<stage>_s": seconds
    with fig.batch_update():
        for trace, c in zip(fig.data, cols, strict=True):
            trace.x, trace.y = _plain(timings["cycle"]), _plain(timings.get(c, []))
