"""The dashboard shell: a header, the login page, and tabs — Start, Models, Keys, Risk, Runs, Live.

It never trades itself (the start page launches ``workbench live run`` apart from this kernel) and
holds the page's one login session (``session.PageSession``): the token lives in this kernel's memory
and in the browser tab's ``sessionStorage`` (``remember.RememberedSession``), so a reload's new kernel
takes it back without a new login; it reaches a live process in ``$WORKBENCH_TOKEN`` (never argv), and
is checked against the store on every action and every poll, so an expired or revoked session sends
the page back to the login form with the reason (and is forgotten by the tab). Each page is its own module; the Runs table and the Live view
(``runs_view.RunsView``, ``live_view.LiveView``, built apart) are mounted when installed, each
constructed as ``(settings, user_getter)`` and exposing ``widget`` and ``refresh()``; without a live
view the plain tables of ``overview`` stand in.
"""

from __future__ import annotations

import asyncio
import html
import importlib
from collections.abc import Callable
from typing import Any

import ipywidgets as w

from workbench.config import Settings
from workbench.dashboard.common import CSS, badge, broker_options, frame_to_html
from workbench.dashboard.keys import KeysPage
from workbench.dashboard.login import LoginPage
from workbench.dashboard.models import ModelCatalog, ModelsPage
from workbench.dashboard.overview import Overview
from workbench.dashboard.remember import RememberedSession
from workbench.dashboard.risk import RiskPage
from workbench.dashboard.session import PageSession
from workbench.dashboard.start import StartPage
from workbench.errors import AccessError
from workbench.trading.runner import broker_environment

__all__ = ["Dashboard", "frame_to_html", "broker_options", "mount_view"]


def mount_view(module: str, cls: str, settings: Settings, user_getter: Callable[[], Any]) -> Any | None:
    """``workbench.dashboard.<module>.<cls>(settings, user_getter)`` when that module is installed, else
    None (an import error inside an installed module is a bug and is raised)."""
    name = f"workbench.dashboard.{module}"
    try:
        mod = importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name == name:
            return None
        raise
    return getattr(mod, cls)(settings, user_getter)


class Dashboard:
    """One dashboard over one workbench home. ``widget`` is what the notebook (and Voilà) displays."""

    def __init__(self, settings: Settings, refresh_s: float = 2.0, token: str | None = None):
        self.settings = settings
        self.refresh_s = refresh_s
        self._task: asyncio.Task[None] | None = None
        self._data_html: str | None = None  # the lake's demo label, read once it exists
        self.session = PageSession(settings)
        self.catalog = ModelCatalog(settings)
        self.login_page = LoginPage(self.session)
        self.start_page = StartPage(settings, self.session, self.catalog)
        self.models_page = ModelsPage(settings, self.session, self.catalog)
        self.keys_page = KeysPage(settings, self.session)
        self.risk_page = RiskPage(settings, self.session)
        getter = self.session.user_getter
        self.runs_view = mount_view("runs_view", "RunsView", settings, getter)
        self.live_view = mount_view("live_view", "LiveView", settings, getter) or Overview(settings, getter)
        pages: list[tuple[str, Any]] = [("Start", self.start_page)]
        if self.runs_view is not None:
            pages.append(("Runs", self.runs_view))
        pages += [
            ("Live", self.live_view),
            ("Models", self.models_page),
            ("Keys", self.keys_page),
            ("Risk", self.risk_page),
        ]
        self.pages = dict(pages)
        self.tabs = w.Tab(children=[p.widget for _, p in pages])
        self.tabs.titles = tuple(t for t, _ in pages)
        self.tabs.add_class("wb-tabs")
        self.tabs.observe(lambda _: self._refresh_selected(full=True), names="selected_index")
        self.header = w.HTML()
        self.header.add_class("wb-header")
        self.start_page.broker.observe(lambda _: self._show_header(), names="value")
        self.remember = RememberedSession(str(settings.home), self._restore)
        self.widget = w.VBox(
            [w.HTML(CSS), self.header, self.login_page.bar, self.login_page.widget, self.tabs, self.remember]
        )
        self.widget.add_class("wb-dashboard")
        self.session.on_change(lambda: self.remember.hold(self.session.token))
        self.session.on_change(self._session_changed)
        if token:
            try:
                self.session.open(token)
            except AccessError as e:
                self.login_page.notice.say(str(e), "error")
        self._session_changed()

    @property
    def user(self) -> Any:
        return self.session.user

    # ---- session ------------------------------------------------------------------------------
    def _restore(self, token: str) -> bool:
        """A token the browser kept from before a reload: adopted only if the store still honours it."""
        try:
            self.session.open(token)
        except AccessError as e:
            why = str(e).replace("run `workbench login`", "log in again")
            self.login_page.notice.say(f"your session from before the reload ended: {why}", "warn")
            return False
        return True

    def _session_changed(self) -> None:
        """Logged in: the tabs; logged out or expired: the login page only (with the reason)."""
        logged_in = self.session.user is not None
        if not logged_in:
            self.tabs.layout.display = "none"
            self.login_page.widget.layout.display = None
        self.start_page.refresh_choices()  # pages filled before the tabs appear: no stale "log in" text
        if logged_in:
            self.risk_page.refresh()
            self.keys_page.refresh()
        self.refresh()
        if logged_in:
            self.login_page.widget.layout.display = "none"
            self.tabs.layout.display = None

    # ---- refresh ------------------------------------------------------------------------------
    def selected(self) -> str:
        return tuple(self.pages)[self.tabs.selected_index or 0]

    def _refresh_selected(self, full: bool = False) -> None:
        """The visible tab only; pages whose data change rarely (models, keys, risk) only when opened."""
        name = self.selected()
        page = self.pages[name]
        if name in ("Start", "Runs", "Live") or full:
            page.refresh()

    def refresh(self) -> None:
        """The header, the session's validity (without counting as use) and the visible tab."""
        self._show_header()
        if self.session.token and self.session.check() is None:
            return  # the session ended: the listeners showed the login page with the reason
        if self.session.user is not None:
            self._refresh_selected()
        else:
            self.start_page.refresh()

    def _show_header(self) -> None:
        name = self.start_page.broker.value
        env = broker_environment(self.settings, name)
        mode = {"paper": badge("PAPER TRADING", "#2e7d32"), "testnet": badge(f"TESTNET · {name}", "#ef6c00")}.get(
            env, badge(f"LIVE · REAL MONEY · {name}", "#c62828")
        )
        self.header.value = f"<h2 style='margin:4px 0'>workbench — AI trading {mode}</h2>{self._data_label()}"

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
        self._data_html = (
            f"<div>Data: <b style='color:{colour}'>{html.escape(demo.label)}</b> — "
            f"{html.escape(', '.join(demo.symbols))}</div>"
        )
        return self._data_html

    async def _autorefresh(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_s)
            try:
                self.refresh()
            except Exception as e:  # a transient read error must not kill the page's refresh)
                self.start_page.notice.say(f"refresh failed: {e}", "error")

    def start_autorefresh(self) -> None:
        """Refresh on the kernel's event loop (Voilà and JupyterLab both run one)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_event_loop().create_task(self._autorefresh())
