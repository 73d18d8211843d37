"""Live market data at scale, against the local fakes (REST and websocket), and ticks into forming bars.

1. Market data → a consistent snapshot (every instrument quoted, one ``QuoteCache.snapshot``) for 5,000
   and 20,000 instruments: ccxt ``fetch_tickers`` (one REST call), Kite ``quote`` (500 a call; the real
   1 call/s limit is lifted on the fake and its implied time printed), Alpaca snapshots (1,000 a call);
   then the streams: one all-market frame from the fake Binance stream through ``ccxt.pro``, Kite
   binary frames through ``KiteTicker`` (9,000 at most per API key: 3 × 3,000), Alpaca trades through
   ``StockDataStream``. Each figure is from the first request/frame to the snapshot.
2. Sustained ticks per second into forming bars (``TickBuffer`` → ``QuoteCache.apply`` +
   ``BarBuilder.ingest``) for 20,000 instruments, beside the lower bound: a pure numpy scatter of the
   same ticks (last price by fancy assignment, volume by ``bincount``) that builds no bar at all.
3. The data + features + inference part of a cycle (``trading.engine.ModelSignalEngine``) for 5,000
   and 20,000 instruments, a trained LightGBM (200 trees) on feature sets v1 and v2: the live feed's
   ``next`` (the cycle's ticks into the quote cache and forming bars, closed bars into its history, the
   fresh-quote snapshot, the panel of history + forming bar; its history backfilled at the start from
   a venue whose stream is the bench pushing ticks), the incremental features (bars closed since the last cycle committed, the forming bar peeked), one
   ``predict_proba`` on N rows, the ``Signal`` objects. Beside it, in the same run, the lower bound:
   last-bar numpy features from the last 60 bars (returns, rolling std and means) filling the
   model's columns + one ``Booster.predict`` on N rows; and, at 5,000, today's full recomputation.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.kit holds the fake servers

from tests.kit.tape import Tape
from workbench.live.bars import BarBuilder
from workbench.live.quotes import QuoteCache
from workbench.live.ticks import TickBuffer, Ticks

T0 = pd.Timestamp("2026-01-05 04:00", tz="UTC")


def _wait(pred, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise TimeoutError("the stream did not deliver in time")
        time.sleep(0.002)


def _snapshot_after(buffer: TickBuffer, cache: QuoteCache, n: int, t0: float) -> tuple[float, int]:
    got = 0

    def full() -> bool:
        nonlocal got
        cache.apply(buffer.drain())
        got = int((cache.ts > 0).sum())
        return got >= n

    _wait(full)
    snap = cache.snapshot(now=int(cache.ts.max()))
    return time.perf_counter() - t0, int((~snap["stale"]).sum())


def _stream_to_snapshot(stream, buf: TickBuffer, cache: QuoteCache, ready, send, n: int) -> tuple[float, float]:
    """(seconds from the first frame sent to a full snapshot, seconds the fake spent encoding and sending)."""
    try:
        _wait(ready)
        t0 = time.perf_counter()
        send()
        fake = time.perf_counter() - t0
        el, _ = _snapshot_after(buf, cache, n, t0)
    finally:
        stream.stop()
    return el, fake


def one_frame_tape(symbols: list[str]) -> Tape:
    """Every instrument trades once, in the same second: one stream frame covers the universe."""
    n = len(symbols)
    ts = np.full(n, T0.value, dtype="int64")
    price = np.round(10 + np.arange(n) % 500 * 3.0, 2)
    return Tape(tuple(symbols), np.arange(n, dtype="int64"), ts, price, np.ones(n), 1000.0 + np.ones(n))


def rest_ccxt(n: int) -> None:
    import ccxt

    from tests.kit.fake_binance import FakeBinance
    from workbench.venues.ccxt.stream import CcxtTickerStream

    syms = [f"B{i:05d}/USDT" for i in range(n)]
    keys = [f"binance:{s}" for s in syms]
    with FakeBinance(symbols=tuple(syms)) as rest:
        ex = ccxt.binance({**rest.ccxt_config(), "enableRateLimit": True})
        ex.load_markets()
        best = []
        for _ in range(2):
            buf, cache = TickBuffer(), QuoteCache(keys)
            stream = CcxtTickerStream("binance", keys, buf, slots=cache.slots, rest=ex)
            t0 = time.perf_counter()
            stream.poll_rest()
            best.append(_snapshot_after(buf, cache, n, t0))
        el, fresh = min(best)
        print(f"   REST  ccxt fetch_tickers {n:>6,}: {el:6.2f} s  (1 call, {fresh:,} fresh)")


def rest_kite(n: int) -> None:
    from kiteconnect import KiteConnect

    from tests.kit.fake_kite import FakeKite
    from tests.kit.fake_kite_ticker import nse_token
    from workbench.venues.kite.stream import KiteTickStream

    keys = [f"NSE:K{i:05d}" for i in range(n)]
    tokens = {nse_token(i): k for i, k in enumerate(keys)}
    with FakeKite() as fake:
        kite = KiteConnect(api_key="k", access_token="t", root=fake.url)
        buf, cache = TickBuffer(), QuoteCache(keys)
        stream = KiteTickStream("k", "t", tokens, buf, slots=cache.slots)  # REST only: no websocket limit
        t0 = time.perf_counter()
        stream.snapshot(kite, keys, per_second=0)
        el, _ = _snapshot_after(buf, cache, n, t0)
        calls = -(-n // 500)
        print(
            f"   REST  Kite quote         {n:>6,}: {el:6.2f} s  ({calls} calls unthrottled; "
            f"at Kite's 1 call/s: ≥ {calls - 1} s)"
        )


def rest_alpaca(n: int) -> None:
    from alpaca.data.historical import StockHistoricalDataClient

    from tests.kit.fake_alpaca import FakeAlpaca
    from workbench.venues.alpaca.stream import AlpacaStream

    keys = [f"NASDAQ:A{i:05d}" for i in range(n)]
    with FakeAlpaca() as fake:
        client = StockHistoricalDataClient("k", "s", raw_data=True, url_override=fake.url)
        buf, cache = TickBuffer(), QuoteCache(keys)
        stream = AlpacaStream("k", "s", keys, buf, slots=cache.slots)
        t0 = time.perf_counter()
        stream.snapshot(client, keys, batch=1000)
        el, _ = _snapshot_after(buf, cache, n, t0)
        print(f"   REST  Alpaca snapshots   {n:>6,}: {el:6.2f} s  ({-(-n // 1000)} calls)")


def stream_binance(n: int) -> None:
    from tests.kit.fake_binance import FakeBinance
    from tests.kit.fake_binance_ws import FakeBinanceWs
    from workbench.venues.ccxt.stream import CcxtTickerStream

    syms = [f"B{i:05d}/USDT" for i in range(n)]
    keys = [f"binance:{s}" for s in syms]
    with FakeBinance(symbols=tuple(syms)) as rest, FakeBinanceWs() as ws:
        buf, cache = TickBuffer(), QuoteCache(keys)
        stream = CcxtTickerStream("binance", keys, buf, slots=cache.slots, config=ws.ccxt_config(rest)).start()
        tape = one_frame_tape(syms)
        ready = lambda: "!miniTicker@arr" in ws.subscribed()
        el, fake = _stream_to_snapshot(stream, buf, cache, ready, lambda: ws.send_tape(tape, tape.seconds()), n)
        print(
            f"   WS    ccxt.pro tickers   {n:>6,}: {el:6.2f} s  (one !miniTicker@arr frame; "
            f"the fake's JSON {fake:.2f} s of it)"
        )


def stream_kite(n: int) -> None:
    from tests.kit.fake_kite_ticker import FakeKiteTicker, nse_token
    from workbench.venues.kite.stream import KiteTickStream

    n = min(n, 9000)
    syms = [f"K{i:05d}" for i in range(n)]
    keys = [f"NSE:{s}" for s in syms]
    tokens = np.array([nse_token(i) for i in range(n)])
    with FakeKiteTicker("k", "t") as ws:
        buf, cache = TickBuffer(), QuoteCache(keys)
        stream = KiteTickStream("k", "t", dict(zip(tokens.tolist(), keys)), buf, slots=cache.slots, root=ws.url).start()
        tape = one_frame_tape(syms)
        send = lambda: ws.send_tape(tape, tape.seconds(), tokens)
        el, fake = _stream_to_snapshot(stream, buf, cache, lambda: len(ws.subscribed()) == n, send, n)
        print(
            f"   WS    KiteTicker full    {n:>6,}: {el:6.2f} s  "
            f"({len(stream.chunks)} connection(s) of ≤ 3,000, an API key allows 3; "
            f"the fake {fake:.2f} s of it)"
        )


def stream_alpaca(n: int) -> None:
    from tests.kit.fake_alpaca_stream import FakeAlpacaStream
    from workbench.venues.alpaca.stream import AlpacaStream

    syms = [f"A{i:05d}" for i in range(n)]
    keys = [f"NASDAQ:{s}" for s in syms]
    with FakeAlpacaStream("k", "s") as ws:
        buf, cache = TickBuffer(), QuoteCache(keys)
        stream = AlpacaStream("k", "s", keys, buf, slots=cache.slots, url=ws.url).start()
        tape = one_frame_tape(syms)
        send = lambda: ws.send_tape(tape, tape.seconds())
        el, fake = _stream_to_snapshot(stream, buf, cache, lambda: len(ws.subscribed()) == n, send, n)
        print(
            f"   WS    Alpaca trades      {n:>6,}: {el:6.2f} s  ({-(-n // ws.frame)} frames of {ws.frame}; "
            f"the fake's msgpack {fake:.2f} s of it)"
        )


def ticks_into_bars(n_slots: int = 20_000, n_ticks: int = 2_000_000, batch: int = 20_000) -> None:
    rng = np.random.default_rng(0)
    keys = [f"X:S{i}" for i in range(n_slots)]
    slot = rng.integers(0, n_slots, n_ticks).astype("int64")
    ts = np.sort(T0.value + rng.integers(0, 30 * 60 * 10**9, n_ticks)).astype("int64")  # 30 minutes
    price = 100 + rng.normal(size=n_ticks).cumsum() * 0.01
    size = rng.random(n_ticks)
    nan = np.full(batch, np.nan)
    warm = BarBuilder(keys, "1m", 2.0)
    warm.ingest(Ticks(slot[:10], price[:10], size[:10], nan[:10], nan[:10], ts[:10]))  # compile/load kernels

    def pipeline() -> int:
        buf, cache, bars = TickBuffer(), QuoteCache(keys), BarBuilder(keys, "1m", 2.0)
        closed = 0
        for i in range(0, n_ticks, batch):
            j = slice(i, i + batch)
            buf.push(slot[j], price[j], size[j], np.nan, np.nan, ts[j])
            t = buf.drain()
            cache.apply(t)
            closed += len(bars.ingest(t))
        return closed

    def scatter() -> float:
        last, vol = np.full(n_slots, np.nan), np.zeros(n_slots)
        for i in range(0, n_ticks, batch):
            j = slice(i, i + batch)
            last[slot[j]] = price[j]
            vol += np.bincount(slot[j], weights=size[j], minlength=n_slots)
        return float(vol.sum())

    t0 = time.perf_counter()
    closed = pipeline()
    el = time.perf_counter() - t0
    t0 = time.perf_counter()
    scatter()
    lb = time.perf_counter() - t0
    print(
        f"   ticks → quote cache + forming bars, {n_slots:,} instruments, batches of {batch:,}: "
        f"{n_ticks / el:,.0f} ticks/s ({closed:,} bars closed; goal ≥ 100,000/s)"
    )
    print(
        f"   lower bound (numpy scatter: last price + bincount volume, no bars): {n_ticks / lb:,.0f} ticks/s "
        f"→ pipeline/lower bound time = {el / lb:.1f}×"
    )


def _synthetic(n: int, bars: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, (bars, n)), axis=0))
    o = c * np.exp(rng.normal(0, 0.001, c.shape))
    h = np.maximum(o, c) * np.exp(np.abs(rng.normal(0, 0.001, c.shape)))
    lo = np.minimum(o, c) * np.exp(-np.abs(rng.normal(0, 0.001, c.shape)))
    return {"open": o, "high": h, "low": lo, "close": c, "volume": rng.lognormal(5, 1, c.shape)}


def _panel(arrays: dict[str, np.ndarray], index: pd.DatetimeIndex, columns: pd.Index):
    """What the live feed hands the engine: one frame per field on (history + forming bar) arrays."""
    from workbench.data.panel import Panel

    frames = {f: pd.DataFrame(a, index=index, columns=columns, copy=False) for f, a in arrays.items()}
    return Panel(**frames, exchange="binance", timeframe="1m")


@dataclass
class _BenchModel:
    """What serving reads of a registered model, around a LightGBM (the library's defaults: 200 trees)
    fitted on a small synthetic panel: the prediction cost is what matters here, not the edge."""

    model: Any
    feature_set: str
    feature_names: tuple[str, ...]
    strength_reference: np.ndarray

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return self.model.predict_proba(X)


def _bench_model(feature_set: str) -> _BenchModel:
    from workbench.features.labels import direction_label
    from workbench.features.pipeline import build_features
    from workbench.models.base import complete_rows
    from workbench.models.lgbm import LightGBMModel

    arrays = _synthetic(40, 700, seed=1)
    idx = pd.date_range("2025-06-02", periods=700, freq="1min", tz="UTC", name="ts")
    panel = _panel(arrays, idx, pd.Index([f"M{i}" for i in range(40)], name="symbol"))
    X = build_features(panel, feature_set)
    y = direction_label(panel, 1).reindex(X.index)
    ok = complete_rows(X) & y.notna().to_numpy()
    lgbm = LightGBMModel().fit(X[ok], y[ok])
    p = lgbm.predict_proba(X[ok])
    return _BenchModel(lgbm, feature_set, lgbm.feature_names, np.sort(np.abs(p - 0.5)))


def _lower_bound(hist: dict[str, np.ndarray], booster, n_features: int) -> np.ndarray:
    """Last-bar features in plain numpy from the last 60 bars, then one ``Booster.predict`` on N rows."""
    c, h, lo, v = (hist[f][-61:] for f in ("close", "high", "low", "volume"))
    last = c[-1]
    lr = np.diff(np.log(c), axis=0)
    cols = [last / c[-1 - k] - 1 for k in (1, 5, 10, 20, 60)]
    cols += [lr[-20:].std(axis=0, ddof=1), lr[-60:].std(axis=0, ddof=1)]
    cols += [last / c[-w:].mean(axis=0) - 1 for w in (12, 26, 50)]
    cols += [
        ((h[-14:] - lo[-14:]) / c[-14:]).mean(axis=0),
        last / h[-20:].max(axis=0) - 1,
        last / lo[-20:].min(axis=0) - 1,
    ]
    lv = np.log(v[-20:])
    cols.append((lv[-1] - lv.mean(axis=0)) / lv.std(axis=0))
    X = np.column_stack([cols[k % len(cols)] for k in range(n_features)])
    return booster.predict(X)


class _BenchVenue:
    """One venue of the bench (``live.feed.VenueData``): its stream is the bench pushing ticks into the
    feed's buffer, as a stream's thread does; its OHLCV history is the synthetic bars (the backfill)."""

    def __init__(self, keys: list[str], arrays: dict[str, np.ndarray], index: pd.DatetimeIndex) -> None:
        from workbench.live.ticks import StreamStatus

        self.venue, self.keys = "bench", tuple(keys)
        self._status = StreamStatus("bench", connected=True)
        self._arrays, self._index = arrays, index

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def status(self):
        return self._status

    def poll(self) -> int:
        return 0

    def history(self, keys, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        rows = np.flatnonzero((self._index >= start) & (self._index <= end))
        slot = pd.Index(self.keys).get_indexer(list(keys))
        n, m = len(rows), len(slot)
        out = {"ts": np.repeat(self._index[rows], m), "key": np.tile(np.asarray(self.keys, dtype=object)[slot], n)}
        for f, a in self._arrays.items():
            out[f] = a[np.ix_(rows, slot)].ravel()
        return pd.DataFrame(out)


def engine_cycle(n: int, feature_set: str, model, bars: int = 200, cycles: int = 6, full: bool = True) -> None:
    """Median over ``cycles`` cycles, 30 s apart (every other one a bar closes and the window slides).

    The data stage is the live feed's (``LiveFeed.next``): the cycle's ticks (one per instrument) drained
    from the tick buffer into the quote cache and the forming bars, closed bars into the wide history,
    the fresh-quote snapshot, and the panel (history + forming bar) with the quotes and holds."""
    from workbench.config import SignalParams
    from workbench.live.feed import LiveFeed
    from workbench.trading.engine import ModelSignalEngine

    arrays = _synthetic(n, bars + cycles + 4, seed=n)
    idx = pd.date_range(T0, periods=bars + cycles + 4, freq="1min", tz="UTC", name="ts")
    keys = [f"bench:B{i:05d}/USDT" for i in range(n)]
    rng = np.random.default_rng(2)
    clock = {"now": idx[bars] + pd.Timedelta(seconds=1)}
    venue = _BenchVenue(keys, arrays, idx)
    feed = LiveFeed(
        keys,
        lambda buffer, slots: [venue],
        timeframe="1m",
        warmup_bars=bars,
        stale_after_s=120.0,
        columns=[k.partition(":")[2] for k in keys],
        exchange="binance",
        clock=lambda: clock["now"],
        calendar=lambda exch, ts: np.ones(len(exch), dtype=bool),
    )
    slots = np.arange(n, dtype="int64")
    nan = np.full(n, np.nan)

    def step() -> None:  # 30 s pass; every instrument trades once, near its bar's close
        clock["now"] += pd.Timedelta(seconds=30)
        now = clock["now"]
        t = int(idx.searchsorted(now.floor("1min")))
        price = arrays["close"][t] * (1 + rng.normal(0, 1e-3, n))
        ts = np.full(n, (now - pd.Timedelta(seconds=1)).value, dtype="int64")
        feed.buffer.push(slots, price, arrays["volume"][t] / 2, nan, nan, ts)

    engine = ModelSignalEngine(model, SignalParams())
    t0 = time.perf_counter()
    feed.start()
    for _ in range(3):  # the backfill after the start, and the bar partial at the start fetched again
        step()
        tick = feed.next()
        engine.signals(tick.panel)
    warm = time.perf_counter() - t0
    data, total, predict = [], [], []
    update: dict[bool, list[float]] = {True: [], False: []}  # features stage: a bar closed this cycle or not
    for _ in range(cycles):
        step()
        c0 = time.perf_counter()
        tick = feed.next()
        c1 = time.perf_counter()
        closed = engine._inc is not None and engine._inc.ts != tick.panel.index[-2]
        stage: dict[str, float] = {}
        sigs = engine.signals(tick.panel, lambda name, at=stage: at.setdefault(name, time.perf_counter()))
        c2 = time.perf_counter()
        data.append(c1 - c0)
        total.append(c2 - c0)
        update[closed].append(stage["features"] - c1)
    feed.close()
    panel = tick.panel
    live = int(np.isfinite(panel.close.to_numpy()[-1]).sum())
    assert live == n and not tick.hold, f"{n - live} instruments without a forming bar: the bench measures less"
    # the model call alone, on the same N rows
    inc = engine._inc
    assert inc is not None
    X = pd.DataFrame(inc._last, columns=list(inc.columns))
    for _ in range(3):
        p0 = time.perf_counter()
        model.predict_proba(X)
        predict.append(time.perf_counter() - p0)
    booster = model.model._clf.booster_
    hist = {f: getattr(panel, f).to_numpy() for f in ("close", "high", "low", "volume")}
    lb = []
    for _ in range(3):
        l0 = time.perf_counter()
        _lower_bound(hist, booster, booster.num_feature())
        lb.append(time.perf_counter() - l0)
    med = lambda xs: float(np.median(xs)) * 1e3
    goal = 150 if n <= 5_000 else 600
    traded = sum(s.signal != "HOLD" for s in sigs)
    print(
        f"   cycle {feature_set} {n:>6,}: {med(total):6.1f} ms  (goal < {goal} ms; data (LiveFeed.next) {med(data):.1f}, "
        f"model predict {med(predict):.1f} of it; {len(sigs):,} signals, {traded:,} BUY/SELL; "
        f"start + backfill + warm-up once {warm:.1f} s; path {engine.path})"
    )
    print(
        f"   lower bound    {n:>6,}: {med(lb):6.1f} ms  (numpy last-bar features + one Booster.predict)"
        f" → cycle / lower bound = {med(total) / med(lb):.1f}×"
    )
    pos = engine._positions(panel.close.columns)
    check = []
    for _ in range(5):  # the same panel again: nothing moved, so every cell is compared (the usual case)
        b0 = time.perf_counter()
        engine._backfilled(panel, pos)
        check.append(time.perf_counter() - b0)
    print(
        f"   incremental update {feature_set} {n:>6,}: {med(update[False]):6.1f} ms a cycle that peeks the forming bar, "
        f"{med(update[True]):.1f} ms one that also commits the bar that closed (of it: the backfill check, OHLCV of "
        f"{len(panel.index) - 2} committed bars, {med(check):.1f} ms; {inc.reused_peeks} bars committed from their last peek)"
    )
    chosen = inc._state.extra.get("row_pass")
    if chosen is not None:  # v2: which of the one-bar passes the update ran (v2_row.row_pass)
        print(f"      {feature_set} {n:>6,} {chosen.summary()}")
    if full and n <= 5_000:
        today = ModelSignalEngine(model, SignalParams(), incremental=False)
        f0 = time.perf_counter()
        today.signals(panel)
        print(
            f"   today's full recomputation {n:,} × {bars} bars: {(time.perf_counter() - f0) * 1e3:,.0f} ms "
            f"(features of every row, {n * bars:,} predictions to use {n:,})"
        )


def universe_change(n: int = 5_000, new: int = 50, bars: int = 200, rounds: int = 3) -> None:
    """v2: ``new`` instruments join a universe of ``n`` (and as many leave): only they warm up, and the
    beta/corr state is replayed from the window; beside the full warm-up it replaces.

    Both are timed the same way: one untimed round first (the first call of a kernel in a process loads
    or compiles it: before the universe change shared ``v2_stream``'s ranking step, its own ranking
    kernel was first called here, inside the timed change), then the median of ``rounds`` rounds, each
    from a freshly built state and into fresh memory (neither reuses the other's arrays)."""
    from workbench.data.panel import FIELDS, Panel
    from workbench.features.incremental import IncrementalFeatures

    arrays = _synthetic(n + new, bars, seed=7)
    idx = pd.date_range(T0, periods=bars, freq="1min", tz="UTC", name="ts")
    cols = pd.Index([f"B{i:05d}/USDT" for i in range(n + new)], name="symbol")
    panel = _panel(arrays, idx, cols)

    def part(names: pd.Index) -> Panel:
        return Panel(**{f: getattr(panel, f)[names] for f in FIELDS}, exchange="binance", timeframe="1m")

    before, after = part(cols[:n]), part(cols[new:])
    adopt, full = [], []
    for r in range(rounds + 1):
        inc = IncrementalFeatures.from_history(before, "v2")
        t0 = time.perf_counter()
        inc.keep_symbols(list(cols[new:n]))
        inc.add_symbols(after)
        t1 = time.perf_counter()
        again = IncrementalFeatures.from_history(after, "v2")
        t2 = time.perf_counter()
        if r:
            adopt.append(t1 - t0)
            full.append(t2 - t1)
        del inc, again
    a, f = float(np.median(adopt)), float(np.median(full))
    print(
        f"   v2 universe change, {new} in and {new} out of {n:,} ({bars} bars): {a * 1e3:,.0f} ms "
        f"against a full warm-up of {f * 1e3:,.0f} ms ({f / a:.0f}× less; median of {rounds}, after an untimed round)"
    )


def engine_cycles() -> None:
    for fs in ("v1", "v2"):
        model = _bench_model(fs)
        for n in (5_000, 20_000):
            engine_cycle(n, fs, model)


def main() -> None:
    engine_cycles()
    universe_change()
    ticks_into_bars()
    for n in (5_000, 20_000):
        rest_ccxt(n)
        rest_kite(n)
        rest_alpaca(n)
        stream_binance(n)
        stream_kite(n)
        stream_alpaca(n)


if __name__ == "__main__":
    main()
