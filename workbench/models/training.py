"""Train a model on a panel with an honest time split, and measure it out of sample.

Why a time split with an embargo: rows of a panel are not independent across time, and a label
looks ``horizon`` bars ahead. Training rows are therefore the ones whose *label* ends before the
test window starts, which leaves a gap of ``horizon`` bars: no training label overlaps the test
window, so the out-of-sample metrics are not flattered by leakage. Walk-forward (several splits)
builds on ``time_split``.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from workbench.data.panel import FIELDS, Panel
from workbench.features.labels import direction_label
from workbench.features.pipeline import build_features, get_feature_set, stack_wide
from workbench.models.base import Model, complete_rows, make_model

__all__ = ["TrainResult", "train", "time_split", "label_end", "panel_hash", "universe_of", "oos_metrics"]


@dataclass
class TrainResult:
    """A fitted model with everything needed to judge, register and serve it."""

    model: Model
    kind: str
    feature_set: str
    horizon: int
    metrics: dict[str, float]
    split: dict[str, str]
    oos_proba: pd.DataFrame
    strength_reference: np.ndarray
    data_hash: str
    universe: dict
    params: dict = field(default_factory=dict)

    # A TrainResult serves predictions like a registered model does, so notebooks can backtest
    # a model before registering it (inference.predict_panel accepts either).
    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.model.feature_names

    def predict_proba(self, features_long: pd.DataFrame) -> np.ndarray:
        return self.model.predict_proba(features_long)


def panel_hash(panel: Panel) -> str:
    """Content hash of a panel (grid, symbols, OHLCV): which data a model was trained on."""
    h = hashlib.sha256()
    h.update(f"{panel.exchange}|{panel.timeframe}|".encode())
    h.update(np.asarray(panel.index.asi8).tobytes())
    h.update("|".join(map(str, panel.symbols)).encode())
    for f in FIELDS:
        h.update(np.ascontiguousarray(panel.field(f).to_numpy(dtype=float)).tobytes())
    return h.hexdigest()[:16]


def universe_of(panel: Panel) -> dict:
    return {
        "exchange": panel.exchange,
        "timeframe": panel.timeframe,
        "symbols": [str(s) for s in panel.symbols],
        "start": panel.index[0].isoformat() if len(panel.index) else "",
        "end": panel.index[-1].isoformat() if len(panel.index) else "",
    }


def label_end(panel: Panel, horizon: int) -> pd.Series:
    """Long (ts, symbol) → timestamp of the close each label looks at (NaT when unknown)."""
    close = panel.close.to_numpy(dtype=float)
    valid = np.isfinite(close) & (close > 0)
    order = np.argsort(~valid, axis=0, kind="stable")
    pos = np.take_along_axis(np.broadcast_to(np.arange(close.shape[0])[:, None], close.shape), order, axis=0)
    pos = np.where(np.take_along_axis(valid, order, axis=0), pos, -1).astype(float)
    pos[pos < 0] = np.nan
    ahead = np.full(pos.shape, np.nan)
    if pos.shape[0] > horizon:
        ahead[:-horizon] = pos[horizon:]
    end = np.full(close.shape, np.nan)
    np.put_along_axis(end, order, ahead, axis=0)
    end_pos = stack_wide(panel, {"end": end})["end"]
    ts = pd.Series(pd.NaT, index=end_pos.index, dtype=panel.index.dtype)
    ok = end_pos.notna().to_numpy()
    ts.iloc[np.nonzero(ok)[0]] = panel.index[end_pos.to_numpy()[ok].astype(int)]
    return ts


def time_split(
    row_ts: pd.Index, row_label_end: pd.Series, test_fraction: float
) -> tuple[np.ndarray, np.ndarray, pd.Timestamp]:
    """Boolean masks (train, test) over rows and the first test timestamp.

    The test window is the last ``test_fraction`` of the distinct timestamps; training rows are
    those whose label ends strictly before it.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    stamps = pd.DatetimeIndex(row_ts).unique().sort_values()
    if len(stamps) < 2:
        raise ValueError("need at least two timestamps with complete features to split train/test")
    cut = min(max(int(np.floor(len(stamps) * (1.0 - test_fraction))), 1), len(stamps) - 1)
    test_start = stamps[cut]
    test = np.asarray(pd.DatetimeIndex(row_ts) >= test_start)
    train = np.asarray(pd.DatetimeIndex(row_label_end) < test_start)  # NaT (unknown label end) → False
    return np.asarray(train & ~test), np.asarray(test), test_start


