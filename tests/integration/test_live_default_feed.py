"""Live by default: `live run --broker ccxt:binance` without --replay trades the venue's live stream and
never touches a replay; --replay is explicit and the run says REPLAY."""

from __future__ import annotations

import threading
import time

import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.kit.fake_binance import FakeBinance
from tests.kit.fake_binance_ws import FakeBinanceWs
from tests.kit.live_rig import wait_for
from tests.kit.models import MomentumEngine, synthetic_panel
from tests.kit.tape import Tape
from tests.kit.users import trader
from workbench.config import load_settings
from workbench.data.lake import Lake
from workbench.trading.runner import run_live, status
from workbench.trading.store import Store

SYMBOLS = ("AAA/USDT", "BBB/USDT", "CCC/USDT")


def _no_replay(monkeypatch) -> list[str]:
    """Every way into a replay records itself and fails."""
    from workbench.trading import feeds

    touched: list[str] = []

    def refuse(*a, **k):
        touched.append("replay")
        raise AssertionError("a replay was read on a live run")

    monkeypatch.setattr(feeds.ReplayFeed, "__init__", refuse)
    monkeypatch.setattr(feeds.ReplayFeed, "from_panel", classmethod(refuse))
    monkeypatch.setattr(feeds.ReplayFeed, "next", refuse)
    return touched


