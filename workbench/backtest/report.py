"""What a backtest says, beside what doing nothing clever would have said.

Why every number sits next to buy & hold and the baseline model: a strategy that made 8% means
nothing if holding the universe made 15%, or if a plain momentum rule traded through the same
engine made 10%. So the report is a *comparison table* (strategy | buy & hold | baseline model),
computed by one pure function from ``BacktestResult`` values, and the plots draw the three together.

Conventions (those of vectorbt's returns, so the numbers can be checked against it):
- returns are bar-to-bar changes of equity; the first bar's return is against the starting cash;
- annualisation uses ``periods_per_year`` bars: given, or inferred from the bars' own spacing
  (≈ 252 for exchange days, ≈ 365 for crypto days);
- Sharpe = mean / sd (ddof 1) × √ppy; Sortino = mean / √mean(min(r, 0)²) × √ppy (risk-free 0);
- max drawdown is the worst fall from a running peak that starts at the starting cash (negative);
  Calmar = CAGR / |max drawdown|; CAGR compounds over ``bars / ppy`` years;
- win rate and profit factor count closed trades; holding time is entry → exit of closed trades;
- exposure is the mean share of equity held in positions; turnover is traded notional divided by
  average equity, per year; fees are everything paid.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from workbench.backtest.result import ORDER_COLUMNS, TRADE_COLUMNS, BacktestResult, window_label
from workbench.data.panel import Panel

if TYPE_CHECKING:
    from matplotlib.figure import Figure  # imported for real only when a figure is drawn

__all__ = [
    "BASELINE",
    "BUY_AND_HOLD",
    "METRICS",
    "STRATEGY",
    "buy_and_hold",
    "comparison_table",
    "drawdown_figure",
    "equity_figure",
    "format_table",
    "format_windows",
    "periods_per_year",
    "returns_of",
    "summarize",
    "trade_pnl_figure",
    "trades_on_price_figure",
    "verdict",
    "volume_breaches",
    "window_table",
    "write_report",
]  # fmt: skip

STRATEGY, BUY_AND_HOLD, BASELINE = "strategy", "buy & hold", "baseline model"

# metric key → (label, format); the comparison table's rows, in this order.
METRICS: dict[str, tuple[str, str]] = {
    "total_return": ("total return", "pct"),
    "cagr": ("CAGR", "pct"),
    "volatility": ("annualised volatility", "pct"),
    "sharpe": ("Sharpe", "num"),
    "sortino": ("Sortino", "num"),
    "max_drawdown": ("max drawdown", "pct"),
    "calmar": ("Calmar", "num"),
    "win_rate": ("win rate", "pct"),
    "profit_factor": ("profit factor", "num"),
    "trades": ("trades", "int"),
    "avg_holding_days": ("average holding (days)", "num"),
    "exposure": ("exposure", "pct"),
    "turnover": ("turnover (× equity / year)", "num"),
    "fees": ("fees", "money"),
    "final_value": ("final value", "money"),
}


def periods_per_year(index: pd.DatetimeIndex) -> float:
    """Bars per year from the bars' own spacing: exchange days give ≈ 252, crypto days ≈ 365."""
    if len(index) < 2:
        return float("nan")
    years = (index[-1] - index[0]).total_seconds() / (365.25 * 86400)
    return (len(index) - 1) / years if years > 0 else float("nan")


def returns_of(equity: pd.Series, init_cash: float) -> pd.Series:
    """Bar returns of an equity curve; the first is against the starting cash."""
    prev = equity.shift(1)
    if len(prev):
        prev.iloc[0] = init_cash
    return (equity / prev - 1.0).astype(float)


def _ratio(num: float, den: float) -> float:
    if not (np.isfinite(num) and np.isfinite(den)) or den == 0:
        return float("nan")
    return float(num / den)


