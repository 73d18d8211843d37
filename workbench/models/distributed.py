"""Walk-forward folds × model kinds × universes fanned out on ``dask.distributed``.

One code path for a laptop and a team's cluster: ``client_for`` gives a ``LocalCluster`` (worker
*processes*, one thread each) unless a scheduler address is given (``--scheduler tcp://…`` or
``[research] scheduler``), and ``map_folds`` submits the same small tasks to either.

A task carries where the data is (a ``LakeSource``: lake root, exchange, timeframe, symbols, window),
never the data: each worker reads its panel from the lake itself (a path every worker sees: a shared
disk or mount, or an object-store URL such as ``s3://bucket/prefix``: ``[research] lake_url``), builds
features and labels once per panel (cached in the worker process) and fits one
fold of one model kind. What comes back is small: the fold's out-of-sample rows, its row of the fold
table, and — for the last fold only — the fitted model (the one registered, as in-process).

Threads: a worker runs as many tasks at once as it has threads, so each fit runs on ``threads``
(default 1) — LightGBM's and the forest's ``n_jobs``, TensorFlow's intra/inter-op pools and the
BLAS/OpenMP pools — and a worker's fits together use its own thread count, never more. (Left at the
in-process ``n_jobs=2``, two 1-thread workers ran 4 OpenMP threads on 2 cores and LightGBM's fits
took 10× longer.) The thread count is in each task's params, so it is registered with the model.

The assembled results are the very ``TrainResult`` the in-process ``training.compare`` returns with the
same params, thread count included (same seeds, same folds, same numbers: LightGBM's histogram sums
depend on its thread count, so in-process ``n_jobs=2`` differs from a worker's 1 in the last bits);
their ``lineage`` records the scheduler and which worker ran each fold.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from workbench.data.calendars import Calendars
from workbench.data.panel import Panel
from workbench.errors import ConfigError
from workbench.models import training

__all__ = [
    "THREAD_PARAMS",
    "FoldTask",
    "LakeSource",
    "client_for",
    "fold_tasks",
    "map_folds",
    "run_fold_task",
    "where",
    "with_threads",
]

# The parameter that sets a model kind's thread count (the LSTM's are TensorFlow's pools: ``_tf_threads``).
THREAD_PARAMS: dict[str, str] = {"lgbm": "n_jobs", "lgbm_rank": "n_jobs", "rf": "n_jobs"}


@dataclass(frozen=True)
class LakeSource:
    """Where a panel is: read by whichever process needs it (``open_lake(root).load_panel(...)``).

    ``root``: a path every worker sees (a shared disk) or an object-store URL (``s3://bucket/prefix``)."""

    root: str
    exchange: str
    timeframe: str
    symbols: tuple[str, ...] | None = None
    start: str | None = None
    end: str | None = None
    calendars: Calendars | None = None  # the home's holidays for the time features (None: the recorded sessions)

    def load(self) -> Panel:
        from workbench.data.lake_url import open_lake

        syms = list(self.symbols) if self.symbols else None
        panel = open_lake(self.root).load_panel(self.exchange, self.timeframe, syms, self.start, self.end)
        return panel.with_calendars(self.calendars)

    def lineage(self) -> dict:
        from workbench.data.lake_url import open_lake

        syms = list(self.symbols) if self.symbols else None
        return training.panel_lineage(open_lake(self.root), self.exchange, self.timeframe, syms, self.start, self.end)


@dataclass(frozen=True)
class FoldTask:
    """One fold of one model kind on one universe: everything a worker needs, nothing heavy."""

    source: LakeSource
    kind: str
    fold: int  # position in the walk-forward (0 = earliest test window)
    keep_model: bool  # only the last fold's model is sent back
    feature_set: str = "v1"
    horizon: int = 1
    label: str = "sign"
    leak_check: str = "refuse"
    validation: str = "walk_forward"
    n_folds: int = 3
    test_fraction: float | str = 0.3
    embargo: int = 1
    calibration: str = "platt"
    calib_fraction: float = 0.2
    seed: int = 42
    params: dict | None = field(default=None, hash=False)
    threads: int = 1  # threads this fit may use (its kind's n_jobs is already set to it in params)


def with_threads(kind: str, params: dict | None, threads: int) -> dict | None:
    """``params`` with ``kind``'s thread count set to ``threads`` (unchanged for kinds without one)."""
    key = THREAD_PARAMS.get(kind)
    return {**(params or {}), key: int(threads)} if key else params


@functools.lru_cache(maxsize=1)
def _tf_threads(threads: int) -> str:
    """Size TensorFlow's thread pools in this process, before its first op (later, TF refuses: say so)."""
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # already initialised in this process: report what it runs with
        pass
    intra = tf.config.threading.get_intra_op_parallelism_threads()
    inter = tf.config.threading.get_inter_op_parallelism_threads()
    return f"tensorflow intra {intra}, inter {inter}"


def where() -> str:
    """The address of the Dask worker running this, or ``local`` outside one."""
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return "local"


@functools.lru_cache(maxsize=2)
def _prepared(source: LakeSource, feature_set: str, horizon: int, label: str, leak_check: str):
    """Features, labels and leak checks of a panel, once per worker process for all the folds it runs."""
    return training._prepare(source.load(), feature_set, horizon, label, leak_check)


def run_fold_task(task: FoldTask) -> dict:
    """Run on a worker: read the panel from the lake, fit the fold, return the small parts."""
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    prep = _prepared(task.source, task.feature_set, task.horizon, task.label, task.leak_check)
    folds = training._folds_for(prep, task.validation, task.n_folds, task.test_fraction, task.embargo)
    if task.kind == "lstm":
        _tf_threads(task.threads)
    with threadpool_limits(task.threads):  # BLAS/OpenMP pools (numpy, scikit-learn) on the fit's threads
        part, row, model = training._fit_fold(
            prep,
            task.kind,
            folds[task.fold],
            task.params,
            task.seed,
            task.calibration,
            task.calib_fraction,
            task.embargo,
        )
    return {
        "part": part,
        "row": row,
        "model": model if task.keep_model else None,
        "meta": training._meta(prep) if task.keep_model else None,
        "worker": where(),
    }


def fold_tasks(
    source: LakeSource,
    kinds: tuple[str, ...],
    *,
    feature_set: str = "v1",
    horizon: int = 1,
    label: str = "sign",
    validation: str = "walk_forward",
    n_folds: int = 3,
    test_fraction: float | str = 0.3,
    embargo: int | None = None,
    calibration: str = "platt",
    calib_fraction: float = 0.2,
    seed: int = 42,
    params: dict | None = None,
    leak_check: str = "refuse",
    threads: int = 1,
) -> list[FoldTask]:
    """The tasks of a walk-forward of each of ``kinds`` (``params`` maps kind → params), as ``compare`` runs it.

    ``threads``: per fit (one per task slot of a worker, by default); set in each kind's params."""
    bad = [k for k in kinds if k not in training.KINDS or k == "ensemble"]
    if bad:
        raise ValueError(
            f"unknown or non-distributable model kinds {bad}; choose from "
            f"{[k for k in training.KINDS if k != 'ensemble']}"
        )
    emb = training._check_embargo(embargo, horizon)
    n = 1 if validation == "holdout" else int(n_folds)
    return [
        FoldTask(
            source,
            k,
            i,
            i == n - 1,
            feature_set,
            int(horizon),
            label,
            leak_check,
            validation,
            n,
            test_fraction,
            emb,
            calibration,
            calib_fraction,
            seed,
            with_threads(k, (params or {}).get(k), threads),
            int(threads),
        )
        for k in kinds
        for i in range(n)
    ]


@contextmanager
def client_for(settings=None, scheduler: str | None = None, workers: int | None = None) -> Iterator:
    """A Dask client: to ``scheduler`` (or ``settings.research.scheduler``) if given, else a LocalCluster
    of ``workers`` (or ``settings.research.workers``) processes with one thread each."""
    from distributed import Client, LocalCluster

    research = getattr(settings, "research", None)
    address = scheduler or (research.scheduler if research is not None else None)
    if address:
        try:
            client = Client(address, timeout="15s")
        except (OSError, TimeoutError) as e:
            raise ConfigError(
                f"cannot reach the Dask scheduler at {address} ({e}): start it with `dask scheduler` "
                f"and `dask worker {address}`, or drop --scheduler / [research] scheduler to run "
                f"on a local cluster"
            ) from None
        with client:
            yield client
        return
    n = int(workers or (research.workers if research is not None else 2))
    with (
        LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        yield client


def map_folds(
    client,
    sources: LakeSource | list[LakeSource],
    kinds: tuple[str, ...] = ("lgbm", "rf", "lstm"),
    lineage: dict | None = None,
    **options,
) -> list[dict[str, training.TrainResult]]:
    """Every fold of every kind on every universe, submitted at once; per source, kind → ``TrainResult``.

    ``options`` are ``fold_tasks``'s (those of ``training.compare``). Each result's lineage adds the
    scheduler's address and, per fold, the worker that fitted it."""
    srcs = [sources] if isinstance(sources, LakeSource) else list(sources)
    per_source = [fold_tasks(s, tuple(kinds), **options) for s in srcs]
    flat = [t for ts in per_source for t in ts]
    futures = client.map(run_fold_task, flat, pure=False)
    outs = iter(client.gather(futures))
    address = str(getattr(client.scheduler, "address", "") or "")
    results = []
    for src, tasks in zip(srcs, per_source, strict=True):
        got: dict[str, list[tuple[FoldTask, dict]]] = {}
        for t in tasks:
            got.setdefault(t.kind, []).append((t, next(outs)))
        by_kind = {}
        for kind, pairs in got.items():
            last = next(o for t, o in pairs if t.keep_model)
            t0 = pairs[0][0]
            ran = "; ".join(f"fold {t.fold}@{o['worker']}" for t, o in pairs)
            lin = {
                **(lineage if lineage is not None else src.lineage()),
                "dask_scheduler": address,
                "dask_tasks": ran,
                "fit_threads": str(t0.threads),
            }
            fitted = [(o["part"], o["row"], o["model"]) for _, o in pairs]
            by_kind[kind] = training._assemble(
                kind,
                last["meta"],
                fitted,
                t0.params,
                t0.seed,
                t0.validation,
                t0.test_fraction,
                t0.embargo,
                t0.calibration,
                lin,
            )
        results.append(by_kind)
    return results
