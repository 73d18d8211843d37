"""The Runs page: every run the user may see, and the controls that act on one run.

Each row names the run's status (DEAD when its process is gone: nothing trades for it, whatever the
row says), owner, broker and environment, feed, model, cycle and last heartbeat. Stop, Emergency stop,
Flatten and Close position act on that row's run only, and each asks for confirmation first: the page
sends a command the live process obeys between cycles (the page never trades itself).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ipywidgets as w
import pandas as pd

from workbench.config import Settings
from workbench.dashboard.reads import run_positions, visible_runs
from workbench.errors import WorkbenchError

__all__ = ["RunsView", "heartbeat_text", "STATE_COLOURS"]

STATE_COLOURS = {
    "RUNNING": "#1565c0",
    "DEAD": "#6a1b9a",
    "STOPPED": "#555",
    "FAILED": "#c62828",
    "EMERGENCY_STOPPED": "#c62828",
}
SHOWN = 50  # newest runs listed; older ones stay in the store (and `workbench live status`)


def heartbeat_text(stamp: Any, now: pd.Timestamp | None = None) -> str:
    """'12 s ago' / '3 min ago' / '2.5 h ago': how fresh the run's last sign of life is."""
    if stamp is None or (isinstance(stamp, float) and pd.isna(stamp)) or stamp == "":
        return "never"
    now = now if now is not None else pd.Timestamp.now(tz="UTC")
    age = (now - pd.Timestamp(stamp).tz_convert("UTC")).total_seconds()
    if age < 120:
        return f"{age:.0f} s ago"
    if age < 7200:
        return f"{age / 60:.0f} min ago"
    return f"{age / 3600:.1f} h ago"


def _badge(text: str, colour: str) -> str:
    return (
        f"<span style='background:{colour};color:white;padding:1px 7px;border-radius:3px;"
        f"font-weight:bold;font-size:11px'>{html.escape(text)}</span>"
    )


@dataclass
class _Row:
    run_id: int
    summary: w.HTML
    view: w.Button
    stop: w.Button
    emergency: w.Button
    flatten: w.Button
    symbol: w.Dropdown
    close: w.Button
    box: w.Box