def summarize(result: BacktestResult, panel: Panel | None = None, periods_per_year: float | None = None) -> dict:
    """The report's numbers for one result (keys: ``METRICS`` plus start, end, bars, counts).

    ``panel`` (optional) lends its longer index to infer ``periods_per_year`` when not given.
    """
    equity = result.equity.astype(float)
    index = pd.DatetimeIndex(equity.index)
    ppy = periods_per_year if periods_per_year is not None else _infer_ppy(index, panel)
    init = float(result.init_cash)
    rets = returns_of(equity, init).to_numpy()
    n = len(rets)
    final = float(equity.iloc[-1]) if n else init
    total = final / init - 1.0
    years = n / ppy if n and np.isfinite(ppy) and ppy > 0 else float("nan")
    cagr = (final / init) ** (1.0 / years) - 1.0 if np.isfinite(years) and years > 0 and final > 0 else float("nan")
    sd = float(np.std(rets, ddof=1)) if n > 1 else float("nan")
    mean = float(np.mean(rets)) if n else float("nan")
    downside = float(np.sqrt(np.mean(np.minimum(rets, 0.0) ** 2))) if n else float("nan")
    root = math.sqrt(ppy) if np.isfinite(ppy) and ppy > 0 else float("nan")
    peak = np.maximum.accumulate(np.concatenate([[init], equity.to_numpy()]))
    max_dd = float(np.min(np.concatenate([[init], equity.to_numpy()]) / peak - 1.0))

    trades = result.trades
    closed = trades[trades["exit_ts"].notna()] if len(trades) else trades
    pnl = closed["pnl"].to_numpy(dtype=float) if len(closed) else np.empty(0)
    gains, losses = float(pnl[pnl > 0].sum()), float(-pnl[pnl < 0].sum())
    if not len(pnl):
        profit_factor = float("nan")
    elif losses == 0:
        profit_factor = float("inf") if gains > 0 else float("nan")
    else:
        profit_factor = gains / losses
    held = (pd.DatetimeIndex(closed["exit_ts"]) - pd.DatetimeIndex(closed["entry_ts"])) if len(closed) else None

    gross = result.positions_value.abs().sum(axis=1).reindex(index).fillna(0.0).to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(equity.to_numpy() > 0, gross / equity.to_numpy(), np.nan)
    orders = result.orders
    notional = float((orders["quantity"].abs() * orders["price"]).sum()) if len(orders) else 0.0
    avg_equity = float(equity.mean()) if n else float("nan")
    return {
        "total_return": float(total),
        "cagr": float(cagr),
        "volatility": sd * root,
        "sharpe": _ratio(mean, sd) * root,
        "sortino": _ratio(mean, downside) * root,
        "max_drawdown": max_dd,
        "calmar": _ratio(cagr, abs(max_dd)),
        "win_rate": float(np.mean(pnl > 0)) if len(pnl) else float("nan"),
        "profit_factor": float(profit_factor),
        "trades": len(trades),
        "closed_trades": len(closed),
        "avg_holding_days": float(held.total_seconds().to_numpy().mean() / 86400) if held is not None else float("nan"),
        "avg_holding_bars": float(closed["bars_held"].astype(float).mean()) if len(closed) else float("nan"),
        "exposure": float(np.nanmean(share)) if n else float("nan"),
        "time_in_market": float(np.mean(gross > 0)) if n else float("nan"),
        "turnover": _ratio(_ratio(notional, avg_equity), years),
        "fees": float(orders["fee"].sum()) if len(orders) else 0.0,
        "final_value": final,
        "init_cash": init,
        "start": index[0].isoformat() if n else "",
        "end": index[-1].isoformat() if n else "",
        "bars": int(n),
        "periods_per_year": float(ppy),
    }


def _infer_ppy(index: pd.DatetimeIndex, panel: Panel | None) -> float:
    if panel is not None and len(panel.index) > len(index):
        return periods_per_year(panel.index)
    return periods_per_year(index)


