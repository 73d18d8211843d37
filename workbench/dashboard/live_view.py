"""The live view of one run: signals for the whole universe, orders and fills, positions with P&L,
equity and drawdown, a price chart per instrument, exposure and daily loss against the limits, cycle
timings and the log.

It polls the store (``refresh``) for the rows added since the last poll only (``reads.Tail``) and
sends a table to the browser only when it changed, so a 5,000-instrument universe costs the kernel
little between cycles. Figures are plotly FigureWidgets updated in place.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from typing import Any

import ipywidgets as w
import numpy as np
import pandas as pd

from workbench.config import RiskLimits, Settings
from workbench.dashboard import live_charts as charts
from workbench.dashboard.grids import ExportButton, PagedGrid, make_grid, set_grid
from workbench.dashboard.reads import Tail, cycle_timings, run_positions, stage_columns, visible_runs
from workbench.errors import WorkbenchError

__all__ = ["LiveView", "SIGNAL_COLUMNS", "SORTS", "merge_latest", "position_table", "pnl_summary"]

SIGNAL_COLUMNS = ["symbol", "signal", "strength", "confidence", "price", "target_price", "stop_loss", "take_profit"]
SIGNAL_COLUMNS += ["bar_ts", "cycle"]
ORDER_COLUMNS = ["created_at", "cycle", "symbol", "side", "type", "quantity", "limit_price", "stop_price", "status"]
ORDER_COLUMNS += ["filled_quantity", "average_price", "fee", "reason", "client_order_id", "updated_at"]
FILL_COLUMNS = ["ts", "symbol", "side", "quantity", "price", "fee", "fee_currency", "client_order_id", "fill_id"]
POSITION_COLUMNS = ["symbol", "quantity", "average_price", "last_price", "market_value", "weight"]
POSITION_COLUMNS += ["unrealized_pnl", "realized_pnl", "stop_loss", "take_profit"]
EVENT_COLUMNS = ["ts", "level", "kind", "message"]
SORTS: dict[str, tuple[str, bool]] = {
    "strength ↓": ("strength", False),
    "strength ↑": ("strength", True),
    "confidence ↓": ("confidence", False),
    "symbol A→Z": ("symbol", True),
    "price ↓": ("price", False),
}


def merge_latest(latest: pd.DataFrame, new_rows: pd.DataFrame) -> pd.DataFrame:
    """Each instrument's newest signal: the new rows replace older ones of the same symbol (vectorised)."""
    if new_rows.empty:
        return latest
    both = new_rows if latest.empty else pd.concat([latest, new_rows], ignore_index=True)
    return both.drop_duplicates("symbol", keep="last").reset_index(drop=True)


def position_table(pos: pd.DataFrame, last: pd.Series, equity: float | None) -> pd.DataFrame:
    """Positions with the last price seen (the latest signal's), market value, weight in equity and
    unrealised P&L; a position without a price yet shows blanks, not zeros."""
    out = pos.copy()
    out["last_price"] = out["symbol"].map(last).astype(float)
    out["market_value"] = out["quantity"] * out["last_price"]
    out["unrealized_pnl"] = (out["last_price"] - out["average_price"]) * out["quantity"]
    out["weight"] = out["market_value"] / equity if equity else np.nan
    return out[[c for c in POSITION_COLUMNS if c in out.columns]]


def pnl_summary(curve: pd.DataFrame) -> dict[str, float]:
    """Equity now, P&L today (against the day's start equity the loop records) and since the run began."""
    if curve.empty:
        return {}
    last = curve.iloc[-1]
    eq, first = float(last["equity"]), float(curve["equity"].iloc[0])
    day0 = last.get("day_start_equity")
    day0 = float(day0) if day0 is not None and not pd.isna(day0) else first
    return {
        "equity": eq,
        "cash": float(last["cash"]) if not pd.isna(last["cash"]) else np.nan,
        "positions_value": float(last["positions_value"]) if not pd.isna(last["positions_value"]) else 0.0,
        "pnl_today": eq - day0,
        "pnl_today_pct": (eq / day0 - 1.0) if day0 else 0.0,
        "pnl_total": eq - first,
        "pnl_total_pct": (eq / first - 1.0) if first else 0.0,
    }


def _money(v: float, unit: str) -> str:
    return "—" if v is None or pd.isna(v) else f"{v:,.2f} {unit}".strip()


