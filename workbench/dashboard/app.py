"""The dashboard: Start AI Trading, Stop, Emergency stop, and the live tables.

It never trades itself. Start launches the live process (``workbench live run``) apart from this
kernel, so closing the browser neither stops nor orphans trading; the page reads state from the
SQLite store and writes commands (stop, emergency stop) that the loop obeys within one cycle.

Whoever reaches the page must log in first (a box at the top; a first admin changes the one-time
password shown by `workbench init` there). The session token then lives only in this kernel's memory
(never a file, never the page) and is handed to the live process in ``$WORKBENCH_TOKEN``, never in its
argv. The page shows and stops only the user's own runs (an admin's: anyone's).
"""

from __future__ import annotations

import asyncio
import html
import subprocess
from dataclasses import dataclass
from typing import Any

import ipywidgets as w
import pandas as pd

from workbench.config import Settings
from workbench.errors import AccessError, ConfigError, WorkbenchError
from workbench.trading.runner import MIN_INTERVAL_S, broker_environment
from workbench.venues import venue_offers

__all__ = ["Dashboard", "frame_to_html"]

_CSS = """
<style>
.wb-table table {border-collapse: collapse; font-size: 12px; font-family: monospace;}
.wb-table th, .wb-table td {border-bottom: 1px solid #ddd; padding: 2px 8px; text-align: left;}
.wb-table td.num {text-align: right;}
.wb-table th {background: #f3f3f3;}
.wb-badge {padding: 3px 10px; border-radius: 4px; color: white; font-weight: bold;}
</style>
"""


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


def equity_chart(curve: pd.DataFrame | None) -> str:
    """The equity curve as an inline PNG: a line reads faster than a table of numbers."""
    if curve is None or len(curve) < 2 or "equity" not in curve:
        return ""
    import base64
    import io

    import matplotlib

    matplotlib.use("Agg", force=False)
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


def _badge(text: str, colour: str) -> str:
    return f"<span class='wb-badge' style='background:{colour}'>{html.escape(text)}</span>"


def _broker_options(settings: Settings, user: Any = None) -> list[tuple[str, str]]:
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


@dataclass
class _Views:
    header: w.HTML
    status: w.HTML
    checks: w.HTML
    signals: w.HTML
    orders: w.HTML
    positions: w.HTML
    equity: w.HTML
    events: w.HTML
    message: w.HTML