def buy_and_hold(
    panel: Panel, cash: float, fee_rate: float = 0.0, slippage_bps: float = 0.0, close_at_end: bool = False
) -> BacktestResult:
    """Equal weight of the universe, bought at each symbol's first close and held (the yardstick).

    Each symbol gets ``cash / N``, spent at its first priced bar (a symbol listed later waits in
    cash) with the same fees and slippage as the strategy. Like the engine's open positions, the
    holdings are valued at the last close (no exit fees); ``close_at_end`` sells them there instead.
    """
    close = panel.close
    index, symbols = close.index, close.columns
    c = close.to_numpy(dtype=float)
    valid = np.isfinite(c) & (c > 0)
    listed = valid.any(axis=0)
    n_bars, k = c.shape
    if n_bars == 0 or not listed.any():
        raise ValueError("buy & hold needs at least one priced bar in the panel")
    first = np.where(listed, valid.argmax(axis=0), n_bars)
    px = close.ffill().to_numpy(dtype=float)
    slip = slippage_bps / 1e4
    alloc = cash / int(listed.sum())
    entry_px = np.where(listed, c[np.minimum(first, n_bars - 1), np.arange(k)] * (1 + slip), np.nan)
    qty = np.where(listed, alloc / (entry_px * (1 + fee_rate)), 0.0)
    entry_fee = np.where(listed, qty * entry_px * fee_rate, 0.0)
    rows = np.arange(n_bars)[:, None]
    held = rows >= first[None, :]
    value = np.where(held, qty[None, :] * np.nan_to_num(px), 0.0)
    spent = np.where(held, (qty * entry_px + entry_fee)[None, :], 0.0).sum(axis=1)
    cash_t = cash - spent
    last = n_bars - 1
    exit_px = px[last] * (1 - slip)
    exit_fee = np.where(listed, qty * exit_px * fee_rate, 0.0)
    if close_at_end:
        cash_t[last] += float(np.nansum(np.where(listed, qty * exit_px, 0.0) - exit_fee))
        value[last] = 0.0
    positions = pd.DataFrame(value, index=index, columns=symbols)
    equity = pd.Series(cash_t + value.sum(axis=1), index=index, name="equity")

    sym = np.asarray(symbols, dtype=object)[listed]
    f = first[listed]
    buys = pd.DataFrame(
        {
            "ts": index[f],
            "symbol": sym,
            "side": "buy",
            "quantity": qty[listed],
            "price": entry_px[listed],
            "fee": entry_fee[listed],
            "reason": "entry",
            "window": "",
        }
    )
    parts = [buys]
    if close_at_end:
        parts.append(
            pd.DataFrame(
                {
                    "ts": index[last],
                    "symbol": sym,
                    "side": "sell",
                    "quantity": qty[listed],
                    "price": exit_px[listed],
                    "fee": exit_fee[listed],
                    "reason": "end",
                    "window": "",
                }
            )
        )
    orders = pd.concat(parts, ignore_index=True).sort_values("ts", kind="stable", ignore_index=True)
    mark = exit_px[listed] if close_at_end else px[last][listed]
    fees = entry_fee[listed] + (exit_fee[listed] if close_at_end else 0.0)
    pnl = qty[listed] * (mark - entry_px[listed]) - fees
    trades = pd.DataFrame({
        "symbol": sym, "entry_ts": index[f],
        "exit_ts": index[last] if close_at_end else pd.NaT,
        "quantity": qty[listed], "entry_price": entry_px[listed],
        "exit_price": exit_px[listed] if close_at_end else np.nan,
        "pnl": pnl, "return_pct": pnl / (qty[listed] * entry_px[listed]), "fees": fees,
        "exit_reason": "end" if close_at_end else "", "window": "", "bars_held": last - f,
    })  # fmt: skip
    return BacktestResult(
        equity=equity,
        cash=pd.Series(cash_t, index=index, name="cash"),
        positions_value=positions,
        orders=orders[list(ORDER_COLUMNS)],
        trades=trades[list(TRADE_COLUMNS)],
        halted=pd.Series(False, index=index, name="halted"),
        init_cash=float(cash),
        freq=str(getattr(panel, "timeframe", "")),
        meta={"name": BUY_AND_HOLD, "symbols": [str(s) for s in sym]},
    )


def comparison_table(
    results: Mapping[str, BacktestResult | dict], panel: Panel | None = None, periods_per_year: float | None = None
) -> pd.DataFrame:
    """Rows = ``METRICS`` (index named "metric"), one float column per result (e.g. strategy | buy & hold | baseline)."""
    cols = {}
    for name, r in results.items():
        m = r if isinstance(r, dict) else summarize(r, panel, periods_per_year)
        cols[name] = [float(m.get(k, float("nan"))) for k in METRICS]
    table = pd.DataFrame(cols, index=pd.Index(list(METRICS), name="metric"))
    return table


