"""Train a model on a panel with honest time splits, calibrate it, and measure it out of sample.

Why purged time splits: rows of a panel are not independent across time, and a label looks
``horizon`` bars ahead. A training row is used for a test window only if its *label* ends before
the window starts and it lies at least ``embargo`` (≥ horizon) bars before it, so no training label
overlaps a test row and the out-of-sample metrics are not flattered by leakage.

Validation:
- ``holdout``: one test window, the last ``test_fraction`` of the timestamps;
- ``walk_forward``: that same stretch cut into ``n_folds`` consecutive windows, each scored by a
  model trained (expanding window) on everything before it. ``oos_proba`` is the concatenation of
  the folds' predictions and ``oos_fold`` says which fold each row came from.

Calibration: inside each training window the latest ``calib_fraction`` of timestamps is held out
(purged the same way); the base model fits on the rest and a Platt or isotonic calibrator fits on
the held-out predictions. The calibrator is part of the model, so what is registered and served
returns calibrated probabilities.

The registered model of a walk-forward run is the *last fold's* model: its test window
(``split["test_start"]`` …) is genuinely out of sample, so the backtest and the champion/challenger
comparison can trust it. Refitting on all data would leave no honest window to judge it on.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workbench.data.panel import FIELDS, Panel
from workbench.features.labels import direction_label, forward_return
from workbench.features.pipeline import build_features, get_feature_set, stack_wide
from workbench.models.base import Model, complete_rows, lookback_of, make_model
from workbench.models.calibration import CalibratedModel, Calibrator
from workbench.models.evaluation import HIGHER_IS_BETTER, METRIC_KEYS, reliability_table, score
from workbench.models.kinds import TRAINABLE_KINDS

__all__ = [
    "TrainResult", "Fold", "train", "walk_forward", "compare", "ensemble_of", "comparison_table",
    "time_split", "walk_forward_splits", "label_end", "panel_hash", "universe_of", "oos_metrics",
    "predict_rows", "panel_lineage", "better", "KINDS", "VALIDATIONS", "ENSEMBLE_MEMBERS",
]

VALIDATIONS = ("holdout", "walk_forward")
ENSEMBLE_MEMBERS = ("lgbm", "rf", "lstm")
KINDS = TRAINABLE_KINDS  # what ``train`` accepts
_BASELINES = ("majority", "momentum")


@dataclass
class TrainResult:
    """A fitted (calibrated) model with everything needed to judge, register and serve it."""

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
    # One row per fold: window, sizes, fit time, the model's and the baselines' scores.
    folds: pd.DataFrame = field(default_factory=pd.DataFrame)
    # Fold number of each row (timestamp) of ``oos_proba``.
    oos_fold: pd.Series = field(default_factory=lambda: pd.Series(dtype=int))
    # Long (ts, symbol) out-of-sample rows: proba, label, forward_return, fold, majority, momentum.
    oos: pd.DataFrame = field(default_factory=pd.DataFrame)
    reliability: pd.DataFrame = field(default_factory=pd.DataFrame)
    importance: pd.Series | None = None
    lineage: dict = field(default_factory=dict)
    validation: str = "holdout"

    # A TrainResult serves predictions like a registered model does, so notebooks can backtest
    # a model before registering it (inference.predict_panel accepts either).
    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.model.feature_names

    @property
    def fit_seconds(self) -> float:
        return float(self.metrics.get("fit_seconds", float("nan")))

    @property
    def beats_baselines(self) -> bool:
        return bool(self.metrics.get("beats_baselines", 0.0))

    def predict_proba(self, features_long: pd.DataFrame) -> np.ndarray:
        return self.model.predict_proba(features_long)

    def verdict(self) -> str:
        """One plain sentence: does the model beat the baselines out of sample?"""
        m = self.metrics
        parts = [f"AUC {m['auc']:.3f} vs momentum {m['momentum_auc']:.3f}",
                 f"accuracy {m['accuracy']:.3f} vs majority {m['majority_accuracy']:.3f}",
                 f"log loss {m['log_loss']:.4f} vs majority {m['majority_log_loss']:.4f}"]
        head = "beats the baselines" if self.beats_baselines else "does NOT beat the baselines"
        return f"{self.kind} {head} out of sample ({'; '.join(parts)})"


@dataclass(frozen=True)
class Fold:
    """One walk-forward split: boolean masks over the rows, and the test window's bounds."""

    number: int
    train: np.ndarray
    test: np.ndarray
    test_start: pd.Timestamp
    test_end: pd.Timestamp


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


