"""The run's tables as plain HTML (signals of the latest cycle, orders, positions, equity, log).

Why kept: it is what the shell shows when the richer live view (``live_view.LiveView``, data grids
and interactive charts) is not installed; it reads the same store with a few small queries.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as w
import pandas as pd

from workbench.config import Settings
from workbench.dashboard.common import frame_to_html, section
from workbench.errors import AccessError
from workbench.trading.store import Store

__all__ = ["Overview", "equity_chart"]

SIGNAL_COLUMNS = ["bar_ts", "symbol", "signal", "strength", "confidence", "price", "target_price", "stop_loss",
                  "take_profit"]  # fmt: skip
ORDER_COLUMNS = ["created_at", "cycle", "symbol", "side", "type", "quantity", "status", "filled_quantity",
                 "average_price", "fee", "reason"]  # fmt: skip


def equity_chart(curve: pd.DataFrame | None) -> str:
    """The equity curve as an inline PNG: a line reads faster than a table of numbers."""
    if curve is None or len(curve) < 2 or "equity" not in curve:
        return ""
    import base64
    import io

    from matplotlib.figure import Figure

    x = curve["bar_ts"] if "bar_ts" in curve and curve["bar_ts"].notna().all() else curve["ts"]
    fig = Figure(figsize=(5, 2.2), dpi=90)
    ax = fig.add_subplot()
    ax.plot(pd.to_datetime(x), curve["equity"], color="#1565c0")
    ax.set_ylabel("equity")
    ax.ticklabel_format(axis="y", useOffset=False, style="plain")
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return f"<img src='data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}'/>"


class Overview:
    """Same constructor as the live view: ``(settings, user_getter)``; ``widget`` and ``refresh()``."""

    def __init__(self, settings: Settings, user_getter: Callable[[], Any]):
        self.settings = settings
        self.user_getter = user_getter
        self.store = Store(settings.store_url).create()
        self.signals, self.orders, self.positions, self.equity, self.events = (w.HTML() for _ in range(5))
        self.signals.add_class("wb-signals")
        self.orders.add_class("wb-orders")
        self.positions.add_class("wb-positions")
        self.widget = w.VBox(
            [
                section("Signals (latest cycle)", self.signals),
                w.HBox([section("Positions", self.positions), section("Equity", self.equity)]),
                section("Orders (latest 50)", self.orders),
                section("Log (latest 30)", self.events),
            ]
        )

    def refresh(self) -> None:
        from workbench.trading.runner import status

        user = self.user_getter()
        try:
            st = status(self.settings, user=user) if user is not None else {"run_id": None}
        except AccessError:
            st = {"run_id": None}
        run_id = st.get("run_id")
        self.signals.value = frame_to_html(
            self.store.signals(run_id, last_cycles=1) if run_id else None, "no signals yet", SIGNAL_COLUMNS
        )
        self.orders.value = frame_to_html(
            self.store.orders(run_id=run_id, limit=50) if run_id else None, "no orders yet", ORDER_COLUMNS
        )
        self.positions.value = frame_to_html(
            self.store.positions(st.get("account") or "paper") if run_id else None,
            "no open positions",
            ["symbol", "quantity", "average_price", "stop_loss", "take_profit", "realized_pnl"],
        )
        curve = self.store.equity_curve(run_id) if run_id else None
        table = frame_to_html(
            curve.tail(5) if curve is not None else None,
            "no equity yet",
            ["bar_ts", "cash", "positions_value", "equity"],
        )
        self.equity.value = equity_chart(curve) + table
        self.events.value = frame_to_html(
            self.store.events(run_id=run_id, limit=30) if run_id else None,
            "log is empty",
            ["ts", "level", "kind", "message"],
        )
