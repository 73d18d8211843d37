"""One LightGBM model fitted across a Dask cluster, for universes too large for one machine's memory.

``models.distributed`` fans out *many* small fits (folds × kinds × universes), each on one worker.
This module is the other case: *one* model that must see more rows than one process can hold. It
uses LightGBM's own Dask estimator (``lightgbm.DaskLGBMClassifier``: each worker holds its partitions
and LightGBM's data-parallel tree learner exchanges histograms between them).

How the rows are built without ever sending data through the scheduler: the panel's timestamps are
cut into consecutive **time shards**; a worker reads its shard straight from the lake, with
``history_bars`` more bars before it (so rolling features are warm) and ``horizon`` bars after it
(so labels are complete), computes features, labels and the baselines' raw signals on that slice,
and keeps only its own timestamps. Cross-sectional features need every instrument of a date, which a
time shard has. Features with unbounded memory (EMA-type) differ from a full-history computation by
an amount that shrinks with ``history_bars``; ``shard_feature_gap`` measures it and the tests bound it.

Validation is the same purged, embargoed walk-forward as in-process training, on timestamps: fold k
tests on the k-th window of the last ``test_fraction`` of timestamps and trains on rows whose label
ends at least ``embargo`` bars before that window. Out-of-sample rows come back small (probability,
label, forward return, baselines' signals) and are scored per fold and per date beside the baselines.
Calibration is in-process training's: in each fold (and for the final model) the latest
``calib_fraction`` of the training timestamps is held out (purged by the embargo), the base model
fits on the earlier ones, and a Platt (or isotonic) calibrator — and one per baseline, on its raw
signal — fits on the held-out rows' predictions. Only those rows' raw predictions, labels and
baseline signals come back to the client (a few numbers per row), never their features.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workbench.models.calibration import Calibrator
from workbench.models.distributed import LakeSource
from workbench.models.evaluation import fold_scores
from workbench.models.splits import walk_forward_splits

__all__ = [
    "DaskFit",
    "ShardTask",
    "fit_lgbm_on_cluster",
    "lake_timestamps",
    "block_hashes",
    "lake_data_hash",
    "shard_rows",
    "time_shards",
]

_LABEL_COLUMNS = ("label", "forward_return", "label_end")


def time_shards(n_stamps: int, n_shards: int) -> list[tuple[int, int]]:
    """Consecutive [start, stop) positions covering ``n_stamps`` timestamps in ``n_shards`` near-equal parts."""
    if n_stamps < 1:
        raise ValueError("no timestamps to shard: the lake holds no bars for this universe")
    n = max(1, min(int(n_shards), n_stamps))
    cuts = np.linspace(0, n_stamps, n + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in itertools.pairwise(cuts) if b > a]


def lake_timestamps(source: LakeSource) -> pd.DatetimeIndex:
    """Every bar time of the universe in the lake (only the ``ts`` column is read)."""
    from workbench.data.lake_url import open_lake

    lake = open_lake(source.root)
    syms = list(source.symbols) if source.symbols else None
    table = lake._scan(source.exchange, source.timeframe, ("ts",), syms, source.start, source.end)
    ts = pd.DatetimeIndex(pd.to_datetime(table.column("ts").to_numpy(), utc=True)).unique().sort_values()
    return ts


@dataclass(frozen=True)
class ShardTask:
    """One time shard: its own timestamps [lo, hi] and the wider window a worker reads to build them."""

    source: LakeSource
    lo: pd.Timestamp
    hi: pd.Timestamp
    read_from: pd.Timestamp
    read_to: pd.Timestamp
    feature_set: str = "v1"
    horizon: int = 1
    label: str = "sign"

    def load_window(self) -> Any:
        """The ``Panel`` of the window this shard reads: its own bars plus the history and label bars."""
        s = self.source
        return LakeSource(s.root, s.exchange, s.timeframe, s.symbols, str(self.read_from), str(self.read_to)).load()


def shard_rows(task: ShardTask) -> pd.DataFrame:
    """Run on a worker: the shard's rows, flat (Dask has no MultiIndex): ``ts``, ``symbol``, the feature
    columns, ``label``, ``forward_return``, ``label_end`` and each baseline's raw signal (``b_<name>``)."""
    from workbench.features.labels import forward_return, training_label
    from workbench.features.pipeline import build_features
    from workbench.models.base import complete_rows
    from workbench.models.baselines import BASELINES, signal
    from workbench.models.splits import label_end
    from workbench.models.training import stack_wide

    panel = task.load_window()
    X = build_features(panel, task.feature_set)
    y = training_label(panel, task.label, task.horizon)
    fwd = stack_wide(panel, {"f": forward_return(panel, task.horizon).to_numpy()})["f"]
    ends = label_end(panel, task.horizon)
    ts = X.index.get_level_values("ts")
    keep = complete_rows(X) & np.asarray((ts >= task.lo) & (ts <= task.hi))
    out = X[keep].astype("float64")
    for b in BASELINES:
        if b != "majority":
            out[f"b_{b}"] = signal(b, X[keep])
    out["label"] = y[keep].to_numpy(dtype="float64")
    out["forward_return"] = fwd[keep].to_numpy(dtype="float64")
    out["label_end"] = pd.DatetimeIndex(ends[keep]).as_unit("ns").asi8
    out = out.reset_index()
    out["symbol"] = out["symbol"].astype(str)
    return out