def oos_metrics(y: np.ndarray, p: np.ndarray, y_train: np.ndarray) -> dict[str, float]:
    """Out-of-sample scores, with the majority-class baseline they must beat."""
    from sklearn.metrics import accuracy_score, brier_score_loss, log_loss, roc_auc_score

    y = np.asarray(y, dtype=int)
    p = np.clip(np.asarray(p, dtype=float), 1e-7, 1 - 1e-7)
    majority = 1 if np.mean(y_train) >= 0.5 else 0
    acc = float(accuracy_score(y, (p > 0.5).astype(int)))
    base = float(np.mean(y == majority))
    two_classes = np.unique(y).size == 2
    return {
        "auc": float(roc_auc_score(y, p)) if two_classes else float("nan"),
        "accuracy": acc,
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "baseline_accuracy": base,
        "beats_baseline": float(acc > base),
        "n_train": float(len(y_train)),
        "n_test": float(len(y)),
    }


def train(
    panel: Panel,
    kind: str = "lgbm",
    feature_set: str = "v1",
    horizon: int = 1,
    test_fraction: float = 0.3,
    params: dict | None = None,
    seed: int = 42,
) -> TrainResult:
    """Fit ``kind`` on the training window and score it on the later test window."""
    fs = get_feature_set(feature_set)
    model = make_model(kind, params=params, seed=seed)  # fail fast on an unknown kind
    X = build_features(panel, fs.name)
    y = direction_label(panel, horizon)
    ends = label_end(panel, horizon)
    usable = complete_rows(X)
    X, y, ends = X[usable], y[usable], ends[usable]
    if X.empty:
        raise ValueError(
            f"no rows with complete {fs.name} features: the panel has {len(panel.index)} bars, "
            f"features need about {fs.warmup}; load more history"
        )
    row_ts = X.index.get_level_values("ts")
    train_mask, test_mask, test_start = time_split(row_ts, ends, test_fraction)
    labelled = y.notna().to_numpy()
    tr = train_mask & labelled
    te_scored = test_mask & labelled
    if tr.sum() == 0 or te_scored.sum() == 0:
        raise ValueError(f"empty train ({tr.sum()} rows) or test ({te_scored.sum()} rows) set: load more history")

    t0 = time.perf_counter()
    model.fit(X[tr], y[tr])
    fit_seconds = time.perf_counter() - t0

    p_test = model.predict_proba(X[test_mask])
    scored = labelled[test_mask]
    metrics = oos_metrics(y[test_mask].to_numpy()[scored], p_test[scored], y[tr].to_numpy())
    metrics["fit_seconds"] = float(fit_seconds)

    oos = pd.Series(p_test, index=X.index[test_mask]).unstack("symbol")
    oos = oos.reindex(columns=panel.close.columns)
    train_ts = row_ts[tr]
    split = {
        "train_start": train_ts.min().isoformat(),
        "train_end": train_ts.max().isoformat(),
        "test_start": test_start.isoformat(),
        "test_end": row_ts[test_mask].max().isoformat(),
        "embargo_bars": str(int(horizon)),
        "test_fraction": str(float(test_fraction)),
    }
    used_params = dict(getattr(model, "params", params or {}))
    return TrainResult(
        model=model,
        kind=kind,
        feature_set=fs.name,
        horizon=int(horizon),
        metrics=metrics,
        split=split,
        oos_proba=oos,
        strength_reference=np.abs(p_test - 0.5),
        data_hash=panel_hash(panel),
        universe=universe_of(panel),
        params={**used_params, "seed": seed},
    )
