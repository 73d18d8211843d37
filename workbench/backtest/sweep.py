"""Backtest sweeps on a Dask cluster: model versions × risk limits × universes, one task per configuration.

Each task carries the settings and a ``SweepConfig`` (a model reference, risk overrides, a symbol
subset), never a panel: the worker loads the model and its walk-forward out-of-sample predictions
from MLflow and the bars from the lake (``backtest_model`` does both), so every worker must see the
home's lake and the MLflow store (a tracking server for a real cluster). The rows come back small;
the caller logs each one to MLflow as a run of the experiment ``sweep`` with the worker that ran it.
"""

from __future__ import annotations

import itertools
import tempfile
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["RANK_BY", "SweepConfig", "grid", "run_config", "run_sweep"]

RANK_BY = "sharpe"  # rows are sorted by it, best first


@dataclass(frozen=True)
class SweepConfig:
    ref: str  # a model alias (champion), version number or name/version
    risk: tuple[tuple[str, float], ...] = ()  # overrides of settings.risk
    universe: tuple[str, ...] | None = None  # a subset of the model's symbols
    label: str = field(default="", compare=False)

    def name(self) -> str:
        risk = ",".join(f"{k}={v:g}" for k, v in self.risk)
        uni = f" on {len(self.universe)} symbols" if self.universe else ""
        return self.label or f"{self.ref} [{risk}]{uni}"


def grid(
    refs: list[str], risk: dict[str, list[float]] | None = None, universes: list[tuple[str, ...] | None] | None = None
) -> list[SweepConfig]:
    """Every combination of model references, risk values (name → values) and universes."""
    risk = risk or {}
    names = sorted(risk)
    combos = list(itertools.product(*(risk[n] for n in names))) or [()]
    return [
        SweepConfig(str(ref), tuple(zip(names, map(float, values), strict=True)), uni)
        for ref in refs
        for values in combos
        for uni in (universes or [None])
    ]


def run_config(settings, config: SweepConfig) -> dict:
    """Run on a worker: one out-of-sample backtest (``backtest_model``), its figures as a small row."""
    from workbench.backtest.evaluate import BUY_AND_HOLD, backtest_model
    from workbench.models.distributed import where

    risk = settings.risk.model_copy(update=dict(config.risk))
    type(settings.risk).model_validate(risk.model_dump())  # a bad override is named here, not mid-backtest
    cfg_settings = settings.model_copy(update={"risk": risk})
    with tempfile.TemporaryDirectory() as tmp:
        rep = backtest_model(
            cfg_settings,
            config.ref,
            universe=list(config.universe) if config.universe else None,
            out_dir=tmp,
            log=False,
        )
    row = {
        "config": config.name(),
        "model": rep.model,
        "run_id": rep.run_id,
        **{f"risk.{k}": v for k, v in config.risk},
        "n_symbols": len(config.universe) if config.universe else np.nan,
        **{k: float(v) for k, v in rep.metrics.items() if isinstance(v, (int, float, np.floating, np.integer))},
        "beats_buy_hold": float(bool(rep.beats.get(BUY_AND_HOLD, False))),
        "verdict": rep.verdict,
        "worker": where(),
    }
    return row


def _log(settings, rows: list[dict], configs: list[SweepConfig], scheduler: str, experiment: str) -> list[str]:
    """One MLflow run per configuration (params: the configuration; metrics: its figures; tags: lineage)."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    client = MlflowClient(tracking_uri=settings.tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    root = settings.artifact_root
    exp_id = (
        exp.experiment_id
        if exp is not None
        else client.create_experiment(experiment, artifact_location=f"{root}/{experiment}" if root else None)
    )
    sweep_id = pd.Timestamp.now(tz="UTC").strftime("%Y%m%dT%H%M%S%f")
    now = int(pd.Timestamp.now(tz="UTC").timestamp() * 1000)
    ids = []
    for row, cfg in zip(rows, configs, strict=True):
        run = client.create_run(exp_id, run_name=row["config"][:250])
        metrics = [
            Metric(k, float(v), now, 0)
            for k, v in row.items()
            if isinstance(v, float) and np.isfinite(v) and k not in ("n_symbols",)
        ]
        params = [
            Param("model", row["model"]),
            Param("model_ref", cfg.ref),
            Param("universe", (",".join(cfg.universe) if cfg.universe else "model's")[:6000]),
            *(Param(f"risk.{k}", str(v)) for k, v in cfg.risk),
        ]
        tags = [
            RunTag("workbench.sweep", sweep_id),
            RunTag("workbench.model_run", row["run_id"]),
            RunTag("dask.worker", row["worker"]),
            RunTag("dask.scheduler", scheduler),
            RunTag("workbench.verdict", row["verdict"][:5000]),
        ]
        client.log_batch(run.info.run_id, metrics=metrics, params=params, tags=tags)
        client.set_terminated(run.info.run_id)
        ids.append(run.info.run_id)
    return ids


def run_sweep(client, settings, configs: list[SweepConfig], experiment: str = "sweep") -> pd.DataFrame:
    """Backtest every configuration on the cluster; log each to MLflow; the table, best ``RANK_BY`` first."""
    if not configs:
        raise ValueError("an empty sweep: give at least one model and one configuration")
    futures = client.map(run_config, [settings] * len(configs), configs, pure=False)
    rows = client.gather(futures)
    scheduler = str(getattr(client.scheduler, "address", "") or "")
    ids = _log(settings, rows, configs, scheduler, experiment)
    table = pd.DataFrame([{**r, "mlflow_run": i} for r, i in zip(rows, ids, strict=True)])
    return table.sort_values(RANK_BY, ascending=False, na_position="last", kind="stable").reset_index(drop=True)