def block_hashes(source: LakeSource, start: pd.Timestamp, end: pd.Timestamp, symbols: tuple[str, ...]) -> list[str]:
    """Run on a worker: the ``data_hash`` block digests of the bars [start, end] (whole blocks of the
    universe's bars), columns in ``symbols``' order: the pieces of the in-process ``panel_hash``."""
    from workbench.models.data_hash import block_digests

    src = LakeSource(source.root, source.exchange, source.timeframe, symbols, str(start), str(end))
    return block_digests(src.load(), symbols)


def lake_data_hash(
    client: Any, source: LakeSource, stamps: pd.DatetimeIndex, symbols: tuple[str, ...], parts: int
) -> str:
    """The universe's ``data_hash``, the in-process ``panel_hash`` of the same panel, computed by the
    workers in ``parts`` runs of whole blocks (each reads its own bars from the lake)."""
    from workbench.models.data_hash import BLOCK, combine

    n_blocks = -(-len(stamps) // BLOCK)
    runs = time_shards(n_blocks, parts) if n_blocks else []
    windows = [(stamps[a * BLOCK], stamps[min(b * BLOCK, len(stamps)) - 1]) for a, b in runs]
    futures = [client.submit(block_hashes, source, lo, hi, symbols, pure=False) for lo, hi in windows]
    digests = [d for got in client.gather(futures) for d in got]
    return combine(source.exchange, source.timeframe, symbols, len(stamps), digests)


def _empty_shard(task: ShardTask) -> pd.DataFrame:
    return shard_rows(task).iloc[:0]


@dataclass
class DaskFit:
    """What a cluster fit gives back: the final model (fitted on every labelled row) and the evidence."""

    model: Any  # a plain ``lightgbm.LGBMClassifier`` (``DaskLGBMClassifier.to_local()``)
    feature_names: tuple[str, ...]
    folds: pd.DataFrame  # one row per fold: window, sizes, the model's and the baselines' scores
    oos: pd.DataFrame  # (ts, symbol) out-of-sample rows: proba, label, forward_return, fold, baselines
    n_rows: int
    workers: list[str] = field(default_factory=list)
    # What registering it needs (``dask_register.train_result``): the spec and where the rows came from.
    feature_set: str = "v1"
    horizon: int = 1
    label: str = "sign"
    embargo: int = 1
    seed: int = 42
    params: dict = field(default_factory=dict)
    symbols: tuple[str, ...] = ()
    shards: list[tuple[pd.Timestamp, pd.Timestamp]] = field(default_factory=list)  # each shard's own [lo, hi]
    history_bars: int = 0
    data_hash: str = ""
    calibration: str = "none"
    calibrator: Any = None  # the final model's ``Calibrator`` (fitted on its held-out slice)
    leaks: Any = None  # the combined ``leakage.LeakReport`` (None: leak_check="off")
    leak_method: str = "off"  # how the shards' checks were combined (``dask_leaks.combine``)

    def beats_baselines(self, metric: str = "auc") -> bool:
        """Does the model beat every baseline on ``metric`` in every fold? (Plain: an edge, or not.)"""
        cols = [c for c in self.folds.columns if c.endswith(f"_{metric}") and c != metric]
        if self.folds.empty or metric not in self.folds:
            return False
        return bool((self.folds[metric].to_numpy()[:, None] > self.folds[cols].to_numpy()).all())


def _shard_tasks(source: LakeSource, stamps: pd.DatetimeIndex, n_shards: int, history_bars: int, **kw: Any) -> list:
    last, horizon = len(stamps) - 1, int(kw.get("horizon", 1))
    return [
        ShardTask(
            source, stamps[a], stamps[b - 1], stamps[max(a - history_bars, 0)], stamps[min(b - 1 + horizon, last)], **kw
        )
        for a, b in time_shards(len(stamps), n_shards)
    ]


def fit_lgbm_on_cluster(
    client: Any,
    source: LakeSource,
    *,
    feature_set: str = "v1",
    horizon: int = 1,
    label: str = "sign",
    n_folds: int = 3,
    test_fraction: float | str = 0.3,
    embargo: int | None = None,
    n_shards: int | None = None,
    history_bars: int | None = None,
    params: dict | None = None,
    seed: int = 42,
    calibration: str = "platt",
    calib_fraction: float = 0.2,
    leak_check: str = "refuse",
) -> DaskFit:
    """Walk-forward evidence and a final model, all fitted by ``lightgbm.DaskLGBMClassifier`` on ``client``
    and calibrated as in-process training calibrates (``calibration``: platt, isotonic or none).

    ``n_shards``: time shards (default: 2 per worker); ``history_bars``: bars read before each shard
    (default: 4 × the feature set's warm-up)."""
    import dask.dataframe as dd
    from lightgbm import DaskLGBMClassifier

    from workbench.features.pipeline import get_feature_set
    from workbench.models.baselines import BASELINES

    fs = get_feature_set(feature_set)
    emb = int(horizon) if embargo is None else int(embargo)
    stamps = lake_timestamps(source)
    n_workers = max(1, len(client.scheduler_info().get("workers", {})))
    hist = history_bars if history_bars is not None else 4 * fs.warmup
    tasks = _shard_tasks(
        source, stamps, n_shards or 2 * n_workers, hist, feature_set=fs.name, horizon=int(horizon), label=label
    )
    meta = client.submit(_empty_shard, tasks[0], pure=False).result()
    import dask

    # Symbols stay plain objects: dask's automatic string conversion adds a graph step that a worker
    # failed to deserialize under load in CI ("type object 'type' has no attribute 'chunk'").
    with dask.config.set({"dataframe.convert-string": False}):
        frame = dd.from_map(shard_rows, tasks, meta=meta, enforce_metadata=False).persist()  # rows stay on the workers
    features = [c for c in meta.columns if c not in ("ts", "symbol", *_LABEL_COLUMNS) and not c.startswith("b_")]
    baselines = [b for b in BASELINES if b != "majority"]
    # Folds on timestamps (one row per timestamp with its latest label end), as in-process training cuts them.
    # Plain module functions per partition, combined here: dask's groupby and reductions ship
    # classmethods, which fail to unpickle once something in the process (twisted, which kiteconnect
    # imports) has replaced how methods pickle.
    ts_end = frame.map_partitions(_ts_ends, meta=_TS_END_META).compute().groupby("ts")["label_end"].max()
    ts_end = ts_end.sort_index()
    row_ts = pd.DatetimeIndex(ts_end.index)
    ends = pd.DatetimeIndex(pd.to_datetime(ts_end.to_numpy(), utc=True))
    if leak_check not in ("refuse", "warn", "off"):
        raise ValueError(f"leak_check must be 'refuse', 'warn' or 'off', got {leak_check!r}")
    leaks, leak_method = None, "off"
    if leak_check != "off":  # before any fit, on the rows the model will see, shard by shard on the workers
        from workbench.models import dask_leaks, leakage

        cuts = leakage.cut_dates(row_ts)
        parts = client.gather(client.map(dask_leaks.shard_leaks, tasks, cuts=cuts, pure=False))
        leaks, leak_method = dask_leaks.combine(parts)
        leakage.enforce(leaks, leak_check)
    folds = walk_forward_splits(row_ts, pd.Series(ends), n_folds, test_fraction, emb)
    model_params = {"n_estimators": 200, "learning_rate": 0.05, "num_leaves": 31, "verbose": -1, **(params or {})}
    Calibrator(calibration)  # an unknown method fails here, before any fit
    rows, oos = [], []
    cols = ["ts", "symbol", "label", "forward_return", *[f"b_{b}" for b in baselines]]
    for f in folds:
        fit_ts, cal_ts = _calibration_stamps(row_ts, ends, f.train, calibration, calib_fraction, emb)
        train, test = _select(frame, row_ts[f.train]), _select(frame, row_ts[f.test])
        est = DaskLGBMClassifier(random_state=seed, **model_params)
        t0 = time.perf_counter()
        fitting = _select(frame, fit_ts) if calibration != "none" else train
        est.fit(fitting[features], fitting["label"].astype("int64"))
        cal = _calibrators(client, est, frame, cal_ts, features, baselines, calibration)
        fit_s = time.perf_counter() - t0
        proba = est.predict_proba(test[features])[:, 1]
        part = client.compute(test[cols], sync=True)
        sums = train.map_partitions(_label_sums, meta=_SUMS_META).compute()
        n_train = int(sums["n"].sum())
        seen = _select(frame, fit_ts.union(cal_ts)) if calibration != "none" else train
        seen_sums = seen.map_partitions(_label_sums, meta=_SUMS_META).compute()
        majority = float(seen_sums["s"].sum()) / max(int(seen_sums["n"].sum()), 1)  # over fit + calibration rows
        p = client.compute(proba, sync=True)  # in the partitions' order, as test[cols] is
        part = part.set_index(["ts", "symbol"])
        if len(p) != len(part):  # both follow the partitions' order; a mismatch would misalign every score
            raise RuntimeError(f"fold {f.number}: {len(p)} predictions for {len(part)} test rows")
        part["proba"] = cal["model"].transform(np.asarray(p, dtype=float))
        part["majority"] = float(majority)
        part["majority_score"] = float(majority)
        for b in baselines:
            raw = part.pop(f"b_{b}").to_numpy(dtype=float)
            part[b] = cal[b].transform(raw)
            part[f"{b}_score"] = raw
        part["fold"] = f.number
        row: dict[str, Any] = {"fold": f.number, "test_start": f.test_start, "test_end": f.test_end,
                               "n_train": int(n_train), "n_test": len(part),
                               "train_start": row_ts[f.train].min(), "train_end": row_ts[f.train].max(),
                               "train_last": row_ts[f.train].max(), "train_label_end": ends[f.train].max(),
                               "fit_seconds": fit_s}  # fmt: skip
        row.update(fold_scores(part, "proba", horizon))
        for b in BASELINES:
            row.update({f"{b}_{k}": v for k, v in fold_scores(part, b, horizon, rank_col=f"{b}_score").items()})
        rows.append(row)
        oos.append(part)
    everything = np.ones(len(row_ts), dtype=bool)
    fit_ts, cal_ts = _calibration_stamps(row_ts, ends, everything, calibration, calib_fraction, emb)
    final = DaskLGBMClassifier(random_state=seed, **model_params)
    fitting = _select(frame, fit_ts if calibration != "none" else row_ts)
    final.fit(fitting[features], fitting["label"].astype("int64"))
    final_cal = _calibrators(client, final, frame, cal_ts, features, (), calibration)["model"]
    workers = sorted(str(w) for w in client.scheduler_info().get("workers", {}))
    n_rows = int(frame.map_partitions(_label_sums, meta=_SUMS_META).compute()["rows"].sum())
    symbols = tuple(map(str, source.symbols or lake_symbols(source)))
    digest = lake_data_hash(client, source, stamps, symbols, len(tasks))
    return DaskFit(
        final.to_local(), tuple(features), pd.DataFrame(rows), pd.concat(oos), n_rows, workers,
        fs.name, int(horizon), label, emb, seed, model_params, tuple(map(str, symbols)),
        [(t.lo, t.hi) for t in tasks], hist, digest, calibration, final_cal, leaks, leak_method,
    )  # fmt: skip


def _calibration_stamps(
    row_ts: pd.DatetimeIndex, ends: pd.DatetimeIndex, train: np.ndarray, method: str, fraction: float, embargo: int
) -> tuple[pd.DatetimeIndex, pd.DatetimeIndex]:
    """(fit, calibrate) timestamps inside ``train``: in-process training's ``calibration_split`` on the
    per-timestamp rows (each timestamp's latest label end), or every training timestamp and none."""
    from workbench.models.splits import calibration_split

    if method == "none":
        return row_ts[train], row_ts[:0]
    fit, cal = calibration_split(row_ts, pd.Series(ends), np.asarray(train, dtype=bool), fraction, embargo)
    return row_ts[fit], row_ts[cal]


def _calibrators(
    client: Any,
    est: Any,
    frame: Any,
    cal_ts: pd.DatetimeIndex,
    features: list[str],
    baselines: tuple[str, ...] | list[str],
    method: str,
) -> dict[str, Any]:
    """The model's calibrator (``model``) and each baseline's, fitted on the held-out rows at ``cal_ts``:
    only their raw predictions, labels and baseline signals come back from the workers."""

    out = {name: Calibrator(method) for name in ("model", *baselines)}
    if method == "none" or len(cal_ts) == 0:
        return out
    held = _select(frame, cal_ts)
    raw = np.asarray(client.compute(est.predict_proba(held[features])[:, 1], sync=True), dtype=float)
    got = client.compute(held[["label", *[f"b_{b}" for b in baselines]]], sync=True)
    if len(raw) != len(got):
        raise RuntimeError(f"{len(raw)} predictions for {len(got)} calibration rows")
    y = got["label"].to_numpy(dtype=float)
    out["model"].fit(raw, y)
    for b in baselines:
        out[b].fit(got[f"b_{b}"].to_numpy(dtype=float), y)
    return out


def lake_symbols(source: LakeSource) -> list[str]:
    """The universe's symbols: those named, else every symbol of the dataset in the lake."""
    from workbench.data.lake_url import open_lake

    return list(source.symbols) if source.symbols else open_lake(source.root).symbols(source.exchange, source.timeframe)


def _select(frame: Any, stamps: pd.DatetimeIndex) -> Any:
    """The labelled rows of ``frame`` whose timestamp is in ``stamps`` (lazy, partition by partition)."""
    wanted = pd.DatetimeIndex(stamps)

    def pick(df: pd.DataFrame) -> pd.DataFrame:
        return df[np.asarray(df["ts"].isin(wanted)) & df["label"].notna().to_numpy()]

    picked = frame.map_partitions(pick, meta=frame._meta).persist()
    sizes = picked.map_partitions(len).compute()
    # LightGBM's Dask estimator refuses a worker whose partitions are all empty (an early fold's
    # training rows lie in the first shards only): keep the partitions that hold rows.
    keep = [i for i, n in enumerate(sizes) if n > 0]
    if not keep:
        raise ValueError(f"no labelled rows between {wanted.min()} and {wanted.max()}: load more history")
    return picked.partitions[keep]


_TS_END_META = pd.DataFrame({"ts": pd.Series(dtype="datetime64[ns, UTC]"), "label_end": pd.Series(dtype="int64")})
_SUMS_META = pd.DataFrame(
    {"rows": pd.Series(dtype="int64"), "n": pd.Series(dtype="int64"), "s": pd.Series(dtype="float64")}
)


def _ts_ends(df: pd.DataFrame) -> pd.DataFrame:
    """One partition's latest label end per timestamp."""
    out: pd.DataFrame = df.groupby("ts", as_index=False)[["label_end"]].max()
    return out


def _label_sums(df: pd.DataFrame) -> pd.DataFrame:
    """One partition's rows, labelled rows and sum of labels (one row)."""
    lab = df["label"].dropna()
    return pd.DataFrame({"rows": [len(df)], "n": [len(lab)], "s": [float(lab.sum())]})
