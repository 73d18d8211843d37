"""The live view's interactive charts: plotly FigureWidgets built once and updated in place.

A PNG re-rendered every refresh cannot be zoomed or hovered and costs a matplotlib draw each time;
a FigureWidget keeps the user's zoom while only the changed arrays go to the browser.

**How the widget's JavaScript reaches the page.** Since plotly 6 a FigureWidget is an anywidget whose
``_esm`` is plotly's whole widget bundle (plotly.js included, ~5 MB): each figure sends those 5 MB over
the kernel's websocket and the page imports each copy from its own blob URL, so it parses and runs
plotly.js once per figure. With five figures on the page that is ~25 MB of JavaScript. On a loaded
2-core machine the charts came up minutes late or never (an update that arrives before a figure's
copy has loaded is dropped: plotly's model listens only once its module runs). Under
`workbench dashboard` (``WORKBENCH_PLOTLY_BUNDLE`` set by ``serving.voila_command``) the figures are
:class:`SharedBundleFigure` instead: their ``_esm`` is a few lines that import the bundle from one
URL served by Voilà, so the browser fetches, parses and caches it once for all figures. Elsewhere
(JupyterLab, tests in the kernel) :func:`figure_widget` gives plotly's own FigureWidget.
"""

from __future__ import annotations

import os
from copy import deepcopy
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
    "figure_widget",
    "keep_state",
    "plain_values",
    "SharedBundleFigure",
    "BUNDLE_ENV",
    "bundle_name",
    "STAGES",
]

_MARGIN = dict(l=50, r=10, t=30, b=30)
BUNDLE_ENV = "WORKBENCH_PLOTLY_BUNDLE"
"""Set (to the bundle's file name) by ``workbench dashboard``: the bundle is served at ``voila/static/``."""


def bundle_name() -> str:
    """The served copy's file name: versioned, so a plotly upgrade is never answered from a stale cache."""
    import plotly

    return f"plotly-widget-{plotly.__version__}.js"


# The module each figure loads: it imports the one served bundle (under the server's base URL, read from
# the page's Jupyter config) and hands over its exports. A module imported by URL runs once per page.
# The module also keeps each chart as wide as its box: plotly sizes a figure once, at its first draw (700 px
# inside a hidden tab) and on window resizes; its widget has no hook for a tab shown or a box resized.
_SHIM = """const cfg = document.getElementById("jupyter-config-data");
const base = ((cfg && JSON.parse(cfg.textContent).baseUrl) || "/").replace(/\\/?$/, "/");
const bundle = await import(new URL(base + "voila/static/%s", document.baseURI).href);
let queued = false;
function relayout() {  // one window resize per frame: plotly's responsive charts re-fit their boxes
  if (queued) return;
  queued = true;
  requestAnimationFrame(() => { queued = false; window.dispatchEvent(new Event("resize")); });
}
function fitted(widget) {
  return {
    ...widget,
    async render(ctx) {
      const done = await widget.render(ctx);
      const watch = new ResizeObserver(relayout);
      watch.observe(ctx.el);
      return () => { watch.disconnect(); if (typeof done === "function") done(); };
    },
  };
}
const made = bundle.default;
export default typeof made === "function" ? () => fitted(made()) : fitted(made);
"""


class SharedBundleFigure(go.FigureWidget):
    """A FigureWidget whose JavaScript is plotly's bundle served once by the dashboard (module docstring)."""

    _esm = _SHIM % bundle_name()


def figure_widget(fig: go.Figure) -> go.FigureWidget:
    """``fig`` as a widget: the shared-bundle kind under `workbench dashboard`, plotly's own elsewhere."""
    widget = SharedBundleFigure(fig) if os.environ.get(BUNDLE_ENV) else go.FigureWidget(fig)
    widget._config = {**widget._config, "responsive": True}  # fill the box's width, and follow it
    return widget


def plain_values(values: Any) -> list[Any]:
    """Plain lists for the browser: the widget's update messages did not draw numpy arrays (sent as
    typed-array specs) in Voilà, while lists of numbers and ISO time strings draw (seen in Chromium)."""
    if isinstance(values, pd.DatetimeIndex | pd.Series) and pd.api.types.is_datetime64_any_dtype(values):
        return [t.isoformat() for t in pd.DatetimeIndex(values).tz_convert(None)]
    arr = np.asarray(values)
    if arr.dtype.kind == "f":
        return [None if np.isnan(v) else float(v) for v in arr]
    return arr.tolist()


def keep_state(fig: go.FigureWidget) -> None:
    """Make the widget's synced state (``_widget_data``/``_widget_layout``) the figure as it is now.

    plotly sends edits as one-off ``_py2js_*`` messages that only a model whose JavaScript has already
    run applies, and syncs its full state only on display. A figure shown inside a layout (never
    displayed itself) and edited while its page is still loading the widget code, or before the page
    connected, lost those edits: a chart stayed empty until its data changed again, gauges for good.
    The page reads this state whenever it draws the figure, so with it kept current nothing is lost
    (each update also sends the arrays once more: a few thousand numbers per chart at most)."""
    fig._widget_data = deepcopy(fig._data)
    fig._widget_layout = deepcopy(fig._layout_obj._props)


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
    return figure_widget(fig)


