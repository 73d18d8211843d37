"""A tiny real signal engine for live-loop tests: momentum sign → probability → the real
``signal_frame``/``latest_signals``, so tests exercise the same signal contract as a trained model
without training one.

P(up) = sigmoid(gain × lookback return / lookback volatility); ATR is the plain mean true range.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from workbench.config import SignalParams
from workbench.data.panel import Panel
from workbench.signals import Signal, latest_signals, signal_frame

__all__ = ["MomentumEngine", "mean_true_range", "synthetic_panel"]


def mean_true_range(panel: Panel, window: int) -> pd.DataFrame:
    prev = panel.close.shift(1)
    tr = np.maximum(panel.high - panel.low, np.maximum((panel.high - prev).abs(), (panel.low - prev).abs()))
    return tr.rolling(window, min_periods=window).mean()


class MomentumEngine:
    """BUY when the last ``lookback`` bars went up, SELL when down; stronger for bigger moves."""

    kind = "momentum"

    def __init__(
        self, lookback: int = 20, gain: float = 1.0, params: SignalParams | None = None, universe: dict | None = None
    ):
        self.lookback, self.gain = lookback, gain
        self.params = params or SignalParams()
        self.universe = universe
        self.ref = f"kit-momentum-{lookback}"
        self.calls = 0

    def describe(self) -> str:
        return f"kit momentum rule (lookback {self.lookback}); no out-of-sample metrics (test double)"

    def proba(self, panel: Panel) -> pd.DataFrame:
        logret = np.log(panel.close).diff()
        move = np.log(panel.close / panel.close.shift(self.lookback))
        vol = logret.rolling(self.lookback, min_periods=self.lookback).std() * np.sqrt(self.lookback)
        z = (move / vol.where(vol > 0)).clip(-20, 20)
        return 1.0 / (1.0 + np.exp(-self.gain * z))

    def signals(self, panel: Panel) -> list[Signal]:
        self.calls += 1
        frames = signal_frame(
            self.proba(panel), panel.close, mean_true_range(panel, self.params.atr_window), self.params
        )
        return latest_signals(frames, panel.exchange)


def synthetic_panel(
    n_symbols: int = 12,
    n_bars: int = 160,
    drift: float = 0.01,
    crash_at: int | None = None,
    crash: float = -0.09,
    seed: int = 7,
    exchange: str = "TEST",
    start: str = "2024-01-01",
    crash_gap: bool = False,
) -> Panel:
    """Daily bars trending up with noise; optionally every symbol falls by ``crash`` on bar ``crash_at``
    (with ``crash_gap`` the bar opens already down, as after bad news overnight: stops fill at the gap)."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range(start, periods=n_bars, freq="1D", tz="UTC", name="ts")
    cols = pd.Index([f"S{i:03d}" for i in range(n_symbols)], name="symbol")
    r = drift + 0.004 * rng.standard_normal((n_bars, n_symbols))
    if crash_at is not None:
        r[crash_at] = crash
    close = 100.0 * np.exp(np.cumsum(r, axis=0))
    opn = np.vstack([close[:1], close[:-1]])
    if crash_at is not None and crash_gap:
        opn[crash_at] = close[crash_at]
    spread = 0.003 * close
    high = np.maximum(opn, close) + spread
    low = np.minimum(opn, close) - spread
    vol = rng.uniform(1e5, 2e5, (n_bars, n_symbols))
    mk = lambda a: pd.DataFrame(a, index=idx, columns=cols)
    return Panel(
        open=mk(opn), high=mk(high), low=mk(low), close=mk(close), volume=mk(vol), exchange=exchange, timeframe="1d"
    )
