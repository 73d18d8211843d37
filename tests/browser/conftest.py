"""A real browser on the real dashboard: `workbench dashboard` (Voilà) serving a temp home on a free
loopback port, driven by Playwright through Debian's Chromium (``make sysdeps`` installs it). Without
Chromium or Playwright the tests skip and say which is missing.

Screenshots go to ``.cache/browser-artifacts/<test>/`` (or ``$WORKBENCH_ARTIFACTS``; the path is
printed): look at them when the layout changes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.kit.users import PASSWORD, trader
from workbench.config import Settings, load_settings

CHROMIUM = "/usr/bin/chromium"
LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def playwright_browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium (`make sysdeps` as root) for the browser tests")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install '.[dev]')")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture()
def home(tmp_path: Path) -> Settings:
    """A home with synthetic demo data (the backup model trades it: no training needed) and two users:
    alice (the first, so admin; paper trading) and bob (paper trading only)."""
    from workbench.data.demo import ensure_demo_data

    root = tmp_path / "home"
    root.mkdir()
    # Low thresholds: the untrained backup model's signals are weak, and the scenarios need orders.
    (root / "workbench.toml").write_text(
        '[demo]\nsource = "synthetic"\nbars = 300\nsynthetic_structure = 0.0\n'
        'synthetic_symbols = ["SYN-A", "SYN-B", "SYN-C", "SYN-D", "SYN-E", "SYN-F"]\n\n'
        "[risk]\nmin_strength = 0.02\n\n[signals]\nhold_below = 0.02\n"
    )
    settings = load_settings(root)
    settings.ensure_dirs()
    ensure_demo_data(settings)
    trader(settings, "alice")
    trader(settings, "bob")
    return settings


@dataclass
class Served:
    url: str
    proc: subprocess.Popen[bytes]
    settings: Settings
    log: Path
    shots: Path
    outside: list[str] = field(default_factory=list)  # requests that tried to leave the machine

    def kernels(self) -> list[int]:
        """The pids of the server's kernels (its ipykernel children)."""
        import psutil

        try:
            kids = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        out = []
        for k in kids:
            try:
                if "ipykernel" in " ".join(k.cmdline()):
                    out.append(k.pid)
            except psutil.NoSuchProcess:
                pass
        return out


ARTIFACTS = Path(os.environ.get("WORKBENCH_ARTIFACTS", Path(__file__).parents[2] / ".cache" / "browser-artifacts"))