def window_table(
    results: Mapping[str, BacktestResult], windows: pd.DataFrame, strategy: str = STRATEGY
) -> pd.DataFrame:
    """Per walk-forward window: each column's return inside it, and the strategy's trades there.

    Why: one good fold can carry a whole backtest; a quant wants to see whether the edge (or its
    absence) holds window by window. A window's return is equity at its last bar over equity just
    before its first bar (the starting cash for the first bar traded). Trades are counted in the
    window whose prediction opened them; win rate and P&L count the closed ones.

    ``windows`` has ``fold``, ``start``, ``end`` (as ``BacktestReport.windows``); the result adds
    ``<column> return`` per result, ``trades``, ``win rate`` and ``P&L``.
    """
    out = windows.copy()
    for name, r in results.items():
        eq = r.equity.astype(float)
        before = eq.shift(1).fillna(float(r.init_cash))
        rets = []
        for w in windows.itertuples(index=False):
            inside = (eq.index >= w.start) & (eq.index <= w.end)
            rets.append(float(eq[inside].iloc[-1] / before[inside].iloc[0] - 1.0) if inside.any() else float("nan"))
        out[f"{name} return"] = rets
    trades = results[strategy].trades
    labels = [window_label(f) for f in windows["fold"]]
    closed = trades[trades["exit_ts"].notna()]
    pnl = closed["pnl"].astype(float).groupby(closed["window"])
    out["trades"] = trades["window"].value_counts().reindex(labels, fill_value=0).astype(int).to_numpy()
    out["win rate"] = (
        (closed["pnl"].astype(float) > 0).groupby(closed["window"]).mean().reindex(labels).to_numpy(dtype=float)
    )
    out["P&L"] = pnl.sum().reindex(labels, fill_value=0.0).to_numpy(dtype=float)
    return out


def volume_breaches(orders: pd.DataFrame, panel: Panel, max_volume_share: float | None) -> pd.DataFrame:
    """Bars where the backtest traded more of a symbol than ``max_volume_share`` of the bar's volume.

    Why: the engine fills every order whole, while the paper broker (and a thin real market) fills at
    most that share of a bar and leaves the rest resting; where this table is not empty the live run
    would have traded less, later, and the backtest's figures are optimistic for those fills.
    Columns: ts, symbol, quantity (summed over the bar's fills), volume, share.
    """
    cols = ["ts", "symbol", "quantity", "volume", "share"]
    if max_volume_share is None or orders is None or orders.empty:
        return pd.DataFrame(columns=cols)
    per_bar = orders.groupby(["ts", "symbol"], sort=True)["quantity"].sum().abs()
    vol = panel.volume.stack()
    vol.index = vol.index.set_names(["ts", "symbol"])
    volume = vol.reindex(per_bar.index).to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = per_bar.to_numpy(dtype=float) / volume
    # A bar without a volume figure caps nothing (as in the paper broker): only a known volume can be breached.
    breached = np.isfinite(volume) & (share > max_volume_share * (1 + 1e-9))
    out = per_bar[breached].rename("quantity").reset_index()
    out["volume"], out["share"] = volume[breached], share[breached]
    return out[cols]


def _fmt(v: float, kind: str) -> str:
    if not np.isfinite(v):
        return "∞" if v == float("inf") else "–"
    if kind == "pct":
        return f"{100 * v:.2f}%"
    if kind == "int":
        return f"{int(v):d}"
    if kind == "money":
        return f"{v:,.2f}"
    return f"{v:.2f}"


def format_table(table: pd.DataFrame) -> pd.DataFrame:
    """The comparison table as text, with readable labels (percentages, money, ratios)."""
    num = table.astype(float)
    out = pd.DataFrame(
        {
            c: [_fmt(v, METRICS[k][1]) for k, v in zip(table.index, num[c].to_numpy(), strict=True)]
            for c in table.columns
        },
        index=pd.Index([METRICS[k][0] for k in table.index], name=""),
    )
    return out


