"""A cluster-fitted LightGBM (``dask_lgbm.fit_lgbm_on_cluster``) as a ``TrainResult``, to register and serve.

Why a ``TrainResult``: the registry, promotion, the Models page, backtests and ``live run --model``
all take one; turning the cluster fit into the same object gives it the same evidence (per-fold and
per-date out-of-sample scores beside the baselines, reliability, the verdict) and the same serving
path (a pickled ``CalibratedModel`` inside an MLflow pyfunc) as an in-process ``lgbm``.

Calibrated as in-process training calibrates (``dask_lgbm``: a held-out, purged slice of each fold's
training timestamps; the baselines calibrated on the same rows), the data hash is in-process
``panel_hash``'s (computed by the workers block by block), and the leak checks run per time shard on
the workers and are combined (``dask_leaks``). The lineage names the scheduler, the workers, the
time shards and the fold windows.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from workbench.models import training
from workbench.models.dask_lgbm import DaskFit, fit_lgbm_on_cluster
from workbench.models.distributed import LakeSource

__all__ = ["CLUSTER_PARAMS", "fit_on_cluster", "train_result"]

# In-process lgbm's parameters (``lgbm.DEFAULT_PARAMS``) but threads: a Dask worker's thread count
# decides those, and ``deterministic``/``force_row_wise`` are single-machine settings.
_LOCAL_ONLY = ("n_jobs", "deterministic", "force_row_wise")


def _cluster_params() -> dict:
    from workbench.models.lgbm import DEFAULT_PARAMS

    return {k: v for k, v in DEFAULT_PARAMS.items() if k not in _LOCAL_ONLY}


CLUSTER_PARAMS: dict = _cluster_params()


def _windows(folds: pd.DataFrame) -> str:
    def day(v: Any) -> str:
        return str(pd.Timestamp(v).date())

    return "; ".join(
        f"fold {r['fold']}: train {day(r['train_start'])}…{day(r['train_end'])}, "
        f"test {day(r['test_start'])}…{day(r['test_end'])}"
        for r in folds.to_dict("records")
    )


def train_result(
    fit: DaskFit,
    source: LakeSource,
    *,
    test_fraction: float | str = 0.3,
    scheduler: str = "",
    lineage: dict | None = None,
) -> training.TrainResult:
    """``fit`` as the ``TrainResult`` in-process ``train(kind="lgbm")`` returns (see the module's notes)."""
    from workbench.models.calibration import CalibratedModel, Calibrator
    from workbench.models.lgbm import LightGBMModel

    base = LightGBMModel(seed=fit.seed)
    base.params = dict(fit.params)  # what the cluster fitted with, not the local defaults
    base.feature_names = tuple(fit.feature_names)
    base._clf = fit.model
    model = CalibratedModel(base, fit.calibrator if fit.calibrator is not None else Calibrator("none"))
    stamps = pd.DatetimeIndex(fit.oos.index.get_level_values("ts"))
    first = min(lo for lo, _ in fit.shards) if fit.shards else stamps.min()
    last = max(hi for _, hi in fit.shards) if fit.shards else stamps.max()
    universe = {
        "exchange": source.exchange,
        "timeframe": source.timeframe,
        "symbols": list(fit.symbols),
        "start": pd.Timestamp(first).isoformat(),
        "end": pd.Timestamp(last).isoformat(),
    }
    meta = training._Meta(
        fit.feature_set,
        fit.horizon,
        fit.label,
        fit.data_hash,
        pd.Index(list(fit.symbols), name="symbol"),
        universe,
        fit.leaks,  # per time shard on the workers, combined (``dask_leaks``); None with leak_check="off"
    )
    cols = [c for c in fit.oos.columns if c != "majority_score"] + ["majority_score"]
    rows = fit.folds.to_dict("records")
    lin = {
        **(lineage if lineage is not None else source.lineage()),
        "fit": "lightgbm.DaskLGBMClassifier (one model across the cluster)",
        "dask_scheduler": scheduler,
        "dask_workers": ", ".join(fit.workers),
        "data_range": f"{universe['start']} … {universe['end']}",
        "rows": str(fit.n_rows),
        "time_shards": "; ".join(f"{pd.Timestamp(a).date()}…{pd.Timestamp(b).date()}" for a, b in fit.shards),
        "history_bars": str(fit.history_bars),
        "fold_windows": _windows(fit.folds),
        "leak_check": fit.leak_method if fit.leaks is not None else "off: no leak check ran",
        "leak_report": str(fit.leaks) if fit.leaks is not None else "none: leak_check='off'",
    }
    return training._result(
        "lgbm",
        meta,
        model,
        fit.oos[cols].sort_index(),
        rows,
        "walk_forward",
        test_fraction,
        fit.embargo,
        fit.calibration,
        {**fit.params, "seed": fit.seed, "label": fit.label},
        lin,
    )


def fit_on_cluster(
    client: Any,
    source: LakeSource,
    *,
    feature_set: str = "v1",
    horizon: int = 1,
    label: str = "sign",
    n_folds: int = 3,
    test_fraction: float | str = 0.3,
    embargo: int | None = None,
    params: dict | None = None,
    seed: int = 42,
    calibration: str = "platt",
    calib_fraction: float = 0.2,
    leak_check: str = "refuse",
) -> training.TrainResult:
    """Fit on ``client``'s cluster with in-process lgbm's parameters (``params`` override) and return the result."""
    emb = training._check_embargo(embargo, horizon)
    fit = fit_lgbm_on_cluster(
        client,
        source,
        feature_set=feature_set,
        horizon=horizon,
        label=label,
        n_folds=n_folds,
        test_fraction=test_fraction,
        embargo=emb,
        params={**CLUSTER_PARAMS, **(params or {})},
        seed=seed,
        calibration=calibration,
        calib_fraction=calib_fraction,
        leak_check=leak_check,
    )
    address = str(getattr(client.scheduler, "address", "") or "")
    return train_result(fit, source, test_fraction=test_fraction, scheduler=address)