@pytest.fixture()
def served(home: Settings, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Served]:
    port = _free_port()
    log = tmp_path / "voila.log"
    env = {**os.environ, "WORKBENCH_HOME": str(home.home), "PYTHONPATH": str(Path(__file__).parents[2])}
    env.pop("WORKBENCH_TOKEN", None)
    cmd = [sys.executable, "-m", "workbench", "dashboard", "--port", str(port), "--home", str(home.home)]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    shots = ARTIFACTS / request.node.name  # kept after the run (tmp dirs are not): look at them
    shots.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {shots}\nvoila log: {log}")
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(url + "voila/static/voila.js", timeout=5):
                    break
            except (ConnectionError, urllib.error.URLError, TimeoutError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"the dashboard did not come up: {log.read_text()[-3000:]}") from None
                time.sleep(0.3)
        yield Served(url, proc, home, log, shots)
    finally:
        _stop_runs(home)
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def _stop_runs(settings: Settings) -> None:
    """Live processes started from the page run detached (by design): end them with the test."""
    from workbench.trading.store import Store

    for run in Store(settings.store_url).running_runs():
        if run.get("pid"):
            try:
                os.killpg(int(run["pid"]), signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass


@pytest.fixture()
def page(playwright_browser: Any, served: Served) -> Iterator[Any]:
    ctx = playwright_browser.new_context(viewport={"width": 1280, "height": 900})
    pg = ctx.new_page()

    def watch(req: Any) -> None:
        host = req.url.split("/")[2] if "://" in req.url else ""
        if req.url.startswith(("data:", "blob:", "about:")):
            return
        if host.split(":")[0] not in LOOPBACK and not host.startswith("[::1]"):
            served.outside.append(req.url)

    # Nothing may leave the machine: every non-loopback request is recorded and refused.
    ctx.route("**/*", lambda route: route.continue_() if _local(route.request.url) else route.abort())
    pg.on("request", watch)
    pg.set_default_timeout(60_000)
    yield pg
    ctx.close()


def _local(url: str) -> bool:
    if url.startswith(("data:", "blob:", "about:")):
        return True
    host = url.split("/")[2] if "://" in url else ""
    return host.rsplit(":", 1)[0] in LOOPBACK or host.startswith("[::1]")


def login(page: Any, url: str | None, user: str = "alice", password: str = PASSWORD) -> None:
    """Log in on the page (loading ``url`` first when given)."""
    if url is not None:
        page.goto(url)
    page.locator(".wb-username input").fill(user)
    page.locator(".wb-password input").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.get_by_text(f"logged in as {user}").first.wait_for()


def tab(page: Any, name: str) -> None:
    """Open one of the dashboard's tabs (Start, Runs, Live, Models, Keys, Risk)."""
    page.locator(".wb-tabs .lm-TabBar-tab", has_text=name).first.click()


def shot(page: Any, served: Served, name: str, width: int = 1280, element: str | None = None) -> Path:
    """The page (or one ``element``) at ``width`` px, in a viewport tall enough to hold it all (Voilà
    scrolls inside its own container, so a 'full page' shot would stop at the viewport)."""
    page.set_viewport_size({"width": width, "height": 6000 if element else 3200})
    page.wait_for_timeout(800)  # let the widgets re-lay out
    path = served.shots / f"{name}-{width}.png"
    if element:
        page.locator(element).screenshot(path=str(path))
    else:
        page.screenshot(path=str(path))
    page.set_viewport_size({"width": 1280, "height": 900})
    print(f"screenshot: {path}")
    return path


_CHART_JS = """(cls) => {
  const el = document.querySelector('.' + cls);
  if (!el) return null;
  const gd = el.classList.contains('js-plotly-plot') ? el : el.querySelector('.js-plotly-plot');
  if (!gd || !gd.data) return null;
  const plain = (v) => (v == null ? [] : Array.from(v));
  return gd.data.map((t) => ({name: t.name, x: plain(t.x), y: plain(t.y)}));
}"""


def chart(page: Any, name: str) -> list[dict[str, Any]] | None:
    """The traces plotly drew for the live view's ``name`` chart (equity, price, timing): read from the
    graph div's ``data`` in the page, not from the kernel. None while the chart is not drawn."""
    return page.evaluate(_CHART_JS, f"wb-chart-{name}")  # type: ignore[no-any-return]


def wait_chart(page: Any, name: str, expect: Any, timeout: float = 60.0) -> list[dict[str, Any]]:
    """Poll the drawn ``name`` chart until ``expect(traces)`` holds (it may read the store afresh each
    time: a cycle can land between two looks); the last traces seen are in the failure message."""
    end = time.monotonic() + timeout
    seen = None
    while time.monotonic() < end:
        seen = chart(page, name)
        if seen is not None and expect(seen):
            return seen
        page.wait_for_timeout(250)
    raise AssertionError(f"the {name} chart in the page did not show the kernel's points within {timeout}s: {seen}")


TABS = ("Start", "Runs", "Live", "Models", "Keys", "Risk")

_OVERFLOW_JS = """(width) => {
  const out = [];
  const seen = (el) => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  const check = (el, what) => {
    const r = el.getBoundingClientRect();
    if (seen(el) && (r.left < -1 || r.right > width + 1)) {
      out.push(`${what} spans ${Math.round(r.left)}..${Math.round(r.right)} px`);
    }
  };
  const name = (el) => (el.className && el.className.baseVal !== undefined ? 'svg' : String(el.className))
    .split(' ').filter((c) => c.startsWith('wb-') || c.startsWith('widget-') || c === 'main-svg').join('.');
  document.querySelectorAll('.wb-tabs .lm-TabBar, .wb-tabs .lm-TabBar-tab').forEach(
    (e) => check(e, 'tab bar ' + e.textContent.trim()));
  document.querySelectorAll('.wb-tabs .jupyter-widgets, .wb-tabs .js-plotly-plot .main-svg').forEach(
    (e) => check(e, name(e) || e.tagName));
  return out;
}"""


def tabs_fit(page: Any, served: Served, widths: tuple[int, ...] = (800, 1280)) -> None:
    """Every tab at each width: a screenshot, and the tab bar and every widget on the tab (the charts'
    drawings too) inside the viewport's width: nothing clipped or pushed off to the right."""
    problems: list[str] = []
    for width in widths:
        page.set_viewport_size({"width": width, "height": 3200})
        for name in TABS:
            tab(page, name)
            page.wait_for_timeout(1200)  # the widgets re-lay out; plotly redraws at the new width
            path = served.shots / f"tab-{name.lower()}-{width}.png"
            page.screenshot(path=str(path))
            print(f"screenshot: {path}")
            problems += [f"{name} @ {width} px: {p}" for p in page.evaluate(_OVERFLOW_JS, width)]
    page.set_viewport_size({"width": 1280, "height": 900})
    assert not problems, "clipped at the viewport's width:\n" + "\n".join(problems[:40])