def format_windows(windows: pd.DataFrame) -> pd.DataFrame:
    """``window_table`` as text: dates, returns and win rate in percent, P&L as money."""
    shown = windows.copy()
    for col in shown.columns:
        if col in ("start", "end"):
            shown[col] = [pd.Timestamp(v).date().isoformat() for v in shown[col]]
        elif col.endswith(" return") or col == "win rate":
            shown[col] = [_fmt(float(v), "pct") for v in shown[col]]
        elif col == "P&L":
            shown[col] = [_fmt(float(v), "money") for v in shown[col]]
    return shown


def verdict(table: pd.DataFrame, strategy: str = STRATEGY) -> tuple[str, dict[str, bool]]:
    """One plain sentence: did the strategy beat each other column on total return after costs?"""
    ret = table.loc["total_return"]
    beats = {c: bool(np.isfinite(ret[strategy]) and ret[strategy] > ret[c]) for c in table.columns if c != strategy}
    parts = [f"{'beat' if b else 'did NOT beat'} {c} ({100 * ret[c]:.2f}%)" for c, b in beats.items()]
    sentence = f"After fees and slippage the strategy returned {100 * ret[strategy]:.2f}%: " + "; ".join(parts) + "."
    return sentence, beats


# -- plots (matplotlib Figure objects: no pyplot state, rendered by the Agg canvas) ---------------------


def _figure(rows: int = 1, height: float = 3.6):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, height * rows))
    axes = fig.subplots(rows, 1, squeeze=False)[:, 0]
    return fig, axes


def _shade_windows(ax, windows: pd.DataFrame | None) -> None:
    if windows is None or windows.empty:
        return
    for i, (fold, start, end) in enumerate(zip(windows["fold"], windows["start"], windows["end"], strict=True)):
        ax.axvspan(start, end, color="tab:blue" if i % 2 == 0 else "tab:orange", alpha=0.06, lw=0)
        ax.annotate(
            window_label(fold), (start, 0.01), xycoords=("data", "axes fraction"), fontsize=7, va="bottom", color="grey"
        )


def equity_figure(results: Mapping[str, BacktestResult], windows: pd.DataFrame | None = None, title: str = "equity"):
    """Equity curves side by side, walk-forward windows shaded."""
    fig, (ax,) = _figure()
    for name, r in results.items():
        ax.plot(r.equity.index, r.equity.to_numpy(dtype=float), label=name, lw=1.4 if name == STRATEGY else 1.0)
    _shade_windows(ax, windows)
    ax.set(title=title, ylabel="equity")
    ax.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def drawdown_figure(results: Mapping[str, BacktestResult], title: str = "drawdown"):
    """Fall from the running peak (starting cash included), in percent."""
    fig, (ax,) = _figure(height=3.0)
    for name, r in results.items():
        e = r.equity.astype(float)
        peak = np.maximum.accumulate(np.maximum(e.to_numpy(), r.init_cash))
        ax.plot(e.index, 100 * (e.to_numpy() / peak - 1.0), label=name, lw=1.2 if name == STRATEGY else 0.9)
    ax.set(title=title, ylabel="% below peak")
    ax.legend(loc="lower left", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def trade_pnl_figure(result: BacktestResult, title: str = "P&L per trade"):
    """One bar per closed trade at its exit, coloured by the walk-forward window it came from."""
    fig, (ax,) = _figure(height=3.0)
    t = result.trades[result.trades["exit_ts"].notna()]
    if t.empty:
        ax.text(0.5, 0.5, "no closed trades", ha="center", va="center", transform=ax.transAxes)
    else:
        windows = sorted(t["window"].astype(str).unique())
        colours = {w: f"C{i % 10}" for i, w in enumerate(windows)}
        for w in windows:
            part = t[t["window"].astype(str) == w]
            ax.bar(
                pd.DatetimeIndex(part["exit_ts"]),
                part["pnl"].to_numpy(dtype=float),
                width=1.0,
                color=colours[w],
                label=w or "(no window)",
            )
        ax.axhline(0, color="black", lw=0.6)
        ax.legend(loc="upper left", fontsize=7, ncols=min(len(windows), 6))
    ax.set(title=title, ylabel="P&L")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def trades_on_price_figure(result: BacktestResult, panel: Panel, max_symbols: int = 4, title: str = "trades"):
    """Closes of the most-traded symbols with buys (▲) and sells (▼) where they filled."""
    orders = result.orders
    top = orders["symbol"].value_counts().index[:max_symbols].tolist() if len(orders) else []
    fig, axes = _figure(rows=max(len(top), 1), height=2.4)
    if not top:
        axes[0].text(0.5, 0.5, "no orders", ha="center", va="center", transform=axes[0].transAxes)
    idx = result.equity.index
    for ax, sym in zip(axes, top, strict=False):  # one empty axis when there is no order
        close = panel.close[sym].reindex(idx)
        ax.plot(close.index, close.to_numpy(dtype=float), color="grey", lw=0.9)
        mine = orders[orders["symbol"] == sym]
        for side, marker, colour in (("buy", "^", "tab:green"), ("sell", "v", "tab:red")):
            o = mine[mine["side"] == side]
            ax.scatter(
                pd.DatetimeIndex(o["ts"]),
                o["price"].to_numpy(dtype=float),
                marker=marker,
                color=colour,
                s=22,
                zorder=3,
                label=side,
            )
        ax.set_ylabel(str(sym), fontsize=8)
        ax.legend(loc="upper left", fontsize=7)
    axes[0].set_title(title)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


# -- files ------------------------------------------------------------------------------------------

_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}"
    "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
    "th{background:#f3f3f3}img{max-width:100%;display:block;margin:1em 0}.note{color:#444}"
)