def _signed(v: float, pct: float, unit: str) -> str:
    colour = "#1b5e20" if v > 0 else ("#b71c1c" if v < 0 else "#333")
    return f"<b style='color:{colour}'>{v:+,.2f} {html.escape(unit)} ({pct:+.2%})</b>"


class LiveView:
    """One run's live page. ``user_getter`` returns the logged-in user (or raises ``AccessError``)."""

    def __init__(self, settings: Settings, user_getter: Callable[[], Any], page_size: int = 500):
        from workbench.store.engine import engine_for

        self.settings = settings
        self.user_getter = user_getter
        self.engine = engine_for(settings.store_url)
        self.run_id: int | None = None
        self.run: dict[str, Any] = {}
        self.limits: RiskLimits = settings.risk
        self._tail: Tail | None = None
        self.last_refresh: dict[str, float] = {}
        self._pos_shown: pd.DataFrame | None = None
        # --- widgets
        self.run_pick = w.Dropdown(description="Run", layout=w.Layout(width="320px"))
        self.run_pick.observe(lambda ch: self.show_run(ch["new"]) if ch["new"] else None, names="value")
        self.title = w.HTML()
        self.kpis = w.HTML()
        self.gauges = charts.gauge_figure()
        self.search = w.Text(placeholder="search symbol", layout=w.Layout(width="160px"))
        self.side = w.ToggleButtons(options=["all", "BUY", "SELL", "HOLD"], layout=w.Layout(width="auto"))
        self.side.style.button_width = "52px"
        self.sort = w.Dropdown(
            options=list(SORTS), value="strength ↓", description="Sort", layout=w.Layout(width="220px")
        )
        for c in (self.search, self.side, self.sort):
            c.observe(lambda _: self._show_signals(), names="value")
        self.signals_grid = make_grid(
            pd.DataFrame(columns=SIGNAL_COLUMNS).set_index("symbol"), "380px", {"symbol": 120, "bar_ts": 150}
        )
        self.signals_caption = w.HTML()
        self.signals_export = ExportButton(lambda: self.signals_shown, "signals.csv")
        self.positions_grid = make_grid(
            pd.DataFrame(columns=POSITION_COLUMNS).set_index("symbol"), "200px", {"symbol": 120}
        )
        self.orders = PagedGrid(ORDER_COLUMNS, page_size, name="orders", widths={"reason": 320, "created_at": 150})
        self.fills = PagedGrid(FILL_COLUMNS, page_size, name="fills", widths={"ts": 150, "client_order_id": 180})
        self.equity_fig = charts.equity_figure()
        self.symbol_pick = w.Combobox(placeholder="instrument", ensure_option=False, layout=w.Layout(width="180px"))
        self.symbol_pick.observe(lambda _: self._load_symbol(), names="value")
        self.price_fig = charts.price_figure()
        self.timing_fig = charts.timing_figure()
        self.timing_note = w.HTML()
        self.level = w.Dropdown(options=["all", "INFO", "WARNING", "ERROR"], description="Level")
        self.kind = w.Dropdown(options=["all"], description="Kind")
        for c in (self.level, self.kind):
            c.observe(lambda _: self._show_log(), names="value")
        self.log = PagedGrid(EVENT_COLUMNS, page_size, name="log", widths={"message": 640, "ts": 150})
        self.footer = w.HTML()
        self.widget = self._layout()
        self.widget.add_class("wb-live")
        for fig, name in ((self.equity_fig, "equity"), (self.price_fig, "price"), (self.timing_fig, "timing")):
            fig.add_class(f"wb-chart-{name}")  # what the browser tests read the drawn data from
        self.gauges.add_class("wb-chart-gauges")
        self.symbol_pick.add_class("wb-symbol")
        self._reset()

    # ---- layout -------------------------------------------------------------------------------
    def _layout(self) -> w.Widget:
        def section(title: str, *body: w.Widget) -> w.VBox:
            return w.VBox([w.HTML(f"<h4 style='margin:10px 0 2px'>{title}</h4>"), *body], layout=w.Layout(width="100%"))

        wrap = w.Layout(flex_flow="row wrap", align_items="center", width="100%")
        half = w.Layout(flex="1 1 560px", min_width="0")  # two charts side by side from ~1150 px, else stacked
        return w.VBox(
            [
                w.HBox([self.run_pick, self.title], layout=wrap),
                self.kpis,
                self.gauges,
                section(
                    "Signals — whole universe (newest per instrument)",
                    w.HBox([self.search, self.side, self.sort, self.signals_export.widget], layout=wrap),
                    self.signals_caption,
                    self.signals_grid,
                ),
                section("Positions", self.positions_grid),
                w.Box(
                    [
                        w.VBox([self.equity_fig], layout=half),
                        w.VBox([self.symbol_pick, self.price_fig], layout=half),
                    ],
                    layout=w.Layout(flex_flow="row wrap", width="100%"),
                ),
                section("Orders (full history, newest first)", self.orders.widget),
                section("Fills", self.fills.widget),
                section("Cycle timings", self.timing_note, self.timing_fig),
                section("Log", w.HBox([self.level, self.kind], layout=wrap), self.log.widget),
                self.footer,
            ],
            layout=w.Layout(width="100%"),
        )

    # ---- run choice ---------------------------------------------------------------------------
    def _reset(self) -> None:
        self.latest = pd.DataFrame(columns=SIGNAL_COLUMNS)
        self.signals_shown = self.latest
        self.order_frame = pd.DataFrame(columns=ORDER_COLUMNS)
        self.fill_frame = pd.DataFrame(columns=FILL_COLUMNS)
        self.event_frame = pd.DataFrame(columns=EVENT_COLUMNS)
        self.curve = pd.DataFrame(columns=["ts", "bar_ts", "cash", "positions_value", "equity", "day_start_equity"])
        self.history = pd.DataFrame(columns=SIGNAL_COLUMNS)
        self._signals_dirty = True

    def show_run(self, run_id: int) -> None:
        """Show another run: its rows are read afresh (a new cursor)."""
        if run_id == self.run_id:
            return
        self.run_id = int(run_id)
        self._tail = None
        self._reset()
        if self.run_pick.value != run_id and run_id in {v for _, v in self.run_pick.options}:
            self.run_pick.value = run_id
        self.refresh()

    def _runs(self, user: Any) -> None:
        runs = visible_runs(self.engine, user, limit=100)
        opts = [
            (f"run {r['id']} · {r['state']} · {r['broker']} · {r['owner'] or ''}", int(r["id"]))
            for r in runs.to_dict("records")
        ]
        if list(self.run_pick.options) != opts:
            keep = self.run_pick.value
            self.run_pick.options = opts
            self.run_pick.value = keep if keep in {v for _, v in opts} else (opts[0][1] if opts else None)
        if self.run_id is None and opts:
            self.run_id = opts[0][1]
        if self.run_id is not None:
            match = runs[runs["id"] == self.run_id]
            self.run = {str(k): v for k, v in match.iloc[0].items()} if len(match) else {}

    # ---- refresh ------------------------------------------------------------------------------
    def refresh(self) -> dict[str, float]:
        """Poll the store for new rows and update what changed; returns (and shows) its own cost."""
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            user = self.user_getter()
        except WorkbenchError as e:
            self.title.value = f"<b style='color:red'>{html.escape(str(e))}</b>"
            return {}
        if user is None:
            self.title.value = "<i>Log in to see your runs.</i>"
            return {}
        self._runs(user)
        if self.run_id is None or not self.run:
            self.title.value = "<i>No run to show yet: start one.</i>"
            return {}
        if self._tail is None:
            self._tail = Tail(self.engine, self.run_id, str(self.run.get("account") or "paper"))
            self._limits()
        tail = self._tail
        new_sig = tail.signals()
        if len(new_sig):
            self.latest = merge_latest(self.latest, new_sig[SIGNAL_COLUMNS])
            self._signals_dirty = True
            self._extend_history(new_sig)
        new_orders = tail.orders()
        if len(new_orders) and len(self.order_frame):  # the ``>=`` cursor repeats the last instant's rows
            seen = set(zip(self.order_frame["client_order_id"], self.order_frame["updated_at"], strict=True))
            fresh = [k not in seen for k in zip(new_orders["client_order_id"], new_orders["updated_at"], strict=True)]
            new_orders = new_orders[fresh]
        if len(new_orders):
            both = pd.concat([self.order_frame, new_orders[ORDER_COLUMNS]], ignore_index=True)
            both = both.drop_duplicates("client_order_id", keep="last")
            self.order_frame = both.sort_values("created_at", ascending=False, kind="stable")
            self.orders.set_frame(self.order_frame)
        new_fills = tail.fills(set(self.order_frame["client_order_id"]))
        new_fills = new_fills[~new_fills["fill_id"].isin(self.fill_frame["fill_id"])]
        if len(new_fills):
            both = pd.concat([self.fill_frame, new_fills[FILL_COLUMNS]], ignore_index=True)
            both = both.drop_duplicates("fill_id", keep="last")  # the ``>=`` cursor may repeat the last instant
            self.fill_frame = both.sort_values("ts", ascending=False, kind="stable")
            self.fills.set_frame(self.fill_frame)
        new_eq = tail.equity()
        if len(new_eq):
            self.curve = pd.concat([self.curve, new_eq[self.curve.columns]], ignore_index=True)
            charts.update_equity(self.equity_fig, self.curve)
        new_ev = tail.events()
        if len(new_ev):
            self.event_frame = pd.concat([new_ev[EVENT_COLUMNS].iloc[::-1], self.event_frame], ignore_index=True)
            kinds = ["all", *sorted(self.event_frame["kind"].unique())]
            if list(self.kind.options) != kinds:
                self.kind.options = kinds
            self._show_log()
        if self._signals_dirty:
            self._show_signals()
        if len(new_sig) or len(new_fills) or (self.symbol_pick.value and len(new_eq)):
            charts.update_price(self.price_fig, self.symbol_pick.value, self.history, self._fills_with_cycle())
        summary = self._positions_and_kpis()
        if len(new_eq) or self.timing_note.value == "":
            self._timings()
        self.last_refresh = {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}
        self.footer.value = (
            f"<span style='font-size:11px;color:#888'>refreshed {pd.Timestamp.now(tz='UTC'):%H:%M:%S} UTC in "
            f"{self.last_refresh['wall_s'] * 1e3:,.0f} ms (kernel CPU {self.last_refresh['cpu_s'] * 1e3:,.0f} ms)"
            f"{' · equity ' + format(summary['equity'], ',.2f') if summary else ''}</span>"
        )
        return self.last_refresh

    def _limits(self) -> None:
        """The run owner's risk limits (their overrides on the home's defaults): what the gauges compare to."""
        from types import SimpleNamespace

        from workbench.security.access import user_risk_limits

        uid = self.run.get("user_id")
        self.limits = self.settings.risk
        if uid is not None and not pd.isna(uid):
            self.limits = user_risk_limits(self.engine, SimpleNamespace(id=int(uid)), self.settings.risk)  # type: ignore[arg-type]

    def _extend_history(self, new_sig: pd.DataFrame) -> None:
        sym = self.symbol_pick.value
        if sym:
            rows = new_sig[new_sig["symbol"] == sym][SIGNAL_COLUMNS]
            self.history = rows if self.history.empty else pd.concat([self.history, rows], ignore_index=True)

    def _fills_with_cycle(self) -> pd.DataFrame:
        """The fills with the cycle of their order: the price chart puts each on that cycle's bar."""
        cyc = self.order_frame.drop_duplicates("client_order_id").set_index("client_order_id")["cycle"]
        return self.fill_frame.assign(cycle=self.fill_frame["client_order_id"].map(cyc))

    def _load_symbol(self) -> None:
        """A newly chosen instrument: read its signal history once (then the polls extend it)."""
        from sqlalchemy import and_, select

        from workbench.store.schema import signals

        sym = self.symbol_pick.value
        if not sym or self.run_id is None or sym not in set(self.latest["symbol"]):
            return  # typing: only a known instrument is loaded
        stmt = select(*[signals.c[c] for c in SIGNAL_COLUMNS]).where(
            and_(signals.c.run_id == self.run_id, signals.c.symbol == sym)
        )
        with self.engine.connect() as c:
            res = c.execute(stmt.order_by(signals.c.id))
            self.history = pd.DataFrame(res.fetchall(), columns=list(res.keys()))
        charts.update_price(self.price_fig, sym, self.history, self._fills_with_cycle())

    # ---- tables -------------------------------------------------------------------------------
    def _show_signals(self) -> None:
        """Filter (search, side) and sort the whole universe in the kernel, then send it once."""
        df = self.latest
        if self.search.value.strip():
            df = df[df["symbol"].str.contains(self.search.value.strip(), case=False, regex=False)]
        if self.side.value != "all":
            df = df[df["signal"] == self.side.value]
        col, asc = SORTS[self.sort.value]
        df = df.sort_values(col, ascending=asc, kind="stable", na_position="last")
        self.signals_shown = df
        set_grid(self.signals_grid, df.set_index("symbol"), 380)
        counts = self.latest["signal"].value_counts() if len(self.latest) else pd.Series(dtype=int)
        first = html.escape(str(df["symbol"].iloc[0])) if len(df) else "—"
        self.signals_caption.value = (
            f"<span class='wb-signals-caption' style='font-size:12px'>{len(self.latest):,} instruments · "
            f"<b style='color:#2e7d32'>{counts.get('BUY', 0):,} BUY</b> · <b style='color:#c62828'>{counts.get('SELL', 0):,} SELL</b>"
            f" · {counts.get('HOLD', 0):,} HOLD · showing {len(df):,} sorted by {html.escape(self.sort.value)} · "
            f"first <span class='wb-first'>{first}</span></span>"
        )
        syms = sorted(self.latest["symbol"])
        if len(syms) != len(self.symbol_pick.options):
            self.symbol_pick.options = tuple(syms)
        if not self.symbol_pick.value and len(df):
            self.symbol_pick.value = str(df["symbol"].iloc[0])  # the top of the table until one is chosen
        self._signals_dirty = False

    def _show_log(self) -> None:
        df = self.event_frame
        if self.level.value != "all":
            df = df[df["level"] == self.level.value]
        if self.kind.value != "all":
            df = df[df["kind"] == self.kind.value]
        self.log.set_frame(df)

    def _positions_and_kpis(self) -> dict[str, float]:
        s = pnl_summary(self.curve)
        equity = s.get("equity")
        last = self.latest.set_index("symbol")["price"] if len(self.latest) else pd.Series(dtype=float)
        pos = position_table(run_positions(self.engine, str(self.run.get("account") or "paper")), last, equity)
        shown = pos.set_index("symbol")
        if self._pos_shown is None or not shown.equals(self._pos_shown):
            set_grid(self.positions_grid, shown, 240)
            self._pos_shown = shown
        unit = self.settings.paper.currency if self.run.get("environment") == "paper" else ""
        st = str(self.run.get("state", ""))
        feed = self.run.get("feed")
        self.title.value = (
            f"<b>run {self.run_id}</b> · {html.escape(st)} · {html.escape(str(self.run.get('broker')))}"
            f"{' · feed ' + html.escape(str(feed)) if feed is not None and not pd.isna(feed) else ''} · "
            f"model {html.escape(str(self.run.get('model_ref') or '—'))} · cycle {self.run.get('cycle')}"
        )
        if not s:
            self.kpis.value = "<i>no equity recorded yet (the first cycle writes it)</i>"
            return s
        unreal = float(pos["unrealized_pnl"].sum(skipna=True)) if len(pos) else 0.0
        realized = float(pos["realized_pnl"].sum()) if len(pos) else 0.0
        self.kpis.value = (
            "<div class='wb-kpis' style='display:flex;flex-wrap:wrap;gap:4px 18px;font-size:13px'>"
            f"<span>equity <b>{_money(s['equity'], unit)}</b></span><span>cash {_money(s['cash'], unit)}</span>"
            f"<span>P&amp;L today {_signed(s['pnl_today'], s['pnl_today_pct'], unit)}</span>"
            f"<span>P&amp;L total {_signed(s['pnl_total'], s['pnl_total_pct'], unit)}</span>"
            f"<span>unrealised {_money(unreal, unit)}</span><span>realised (open positions) {_money(realized, unit)}</span>"
            f"<span>{len(pos):,} position(s)</span></div>"
        )
        eq = s["equity"] or np.nan
        gross = s["positions_value"] / eq if eq else 0.0
        largest = float(pos["market_value"].abs().max() / eq) if len(pos) and eq else 0.0
        loss = max(0.0, -s["pnl_today_pct"])
        lim = self.limits
        charts.update_gauges(
            self.gauges,
            (gross, 0.0 if pd.isna(largest) else largest, loss),
            (1.0, lim.max_position_pct, lim.max_daily_loss_pct),
        )
        return s

    def _timings(self) -> None:
        if self.run_id is None:
            return
        df = cycle_timings(self.engine, self.run_id)
        stages = stage_columns(df)
        charts.update_timings(self.timing_fig, df)
        if df.empty:
            self.timing_note.value = "<i>no cycle finished yet</i>"
            return
        last = df.iloc[-1]
        parts = " · ".join(f"{c.removesuffix('_s')} {float(last[c]):.3f} s" for c in stages if not pd.isna(last[c]))
        self.timing_note.value = (
            f"<span style='font-size:12px'>last cycle {int(last['cycle'])}: {float(last['total_s']):.3f} s"
            f"{' (' + parts + ')' if parts else ' (no stage timings recorded for it)'}; "
            f"median of the last {len(df)}: {float(df['total_s'].median()):.3f} s</span>"
        )
