"""Labels: what the model is asked to predict, kept apart from features because labels look ahead.

Labels are the only code allowed to read the future, so they never run at inference time (qlib's
rule): the live loop imports features, never this module.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from workbench.data.panel import Panel
from workbench.features.pipeline import stack_wide

__all__ = ["forward_return", "direction_label"]


def _forward_p(close: np.ndarray, horizon: int) -> np.ndarray:
    """close[t+h] / close[t] − 1 over each column's own valid bars (gaps are skipped, as in features)."""
    valid = np.isfinite(close) & (close > 0)
    order = np.argsort(~valid, axis=0, kind="stable")
    packed = np.take_along_axis(np.where(valid, close, np.nan), order, axis=0)
    fwd = np.full(packed.shape, np.nan)
    if packed.shape[0] > horizon:
        fwd[:-horizon] = packed[horizon:] / packed[:-horizon] - 1.0
    out = np.full(close.shape, np.nan)
    np.put_along_axis(out, order, fwd, axis=0)
    out[~valid] = np.nan
    return out


def forward_return(panel: Panel, horizon: int) -> pd.DataFrame:
    """Wide return from bar t's close to the close ``horizon`` valid bars later; NaN where unknown."""
    if int(horizon) != horizon or horizon < 1:
        raise ValueError(f"horizon must be a positive integer, got {horizon!r}")
    out = _forward_p(panel.close.to_numpy(dtype=float), int(horizon))
    return pd.DataFrame(out, index=panel.close.index, columns=panel.close.columns)


def direction_label(panel: Panel, horizon: int = 1) -> pd.Series:
    """Long (ts, symbol) label: 1.0 if the close rises over the next ``horizon`` bars, 0.0 if it
    falls or stays flat, NaN where the future is unknown. Same index as ``build_features``."""
    fwd = forward_return(panel, horizon).to_numpy()
    lab = np.where(np.isfinite(fwd), (fwd > 0).astype(float), np.nan)
    return stack_wide(panel, {"label": lab})["label"]
