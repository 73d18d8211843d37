"""A RandomForest whose trees are built on a Dask cluster: joblib's Dask backend, where scikit-learn
parallelises.

Why this shape: a forest's trees are independent, each seeded up front from ``random_state``, and
scikit-learn builds them through joblib. Under ``joblib.parallel_config(backend="dask")`` those
tree-building batches become Dask tasks spread over every worker thread of the cluster (the training
matrix is scattered to the workers once per fit, by joblib), and the fitted trees come back to this
process. Everything else is in-process training unchanged — the same purged, embargoed walk-forward,
the same leak checks on the same matrix, the same Platt calibration on the same held-out slice, the
same evidence — so the registered model is the in-process ``rf`` with the same ``random_state`` and
``n_jobs``: the same trees, the same predictions (the test compares them exactly).

The panel is read here (not on the workers): this is the case of a big forest on a panel that fits
in memory, where the trees are the cost. ``models.distributed`` is the case of many small fits.
"""

from __future__ import annotations

from typing import Any

from workbench.data.panel import Panel
from workbench.models import training

__all__ = ["CLUSTER_JOBS", "train_rf_on_cluster"]

CLUSTER_JOBS = -1  # the forest's n_jobs on the cluster: as many batches as the cluster has worker threads


def train_rf_on_cluster(
    client: Any, panel: Panel, *, params: dict | None = None, lineage: dict | None = None, **options: Any
) -> training.TrainResult:
    """``training.train(panel, "rf", validation="walk_forward", **options)`` with every forest's trees
    built on ``client``'s cluster; ``params`` override the forest's (``n_jobs`` is the cluster's)."""
    from joblib import parallel_config  # type: ignore[import-untyped]

    info = client.scheduler_info().get("workers", {})
    threads = sum(int(w.get("nthreads", 1)) for w in info.values())
    used = {**(params or {}), "n_jobs": CLUSTER_JOBS}
    options.setdefault("validation", "walk_forward")
    with parallel_config(backend="dask"):
        result = training.train(panel, "rf", params=used, lineage=lineage, **options)
    result.lineage.update(
        {
            "fit": "sklearn RandomForestClassifier, trees built on the Dask cluster (joblib's Dask backend)",
            "dask_scheduler": str(getattr(client.scheduler, "address", "") or ""),
            "dask_workers": ", ".join(sorted(map(str, info))),
            "dask_threads": str(threads),
        }
    )
    return result
