"""What every page of the dashboard shares: the stylesheet, escaped HTML tables, badges, a message line.

Why one place: each page is its own module (login, keys, models, risk, start), but they must look and
speak alike, and every bit of text a user or a store row supplies must be escaped exactly once.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as w
import pandas as pd

from workbench.config import Settings
from workbench.trading.runner import broker_environment
from workbench.venues import venue_offers

__all__ = ["CSS", "Notice", "badge", "broker_options", "frame_to_html", "section"]

CSS = """
<style>
.wb-table table {border-collapse: collapse; font-size: 12px; font-family: monospace;}
.wb-table th, .wb-table td {border-bottom: 1px solid #ddd; padding: 2px 8px; text-align: left;}
.wb-table td.num {text-align: right;}
.wb-table th {background: #f3f3f3;}
.wb-badge {padding: 3px 10px; border-radius: 4px; color: white; font-weight: bold;}
.wb-hint {color: #666; font-size: 12px;}
</style>
"""

COLOURS = {"ok": "green", "error": "red", "warn": "orange", "info": "#555"}


def frame_to_html(df: pd.DataFrame | None, empty: str = "nothing yet", columns: list[str] | None = None) -> str:
    """A compact HTML table (escaped), or a grey note when there is nothing to show.

    Only ``columns`` are shown when given (those the frame has), so a wide store table stays readable.
    """
    if df is None or len(df) == 0:
        return f"<div class='wb-table'><i style='color:#888'>{html.escape(empty)}</i></div>"
    shown = df[[c for c in columns if c in df.columns]] if columns else df.copy()
    shown = shown.copy()
    for col in shown.columns:
        if pd.api.types.is_datetime64_any_dtype(shown[col]):
            shown[col] = shown[col].dt.strftime("%Y-%m-%d %H:%M:%S")
        elif pd.api.types.is_float_dtype(shown[col]):
            shown[col] = shown[col].map(lambda v: "" if pd.isna(v) else f"{v:,.6g}")
    return "<div class='wb-table'>" + shown.to_html(index=False, escape=True, border=0, na_rep="") + "</div>"


def badge(text: str, colour: str) -> str:
    return f"<span class='wb-badge' style='background:{colour}'>{html.escape(text)}</span>"


def section(title: str, body: w.Widget) -> w.VBox:
    return w.VBox([w.HTML(f"<h4 style='margin:8px 0 2px'>{html.escape(title)}</h4>"), body])


class Notice:
    """One page's message line: what just happened, in a colour that says whether it worked."""

    def __init__(self, css: str):
        self.widget = w.HTML()
        self.widget.add_class(css)
        self.kind = ""
        self.text = ""  # the message as typed (the widget holds it escaped)

    def say(self, text: str, kind: str = "info") -> None:
        self.kind, self.text = kind, text
        self.widget.value = f"<b style='color:{COLOURS[kind]}'>{html.escape(text)}</b>"

    def clear(self) -> None:
        self.kind = self.text = ""
        self.widget.value = ""


def broker_options(settings: Settings, user: Any = None) -> list[tuple[str, str]]:
    """Paper first (the default); real brokers labelled with what they would trade, and whether the
    logged-in ``user`` lacks the permission (``trade_live``) a real-money one needs."""
    names = venue_offers()
    default = settings.broker.default
    if default not in names:
        names.insert(1, default)
    label = {"paper": "Paper trading (simulated fills)", "testnet": "TESTNET (test money)", "live": "LIVE — REAL MONEY"}
    out = []
    for n in names:
        env = broker_environment(settings, n)
        gate = (
            ""
            if env != "live" or (user is not None and user.can("trade_live"))
            else " (needs the trade_live permission)"
        )
        out.append((label["paper"] if n == "paper" else f"{n} — {label[env]}{gate}", n))
    return out