class Dashboard:
    """One dashboard over one workbench home. ``widget`` is what the notebook displays."""

    def __init__(self, settings: Settings, refresh_s: float = 2.0, token: str | None = None):
        from workbench.security.access import accounts_for
        from workbench.trading.store import Store

        self.settings = settings
        self.accounts = accounts_for(settings)
        self._token: str | None = None  # the session, in this kernel's memory only
        self.user: Any = None
        self.refresh_s = refresh_s
        self.store = Store(settings.store_url)
        self.store.create()
        self._process: subprocess.Popen[bytes] | None = None
        self._task: asyncio.Task | None = None
        self._data_html: str | None = None  # the lake's demo label, read once it exists

        opts = _broker_options(settings)
        default = settings.broker.default if settings.broker.default in {v for _, v in opts} else "paper"
        self.broker = w.Dropdown(options=opts, value=default, description="Broker")
        self.broker.observe(lambda _: self.refresh(), names="value")
        self.model = w.Text(value="champion", description="Model")
        self.interval = w.BoundedFloatText(
            value=settings.live.interval_s, min=MIN_INTERVAL_S, max=3600, description="Every (s)"
        )
        self.start_button = w.Button(description="Start AI Trading", button_style="success", icon="play")
        self.stop_button = w.Button(description="Stop", button_style="warning", icon="stop")
        self.emergency_button = w.Button(
            description="Emergency stop", button_style="danger", icon="exclamation-triangle"
        )
        self.start_button.on_click(self.start)
        self.stop_button.on_click(self.stop)
        self.emergency_button.on_click(self.emergency_stop)
        self.username = w.Text(value="admin", description="User")
        self.password = w.Password(description="Password")
        self.login_button = w.Button(description="Log in", button_style="primary", icon="sign-in")
        self.new_password = w.Password(description="New")
        self.new_password2 = w.Password(description="Repeat")
        self.change_button = w.Button(description="Set new password", button_style="primary")
        self.logout_button = w.Button(description="Log out", icon="sign-out")
        self.who = w.HTML()
        self.login_button.on_click(self.login)
        self.change_button.on_click(self.change_password)
        self.logout_button.on_click(self.logout)
        self.login_form = w.HBox([self.username, self.password, self.login_button])
        self.change_form = w.HBox([self.new_password, self.new_password2, self.change_button])
        self.session_bar = w.HBox([self.who, self.logout_button])
        h = lambda: w.HTML()  # noqa: E731
        self.views = _Views(*(h() for _ in range(9)))
        # Temporary mount of the Runs and Live views (browser18) until the page shell (dash18) mounts them.
        from workbench.dashboard.live_view import LiveView
        from workbench.dashboard.runs_view import RunsView

        user_now = lambda: self._session_user() if self._token else None  # noqa: E731
        self.live_view = LiveView(settings, user_now)
        self.runs_view = RunsView(settings, user_now, on_view=self.live_view.show_run)
        self.widget = self._layout()
        self._pending_password: str | None = None  # a forced change needs the one-time password once more
        if token:
            self._open(token)
        self._show_session()
        self.refresh()

    # ---- session ------------------------------------------------------------------------------
    def login(self, _=None) -> None:
        """Check the password; on success keep the token in memory (a forced change comes first)."""
        password, self.password.value = self.password.value, ""
        try:
            token, session = self.accounts.login(self.username.value, password, client="dashboard")
        except (AccessError, ConfigError) as e:
            self._say(str(e), "red")
            return
        if session.user.must_change_password:
            self.accounts.logout(token)
            self._pending_password = password
            self._say(
                "choose your own password now (at least "
                f"{self.accounts.policy.min_password_length} characters); the one-time one stops working",
                "orange",
            )
        else:
            self._open(token)
            self._say(f"logged in as {session.user.username}", "green")
        self._show_session()
        self.refresh()

    def change_password(self, _=None) -> None:
        """The forced change at first login: set the new password, then log in with it."""
        new, again = self.new_password.value, self.new_password2.value
        self.new_password.value = self.new_password2.value = ""
        if self._pending_password is None:
            self._say("log in first", "red")
            return
        if new != again:
            self._say("the two new passwords differ", "red")
            return
        try:
            user = self.accounts.user(self.username.value)
            self.accounts.set_password(user.username, new, user, self._pending_password)
            token, _session = self.accounts.login(user.username, new, client="dashboard")
        except (AccessError, ConfigError) as e:
            self._say(str(e), "red")
            return
        self._pending_password = None
        self._open(token)
        self._say(f"password changed; logged in as {self.user.username}", "green")
        self._show_session()
        self.refresh()

    def logout(self, _=None) -> None:
        if self._token:
            self.accounts.logout(self._token)
        self._token, self.user = None, None
        self._say("logged out", "#555")
        self._show_session()
        self.refresh()

    def _open(self, token: str) -> None:
        from workbench.security.access import require_session

        self.user = require_session(self.accounts, self.settings, token=token).user
        self._token = token
        opts = _broker_options(self.settings, self.user)
        value = self.broker.value
        self.broker.options = opts
        self.broker.value = value if value in {v for _, v in opts} else "paper"

    def _session_user(self) -> Any:
        """The user behind the kept token, checked again (it may have expired or been revoked)."""
        from workbench.security.access import require_session

        if not self._token:
            raise AccessError("log in first (the box at the top of the page)")
        try:
            self.user = require_session(self.accounts, self.settings, token=self._token).user
        except AccessError:
            self._token, self.user = None, None
            self._show_session()
            raise
        return self.user

    def _show_session(self) -> None:
        logged_in = self.user is not None
        self.login_form.layout.display = "none" if logged_in or self._pending_password else None
        self.change_form.layout.display = None if self._pending_password and not logged_in else "none"
        self.session_bar.layout.display = None if logged_in else "none"
        if logged_in:
            perms = ", ".join(sorted(self.user.permissions)) or "no permissions"
            self.who.value = f"logged in as <b>{html.escape(self.user.username)}</b> ({html.escape(perms)})"
        for b in (self.start_button, self.stop_button, self.emergency_button):
            b.disabled = not logged_in

    # ---- layout -------------------------------------------------------------------------------
    def _layout(self) -> w.Widget:
        v = self.views
        section = lambda title, body: w.VBox([w.HTML(f"<h4 style='margin:8px 0 2px'>{title}</h4>"), body])  # noqa: E731
        controls = w.HBox([self.broker, self.model, self.interval])
        buttons = w.HBox([self.start_button, self.stop_button, self.emergency_button])
        return w.VBox(
            [
                w.HTML(_CSS),
                v.header,
                self.login_form,
                self.change_form,
                self.session_bar,
                controls,
                buttons,
                v.message,
                v.status,
                section("Phase 1 — validation", v.checks),
                section("Signals (latest cycle)", v.signals),
                w.HBox([section("Positions", v.positions), section("Equity", v.equity)]),
                section("Orders", v.orders),
                section("Log", v.events),
                self.runs_view.widget,
                section("Live view", self.live_view.widget),
            ]
        )

    # ---- actions ------------------------------------------------------------------------------
    def start(self, _=None) -> None:
        """Launch the live process; Phase 1 runs there and its results appear in the table."""
        from workbench.trading.runner import start_background

        try:  # refused when not logged in, the account already has a live run, or the interval is below the floor
            self._session_user()
            self._process = start_background(
                self.settings,
                broker=self.broker.value,
                model=self.model.value.strip() or "champion",
                interval_s=float(self.interval.value),
                session=self._token,
            )
        except WorkbenchError as e:
            self._say(str(e), "red")
            return
        self._say(f"live process started (pid {self._process.pid}); Phase 1 checks follow below", "green")
        self.refresh()

    def stop(self, _=None) -> None:
        self._stop(emergency=False)

    def emergency_stop(self, _=None) -> None:
        self._stop(emergency=True)

    def _stop(self, emergency: bool) -> None:
        """Send the command to the user's running run; a dead run is reported dead (nothing would obey)."""
        from workbench.trading.runner import stop_run

        try:
            out = stop_run(self.settings, emergency=emergency, user=self._session_user())
        except WorkbenchError as e:  # not logged in, or several runs are RUNNING: the message says which
            self._say(str(e), "red")
            return
        if out.sent and emergency:
            self._say(f"EMERGENCY STOP sent to run {out.run_id}: open orders are cancelled now", "red")
        elif out.sent:
            self._say(f"stop requested: run {out.run_id} ends after its current cycle", "orange")
        else:
            self._say(out.message, "red" if out.dead else "orange")
        self.refresh()

    def _say(self, text: str, colour: str) -> None:
        self.views.message.value = f"<b style='color:{colour}'>{html.escape(text)}</b>"

    # ---- refresh ------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read the store and redraw every table; cheap enough to run every couple of seconds."""
        from workbench.trading.runner import status

        v = self.views
        if self.user is None:
            st: dict = {"run_id": None}
        else:
            try:
                st = status(self.settings, user=self._session_user())
            except AccessError as e:
                self._say(str(e), "red")
                st = {"run_id": None}
        run_id = st.get("run_id")
        env = broker_environment(self.settings, self.broker.value)
        mode = {
            "paper": _badge("PAPER TRADING", "#2e7d32"),
            "testnet": _badge(f"TESTNET · {self.broker.value}", "#ef6c00"),
        }.get(env, _badge(f"LIVE · REAL MONEY · {self.broker.value}", "#c62828"))
        v.header.value = f"<h2 style='margin:4px 0'>workbench — AI trading {mode}</h2>{self._data_label()}"
        if self.user is None:
            v.status.value = "<i>Log in to see and start your runs (first run: the admin password printed by <code>workbench init</code>).</i>"
        elif run_id is None:
            v.status.value = "<i>No live run yet. Press <b>Start AI Trading</b>.</i>"
        else:
            colour = {"RUNNING": "#1565c0", "STOPPED": "#555", "FAILED": "#c62828", "EMERGENCY_STOPPED": "#c62828"}.get(
                str(st.get("status")), "#555"
            )
            equity = st.get("equity")
            eq = f" · equity {equity:,.2f}" if isinstance(equity, (int, float)) else ""
            v.status.value = (
                f"{_badge(str(st.get('status')), colour)} run {run_id} · cycle {st.get('cycle')} · "
                f"model {html.escape(str(st.get('model_ref') or ''))}{eq} · {html.escape(str(st.get('message') or ''))}"
            )
        checks = self.store.checks(run_id) if run_id else None
        if checks is not None and len(checks):
            checks = checks.assign(result=checks["ok"].map(lambda ok: "PASS" if ok else "FAIL"))
            checks = checks[["name", "result", "message"]]
        v.checks.value = frame_to_html(checks, "Phase 1 has not run yet")
        v.signals.value = frame_to_html(
            self.store.signals(run_id, last_cycles=1) if run_id else None,
            "no signals yet",
            [
                "bar_ts",
                "symbol",
                "signal",
                "strength",
                "confidence",
                "price",
                "target_price",
                "stop_loss",
                "take_profit",
            ],
        )
        v.orders.value = frame_to_html(
            self.store.orders(run_id=run_id, limit=50) if run_id else None,
            "no orders yet",
            [
                "created_at",
                "cycle",
                "symbol",
                "side",
                "type",
                "quantity",
                "status",
                "filled_quantity",
                "average_price",
                "fee",
                "reason",
            ],
        )
        v.positions.value = frame_to_html(
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
        v.equity.value = equity_chart(curve) + table
        v.events.value = frame_to_html(
            self.store.events(run_id=run_id, limit=30) if run_id else None,
            "log is empty",
            ["ts", "level", "kind", "message"],
        )
        self.runs_view.refresh()
        self.live_view.refresh()

    def _data_label(self) -> str:
        """What market the page trades; scanning the lake every refresh is wasted I/O, so the label is
        kept once data exists (until then each refresh looks again)."""
        if self._data_html is not None:
            return self._data_html
        from workbench.data.demo import demo_universe_in_lake

        demo = demo_universe_in_lake(self.settings)
        if demo is None:
            return "<i>No market data yet: run <code>workbench init --demo</code> or notebook 01.</i>"
        colour = "#c62828" if demo.synthetic else "#2e7d32"
        self._data_html = f"<div>Data: <b style='color:{colour}'>{html.escape(demo.label)}</b> — {html.escape(', '.join(demo.symbols))}</div>"
        return self._data_html

    async def _autorefresh(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_s)
            try:
                self.refresh()
            except Exception as e:  # a transient read error must not kill the page's refresh
                self._say(f"refresh failed: {e}", "red")

    def start_autorefresh(self) -> None:
        """Refresh on the kernel's event loop (Voilà and JupyterLab both run one)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_event_loop().create_task(self._autorefresh())
