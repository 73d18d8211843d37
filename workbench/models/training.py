"""Train a model on a panel with honest time splits, calibrate it, and measure it out of sample.

Validation (``splits``): walk-forward, expanding window, purged and embargoed (embargo ≥ horizon);
``holdout`` is the one-fold case. Calibration: inside each training window the latest
``calib_fraction`` of timestamps is held out (purged by the embargo); the base model fits on the rest
and a Platt or isotonic calibrator on the held-out predictions; the calibrator travels inside the
model, so what is registered and served returns calibrated probabilities.

Labels (``features.labels.LABELS``): ``sign`` (the close rises over h bars), ``xs_median`` (beats the
date's median: stock selection only), ``xs_top``, ``cost``, ``barrier``. Scores (``evaluation``) are
per fold and per date, beside the majority, momentum and reversal baselines on the same rows; the
verdict uses per-fold evidence (see ``verdict``).

Before any fit the training matrix goes through the leak checks (``leakage``): a feature that reads
the future is refused.

The registered model of a walk-forward run is the *last fold's* model: its test window
(``split["test_start"]`` …) is genuinely out of sample, so the backtest and the champion/challenger
comparison can trust it. Refitting on all data would leave no honest window to judge it on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from workbench.data.panel import Panel
from workbench.features.labels import (
    LABELS,
    forward_return,
    training_label,
)
from workbench.features.pipeline import build_features, get_feature_set, stack_wide
from workbench.models import leakage
from workbench.models.base import Model, complete_rows, lookback_of, make_model
from workbench.models.baselines import BASELINES, signal
from workbench.models.calibration import CalibratedModel, Calibrator
from workbench.models.coverage import Coverage, fold_coverage
from workbench.models.data_hash import panel_hash
from workbench.models.evaluation import HIGHER_IS_BETTER, fold_scores, reliability_table
from workbench.models.kinds import TRAINABLE_KINDS
from workbench.models.splits import (
    Fold,
    calibration_split,
    label_end,
    walk_forward_splits,
)
from workbench.models.verdict import (
    IC_T_MIN,
    comparison_table,
    primary_metric,
    verdict_text,
)

__all__ = [
    "TrainResult",
    "Fold",
    "train",
    "walk_forward",
    "compare",
    "ensemble_of",
    "comparison_table",
    "walk_forward_splits",
    "label_end",
    "panel_hash",
    "universe_of",
    "predict_rows",
    "panel_lineage",
    "better",
    "KINDS",
    "VALIDATIONS",
    "ENSEMBLE_MEMBERS",
    "SUMMARY_KEYS",
    "primary_metric",
    "verdict_text",
    "IC_T_MIN",
]

VALIDATIONS = ("holdout", "walk_forward")
ENSEMBLE_MEMBERS = ("lgbm", "rf", "lstm")
KINDS = TRAINABLE_KINDS  # what ``train`` accepts
# Summary figures: the mean over folds of each per-fold score; the daily IC's over all test dates.
SUMMARY_KEYS = (
    "auc",
    "accuracy",
    "log_loss",
    "brier",
    "ece",
    "ece_quantile",
    "confidence_ece",
    "ic_mean",
    "ic_t",
    "ic_ir",
    "ls_return",
    "turnover",
)


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
    # Long (ts, symbol) out-of-sample rows: proba, label, forward_return, fold, and each baseline's
    # probability (``momentum``) and raw signal (``momentum_score``).
    oos: pd.DataFrame = field(default_factory=pd.DataFrame)
    # Pooled over folds (labelled so): equal-width bins. Per fold: ``fold_reliability``.
    reliability: pd.DataFrame = field(default_factory=pd.DataFrame)
    importance: pd.Series | None = None
    lineage: dict = field(default_factory=dict)
    validation: str = "holdout"
    label: str = "sign"
    # Per fold and bin (equal-count): mean predicted vs observed, for the model.
    fold_reliability: pd.DataFrame = field(default_factory=pd.DataFrame)
    leaks: object | None = None  # the leakage.LeakReport of the training matrix
    # Which universe symbols each fold trains and tests on, with warnings when coverage is thin.
    coverage: Coverage | None = None

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
        """Plain words: is there an edge out of sample, on per-fold evidence?"""
        return verdict_text(self.kind, self.label, self.metrics)


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
        "call": f"Lake({str(getattr(lake, 'url', getattr(lake, 'root', lake)))!r}).load_panel({exchange!r}, {timeframe!r}, {symbols!r}, start={start!r}, end={end!r})",
        "query": sql + " ORDER BY symbol, ts",
    }


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
    label: str
    X: pd.DataFrame
    y: pd.Series
    fwd: np.ndarray
    ends: pd.Series
    data_hash: str
    signals: dict[str, np.ndarray]
    leaks: object | None


def _shuffle_within_dates(ts: pd.Index, seed: int) -> np.ndarray:
    """A permutation of the rows that moves each row only among the rows of its own date."""
    codes = pd.factorize(pd.DatetimeIndex(ts))[0]
    noise = np.random.default_rng(seed).random(len(codes))
    by_date = np.argsort(codes, kind="stable")
    shuffled = np.lexsort((noise, codes))
    perm = np.empty(len(codes), dtype=int)
    perm[by_date] = shuffled
    return perm


def _prepare(
    panel: Panel,
    feature_set: str,
    horizon: int,
    label: str = "sign",
    leak_check: str = "refuse",
    shuffle_labels: int | None = None,
) -> _Prepared:
    fs = get_feature_set(feature_set)
    if label not in LABELS:
        raise ValueError(f"unknown label {label!r}; known labels: {list(LABELS)}")
    if leak_check not in ("refuse", "warn", "off"):
        raise ValueError(f"leak_check must be 'refuse', 'warn' or 'off', got {leak_check!r}")
    X = build_features(panel, fs.name)
    y = training_label(panel, label, horizon)
    fwd = stack_wide(panel, {"f": forward_return(panel, horizon).to_numpy()})["f"]
    ends = label_end(panel, horizon)
    usable = complete_rows(X)
    X, y, fwd, ends = X[usable], y[usable], fwd[usable], ends[usable]
    if X.empty:
        raise ValueError(
            f"no rows with complete {fs.name} features: the panel has {len(panel.index)} bars, "
            f"features need about {fs.warmup}; load more history"
        )
    leaks = None
    if leak_check != "off":  # on the very matrix the model will see
        leaks = leakage.leak_check(panel, X, build=lambda p: build_features(p, fs.name))
        leakage.enforce(leaks, leak_check)
    if shuffle_labels is not None:  # the permutation test: labels (and their returns) swapped within dates
        perm = _shuffle_within_dates(X.index.get_level_values("ts"), int(shuffle_labels))
        y = pd.Series(y.to_numpy()[perm], index=y.index, name=y.name)
        fwd = pd.Series(fwd.to_numpy()[perm], index=fwd.index)
    signals = {b: signal(b, X) for b in BASELINES if b != "majority"}
    return _Prepared(
        panel, fs.name, int(horizon), label, X, y, fwd.to_numpy(dtype=float), ends, panel_hash(panel), signals, leaks
    )


def _fit_calibrated(
    kind: str,
    prep: _Prepared,
    train_mask: np.ndarray,
    params: dict | None,
    seed: int,
    calibration: str,
    calib_fraction: float,
    embargo: int,
):
    """Base model on the earlier training rows, calibrator on the latest (purged) ones.

    Returns (model, training rows, fit mask, calibration mask)."""
    labelled = prep.y.notna().to_numpy()
    tr = train_mask & labelled
    row_ts = prep.X.index.get_level_values("ts")
    base = make_model(kind, params=params, seed=seed)
    if calibration != "none":
        fit_mask, cal_mask = calibration_split(row_ts, prep.ends, tr, calib_fraction, embargo)
    else:
        fit_mask, cal_mask = tr, np.zeros_like(tr)
    if fit_mask.sum() == 0 or prep.y[fit_mask].nunique() < 2:
        raise ValueError(f"empty or single-class training set ({int(fit_mask.sum())} rows): load more history")
    base.fit(prep.X[fit_mask], prep.y[fit_mask])
    calibrator = Calibrator(calibration)
    if cal_mask.any():
        calibrator.fit(predict_rows(base, prep.X, cal_mask), prep.y[cal_mask].to_numpy())
    return CalibratedModel(base, calibrator), int(tr.sum()), fit_mask, cal_mask


def _baseline_columns(
    prep: _Prepared, fit: np.ndarray, cal: np.ndarray, test: np.ndarray, calibration: str
) -> dict[str, np.ndarray | float]:
    """Each baseline's probability and raw signal on the test rows, fitted on the model's own slices."""
    out: dict[str, np.ndarray | float] = {}
    majority = float(prep.y[fit | cal].mean())
    out["majority"] = majority
    out["majority_score"] = majority
    for name, raw in prep.signals.items():
        cal_fn = Calibrator(calibration)
        if cal.any():
            cal_fn.fit(raw[cal], prep.y[cal].to_numpy())
        out[name] = cal_fn.transform(raw[test])
        out[f"{name}_score"] = raw[test]
    return out


def _folds_for(prep: _Prepared, validation: str, n_folds: int, test_fraction: float | str, embargo: int) -> list[Fold]:
    if validation not in VALIDATIONS:
        raise ValueError(f"unknown validation {validation!r}; use one of {VALIDATIONS}")
    row_ts = prep.X.index.get_level_values("ts")
    if validation == "holdout":
        n_folds = 1
    folds = walk_forward_splits(row_ts, prep.ends, n_folds, test_fraction, embargo)
    labelled = prep.y.notna().to_numpy()
    for f in folds:
        if (f.train & labelled).sum() == 0 or (f.test & labelled).sum() == 0:
            raise ValueError(
                f"fold {f.number}: empty train ({int((f.train & labelled).sum())} rows) or test "
                f"({int((f.test & labelled).sum())} rows) set: load more history"
            )
    return folds


def _coverage(prep: _Prepared, folds: list[Fold]) -> Coverage:
    index = prep.X.index
    assert isinstance(index, pd.MultiIndex)  # (ts, symbol)
    return fold_coverage(index, [str(s) for s in prep.panel.symbols], folds, prep.y.notna().to_numpy())


def _all_scores(part: pd.DataFrame, horizon: int) -> dict[str, float]:
    """The model's scores and each baseline's (prefixed) on one out-of-sample frame."""
    out = fold_scores(part, "proba", horizon)
    for b in BASELINES:
        out.update({f"{b}_{k}": v for k, v in fold_scores(part, b, horizon, rank_col=f"{b}_score").items()})
    return out


def _beats(label: str, scores: dict[str, float]) -> bool:
    """Does the model beat every ranking baseline on the primary metric in this set of scores?"""
    key = primary_metric(label)
    rivals = [scores.get(f"{b}_{key}", np.nan) for b in BASELINES]
    rivals = [r for r in rivals if np.isfinite(r)]
    return bool(np.isfinite(scores.get(key, np.nan)) and all(scores[key] > r for r in rivals))


def _summarise(
    oos: pd.DataFrame, fold_rows: list[dict], horizon: int, label: str
) -> tuple[dict[str, float], pd.DataFrame]:
    """Summary metrics (means over folds; daily IC over all test dates; ``pooled_*`` labelled) and the fold table."""
    table = []
    for row in fold_rows:
        entry = dict(row)
        entry.update(_all_scores(oos[oos["fold"] == row["fold"]], horizon))
        table.append(entry)
    folds = pd.DataFrame(table)
    # Older notebooks read a fold's ``rank_ic``: it is now that fold's mean *daily* rank IC (never pooled).
    folds["rank_ic"] = folds["ic_mean"]
    whole = _all_scores(oos, horizon)  # the per-date figures over every test date; the rest is pooled
    m: dict[str, float] = {}
    for prefix in ("", *(f"{b}_" for b in BASELINES)):
        for k in SUMMARY_KEYS:
            if k in ("ic_mean", "ic_t", "ic_ir", "ls_return", "turnover"):
                m[prefix + k] = whole[prefix + k]
            else:
                m[prefix + k] = float(folds[prefix + k].mean())
                m["pooled_" + prefix + k] = whole[prefix + k]
    wins = [_beats(label, r) for r in table]
    key = primary_metric(label)
    m["folds_beating"] = float(sum(wins))
    m["beats_on_mean"] = float(_beats(label, m))
    # t ≥ 3, not 2: many labels, horizons and models get tried, and a new factor needs t > 3 to
    # survive that search (Harvey, Liu & Zhu 2016).
    significant = m["ic_t"] >= IC_T_MIN if key == "ic_mean" else m["log_loss"] < m["majority_log_loss"]
    m["significant"] = float(bool(significant))
    m["baseline_accuracy"] = m["majority_accuracy"]
    m["beats_baseline"] = float(m["accuracy"] > m["baseline_accuracy"])
    m["beats_majority"] = float(m["accuracy"] > m["majority_accuracy"] and m["log_loss"] < m["majority_log_loss"])
    m["beats_momentum"] = float(np.isfinite(m[key]) and m[key] > m[f"momentum_{key}"])
    m["beats_baselines"] = float(sum(wins) > len(wins) / 2 and m["beats_on_mean"] and bool(significant))
    m["n_train"] = float(fold_rows[-1]["n_train"])
    m["n_test"] = float(oos["label"].notna().sum())
    m["n_folds"] = float(len(fold_rows))
    m["fit_seconds"] = float(sum(r["fit_seconds"] for r in fold_rows))
    return m, folds


def _fold_reliability(oos: pd.DataFrame) -> pd.DataFrame:
    parts = []
    s = oos[oos["label"].notna()]
    for fold, part in s.groupby("fold"):
        assert isinstance(fold, (int, float, np.integer, np.floating))
        for strategy in ("quantile", "uniform"):
            t = reliability_table(part["label"].to_numpy(), part["proba"].to_numpy(), 10, strategy)
            parts.append(t.assign(fold=int(fold), binning=strategy))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


@dataclass(frozen=True)
class _Meta:
    """What assembling a result needs of the prepared data: small, so a Dask worker can send it back."""

    feature_set: str
    horizon: int
    label: str
    data_hash: str
    columns: pd.Index
    universe: dict
    leaks: object | None
    coverage: Coverage | None = None  # which symbols each fold trains and tests on


def _meta(prep: _Prepared, folds: list[Fold] | None = None) -> _Meta:
    return _Meta(
        prep.feature_set,
        prep.horizon,
        prep.label,
        prep.data_hash,
        prep.panel.close.columns,
        universe_of(prep.panel),
        prep.leaks,
        _coverage(prep, folds) if folds else None,
    )


def _result(
    kind: str,
    meta: _Meta,
    model,
    oos: pd.DataFrame,
    fold_rows: list[dict],
    validation: str,
    test_fraction: float | str,
    embargo: int,
    calibration: str,
    params: dict,
    lineage: dict | None,
) -> TrainResult:
    metrics, table = _summarise(oos, fold_rows, meta.horizon, meta.label)
    last = fold_rows[-1]
    split = {
        "train_start": pd.Timestamp(last["train_start"]).isoformat(),
        "train_end": pd.Timestamp(last["train_end"]).isoformat(),
        "test_start": pd.Timestamp(last["test_start"]).isoformat(),
        "test_end": pd.Timestamp(last["test_end"]).isoformat(),
        "embargo_bars": str(int(embargo)),
        "test_fraction": str(test_fraction),
        "validation": validation,
        "n_folds": str(len(fold_rows)),
        "oos_start": pd.Timestamp(fold_rows[0]["test_start"]).isoformat(),
        "calibration": calibration,
        "label": meta.label,
    }
    wide = oos["proba"].unstack("symbol").reindex(columns=meta.columns)
    fold_of_ts = oos["fold"].groupby(level="ts").first().reindex(wide.index).astype(int)
    scored = oos[oos["label"].notna()]
    importance = model.feature_importance() if callable(getattr(model, "feature_importance", None)) else None
    lineage = dict(lineage or {})
    # The registry logs lineage as params: the leak check's verdict must travel with the model, as a
    # cluster fit's does (``dask_register`` sets these keys first; they win).
    lineage.setdefault(
        "leak_check",
        "the whole training matrix in one process: truncation at the cut dates and next-bar IC"
        if meta.leaks is not None
        else "off: no leak check ran",
    )
    lineage.setdefault("leak_report", str(meta.leaks) if meta.leaks is not None else "none: leak_check='off'")
    return TrainResult(
        model=model,
        kind=kind,
        feature_set=meta.feature_set,
        horizon=meta.horizon,
        metrics=metrics,
        split=split,
        oos_proba=wide,
        strength_reference=np.abs(oos["proba"].to_numpy(dtype=float) - 0.5),
        data_hash=meta.data_hash,
        universe=dict(meta.universe),
        params=params,
        folds=table,
        oos_fold=fold_of_ts.rename("fold"),
        oos=oos,
        reliability=reliability_table(scored["label"].to_numpy(), scored["proba"].to_numpy()),
        importance=importance,
        lineage=dict(lineage or {}),
        validation=validation,
        label=meta.label,
        fold_reliability=_fold_reliability(oos),
        leaks=meta.leaks,
        coverage=meta.coverage,
    )


def _fit_fold(
    prep: _Prepared,
    kind: str,
    f: Fold,
    params: dict | None,
    seed: int,
    calibration: str,
    calib_fraction: float,
    embargo: int,
) -> tuple[pd.DataFrame, dict, CalibratedModel]:
    """One fold: fit on its training rows, predict its test rows (with the baselines beside).

    Returns (out-of-sample part, fold row, model); folds are independent, so they can run anywhere."""
    row_ts = prep.X.index.get_level_values("ts")
    labelled = prep.y.notna().to_numpy()
    t0 = time.perf_counter()
    model, n_train, fit, cal = _fit_calibrated(kind, prep, f.train, params, seed, calibration, calib_fraction, embargo)
    fit_s = time.perf_counter() - t0
    part = pd.DataFrame(
        {
            "proba": predict_rows(model, prep.X, f.test),
            "label": prep.y[f.test].to_numpy(dtype=float),
            "forward_return": prep.fwd[f.test],
            "fold": f.number,
            **_baseline_columns(prep, fit, cal, f.test, calibration),
        },
        index=prep.X.index[f.test],
    )
    tr_ts = row_ts[f.train & labelled]
    row = {
        "fold": f.number,
        "train_start": tr_ts.min(),
        "train_end": tr_ts.max(),
        "test_start": f.test_start,
        "test_end": f.test_end,
        "n_train": n_train,
        "n_test": int((f.test & labelled).sum()),
        "fit_seconds": fit_s,
    }
    return part, row, model


def _assemble(
    kind: str,
    meta: _Meta,
    fitted: list[tuple[pd.DataFrame, dict, CalibratedModel]],
    params: dict | None,
    seed: int,
    validation: str,
    test_fraction: float | str,
    embargo: int,
    calibration: str,
    lineage: dict | None,
) -> TrainResult:
    """The result of a walk-forward from its folds' (part, row, model), in fold order; the last fold's model is kept."""
    fitted = sorted(fitted, key=lambda t: t[1]["fold"])
    model = fitted[-1][2]
    used = dict(getattr(model.base, "params", params or {}))
    return _result(
        kind,
        meta,
        model,
        pd.concat([p for p, _, _ in fitted]),
        [r for _, r, _ in fitted],
        validation,
        test_fraction,
        embargo,
        calibration,
        {**used, "seed": seed, "label": meta.label},
        lineage,
    )


def _train_prepared(
    prep: _Prepared,
    kind: str,
    params: dict | None,
    seed: int,
    validation: str,
    n_folds: int,
    test_fraction: float | str,
    embargo: int,
    calibration: str,
    calib_fraction: float,
    lineage: dict | None,
) -> TrainResult:
    folds = _folds_for(prep, validation, n_folds, test_fraction, embargo)
    fitted = [_fit_fold(prep, kind, f, params, seed, calibration, calib_fraction, embargo) for f in folds]
    return _assemble(
        kind, _meta(prep, folds), fitted, params, seed, validation, test_fraction, embargo, calibration, lineage
    )


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
    test_fraction: float | str = 0.3,
    params: dict | None = None,
    seed: int = 42,
    *,
    label: str = "sign",
    validation: str = "holdout",
    n_folds: int = 3,
    embargo: int | None = None,
    calibration: str = "platt",
    calib_fraction: float = 0.2,
    lineage: dict | None = None,
    members: tuple[str, ...] = ENSEMBLE_MEMBERS,
    leak_check: str = "refuse",
    shuffle_labels: int | None = None,
    on_coverage: Callable[[Coverage], None] | None = None,
) -> TrainResult:
    """Fit ``kind`` (lgbm, lgbm_rank, rf, lstm, rule or ensemble) on ``label`` and score it out of sample.

    ``validation="walk_forward"`` scores ``n_folds`` consecutive test windows covering ``test_fraction``
    (a fraction, or a span such as ``"3y"``); ``embargo`` (bars, default ``horizon``) must be at least
    ``horizon``. For ``kind="ensemble"``, ``params`` maps each member kind to its params.
    ``leak_check``: refuse (default), warn or off. ``shuffle_labels=seed`` permutes labels within
    dates: the permutation test's null model. ``on_coverage`` is called with the folds' universe
    coverage once the data is loaded and split, before any model is fitted (the CLI prints it).
    """
    if kind not in KINDS:  # fail fast, before building features
        raise ValueError(f"unknown model kind {kind!r}; known kinds: {list(KINDS)}")
    embargo = _check_embargo(embargo, horizon)
    prep = _prepare(panel, feature_set, horizon, label, leak_check, shuffle_labels)
    if on_coverage is not None:
        on_coverage(_coverage(prep, _folds_for(prep, validation, n_folds, test_fraction, embargo)))
    if kind == "ensemble":
        results = [
            _train_prepared(
                prep,
                k,
                (params or {}).get(k),
                seed,
                validation,
                n_folds,
                test_fraction,
                embargo,
                calibration,
                calib_fraction,
                lineage,
            )
            for k in members
        ]
        return ensemble_of(results)
    return _train_prepared(
        prep, kind, params, seed, validation, n_folds, test_fraction, embargo, calibration, calib_fraction, lineage
    )


def walk_forward(panel: Panel, kind: str = "lgbm", n_folds: int = 3, **kwargs) -> TrainResult:
    """``train`` with walk-forward validation (the registry accepts the result as is)."""
    return train(panel, kind, validation="walk_forward", n_folds=n_folds, **kwargs)


def ensemble_of(results: list[TrainResult], weights: list[float] | None = None) -> TrainResult:
    """The mean of members' calibrated probabilities, scored on their (identical) folds.

    The mean of calibrated probabilities is not itself calibrated (it is pulled toward the middle):
    its own per-fold reliability is reported like any model's.
    """
    from workbench.models.ensemble import EnsembleModel

    if not results:
        raise ValueError("ensemble_of needs at least one TrainResult")
    first = results[0]
    for r in results[1:]:
        if (
            r.data_hash != first.data_hash
            or not r.oos.index.equals(first.oos.index)
            or r.horizon != first.horizon
            or r.label != first.label
        ):
            raise ValueError("ensemble members must be trained on the same panel, label, horizon and folds")
    model = EnsembleModel([r.model for r in results], weights)
    oos = first.oos.copy()
    oos["proba"] = np.sum([w * r.oos["proba"].to_numpy() for w, r in zip(model.weights, results, strict=True)], axis=0)
    cols = ["fold", "train_start", "train_end", "test_start", "test_end", "n_train", "n_test"]
    fold_rows = first.folds[cols].to_dict("records")
    for row, secs in zip(fold_rows, np.sum([r.folds["fit_seconds"].to_numpy() for r in results], axis=0), strict=True):
        row["fit_seconds"] = float(secs)
    metrics, table = _summarise(oos, fold_rows, first.horizon, first.label)
    wide = oos["proba"].unstack("symbol").reindex(columns=first.oos_proba.columns)
    scored = oos[oos["label"].notna()]
    return TrainResult(
        model=model,
        kind="ensemble",
        feature_set=first.feature_set,
        horizon=first.horizon,
        metrics=metrics,
        split=dict(first.split),
        oos_proba=wide,
        strength_reference=np.abs(oos["proba"].to_numpy() - 0.5),
        data_hash=first.data_hash,
        universe=first.universe,
        params={
            "members": ",".join(r.kind for r in results),
            "weights": ",".join(f"{w:.4g}" for w in model.weights),
            "label": first.label,
        },
        folds=table,
        oos_fold=first.oos_fold.copy(),
        oos=oos,
        reliability=reliability_table(scored["label"].to_numpy(), scored["proba"].to_numpy()),
        importance=model.feature_importance(),
        lineage=dict(first.lineage),
        validation=first.validation,
        label=first.label,
        fold_reliability=_fold_reliability(oos),
        leaks=first.leaks,
        coverage=first.coverage,
    )


def compare(
    panel: Panel,
    kinds: tuple[str, ...] = ENSEMBLE_MEMBERS,
    ensemble: bool = True,
    params: dict | None = None,
    **kwargs,
) -> dict[str, TrainResult]:
    """Train several kinds on the same features, label and folds (walk-forward by default), plus their ensemble.

    ``params`` maps kind → params; other keyword arguments go to ``train``.
    """
    kwargs.setdefault("validation", "walk_forward")
    seed = kwargs.pop("seed", 42)
    horizon = kwargs.pop("horizon", 1)
    embargo = _check_embargo(kwargs.pop("embargo", None), horizon)
    prep = _prepare(
        panel,
        kwargs.pop("feature_set", "v1"),
        horizon,
        kwargs.pop("label", "sign"),
        kwargs.pop("leak_check", "refuse"),
        kwargs.pop("shuffle_labels", None),
    )
    opts = dict(
        validation=kwargs.pop("validation"),
        n_folds=kwargs.pop("n_folds", 3),
        test_fraction=kwargs.pop("test_fraction", 0.3),
        embargo=embargo,
        calibration=kwargs.pop("calibration", "platt"),
        calib_fraction=kwargs.pop("calib_fraction", 0.2),
        lineage=kwargs.pop("lineage", None),
    )
    if kwargs:
        raise TypeError(f"unexpected arguments: {sorted(kwargs)}")
    out = {k: _train_prepared(prep, k, (params or {}).get(k), seed, **opts) for k in kinds}
    if ensemble and len(kinds) > 1:
        out["ensemble"] = ensemble_of(list(out.values()))
    return out


def better(metric: str, challenger: float, champion: float, margin: float) -> bool:
    """Is ``challenger`` better than ``champion`` by more than ``margin`` on ``metric``?"""
    gain = challenger - champion if HIGHER_IS_BETTER[metric] else champion - challenger
    return bool(np.isfinite(gain) and gain > margin)
