"""Feature set v2 for 5,000 instruments × 500 bars, and the incremental update of one new bar,
each beside a per-symbol loop over TA-Lib on the same data (TA-Lib is the yardstick, not a dependency
of the hot path). Ratios are from one run."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from workbench.data.panel import Panel

N, BARS, LIVE = 5000, 500, 20
REPEATS = 5  # medians: the machine is shared


def _panel(n: int, bars: int) -> Panel:
    rng = np.random.default_rng(0)
    idx = pd.date_range("2024-01-01", periods=bars, freq="1h", tz="UTC", name="ts")
    cols = pd.Index([f"S{i:04d}/USDT" for i in range(n)], name="symbol")
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (bars, n)), axis=0))
    open_ = close * np.exp(rng.normal(0, 0.002, close.shape))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.004, close.shape)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.004, close.shape)))
    vol = rng.lognormal(10, 1, close.shape)
    f = {
        k: pd.DataFrame(v, index=idx, columns=cols)
        for k, v in dict(open=open_, high=high, low=low, close=close, volume=vol).items()
    }
    return Panel(**f, exchange="binance", timeframe="1h")


def _talib_symbol(h, lo, c, v):
    """The TA-Lib counterparts of v2's indicators for one symbol."""
    import talib

    out = [talib.ROCP(c, k) for k in (1, 5, 10, 20, 60)]
    logr = np.log(c[1:] / c[:-1])
    out += [talib.STDDEV(logr, 20), talib.STDDEV(logr, 60), talib.RSI(c, 14), *talib.MACD(c, 12, 26, 9)]
    out += [*talib.BBANDS(c, 20, 2, 2), talib.ATR(h, lo, c, 14), talib.EMA(c, 12), talib.EMA(c, 26), talib.EMA(c, 50)]
    out += [
        talib.ADX(h, lo, c, 14),
        talib.PLUS_DI(h, lo, c, 14),
        talib.MINUS_DI(h, lo, c, 14),
        *talib.STOCH(h, lo, c, 14, 3, 0, 3, 0),
    ]
    out += [talib.MFI(h, lo, c, v, 14), talib.OBV(c, v), talib.SMA(v, 20), talib.STDDEV(v, 20)]
    out += [
        talib.MAX(h, 20),
        talib.MIN(lo, 20),
        talib.MAX(h, 60),
        talib.MIN(lo, 60),
        talib.CORREL(c, c, 60),
        talib.BETA(c, c, 60),
    ]
    return out


def _talib_loop(panel: Panel, last: int | None = None, keep: bool = False) -> float:
    """Seconds for the per-symbol TA-Lib loop; ``keep`` also stores every output in one fresh
    (output × time × instrument) block, as a feature build must (the bare loop drops them)."""
    arr = {f: np.asfortranarray(getattr(panel, f).to_numpy(dtype=float)) for f in ("high", "low", "close", "volume")}
    t0 = time.perf_counter()
    block = None
    for j in range(arr["close"].shape[1]):
        cols = [
            np.ascontiguousarray(arr[f][-last:, j] if last else arr[f][:, j])
            for f in ("high", "low", "close", "volume")
        ]
        out = _talib_symbol(*cols)
        if keep:
            if block is None:
                block = np.empty((len(out), len(cols[0]), arr["close"].shape[1]))
            for k, o in enumerate(out):
                block[k, -len(o) :, j] = o
    return time.perf_counter() - t0


def _median(fn, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> None:
    from workbench.features import IncrementalFeatures, build_features, get_feature_set
    from workbench.features.pipeline import _BUILDERS

    panel = _panel(N, BARS + LIVE)
    hist = panel.iloc(slice(0, BARS))
    _BUILDERS["v2"](hist)  # warm: numba kernels loaded from cache, calendar and first-touch memory
    build_features(hist, "v2")
    # Interleaved, so a burst of load on the shared machine hits ours and the anchor alike.
    wide_t, full_t, talib_t, keep_t = [], [], [], []
    for _ in range(REPEATS):
        wide_t.append(_median(lambda: _BUILDERS["v2"](hist), 1))
        full_t.append(_median(lambda: build_features(hist, "v2"), 1))
        talib_t.append(_talib_loop(hist))
        keep_t.append(_talib_loop(hist, keep=True))
    wide, full, talib_full, talib_keep = (float(np.median(x)) for x in (wide_t, full_t, talib_t, keep_t))
    X = build_features(hist, "v2")
    v1 = _median(lambda: build_features(hist, "v1"), 1)
    import numba

    print(f"   numba threads: {numba.get_num_threads()} (set NUMBA_NUM_THREADS to compare); medians of {REPEATS}")
    print(
        f"   full v2 ({X.shape[1]} features), {N} instruments × {BARS} bars: {wide:.2f} s wide arrays, {full:.2f} s with the long frame "
        f"(assembly ≈ {max(full - wide, 0):.2f} s)"
    )
    print(f"   full v1 (13 features) {v1:.2f} s")
    print(
        f"   TA-Lib per-symbol loop, {len(_talib_symbol(*[np.ones(BARS) + np.arange(BARS) % 7] * 4))} TA-Lib calls per symbol: {talib_full:.2f} s; "
        f"the same keeping its outputs in one block: {talib_keep:.2f} s"
    )
    print(f"   ratio TA-Lib loop / ours: {talib_full / wide:.2f}× (wide arrays), {talib_full / full:.2f}× (long frame); "
          f"TA-Lib loop keeping its outputs / ours: {talib_keep / wide:.2f}× (wide)")  # fmt: skip

    t0 = time.perf_counter()
    inc = IncrementalFeatures.from_history(hist, "v2")
    setup = time.perf_counter() - t0
    times = []
    for t in range(BARS, BARS + LIVE):
        bar = panel.iloc(slice(t, t + 1))
        t0 = time.perf_counter()
        row = inc.update(bar)
        times.append(time.perf_counter() - t0)
    exp = build_features(panel, "v2").xs(panel.index[-1], level="ts")
    same = np.array_equal(row.to_numpy(), exp.reindex(row.index).to_numpy(), equal_nan=True)
    upd = float(np.median(times))
    warm = get_feature_set("v2").warmup
    talib_live = _talib_loop(panel, last=warm)
    print(
        f"   incremental v2, one new bar × {N} instruments: {upd * 1e3:.1f} ms median of {LIVE} (from_history once: {setup:.2f} s); equal to full recomputation: {same}"
    )
    print(
        f"   TA-Lib per-symbol loop on the last {warm} bars (warm-up window) for the newest bar: {talib_live:.2f} s → {talib_live / upd:.0f}× slower"
    )
    print(f"   full v2 recomputation on {BARS} bars instead: {full / upd:.0f}× slower than the update")


if __name__ == "__main__":
    main()