def panel_lineage(lake, exchange: str, timeframe: str, symbols: list[str] | None = None, start=None, end=None) -> dict:
    """Where a panel came from: the lake call and its DuckDB query, logged with the model."""
    glob = lake._glob(exchange, timeframe) if hasattr(lake, "_glob") else f"{lake.root}/{exchange}/{timeframe}"
    sql = f"SELECT ts, symbol, open, high, low, close, volume FROM read_parquet('{glob}')"
    conds = []
    if symbols:
        conds.append("symbol IN (" + ", ".join(f"'{s}'" for s in symbols) + ")")
    if start is not None:
        conds.append(f"ts >= '{pd.Timestamp(start).isoformat()}'")
    if end is not None:
        conds.append(f"ts <= '{pd.Timestamp(end).isoformat()}'")
    if conds:
        sql += " WHERE " + " AND ".join(conds)
    return {
        "source": "lake",
        "call": f"Lake({str(getattr(lake, 'root', lake))!r}).load_panel({exchange!r}, {timeframe!r}, {symbols!r}, start={start!r}, end={end!r})",
        "query": sql + " ORDER BY symbol, ts",
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


def _purged_train(row_ts: pd.DatetimeIndex, row_label_end: pd.Series, stamps: pd.DatetimeIndex,
                  start_pos: int, embargo: int) -> np.ndarray:
    """Rows whose label ends before stamps[start_pos] and that lie ≥ embargo bars before it."""
    test_start = stamps[start_pos]
    last_ok = stamps[start_pos - embargo - 1] if start_pos - embargo - 1 >= 0 else None
    ends_ok = np.asarray(pd.DatetimeIndex(row_label_end) < test_start)  # NaT (unknown) → False
    if last_ok is None:
        return np.zeros(len(row_ts), dtype=bool)
    return ends_ok & np.asarray(row_ts <= last_ok)


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


def walk_forward_splits(
    row_ts: pd.Index, row_label_end: pd.Series, n_folds: int, test_fraction: float, embargo: int
) -> list[Fold]:
    """Expanding-window folds over the last ``test_fraction`` of timestamps, purged and embargoed.

    Fold k tests on the k-th of ``n_folds`` consecutive windows and trains on rows whose label
    ends before that window and that lie at least ``embargo`` bars before it.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if int(n_folds) != n_folds or n_folds < 1:
        raise ValueError(f"n_folds must be a positive integer, got {n_folds!r}")
    row_ts = pd.DatetimeIndex(row_ts)
    stamps = row_ts.unique().sort_values()
    cut = min(max(int(np.floor(len(stamps) * (1.0 - test_fraction))), 1), len(stamps) - 1) if len(stamps) >= 2 else 0
    if len(stamps) - cut < n_folds or cut < 1:
        raise ValueError(f"{len(stamps)} timestamps cannot hold {n_folds} test windows: load more history or use fewer folds")
    folds = []
    for k, chunk in enumerate(np.array_split(np.arange(cut, len(stamps)), n_folds)):
        start, end = stamps[chunk[0]], stamps[chunk[-1]]
        test = np.asarray((row_ts >= start) & (row_ts <= end))
        train = _purged_train(row_ts, row_label_end, stamps, int(chunk[0]), embargo) & ~test
        folds.append(Fold(k, train, test, start, end))
    return folds


def oos_metrics(y: np.ndarray, p: np.ndarray, y_train: np.ndarray, forward_return: np.ndarray | None = None) -> dict[str, float]:
    """Out-of-sample scores, with the majority-class baseline they must beat."""
    y = np.asarray(y, dtype=int)
    out = score(y, p, forward_return)
    majority = 1 if np.mean(y_train) >= 0.5 else 0
    out["baseline_accuracy"] = float(np.mean(y == majority)) if len(y) else float("nan")
    out["beats_baseline"] = float(out["accuracy"] > out["baseline_accuracy"])
    out["n_train"] = float(len(y_train))
    out["n_test"] = float(len(y))
    return out


def predict_rows(model, X: pd.DataFrame, mask: np.ndarray) -> np.ndarray:
    """``model``'s probabilities for the rows ``mask`` selects, with the history a sequence model needs.

    Row models see only those rows; a model with ``lookback`` > 1 is given every row up to the last
    selected one, exactly as ``inference.predict_panel`` gives it the panel's whole history.
    """
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return np.empty(0)
    if lookback_of(model) <= 1:
        return model.predict_proba(X[mask])
    ts = X.index.get_level_values("ts")
    ctx = np.asarray(ts <= ts[mask].max())
    return model.predict_proba(X[ctx])[mask[ctx]]


@dataclass
class _Prepared:
    panel: Panel
    feature_set: str
    horizon: int
    X: pd.DataFrame
    y: pd.Series
    fwd: np.ndarray
    ends: pd.Series
    data_hash: str


def _prepare(panel: Panel, feature_set: str, horizon: int) -> _Prepared:
    fs = get_feature_set(feature_set)
    X = build_features(panel, fs.name)
    y = direction_label(panel, horizon)
    fwd = stack_wide(panel, {"f": forward_return(panel, horizon).to_numpy()})["f"]
    ends = label_end(panel, horizon)
    usable = complete_rows(X)
    X, y, fwd, ends = X[usable], y[usable], fwd[usable], ends[usable]
    if X.empty:
        raise ValueError(
            f"no rows with complete {fs.name} features: the panel has {len(panel.index)} bars, "
            f"features need about {fs.warmup}; load more history"
        )
    return _Prepared(panel, fs.name, int(horizon), X, y, fwd.to_numpy(dtype=float), ends, panel_hash(panel))


def _fit_calibrated(kind: str, prep: _Prepared, train_mask: np.ndarray, params: dict | None, seed: int,
                    calibration: str, calib_fraction: float, embargo: int):
    """Base model on the earlier training rows, calibrator on the latest (purged) ones."""
    labelled = prep.y.notna().to_numpy()
    tr = train_mask & labelled
    row_ts = pd.DatetimeIndex(prep.X.index.get_level_values("ts"))
    stamps = pd.DatetimeIndex(row_ts[tr]).unique().sort_values()
    base = make_model(kind, params=params, seed=seed)
    cal_mask = np.zeros_like(tr)
    fit_mask = tr
    if calibration != "none":
        if not 0.0 < calib_fraction < 1.0:
            raise ValueError(f"calib_fraction must be in (0, 1), got {calib_fraction}")
        cut = int(np.floor(len(stamps) * (1.0 - calib_fraction)))
        if cut < embargo + 2 or cut >= len(stamps):
            raise ValueError(f"training window of {len(stamps)} timestamps is too short to hold out a calibration set: load more history")
        all_stamps = pd.DatetimeIndex(row_ts).unique().sort_values()
        pos = int(all_stamps.searchsorted(stamps[cut]))  # its position: all_stamps is sorted and unique
        cal_mask = tr & np.asarray(row_ts >= stamps[cut])
        fit_mask = tr & _purged_train(row_ts, prep.ends, all_stamps, pos, embargo)
    if fit_mask.sum() == 0 or prep.y[fit_mask].nunique() < 2:
        raise ValueError(f"empty or single-class training set ({int(fit_mask.sum())} rows): load more history")
    base.fit(prep.X[fit_mask], prep.y[fit_mask])
    calibrator = Calibrator(calibration)
    if cal_mask.any():
        calibrator.fit(predict_rows(base, prep.X, cal_mask), prep.y[cal_mask].to_numpy())
    return CalibratedModel(base, calibrator), int(tr.sum())


def _folds_for(prep: _Prepared, validation: str, n_folds: int, test_fraction: float, embargo: int) -> list[Fold]:
    if validation not in VALIDATIONS:
        raise ValueError(f"unknown validation {validation!r}; use one of {VALIDATIONS}")
    row_ts = prep.X.index.get_level_values("ts")
    if validation == "holdout":
        n_folds = 1
    folds = walk_forward_splits(row_ts, prep.ends, n_folds, test_fraction, embargo)
    labelled = prep.y.notna().to_numpy()
    for f in folds:
        if (f.train & labelled).sum() == 0 or (f.test & labelled).sum() == 0:
            raise ValueError(f"fold {f.number}: empty train ({int((f.train & labelled).sum())} rows) or test "
                             f"({int((f.test & labelled).sum())} rows) set: load more history")
    return folds


def _score_frame(oos: pd.DataFrame, col: str) -> dict[str, float]:
    s = oos[oos["label"].notna()]
    return score(s["label"].to_numpy(), s[col].to_numpy(), s["forward_return"].to_numpy())


def _summarise(oos: pd.DataFrame, fold_rows: list[dict]) -> tuple[dict[str, float], pd.DataFrame]:
    """Overall metrics (model + baselines, verdict flags) and the per-fold table."""
    table = []
    for row in fold_rows:
        part = oos[oos["fold"] == row["fold"]]
        entry = dict(row)
        entry.update(_score_frame(part, "proba"))
        for b in _BASELINES:
            entry.update({f"{b}_{k}": v for k, v in _score_frame(part, b).items()})
        table.append(entry)
    folds = pd.DataFrame(table)
    m = _score_frame(oos, "proba")
    for b in _BASELINES:
        m.update({f"{b}_{k}": v for k, v in _score_frame(oos, b).items()})
    scored = oos[oos["label"].notna()]
    last = fold_rows[-1]
    y = scored["label"].to_numpy(dtype=int)
    maj = (scored["majority"].to_numpy() > 0.5).astype(int)  # each fold's own training majority
    m["baseline_accuracy"] = float(np.mean(y == maj)) if len(y) else float("nan")
    m["beats_baseline"] = float(m["accuracy"] > m["baseline_accuracy"])
    m["beats_majority"] = float(m["accuracy"] > m["majority_accuracy"] and m["log_loss"] < m["majority_log_loss"])
    m["beats_momentum"] = float(m["auc"] > m["momentum_auc"] and m["log_loss"] < m["momentum_log_loss"])
    m["beats_baselines"] = float(m["beats_majority"] and m["beats_momentum"])
    m["n_train"] = float(last["n_train"])
    m["n_test"] = float(len(scored))
    m["n_folds"] = float(len(fold_rows))
    m["fit_seconds"] = float(sum(r["fit_seconds"] for r in fold_rows))
    return m, folds


def _result(kind: str, prep: _Prepared, model, oos: pd.DataFrame, fold_rows: list[dict], folds: list[Fold],
            validation: str, test_fraction: float, embargo: int, calibration: str, params: dict,
            lineage: dict | None) -> TrainResult:
    metrics, table = _summarise(oos, fold_rows)
    row_ts = prep.X.index.get_level_values("ts")
    last = folds[-1]
    train_ts = row_ts[last.train & prep.y.notna().to_numpy()]
    split = {
        "train_start": train_ts.min().isoformat(),
        "train_end": train_ts.max().isoformat(),
        "test_start": last.test_start.isoformat(),
        "test_end": last.test_end.isoformat(),
        "embargo_bars": str(int(embargo)),
        "test_fraction": str(float(test_fraction)),
        "validation": validation,
        "n_folds": str(len(folds)),
        "oos_start": folds[0].test_start.isoformat(),
        "calibration": calibration,
    }
    wide = oos["proba"].unstack("symbol").reindex(columns=prep.panel.close.columns)
    fold_of_ts = oos["fold"].groupby(level="ts").first().reindex(wide.index).astype(int)
    scored = oos[oos["label"].notna()]
    importance = model.feature_importance() if callable(getattr(model, "feature_importance", None)) else None
    return TrainResult(
        model=model,
        kind=kind,
        feature_set=prep.feature_set,
        horizon=prep.horizon,
        metrics=metrics,
        split=split,
        oos_proba=wide,
        strength_reference=np.abs(oos["proba"].to_numpy(dtype=float) - 0.5),
        data_hash=prep.data_hash,
        universe=universe_of(prep.panel),
        params=params,
        folds=table,
        oos_fold=fold_of_ts.rename("fold"),
        oos=oos,
        reliability=reliability_table(scored["label"].to_numpy(), scored["proba"].to_numpy()),
        importance=importance,
        lineage=dict(lineage or {}),
        validation=validation,
    )


def _train_prepared(prep: _Prepared, kind: str, params: dict | None, seed: int, validation: str, n_folds: int,
                    test_fraction: float, embargo: int, calibration: str, calib_fraction: float,
                    lineage: dict | None) -> TrainResult:
    folds = _folds_for(prep, validation, n_folds, test_fraction, embargo)
    parts, fold_rows, model = [], [], None
    row_ts = prep.X.index.get_level_values("ts")
    for f in folds:
        t0 = time.perf_counter()
        model, n_train = _fit_calibrated(kind, prep, f.train, params, seed, calibration, calib_fraction, embargo)
        fit_s = time.perf_counter() - t0
        rule, _ = _fit_calibrated("rule", prep, f.train, None, seed, calibration, calib_fraction, embargo)
        y_tr = prep.y[f.train & prep.y.notna().to_numpy()]
        part = pd.DataFrame({
            "proba": predict_rows(model, prep.X, f.test),
            "label": prep.y[f.test].to_numpy(dtype=float),
            "forward_return": prep.fwd[f.test],
            "fold": f.number,
            "majority": float(y_tr.mean()),
            "momentum": predict_rows(rule, prep.X, f.test),
        }, index=prep.X.index[f.test])
        parts.append(part)
        tr_ts = row_ts[f.train & prep.y.notna().to_numpy()]
        fold_rows.append({"fold": f.number, "train_start": tr_ts.min(), "train_end": tr_ts.max(),
                          "test_start": f.test_start, "test_end": f.test_end, "n_train": n_train,
                          "n_test": int((f.test & prep.y.notna().to_numpy()).sum()), "fit_seconds": fit_s})
    if model is None:
        raise ValueError("no walk-forward fold to train on: load more history")
    used = dict(getattr(model.base, "params", params or {}))
    return _result(kind, prep, model, pd.concat(parts), fold_rows, folds, validation, test_fraction, embargo,
                   calibration, {**used, "seed": seed}, lineage)


def _check_embargo(embargo: int | None, horizon: int) -> int:
    embargo = int(horizon) if embargo is None else int(embargo)
    if embargo < horizon:
        raise ValueError(f"embargo ({embargo} bars) must be at least the label horizon ({horizon} bars)")
    return embargo


def train(
    panel: Panel,
    kind: str = "lgbm",
    feature_set: str = "v1",
    horizon: int = 1,
    test_fraction: float = 0.3,
    params: dict | None = None,
    seed: int = 42,
    *,
    validation: str = "holdout",
    n_folds: int = 3,
    embargo: int | None = None,
    calibration: str = "platt",
    calib_fraction: float = 0.2,
    lineage: dict | None = None,
    members: tuple[str, ...] = ENSEMBLE_MEMBERS,
) -> TrainResult:
    """Fit ``kind`` (lgbm, rf, lstm, rule or ensemble) and score it out of sample.

    ``validation="walk_forward"`` scores ``n_folds`` consecutive test windows; ``embargo`` (bars,
    default ``horizon``) must be at least ``horizon``. For ``kind="ensemble"``, ``params`` maps
    each member kind to its params.
    """
    if kind not in KINDS:  # fail fast, before building features
        raise ValueError(f"unknown model kind {kind!r}; known kinds: {list(KINDS)}")
    embargo = _check_embargo(embargo, horizon)
    prep = _prepare(panel, feature_set, horizon)
    if kind == "ensemble":
        results = [_train_prepared(prep, k, (params or {}).get(k), seed, validation, n_folds, test_fraction,
                                   embargo, calibration, calib_fraction, lineage) for k in members]
        return ensemble_of(results)
    return _train_prepared(prep, kind, params, seed, validation, n_folds, test_fraction, embargo, calibration,
                           calib_fraction, lineage)


def walk_forward(panel: Panel, kind: str = "lgbm", n_folds: int = 3, **kwargs) -> TrainResult:
    """``train`` with walk-forward validation (the registry accepts the result as is)."""
    return train(panel, kind, validation="walk_forward", n_folds=n_folds, **kwargs)


def ensemble_of(results: list[TrainResult], weights: list[float] | None = None) -> TrainResult:
    """The mean of members' calibrated probabilities, scored on their (identical) folds."""
    from workbench.models.ensemble import EnsembleModel

    if not results:
        raise ValueError("ensemble_of needs at least one TrainResult")
    first = results[0]
    for r in results[1:]:
        if r.data_hash != first.data_hash or not r.oos.index.equals(first.oos.index) or r.horizon != first.horizon:
            raise ValueError("ensemble members must be trained on the same panel, horizon and folds")
    model = EnsembleModel([r.model for r in results], weights)
    oos = first.oos.copy()
    oos["proba"] = np.sum([w * r.oos["proba"].to_numpy() for w, r in zip(model.weights, results, strict=True)], axis=0)
    cols = ["fold", "train_start", "train_end", "test_start", "test_end", "n_train", "n_test"]
    fold_rows = first.folds[cols].to_dict("records")
    for row, secs in zip(fold_rows, np.sum([r.folds["fit_seconds"].to_numpy() for r in results], axis=0), strict=True):
        row["fit_seconds"] = float(secs)
    metrics, table = _summarise(oos, fold_rows)
    wide = oos["proba"].unstack("symbol").reindex(columns=first.oos_proba.columns)
    scored = oos[oos["label"].notna()]
    return TrainResult(
        model=model, kind="ensemble", feature_set=first.feature_set, horizon=first.horizon, metrics=metrics,
        split=dict(first.split), oos_proba=wide, strength_reference=np.abs(oos["proba"].to_numpy() - 0.5),
        data_hash=first.data_hash, universe=first.universe,
        params={"members": ",".join(r.kind for r in results), "weights": ",".join(f"{w:.4g}" for w in model.weights)},
        folds=table, oos_fold=first.oos_fold.copy(), oos=oos,
        reliability=reliability_table(scored["label"].to_numpy(), scored["proba"].to_numpy()),
        importance=model.feature_importance(), lineage=dict(first.lineage), validation=first.validation,
    )


def compare(
    panel: Panel,
    kinds: tuple[str, ...] = ENSEMBLE_MEMBERS,
    ensemble: bool = True,
    params: dict | None = None,
    **kwargs,
) -> dict[str, TrainResult]:
    """Train several kinds on the same features and folds (walk-forward by default), plus their ensemble.

    ``params`` maps kind → params; other keyword arguments go to ``train``.
    """
    kwargs.setdefault("validation", "walk_forward")
    seed = kwargs.pop("seed", 42)
    horizon = kwargs.pop("horizon", 1)
    embargo = _check_embargo(kwargs.pop("embargo", None), horizon)
    prep = _prepare(panel, kwargs.pop("feature_set", "v1"), horizon)
    opts = dict(validation=kwargs.pop("validation"), n_folds=kwargs.pop("n_folds", 3),
                test_fraction=kwargs.pop("test_fraction", 0.3), embargo=embargo,
                calibration=kwargs.pop("calibration", "platt"), calib_fraction=kwargs.pop("calib_fraction", 0.2),
                lineage=kwargs.pop("lineage", None))
    if kwargs:
        raise TypeError(f"unexpected arguments: {sorted(kwargs)}")
    out = {k: _train_prepared(prep, k, (params or {}).get(k), seed, **opts) for k in kinds}
    if ensemble and len(kinds) > 1:
        out["ensemble"] = ensemble_of(list(out.values()))
    return out


def comparison_table(results: dict[str, TrainResult] | list[TrainResult]) -> pd.DataFrame:
    """Overall out-of-sample scores: one row per model, then the two baselines, plus fit seconds."""
    items = list(results.values()) if isinstance(results, dict) else list(results)
    rows: dict[str, dict[str, Any]] = {}
    for r in items:
        rows[r.kind] = {**{k: r.metrics[k] for k in METRIC_KEYS}, "fit_seconds": r.metrics["fit_seconds"],
                        "beats_baselines": bool(r.metrics["beats_baselines"])}
    m = items[0].metrics
    for b in _BASELINES:
        rows[f"baseline: {b}"] = {**{k: m[f"{b}_{k}"] for k in METRIC_KEYS}, "fit_seconds": 0.0, "beats_baselines": None}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "model"
    return table


def better(metric: str, challenger: float, champion: float, margin: float) -> bool:
    """Is ``challenger`` better than ``champion`` by more than ``margin`` on ``metric``?"""
    gain = challenger - champion if HIGHER_IS_BETTER[metric] else champion - challenger
    return bool(np.isfinite(gain) and gain > margin)