def test_live_run_on_binance_without_replay_trades_the_live_stream(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_LIVE__FEED", "live")  # the users' default (the suite's is replay)
    monkeypatch.delenv("WORKBENCH_KEY_CCXT_BINANCE_API_KEY", raising=False)
    touched = _no_replay(monkeypatch)
    now = pd.Timestamp.now(tz="UTC").floor("s")
    tape = Tape.make(SYMBOLS, now - pd.Timedelta(minutes=25), 26, per_minute=20, seed=5)
    with FakeBinance(symbols=("BTC/USDT",)) as fake, FakeBinanceWs() as ws:
        for sym in SYMBOLS:
            fake.add_market(sym, step="0.001", tick="0.01", min_notional="10", price=10.0)
        for sym, df in tape.bars().groupby("symbol"):
            fake.set_candles(sym, df)
        fake.set_balance("USDT", 50_000.0)
        s = load_settings(
            tmp_path / "home",
            broker={"default": "ccxt:binance", "timeout_s": 5.0},
            venues={
                "ccxt": {
                    "urls": {"binance": ws.ccxt_config(fake)["urls"]},
                    "options": {"binance": fake.ccxt_config()["options"]},
                }
            },
            live={"warmup_bars": 30, "stale_after_s": 600.0},
        )
        s.ensure_dirs()
        assert s.live.feed == "live"
        vault = trader(s, monkeypatch=monkeypatch).vault
        vault.put("ccxt:binance/api_key", fake.api_key)
        vault.put("ccxt:binance/secret", fake.secret)

        def stream() -> None:  # once the run subscribes, the tape up to the wall clock streams in
            wait_for(lambda: "!miniTicker@arr" in ws.subscribed(), 60, "the run's subscription")
            frames = [f for f in tape.seconds() if tape.ts[f.start] <= time.time_ns()]
            ws.send_tape(tape, frames)

        t = threading.Thread(target=stream, daemon=True)
        t.start()
        engine = MomentumEngine(
            lookback=3, gain=3.0, universe={"exchange": "binance", "timeframe": "1m", "symbols": list(SYMBOLS)}
        )
        rid = run_live(s, engine=engine, cycles=3, interval_s=1.0, min_interval_s=0)
        t.join(10)
        store = Store(s.store_url)
        run = store.run(rid)
        assert run["status"] == "STOPPED", run["message"]
        assert run["broker"] == "ccxt:binance" and run["feed"] == "LIVE"
        assert not touched
        notes = store.events(rid, kind="market_data")["message"]
        assert notes.str.contains("LIVE: 3/3 instruments fresh").any(), notes.tolist()
        sigs = store.signals(rid, last_cycles=None)
        assert set(sigs["symbol"]) == set(SYMBOLS)
        assert status(s, run_id=rid)["feed"] == "LIVE"
        # the live bars went to the lake: research sees what live saw
        assert set(Lake(s.lake_dir).symbols("binance", "1m")) == set(SYMBOLS)


def test_replay_is_explicit_and_labelled(settings, monkeypatch):
    trader(settings, monkeypatch=monkeypatch)
    panel = synthetic_panel(4, 120, seed=3, exchange="TEST")
    Lake(settings.lake_dir).write(panel.to_long(), "TEST", "1d", "test")
    engine = MomentumEngine(lookback=5, universe={"exchange": "TEST", "timeframe": "1d", "symbols": panel.symbols})
    rid = run_live(settings, "paper", engine=engine, cycles=2, interval_s=0, min_interval_s=0, replay=True)
    run = Store(settings.store_url).run(rid)
    assert run["feed"] == "REPLAY" and run["status"] == "STOPPED"
    assert status(settings, run_id=rid)["feed"] == "REPLAY"


@pytest.mark.parametrize(("args", "want"), [([], None), (["--replay"], True), (["--live"], False)])
def test_the_cli_passes_replay_on(tmp_path, monkeypatch, args, want):
    from workbench import cli
    from workbench.trading import runner

    seen: dict = {}

    def fake_run_live(settings, **kw):
        seen.update(kw)
        store = Store(settings.store_url).create()
        rid = store.start_run("paper", "paper", "paper", "m", 1.0, 1, feed="REPLAY" if kw.get("replay") else "LIVE")
        store.finish_run(rid, "STOPPED", "done")
        return rid

    monkeypatch.setattr(runner, "run_live", fake_run_live)
    out = CliRunner().invoke(cli.app, ["live", "run", "--home", str(tmp_path), *args])
    assert out.exit_code == 0, out.output
    assert seen["replay"] is want
    assert ("[REPLAY]" in out.output) == bool(want) and ("[LIVE]" in out.output) == (not want)


def _closed_port() -> str:
    import socket

    with socket.socket() as sock:  # bound then released: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/api/v3/ping"


def test_auto_feed_replays_offline_and_says_why(settings, tmp_path, monkeypatch):
    from workbench.live.probe import live_possible

    trader(settings, monkeypatch=monkeypatch)
    binance = {"exchange": "binance", "timeframe": "1m", "symbols": ["BTC/USDT"]}
    off = load_settings(tmp_path / "off", live={"feed": "auto", "probe_url": _closed_port(), "probe_timeout_s": 0.5})
    ok, why = live_possible(off, binance)
    assert not ok and "did not answer" in why
    with FakeBinance(symbols=("BTC/USDT",)) as fake:
        on = load_settings(tmp_path / "on", live={"feed": "auto", "probe_url": f"{fake.url}/api/v3/ping"})
        ok, why = live_possible(on, binance)
        assert ok and "ccxt:binance" in why
        ok, why = live_possible(on, {"exchange": "SYNTH", "timeframe": "1d", "symbols": ["SYN-A"]})
        assert not ok and "no live data venue" in why
    # a run under auto, offline: a REPLAY, and the log says why
    monkeypatch.setenv("WORKBENCH_LIVE__FEED", "auto")
    monkeypatch.setenv("WORKBENCH_LIVE__PROBE_URL", _closed_port())
    monkeypatch.setenv("WORKBENCH_LIVE__PROBE_TIMEOUT_S", "0.5")
    s = load_settings(settings.home)
    panel = synthetic_panel(4, 120, seed=3, exchange="binance")
    Lake(s.lake_dir).write(panel.to_long(), "binance", "1d", "test")
    engine = MomentumEngine(lookback=5, universe={"exchange": "binance", "timeframe": "1d", "symbols": panel.symbols})
    rid = run_live(s, "paper", engine=engine, cycles=1, interval_s=0, min_interval_s=0)
    store = Store(s.store_url)
    assert store.run(rid)["feed"] == "REPLAY"
    assert store.events(rid, kind="feed")["message"].str.contains("auto: replaying .* did not answer").any()