class RunsView:
    """The runs table with per-run actions. ``user_getter`` returns the logged-in user (raising
    ``AccessError`` when the session has ended); ``on_view`` is told which run to show in the live view."""

    def __init__(
        self,
        settings: Settings,
        user_getter: Callable[[], Any],
        on_view: Callable[[int], None] | None = None,
    ):
        from workbench.store.engine import engine_for

        self.settings = settings
        self.user_getter = user_getter
        self.on_view = on_view
        self.engine = engine_for(settings.store_url)
        self._rows: dict[int, _Row] = {}
        self._pending: Callable[[], None] | None = None
        self.message = w.HTML()
        self.confirm_text = w.HTML()
        self.confirm_button = w.Button(description="Confirm", button_style="danger")
        self.cancel_button = w.Button(description="Cancel")
        self.confirm_button.on_click(lambda _: self._confirm())
        self.cancel_button.on_click(lambda _: self._ask(None, ""))
        self.confirm_bar = w.HBox(
            [self.confirm_text, self.confirm_button, self.cancel_button],
            layout=w.Layout(display="none", flex_flow="row wrap", align_items="center"),
        )
        self.note = w.HTML()
        self.list = w.VBox()
        self.widget = w.VBox(
            [w.HTML("<h3 style='margin:6px 0'>Runs</h3>"), self.message, self.confirm_bar, self.list, self.note],
            layout=w.Layout(width="100%"),
        )
        self.widget.add_class("wb-runs")
        self.frame = pd.DataFrame()

    # ---- refresh ------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read the runs (tens of rows: cheap) and update the rows in place."""
        try:
            user = self.user_getter()
        except WorkbenchError as e:
            user = None
            self._say(str(e), "red")
        if user is None:
            self.list.children = ()
            self.note.value = "<i>Log in to see your runs.</i>"
            self.frame = pd.DataFrame()
            return
        df = visible_runs(self.engine, user, limit=SHOWN + 1)
        self.frame = df.head(SHOWN)
        now = pd.Timestamp.now(tz="UTC")
        for rec in self.frame.to_dict("records"):
            row = self._rows.get(int(rec["id"])) or self._new_row(int(rec["id"]))
            self._fill(row, rec, now)
        ids = [int(i) for i in self.frame["id"]]
        if [r.run_id for r in self._shown()] != ids:
            self.list.children = tuple(self._rows[i].box for i in ids)
        self.note.value = (
            "<i>No runs yet: start one on the Start page.</i>"
            if not ids
            else (
                f"<i>the newest {SHOWN} runs; older ones: <code>workbench live status</code></i>"
                if len(df) > SHOWN
                else ""
            )
        )

    def _shown(self) -> list[_Row]:
        by_box = {id(r.box): r for r in self._rows.values()}
        return [by_box[id(b)] for b in self.list.children if id(b) in by_box]

    def _new_row(self, run_id: int) -> _Row:
        small = w.Layout(width="auto")
        row = _Row(
            run_id=run_id,
            summary=w.HTML(layout=w.Layout(flex="1 1 420px", min_width="280px")),
            view=w.Button(description="View", tooltip="show this run in the live view", layout=small),
            stop=w.Button(description="Stop", button_style="warning", icon="stop", layout=small),
            emergency=w.Button(
                description="Emergency stop", button_style="danger", icon="exclamation-triangle", layout=small
            ),
            flatten=w.Button(description="Flatten", tooltip="sell every position at market", layout=small),
            symbol=w.Dropdown(options=[], layout=w.Layout(width="130px")),
            close=w.Button(description="Close position", tooltip="sell this position at market", layout=small),
            box=w.Box(),
        )
        row.view.on_click(lambda _: self.on_view(run_id) if self.on_view else None)
        row.stop.on_click(lambda _: self.ask_stop(run_id, emergency=False))
        row.emergency.on_click(lambda _: self.ask_stop(run_id, emergency=True))
        row.flatten.on_click(lambda _: self.ask_action(run_id, "flatten"))
        row.close.on_click(lambda _: self.ask_action(run_id, f"close:{row.symbol.value}") if row.symbol.value else None)
        controls = w.HBox(
            [row.view, row.stop, row.emergency, row.flatten, row.symbol, row.close],
            layout=w.Layout(flex_flow="row wrap", align_items="center"),
        )
        row.box = w.Box(
            [row.summary, controls],
            layout=w.Layout(
                flex_flow="row wrap",
                align_items="center",
                border_bottom="1px solid #ddd",
                padding="3px 0",
                width="100%",
            ),
        )
        row.box.add_class(f"wb-run-{run_id}")
        self._rows[run_id] = row
        return row

    def _fill(self, row: _Row, rec: dict, now: pd.Timestamp) -> None:
        state = str(rec["state"])
        feed = rec.get("feed")
        feed_txt = "" if feed is None or pd.isna(feed) else f" · feed <b>{html.escape(str(feed))}</b>"
        env = str(rec["environment"] or "")
        env_badge = _badge(env.upper(), {"paper": "#2e7d32", "testnet": "#ef6c00"}.get(env, "#c62828"))
        owner = rec.get("owner") or f"user {rec.get('user_id')}"
        msg = rec.get("message")
        size, uni = rec.get("universe_size"), rec.get("universe")
        if size is None or pd.isna(size):
            uni_txt = " · the model's universe"
        else:
            named = "" if uni is None or pd.isna(uni) else f"{html.escape(str(uni))}, "
            uni_txt = f" · universe {named}<b>{int(size)} instrument{'s' if int(size) != 1 else ''}</b>"
        row.summary.value = (
            f"<b>run {rec['id']}</b> {_badge(state, STATE_COLOURS.get(state, '#555'))} {env_badge} "
            f"{html.escape(str(rec['broker']))}{feed_txt} · owner <b>{html.escape(str(owner))}</b><br>"
            f"<span style='font-size:12px'>model {html.escape(str(rec['model_ref'] or '—'))}{uni_txt} · cycle {rec['cycle']}"
            f" · every {float(rec['interval_s'] or 0):g} s · heartbeat {heartbeat_text(rec['heartbeat_at'], now)}"
            f"{' · ' + html.escape(str(msg)) if isinstance(msg, str) and msg else ''}</span>"
        )
        running = state == "RUNNING"
        # A DEAD run's Stop stays pressable: the answer explains that nothing trades and how to resume.
        for b in (row.stop, row.emergency):
            b.disabled = state not in ("RUNNING", "DEAD")
        for b in (row.flatten, row.close, row.symbol):
            b.disabled = not running
        if running:
            held = list(run_positions(self.engine, str(rec["account"] or "paper"))["symbol"])
            if list(row.symbol.options) != held:
                row.symbol.options = held
            row.close.disabled = not held
        elif row.symbol.options:
            row.symbol.options = []

    # ---- confirmation -------------------------------------------------------------------------
    def ask_stop(self, run_id: int, emergency: bool) -> None:
        what = "EMERGENCY STOP (open orders cancelled at once)" if emergency else "Stop (after the current cycle)"
        self._ask(lambda: self._stop(run_id, emergency), f"{what} run {run_id}?")

    def ask_action(self, run_id: int, action: str) -> None:
        name, _, sym = action.partition(":")
        what = (
            f"Close the {sym} position (sell at market)"
            if name == "close"
            else "Flatten: sell EVERY position at market"
        )
        self._ask(lambda: self._act(run_id, action), f"{what} in run {run_id}? The run keeps trading.")

    def _ask(self, do: Callable[[], None] | None, text: str) -> None:
        self._pending = do
        self.confirm_text.value = f"<b style='color:#c62828'>{html.escape(text)}</b>"
        self.confirm_bar.layout.display = None if do is not None else "none"

    def _confirm(self) -> None:
        do, self._pending = self._pending, None
        self.confirm_bar.layout.display = "none"
        if do is not None:
            do()
        self.refresh()

    # ---- actions ------------------------------------------------------------------------------
    def _stop(self, run_id: int, emergency: bool) -> None:
        from workbench.trading.runner import stop_run

        try:
            out = stop_run(self.settings, emergency=emergency, run_id=run_id, user=self.user_getter())
        except WorkbenchError as e:
            self._say(str(e), "red")
            return
        if out.sent:
            self._say(
                f"EMERGENCY STOP sent to run {run_id}: open orders are cancelled now"
                if emergency
                else f"stop requested: run {run_id} ends after its current cycle",
                "red" if emergency else "orange",
            )
        else:
            self._say(out.message, "red" if out.dead else "orange")

    def _act(self, run_id: int, action: str) -> None:
        from workbench.trading.runner import send_action

        try:
            out = send_action(self.settings, action, run_id, user=self.user_getter())
        except WorkbenchError as e:
            self._say(str(e), "red")
            return
        self._say(out.message, "orange" if out.sent else "red")

    def _say(self, text: str, colour: str) -> None:
        self.message.value = f"<b style='color:{colour}'>{html.escape(text)}</b>"