def write_report(
    out_dir: str | Path,
    table: pd.DataFrame,
    figures: Mapping[str, Figure],
    *,
    title: str = "Backtest report",
    notes: list[str] | tuple[str, ...] = (),
    trades: pd.DataFrame | None = None,
    windows: pd.DataFrame | None = None,
    symbols: pd.DataFrame | None = None,
    dpi: int = 90,
) -> dict[str, Path]:
    """Write ``<name>.png`` per figure, ``comparison.csv``, ``trades.csv`` and a self-contained
    ``report.html`` (table and images embedded as base64), so it can be mailed or logged as is.

    Returns name → path: "html", "table", "trades" (when given) and one entry per figure.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    images = []
    for name, fig in figures.items():
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi)
        data = buf.getvalue()
        path = out / f"{name}.png"
        path.write_bytes(data)
        paths[name] = path
        images.append((name, base64.b64encode(data).decode("ascii")))
    table.to_csv(out / "comparison.csv")
    paths["table"] = out / "comparison.csv"
    body = [f"<h1>{html.escape(title)}</h1>"]
    body += [f"<p class='note'>{html.escape(n)}</p>" for n in notes]
    body.append("<h2>Comparison</h2>")
    body.append(format_table(table).to_html(border=0, classes="comparison"))
    if windows is not None and not windows.empty:
        body.append("<h2>Walk-forward windows traded</h2>")
        body.append(format_windows(windows).to_html(index=False, border=0))
    if symbols is not None and not symbols.empty:
        body.append("<h2>Symbols: out-of-sample predictions and trades</h2>")
        body.append(symbols.to_html(index=False, border=0, float_format=lambda v: f"{v:.0%}"))
    for name, b64 in images:
        body.append(
            f"<h2>{html.escape(name.replace('_', ' '))}</h2><img alt='{html.escape(name)}' "
            f"src='data:image/png;base64,{b64}'>"
        )
    if trades is not None:
        trades.to_csv(out / "trades.csv", index=False)
        paths["trades"] = out / "trades.csv"
        body.append(f"<h2>Trades ({len(trades)})</h2>")
        shown = trades.head(500)
        body.append(shown.to_html(index=False, border=0, float_format=lambda v: f"{v:.4g}"))
        if len(trades) > len(shown):
            body.append(f"<p class='note'>first {len(shown)} of {len(trades)}; all in trades.csv</p>")
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_CSS}</style></head><body>{''.join(body)}</body></html>"
    )
    (out / "report.html").write_text(page, encoding="utf-8")
    paths["html"] = out / "report.html"
    return paths
