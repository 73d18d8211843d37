"""`make run` online, against the local fake Binance (REST + websocket) the way a user's home points at
Binance: `workbench init --demo` ranks the exchange's USDT pairs by quote volume, pulls a few hundred
of them, trains the champion on them, and a paper run on the (fake) live stream places orders.

The fake serves a labelled synthetic market (``SyntheticSource`` with a planted momentum, shifted so its
last closed bar is the present one): the point is the plumbing at scale, not an edge."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest

from tests.kit.fake_binance import FakeBinance
from tests.kit.fake_binance_ws import FakeBinanceWs
from tests.kit.live_rig import wait_for
from tests.kit.tape import Tape
from tests.kit.users import trader
from workbench.config import load_settings
from workbench.data.lake import Lake
from workbench.data.sources.synthetic import SyntheticSource
from workbench.trading.runner import run_live
from workbench.trading.store import Store

N_LISTED = 280  # USDT pairs the fake exchange lists (plus a few the ranking must leave out)
TOP_N = 220
BARS = 300
LEFT_OUT = ("USDC/USDT", "FDUSD/USDT", "BTCUP/USDT", "ETH/BTC")
CYCLES = 4  # the paper run must place orders within this many cycles


def _toml(value: object) -> str:
    """An inline TOML value (JSON's string escapes are TOML's)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value)


def _market_on_the_fake(fake: FakeBinance, pairs: list[str]) -> dict[str, float]:
    """Serve a synthetic 5m market whose last closed bar is the present one; returns each pair's last close."""
    now = pd.Timestamp.now(tz="UTC")
    bars = SyntheticSource(pairs, seed=7, timeframe="5m", bars=BARS + 50, structure=0.08).candles()
    shift = (now.floor("5min") - pd.Timedelta(minutes=5)) - bars["ts"].max()
    bars["ts"] = bars["ts"] + shift
    last: dict[str, float] = {}
    for sym, df in bars.groupby("symbol", sort=False):
        fake.set_candles(str(sym), df)
        last[str(sym)] = float(df["close"].iloc[-1])
    return last


@pytest.fixture
def online(tmp_path):
    pairs = [f"C{i:03d}/USDT" for i in range(N_LISTED)]
    with FakeBinance(symbols=(*pairs, *LEFT_OUT), max_limit=1000) as fake, FakeBinanceWs() as ws:
        last = _market_on_the_fake(fake, pairs)
        for i, sym in enumerate(pairs):  # quote volume falls with i: the ranking keeps the first TOP_N
            fake.move(sym, last=last[sym], volume=1e9 / last[sym] / (i + 1))
        for sym in LEFT_OUT:  # the most traded of all, and still not a demo pair
            fake.move(sym, last=1.0, volume=1e12)
        home = tmp_path / "home"
        home.mkdir()
        ccxt = {
            "urls": {"binance": ws.ccxt_config(fake)["urls"]},
            "options": {"binance": fake.ccxt_config()["options"]},
        }
        (home / "workbench.toml").write_text(
            f'[demo]\nsource = "auto"\nbars = {BARS}\nccxt_top_n = {TOP_N}\nnetwork_timeout_s = 5.0\n\n'
            f"[venues]\nccxt = {_toml(ccxt)}\n"
        )
        yield home, fake, ws, pairs, last


def _init(home) -> subprocess.CompletedProcess:
    env = {**os.environ, "WORKBENCH_HOME": str(home)}
    env.pop("WORKBENCH_DEMO__SOURCE", None)
    return subprocess.run(
        [sys.executable, "-m", "workbench", "init", "--demo"], env=env, capture_output=True, text=True, timeout=900
    )


def _stream(ws: FakeBinanceWs, pairs: list[str], last: dict[str, float], stop: threading.Event) -> None:
    """Every half second a tick for every pair around its last close, stamped with the wall clock."""
    rng = np.random.default_rng(3)
    base = np.array([last[p] for p in pairs])
    total = np.full(len(pairs), 1000.0)
    wait_for(lambda: "!miniTicker@arr" in ws.subscribed() or stop.is_set(), 120, "the run's subscription")
    while not stop.is_set():
        price = np.round(base * np.exp(rng.normal(0, 0.001, len(pairs))), 8)
        total = total + 1.0
        ts = np.full(len(pairs), (time.time_ns() // 10**9) * 10**9, dtype="int64")
        tape = Tape(tuple(pairs), np.arange(len(pairs), dtype="int64"), ts, price, np.ones(len(pairs)), total.copy())
        ws.send_tape(tape, [slice(0, len(pairs))])
        stop.wait(0.5)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_init_demo_online_pulls_hundreds_of_pairs_trains_and_the_paper_run_trades_live(online, monkeypatch):
    home, fake, ws, pairs, last = online
    monkeypatch.delenv("WORKBENCH_DEMO__SOURCE", raising=False)  # the user's default: auto
    started = time.monotonic()
    first = _init(home)
    took = time.monotonic() - started
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert f"demo universe: {TOP_N} USDT pairs of binance" in first.stdout, first.stdout[-2000:]
    assert "binance public candles" in first.stdout and "SYNTHETIC" not in first.stdout
    assert "registered workbench v1 as champion" in first.stdout
    print(f"init --demo online against the fake: {took:.0f} s for {TOP_N} pairs × {BARS} 5m bars\n{first.stdout}")

    s = load_settings(home)
    stored = set(Lake(s.lake_dir).symbols("binance", "5m"))
    assert len(stored) == TOP_N >= 200 and stored == set(pairs[:TOP_N])  # the most traded, none of LEFT_OUT
    from workbench.data.demo import demo_universe_in_lake
    from workbench.models.registry import Registry

    demo = demo_universe_in_lake(s)
    assert demo is not None and not demo.synthetic and set(demo.symbols) == stored and demo.timeframe == "5m"
    universe = Registry(s).load("champion").universe
    assert set(universe["symbols"]) == stored and universe["timeframe"] == "5m"

    # a re-run tops up the same pairs (nothing new yet) and neither re-ranks nor re-trains
    fake.requests.clear()
    again = _init(home)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "registered" not in again.stdout and "champion model:" in again.stdout
    assert not any("ticker/24hr" in str(r) for r in fake.requests)

    monkeypatch.setenv("WORKBENCH_HOME", str(home))
    trader(s, monkeypatch=monkeypatch)
    stop = threading.Event()
    t = threading.Thread(target=_stream, args=(ws, pairs[:TOP_N], last, stop), daemon=True)
    t.start()
    try:
        rid = run_live(s, broker="paper", cycles=CYCLES, interval_s=2.0, min_interval_s=0, replay=False)
    finally:
        stop.set()
        t.join(10)
    store = Store(s.store_url)
    run = store.run(rid)
    assert run["status"] == "STOPPED", run["message"]
    assert run["feed"] == "LIVE"
    cycles = store.cycles(rid)
    assert len(cycles) == CYCLES and cycles["n_signals"].max() >= 200
    assert cycles["n_orders"].sum() > 0, (  # the risk checks' words say why none was placed
        cycles[["cycle", "n_signals", "n_orders", "message"]].to_string()
        + "\n"
        + "\n".join(store.events(rid, kind="risk_rejection")["message"].head(20))
    )
