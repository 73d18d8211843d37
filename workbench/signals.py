"""The signal: the contract between models, backtest, risk and orders (DESIGN.md §4).

``signal_frame`` turns model probabilities into signals for every bar at once (the backtest uses all
rows; the live loop uses the last), so the two can never disagree about what a signal is.

- direction: BUY when P(up) > 0.5, SELL when below.
- confidence: the calibrated probability of the predicted direction, max(p, 1 - p).
- strength: how unusual this conviction |p - 0.5| is against the model's own out-of-sample
  predictions (their empirical CDF, stored with the model), so 0.7 means "stronger than 70% of what
  this model said on data it never saw". Below ``hold_below`` the signal is HOLD.
- target / stop-loss / take-profit: close ± multiples of ATR. HOLD carries no prices.
"""

from __future__ import annotations

import gc
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import pandas as pd

from workbench.config import SignalParams

__all__ = ["Side", "Signal", "strength_from_reference", "signal_frame", "latest_signals", "entry_exit_masks"]

Side = Literal["BUY", "SELL", "HOLD"]
_SIDES = np.array(["SELL", "HOLD", "BUY"])


@dataclass(frozen=True)
class Signal:
    symbol: str
    signal: Side
    strength: float
    confidence: float
    target_price: float | None
    stop_loss: float | None
    take_profit: float | None
    ts: pd.Timestamp | None = None
    price: float | None = None  # the close the signal was computed on
    exchange: str | None = None

    def __post_init__(self) -> None:
        if self.signal not in ("BUY", "SELL", "HOLD"):
            raise ValueError(f"signal must be BUY, SELL or HOLD, not {self.signal!r}")
        for name in ("strength", "confidence"):
            v = getattr(self, name)
            if not (0.0 <= v <= 1.0):
                raise ValueError(f"{name} must be in [0, 1], got {v}")
        if self.signal == "HOLD" and any(p is not None for p in (self.target_price, self.stop_loss, self.take_profit)):
            raise ValueError("a HOLD signal carries no prices")

    def to_dict(self) -> dict:
        """The §4 schema: exactly the seven keys the spec shows."""
        d = asdict(self)
        return {
            k: d[k] for k in ("symbol", "signal", "strength", "confidence", "target_price", "stop_loss", "take_profit")
        }


def strength_from_reference(conviction: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Empirical CDF of ``conviction`` (= |p - 0.5|) against sorted out-of-sample convictions."""
    ref = np.sort(np.asarray(reference, dtype=float))
    ref = ref[np.isfinite(ref)]
    conviction = np.asarray(conviction, dtype=float)
    if ref.size == 0:
        # No reference: fall back to the raw scale (|p-0.5| × 2), which is also in [0, 1].
        out = np.clip(2 * conviction, 0, 1)
    else:
        out = np.searchsorted(ref, conviction, side="right") / ref.size
    return np.where(np.isfinite(conviction), out, np.nan)


def signal_frame(
    proba: pd.DataFrame,
    close: pd.DataFrame,
    atr: pd.DataFrame,
    params: SignalParams,
    strength_reference: np.ndarray | None = None,
) -> dict[str, pd.DataFrame]:
    """Vectorised signals for every (time, symbol): frames ``side`` (+1/0/-1), ``strength``,
    ``confidence``, ``target``, ``stop``, ``take_profit`` aligned with ``proba``.

    Cells without a probability or an ATR are HOLD with NaN prices.
    """
    close = close.reindex_like(proba)
    atr = atr.reindex_like(proba)
    p = proba.to_numpy(dtype=float)
    conviction = np.abs(p - 0.5)
    strength = strength_from_reference(
        conviction, strength_reference if strength_reference is not None else np.array([])
    )
    confidence = np.maximum(p, 1 - p)
    direction = np.sign(p - 0.5)
    c, a = close.to_numpy(dtype=float), atr.to_numpy(dtype=float)
    usable = (
        np.isfinite(p) & np.isfinite(c) & np.isfinite(a) & (a > 0) & (strength >= params.hold_below) & (direction != 0)
    )
    side = np.where(usable, direction, 0.0)
    nan = np.full_like(p, np.nan)
    target = np.where(usable, c + side * params.target_atr * a, nan)
    stop = np.where(usable, c - side * params.stop_atr * a, nan)
    take = np.where(usable, c + side * params.take_profit_atr * a, nan)
    mk = lambda arr: pd.DataFrame(arr, index=proba.index, columns=proba.columns)  # noqa: E731
    return {
        "side": mk(side),
        "strength": mk(np.where(np.isfinite(p), strength, np.nan)),
        "confidence": mk(confidence),
        "target": mk(target),
        "stop": mk(stop),
        "take_profit": mk(take),
        "close": mk(c),
    }


def latest_signals(frames: dict[str, pd.DataFrame], exchange: str | None = None) -> list[Signal]:
    """The last row of ``signal_frame`` as ``Signal`` objects, one per symbol with a probability.

    Read as arrays first (label look-ups per symbol cost ~1 s for 20,000 instruments); price
    levels are rounded off float noise (10 decimals)."""
    last = {k: v.iloc[-1].to_numpy(dtype=float) for k, v in frames.items()}
    ts = frames["side"].index[-1]
    rows = np.flatnonzero(np.isfinite(last["confidence"]))
    symbols = frames["side"].columns[rows].tolist()
    sides = _SIDES[last["side"][rows].astype(int) + 1].tolist()
    strength = np.clip(last["strength"][rows], 0, 1).tolist()
    confidence = np.clip(last["confidence"][rows], 0, 1).tolist()
    levels = [np.round(last[k][rows], 10).tolist() for k in ("target", "stop", "take_profit")]
    price = last["close"][rows].tolist()
    hold = [side == "HOLD" for side in sides]
    target, stop, take = ([None if h else x for h, x in zip(hold, lv, strict=True)] for lv in levels)
    n = len(rows)
    columns = (symbols, sides, strength, confidence, target, stop, take, [ts] * n, price, [exchange] * n)
    return _trusted(columns)


_FIELDS = tuple(Signal.__dataclass_fields__)


def _trusted(columns: tuple[list, ...]) -> list[Signal]:
    """``Signal`` objects without ``__post_init__``: what it checks holds by construction here (sides
    from ``_SIDES``, strength and confidence clipped to [0, 1], HOLD without prices), and the check
    costs more than building the object (~0.1 s per 5,000 on a busy machine)."""
    new, out = object.__new__, []
    collecting = gc.isenabled()
    gc.disable()  # 20,000 new objects would trigger full collections of a large heap on the way
    try:
        for values in zip(*columns, strict=True):
            sig = new(Signal)
            sig.__dict__.update(zip(_FIELDS, values, strict=True))
            out.append(sig)
    finally:
        if collecting:
            gc.enable()
    return out


def entry_exit_masks(frames: dict[str, pd.DataFrame], min_strength: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The trading rule, shared by backtest and live: enter long on BUY stronger than the risk
    threshold; exit on SELL stronger than it (stops and take-profits exit regardless). Long-only:
    spot markets and cash equity accounts cannot short by default."""
    strong = frames["strength"] > min_strength
    entries = (frames["side"] > 0) & strong
    exits = (frames["side"] < 0) & strong
    return entries.fillna(False), exits.fillna(False)