def update_equity(fig: go.FigureWidget, curve: pd.DataFrame) -> None:
    """Replace the two series (hundreds to thousands of points: cheap) keeping the user's zoom."""
    if curve.empty:
        return
    x = pd.to_datetime(curve["bar_ts"].fillna(curve["ts"]), utc=True, format="ISO8601")
    eq = curve["equity"].to_numpy(dtype=float)
    with fig.batch_update():
        fig.data[0].x, fig.data[0].y = plain_values(x), plain_values(eq)
        fig.data[1].x, fig.data[1].y = plain_values(x), plain_values(drawdown(eq))
    keep_state(fig)


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
    return figure_widget(fig)


def update_price(fig: go.FigureWidget, symbol: str, history: pd.DataFrame, fills: pd.DataFrame) -> None:
    """One instrument: its price per cycle, the signals given, the fills (entries buy, exits sell) and the
    stop and take-profit levels the signals carried. A fill with a ``cycle`` (its order's) sits on that
    cycle's bar; one without, at its own time."""
    h = history[history["symbol"] == symbol] if len(history) else history
    x: Any = pd.to_datetime(h["bar_ts"], utc=True, format="ISO8601") if len(h) else []
    f = fills[fills["symbol"] == symbol] if len(fills) else fills
    fx = pd.to_datetime(f["ts"], utc=True, format="ISO8601") if len(f) else pd.Series(dtype="datetime64[ns, UTC]")
    if len(f) and len(h) and "cycle" in f:
        # On the bar of the fill's cycle, like the signals: a replay's bars are not the wall-clock fill time.
        bar_of = pd.Series(x.to_numpy(), index=h["cycle"].to_numpy())
        bar_of = bar_of[~bar_of.index.duplicated(keep="last")]
        fx = pd.to_datetime(f["cycle"].map(bar_of), utc=True).fillna(fx)
    xs = plain_values(x) if len(h) else []
    with fig.batch_update():
        fig.layout.title.text = f"Price — {symbol}" if symbol else "Price (choose an instrument)"
        fig.data[0].x, fig.data[0].y = xs, plain_values(h["price"]) if len(h) else []
        for i, side in ((1, "BUY"), (2, "SELL")):
            m = (h["signal"] == side).to_numpy() if len(h) else np.zeros(0, bool)
            fig.data[i].x = [v for v, k in zip(xs, m, strict=True) if k]
            fig.data[i].y = plain_values(h["price"][m]) if len(h) else []
        for i, side in ((3, "buy"), (4, "sell")):
            m = (f["side"] == side).to_numpy() if len(f) else np.zeros(0, bool)
            fig.data[i].x, fig.data[i].y = (plain_values(fx[m]), plain_values(f["price"][m])) if len(f) else ([], [])
        fig.data[5].x, fig.data[5].y = xs, plain_values(h["stop_loss"]) if len(h) else []
        fig.data[6].x, fig.data[6].y = xs, plain_values(h["take_profit"]) if len(h) else []
    keep_state(fig)


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
    fig.update_layout(height=210, margin=dict(l=30, r=30, t=50, b=5))  # room for the titles over wide arcs
    return figure_widget(fig)


def update_gauges(fig: go.FigureWidget, values: tuple[float, float, float], limits: tuple[float, float, float]) -> None:
    """Each gauge's value against its limit: the red threshold line is the limit, the bar turns red past it."""
    with fig.batch_update():
        for trace, v, lim in zip(fig.data, values, limits, strict=True):
            top = max(lim * 1.5, v * 1.1, 1e-6)
            trace.value = float(v)
            trace.gauge.axis.range = [0, top]
            trace.gauge.threshold = dict(line=dict(color="#c62828", width=3), thickness=0.8, value=lim)
            trace.gauge.bar.color = "#c62828" if v > lim else "#1565c0"
    keep_state(fig)  # unchanged values: an equal state, so nothing is sent


STAGES = ("data_s", "features_s", "inference_s", "signals_s", "risk_s", "orders_s", "portfolio_s")
"""The loop's recorded stages (``cycle_stages`` columns), stacked in this order; ``other_s`` is the rest of
each cycle's wall time (all of it for a cycle with no stage row)."""


def timing_figure() -> go.FigureWidget:
    """One bar trace per stage, all present from the start: the traces never change after display (the
    previous chart replaced its traces once the stages were known, and the page never drew it)."""
    fig = go.Figure()
    fig.update_layout(
        height=230,
        margin=_MARGIN,
        barmode="stack",
        title=dict(text="Cycle time by stage (s)", x=0),
        legend=dict(orientation="h", y=-0.25),
        yaxis=dict(title="s", tickformat=".2f"),
        xaxis=dict(title="cycle"),
    )
    for c in (*STAGES, "other_s"):
        fig.add_bar(name=c.removesuffix("_s"), x=[], y=[])
    return figure_widget(fig)


def update_timings(fig: go.FigureWidget, timings: pd.DataFrame) -> None:
    """Stacked per-stage seconds per cycle (``timings``: ``cycle``, ``total_s`` and any ``STAGES``
    columns); ``other`` is the wall time no stage accounts for, so each bar is the cycle's wall time."""
    x = plain_values(timings["cycle"]) if len(timings) else []
    staged = timings.reindex(columns=list(STAGES)).astype(float) if len(timings) else pd.DataFrame(columns=STAGES)
    total = timings["total_s"].to_numpy(dtype=float) if len(timings) else np.zeros(0)
    other = np.maximum(total - np.nan_to_num(staged.to_numpy(dtype=float)).sum(axis=1), 0.0)
    with fig.batch_update():
        for trace, c in zip(fig.data, STAGES, strict=False):
            trace.x, trace.y = x, plain_values(staged[c].to_numpy(dtype=float))
        fig.data[len(STAGES)].x, fig.data[len(STAGES)].y = x, plain_values(other)
    keep_state(fig)
