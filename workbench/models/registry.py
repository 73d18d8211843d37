"""The MLflow registry, wrapped in one module so nothing else calls MLflow (qlib's rule).

Why a wrapper: the dashboard, the live loop, the CLI and the notebooks all need "the champion" and
must agree on what a registered model carries (kind, feature set, horizon, strength reference,
universe, split). Everything goes through an ``MlflowClient`` bound to the workbench's own tracking
store: no global MLflow state is touched, so several workbenches can live in one process.

Each registered version is a standard MLflow pyfunc (``mlflow.pyfunc.load_model`` works on it, with
a model signature naming the input features) whose artifacts are a pickled fitted ``Model`` — with
its preprocessing and calibrator inside — ``meta.json`` (kind, feature set name and version, horizon,
split, metrics, data hash and lineage) and ``strength_reference.npy``. Each run also carries the
fold table, the feature importance, the reliability curve (table and plot) and the lake query. ``load``
reads those three files directly — the same function the pyfunc's ``load_context`` uses — which
takes milliseconds, so the live loop can load once at start-up.
"""

from __future__ import annotations

import json
import logging
import math
import pickle
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

import numpy as np
import pandas as pd

from workbench.errors import ModelError, NoModelError

if TYPE_CHECKING:
    from workbench.config import Settings
    from workbench.models.base import Model

__all__ = [
    "ModelRef",
    "LoadedModel",
    "Registry",
    "WorkbenchPyfunc",
    "CHAMPION",
    "CHALLENGER",
    "reliability_figure",
    "OosPredictions",
]

CHAMPION = "champion"
CHALLENGER = "challenger"
_MODEL_FILE, _META_FILE, _STRENGTH_FILE = "model.pkl", "meta.json", "strength_reference.npy"
# The walk-forward out-of-sample predictions, stored with each run so a backtest trades only bars
# the model never trained on (and the momentum baseline's on the very same folds).
_OOS_DIR, _OOS_PROBA, _OOS_FOLD, _OOS_BASELINE = (
    "oos",
    "oos_proba.parquet",
    "oos_fold.parquet",
    "baseline_proba.parquet",
)


@dataclass(frozen=True)
class ModelRef:
    name: str
    version: int
    run_id: str
    alias: str | None = None

    def __str__(self) -> str:
        return f"{self.name}/{self.version}" + (f" ({self.alias})" if self.alias else "")


@dataclass(frozen=True)
class OosPredictions:
    """A model's walk-forward out-of-sample predictions: the only bars a backtest of it may trade."""

    proba: pd.DataFrame  # (time × symbol) P(up), NaN where the model said nothing
    fold: pd.Series  # time → walk-forward fold number of that bar's prediction
    baseline: pd.DataFrame | None = None  # (time × symbol) P(up) of the momentum baseline, same folds

    def windows(self) -> pd.DataFrame:
        """One row per fold: fold, start, end, bars."""
        ts = pd.Series(self.fold.index, index=self.fold.index)
        g = ts.groupby(self.fold.to_numpy())
        out = pd.DataFrame({"start": g.min(), "end": g.max(), "bars": g.size()})
        out.index.name = "fold"
        return out.reset_index()


def _coverage_params(cov) -> dict[str, str]:
    """Run params: symbols tested per fold ("0: 7/7, 1: 1/7"), those never tested, and the warnings."""
    if cov is None:
        return {}
    return {
        "coverage.symbols_tested_per_fold": cov.per_fold_text(),
        "coverage.never_tested": ",".join(cov.never_tested) or "-",
        "coverage.warnings": " | ".join(cov.warnings) or "-",
    }


class LoadedModel:
    """A registered model ready to predict, with the metadata serving needs."""

    def __init__(self, ref: ModelRef, model, meta: dict, strength_reference: np.ndarray):
        self.ref = ref
        self.model = model
        self.meta = meta
        self.kind: str = meta["kind"]
        self.feature_set: str = meta["feature_set"]
        self.feature_names: tuple[str, ...] = tuple(meta["feature_names"])
        self.horizon: int = int(meta["horizon"])
        self.universe: dict = meta["universe"]
        self.split: dict = meta["split"]
        self.metrics: dict = meta.get("metrics", {})
        self.label: str = meta.get("label", "sign")  # what P(·) is the probability of (features.labels.LABELS)
        # Universe coverage of the folds (models.coverage.Coverage.to_dict); {} for models registered before it.
        self.coverage: dict = meta.get("coverage") or {}
        self.strength_reference = strength_reference

    def predict_proba(self, features_long: pd.DataFrame) -> np.ndarray:
        return self.model.predict_proba(features_long)

    @property
    def lookback(self) -> int:
        return int(getattr(self.model, "lookback", 1))

    def describe(self) -> str:
        m = self.metrics
        oos = (
            f"out-of-sample AUC {m['auc']:.3f}, accuracy {m['accuracy']:.3f}, log loss {m['log_loss']:.4f}"
            if {"auc", "accuracy", "log_loss"} <= set(m)
            else "no out-of-sample metrics recorded"
        )
        if "ic_mean" in m:
            oos += f", mean daily rank IC {m['ic_mean']:+.4f} (t {m.get('ic_t', float('nan')):.1f})"
        verdict = ""
        if "beats_baselines" in m:
            verdict = "; beats the baselines" if m["beats_baselines"] else "; does NOT beat the baselines (no edge)"
        return (
            f"{self.kind} model {self.ref}; label {self.label}, features {self.feature_set}, horizon {self.horizon}; "
            f"{oos}{verdict}"
        )

    def __repr__(self) -> str:
        return f"LoadedModel({self.ref}, kind={self.kind}, feature_set={self.feature_set}, horizon={self.horizon})"


def _read_bundle(directory: Path) -> tuple[Model, dict, np.ndarray]:
    with open(directory / _MODEL_FILE, "rb") as fh:
        model = pickle.load(fh)
    meta = json.loads((directory / _META_FILE).read_text())
    strength = np.load(directory / _STRENGTH_FILE)
    return model, meta, strength


import mlflow.pyfunc as _pyfunc  # noqa: E402  (the wrapper must be importable to unpickle by reference)


class WorkbenchPyfunc(_pyfunc.PythonModel):
    """MLflow pyfunc face of a workbench model: ``predict(features_long) → P(up)``."""

    def load_context(self, context) -> None:
        model, meta, strength = _read_bundle(Path(context.artifacts["model"]).parent)
        self._model, self.meta, self.strength_reference = model, meta, strength

    # The DataFrame hint tells MLflow to pass the frame through untouched (no schema coercion).
    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> np.ndarray:
        return self._model.predict_proba(model_input)


def _feature_set_version(name: str) -> int | None:
    from workbench.features.pipeline import FEATURE_SETS

    fs = FEATURE_SETS.get(name)
    return None if fs is None else int(fs.version)


def _kinds_inside(model) -> set[str]:
    kinds = {str(getattr(model, "kind", ""))}
    for m in getattr(model, "members", []) or []:
        kinds |= _kinds_inside(m)
    return kinds


def _installed(dist: str) -> bool:
    from importlib.metadata import PackageNotFoundError, version

    try:
        version(dist)
        return True
    except PackageNotFoundError:
        return False


def reliability_figure(table: pd.DataFrame, title: str = "reliability"):
    """Reliability curve: mean predicted probability vs observed frequency per bin (diagonal = calibrated)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.5, 4))
    ax = fig.subplots()
    t = table[table["n"] > 0]
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfectly calibrated")
    ax.plot(t["mean_predicted"], t["observed"], marker="o", label="model")
    lo = float(min(t["mean_predicted"].min(), t["observed"].min(), 0.4)) if len(t) else 0.0
    hi = float(max(t["mean_predicted"].max(), t["observed"].max(), 0.6)) if len(t) else 1.0
    ax.set(
        xlim=(lo - 0.02, hi + 0.02),
        ylim=(lo - 0.02, hi + 0.02),
        xlabel="predicted P(up)",
        ylabel="observed frequency of up",
        title=title,
    )
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig


def _clean_metrics(metrics: dict) -> dict[str, float]:
    out = {}
    for k, v in metrics.items():
        if isinstance(v, (bool, np.bool_)):
            v = float(v)
        if isinstance(v, (int, float, np.integer, np.floating)) and math.isfinite(float(v)):
            out[str(k)] = float(v)
    return out


class Registry:
    """Log, register, promote and load models in the workbench's MLflow store."""

    def __init__(self, settings: Settings):
        from mlflow import MlflowClient

        self.settings = settings
        self.uri: str = settings.tracking_uri
        self.name: str = settings.model_name
        if self.uri.startswith("sqlite:///"):
            Path(self.uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)

    # -- writing -------------------------------------------------------------------------------

    def _experiment_id(self, name: str) -> str:
        exp = self.client.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        root = self.settings.artifact_root
        return self.client.create_experiment(name, artifact_location=f"{root}/{name}" if root else None)

    def register(self, result, alias: str | None = None) -> ModelRef:
        """Log ``result`` as one run and register it; alias defaults to champion if none exists, else challenger."""
        from mlflow.entities import Metric, Param

        uni = result.universe
        experiment = f"{uni['exchange']}-{uni['timeframe']}"
        run = self.client.create_run(
            self._experiment_id(experiment),
            run_name=f"{result.kind}-{result.feature_set}-h{result.horizon}",
            tags={
                "workbench.kind": result.kind,
                "workbench.feature_set": result.feature_set,
                **(
                    {"workbench.verdict": result.verdict()}
                    if hasattr(result, "verdict") and "momentum_auc" in result.metrics
                    else {}
                ),
            },
        )
        run_id = run.info.run_id
        try:
            params = {f"model.{k}": v for k, v in result.params.items()}
            params.update(
                kind=result.kind,
                feature_set=result.feature_set,
                horizon=result.horizon,
                label=getattr(result, "label", "sign"),
                data_hash=result.data_hash,
                features=",".join(result.model.feature_names),
                n_symbols=len(uni["symbols"]),
                validation=getattr(result, "validation", "holdout"),
                **{f"split.{k}": v for k, v in result.split.items()},
                **{f"lineage.{k}": v for k, v in (getattr(result, "lineage", None) or {}).items()},
                **_coverage_params(getattr(result, "coverage", None)),
            )
            now = int(pd.Timestamp.now(tz="UTC").timestamp() * 1000)
            self.client.log_batch(
                run_id,
                metrics=[Metric(k, v, now, 0) for k, v in _clean_metrics(result.metrics).items()],
                params=[Param(k, str(v)[:6000]) for k, v in params.items()],
            )
            self.client.log_dict(run_id, uni, "universe.json")
            self._log_reports(run_id, result)
            self._log_oos(run_id, result)
            with tempfile.TemporaryDirectory() as tmp:
                self._save_pyfunc(result, Path(tmp))
                self.client.log_artifacts(run_id, str(Path(tmp) / "model"), artifact_path="model")
            self.client.set_terminated(run_id)
        except Exception:
            self.client.set_terminated(run_id, status="FAILED")
            raise

        if not self.client.search_registered_models(filter_string=f"name='{self.name}'"):
            self.client.create_registered_model(self.name, description="workbench direction models")
        mv = self.client.create_model_version(
            self.name,
            source=f"{run.info.artifact_uri}/model",
            run_id=run_id,
            tags={"kind": result.kind, "feature_set": result.feature_set},
        )
        if alias is None:
            alias = CHALLENGER if self.has(CHAMPION) else CHAMPION
        self.client.set_registered_model_alias(self.name, alias, mv.version)
        return ModelRef(self.name, int(mv.version), run_id, alias)

    def _log_reports(self, run_id: str, result) -> None:
        """Fold table, importance, reliability curve (table + plot) and lineage as run artifacts."""
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "evaluation"
            out.mkdir()
            folds = getattr(result, "folds", None)
            if isinstance(folds, pd.DataFrame) and not folds.empty:
                folds.to_csv(out / "folds.csv", index=False)
            imp = getattr(result, "importance", None)
            if isinstance(imp, pd.Series) and not imp.empty:
                imp.rename("importance").to_csv(out / "importance.csv", index_label="feature")
            cov = getattr(result, "coverage", None)
            if cov is not None:
                cov.folds.to_csv(out / "coverage_folds.csv", index=False)
                cov.symbols.to_csv(out / "coverage_symbols.csv")
            per_fold = getattr(result, "fold_reliability", None)
            if isinstance(per_fold, pd.DataFrame) and not per_fold.empty:
                per_fold.to_csv(out / "fold_reliability.csv", index=False)
            rel = getattr(result, "reliability", None)
            if isinstance(rel, pd.DataFrame) and not rel.empty:
                rel.to_csv(out / "reliability.csv", index=False)
                fig = reliability_figure(rel, f"{result.kind}: reliability (out of sample)")
                fig.savefig(out / "calibration.png", dpi=80)
                import matplotlib.pyplot as plt

                plt.close(fig)
            lineage = getattr(result, "lineage", None)
            (out / "lineage.json").write_text(json.dumps({"data_hash": result.data_hash, **(lineage or {})}, indent=1))
            self.client.log_artifacts(run_id, str(out), artifact_path="evaluation")

    def _log_oos(self, run_id: str, result) -> None:
        """``oos/``: the out-of-sample P(up) (time × symbol), each bar's fold, and the momentum baseline's P(up)."""
        proba = getattr(result, "oos_proba", None)
        if not isinstance(proba, pd.DataFrame) or proba.empty:
            return
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / _OOS_DIR
            out.mkdir()
            proba.astype(float).to_parquet(out / _OOS_PROBA)
            fold = getattr(result, "oos_fold", None)
            if not isinstance(fold, pd.Series) or fold.empty:
                fold = pd.Series(0, index=proba.index)
            fold.astype(int).rename("fold").to_frame().to_parquet(out / _OOS_FOLD)
            oos = getattr(result, "oos", None)
            if isinstance(oos, pd.DataFrame) and "momentum" in oos.columns:
                base = oos["momentum"].unstack("symbol").reindex(index=proba.index, columns=proba.columns)
                base.astype(float).to_parquet(out / _OOS_BASELINE)
            self.client.log_artifacts(run_id, str(out), artifact_path=_OOS_DIR)

    def _save_pyfunc(self, result, tmp: Path) -> None:
        import mlflow.pyfunc

        bundle = tmp / "bundle"
        bundle.mkdir()
        with open(bundle / _MODEL_FILE, "wb") as fh:
            pickle.dump(result.model, fh, protocol=pickle.HIGHEST_PROTOCOL)
        meta = {
            "kind": result.kind,
            "feature_set": result.feature_set,
            "feature_names": list(result.model.feature_names),
            "horizon": int(result.horizon),
            "label": getattr(result, "label", "sign"),
            "universe": result.universe,
            "split": result.split,
            "metrics": _clean_metrics(result.metrics),
            "data_hash": result.data_hash,
            "feature_set_version": _feature_set_version(result.feature_set),
            "validation": getattr(result, "validation", "holdout"),
            "lineage": getattr(result, "lineage", None) or {},
            "lookback": int(getattr(result.model, "lookback", 1)),
            "coverage": cov.to_dict() if (cov := getattr(result, "coverage", None)) is not None else {},
        }
        (bundle / _META_FILE).write_text(json.dumps(meta, indent=1))
        np.save(bundle / _STRENGTH_FILE, np.asarray(result.strength_reference, dtype=float))
        # Explicit requirements skip MLflow's slow requirement inference; the pickled wrapper is
        # referenced by module path, so the CloudPickle warning does not apply: silence it here only.
        import lightgbm
        import sklearn
        from mlflow.models import infer_signature

        reqs = [
            f"pandas=={pd.__version__}",
            f"numpy=={np.__version__}",
            f"lightgbm=={lightgbm.__version__}",
            f"scikit-learn=={sklearn.__version__}",
        ]
        if "lstm" in _kinds_inside(result.model):
            from importlib.metadata import version

            reqs.append(
                f"tensorflow-cpu=={version('tensorflow-cpu')}"
                if _installed("tensorflow-cpu")
                else f"tensorflow=={version('tensorflow')}"
            )
        names = list(result.model.feature_names)
        signature = infer_signature(pd.DataFrame(np.zeros((1, len(names))), columns=names), np.zeros(1))
        logger = logging.getLogger("mlflow.pyfunc")
        level = logger.level
        logger.setLevel(logging.ERROR)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                mlflow.pyfunc.save_model(
                    path=str(tmp / "model"),
                    python_model=WorkbenchPyfunc(),
                    artifacts={
                        k: str(bundle / f)
                        for k, f in (("model", _MODEL_FILE), ("meta", _META_FILE), ("strength", _STRENGTH_FILE))
                    },
                    pip_requirements=reqs,
                    signature=signature,
                )
        finally:
            logger.setLevel(level)

    def promote(self, version: int, alias: str = CHAMPION) -> ModelRef:
        """Point ``alias`` at ``version``; a challenger promoted to champion stops being challenger."""
        mv = self._version(int(version), f"{self.name}/{version}")
        self.client.set_registered_model_alias(self.name, alias, str(mv.version))
        if alias == CHAMPION and CHALLENGER in (mv.aliases or []):
            self.client.delete_registered_model_alias(self.name, CHALLENGER)
        return ModelRef(self.name, int(mv.version), mv.run_id, alias)

    def demote(self, version: int, alias: str = CHAMPION) -> ModelRef:
        """Take ``alias`` away from ``version`` (it stays registered); an error when it does not hold it."""
        mv = self._version(int(version), f"{self.name}/{version}")
        if alias not in (mv.aliases or []):
            raise ModelError(f"{self.name} v{version} is not the {alias}: nothing to demote")
        self.client.delete_registered_model_alias(self.name, alias)
        return ModelRef(self.name, int(mv.version), mv.run_id, None)

    def run_tags(self, run_id: str) -> dict[str, str]:
        """The text a report attached to a model's run (``log_report``): e.g. the backtest's verdict."""
        return dict(self.client.get_run(run_id).data.tags)

    def log_report(self, run_id: str, metrics: dict, artifacts: dict[str, Path] | None = None) -> None:
        """Attach a report (e.g. a backtest) to a model's run: numbers as metrics, text as tags."""
        from mlflow.entities import Metric, RunTag

        now = int(pd.Timestamp.now(tz="UTC").timestamp() * 1000)
        numbers, tags = [], []
        for k, v in metrics.items():
            clean = _clean_metrics({k: v})
            if clean:
                numbers.append(Metric(str(k), clean[str(k)], now, 0))
            elif v is not None and not isinstance(v, (int, float, np.number)):
                tags.append(RunTag(str(k), str(v)[:5000]))
        if numbers or tags:  # one batch: a metric at a time costs a SQLite transaction each
            self.client.log_batch(run_id, metrics=numbers, tags=tags)
        for name, path in (artifacts or {}).items():
            if Path(path).is_dir():  # a whole report folder (HTML + PNGs)
                self.client.log_artifacts(run_id, str(path), artifact_path=f"reports/{name}")
            else:
                self.client.log_artifact(run_id, str(path), artifact_path=f"reports/{name}")

    # -- reading -------------------------------------------------------------------------------

    def _missing(self, ref: str) -> NoModelError:
        return NoModelError(f"no model registered as '{ref}' in {self.uri}: run `workbench train` first")

    def _version(self, version: int, ref: str, name: str | None = None):
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_model_version(name or self.name, str(version))
        except MlflowException as e:
            raise self._missing(ref) from e

    def _resolve(self, ref: str):
        from mlflow.exceptions import MlflowException

        ref = str(ref).removeprefix("models:/")
        if "/" in ref:
            name, _, version = ref.partition("/")
            if not version.isdigit():
                raise ValueError(f"model reference {ref!r}: expected NAME/VERSION with a numeric version")
            return self._version(int(version), ref, name), None
        if "@" in ref:
            name, _, alias = ref.partition("@")
            if alias.isdigit():  # NAME@VERSION
                return self._version(int(alias), ref, name or self.name), None
        elif ref.isdigit():
            return self._version(int(ref), ref), None
        else:
            name, alias = self.name, ref
        try:
            return self.client.get_model_version_by_alias(name, alias), alias
        except MlflowException as e:
            raise self._missing(ref) from e

    def load(self, ref: str = CHAMPION) -> LoadedModel:
        """Load by alias ("champion"), "name@alias", "name/version" or a bare version number."""
        mv, alias = self._resolve(ref)
        source = str(mv.source)
        if source.startswith("file:"):
            model_dir = Path(unquote(urlparse(source).path))
            model, meta, strength = _read_bundle(model_dir / "artifacts")
        else:
            with tempfile.TemporaryDirectory() as tmp:
                local = Path(self.client.download_artifacts(mv.run_id, "model", tmp))
                model, meta, strength = _read_bundle(local / "artifacts")
        alias = alias or (mv.aliases[0] if mv.aliases else None)
        return LoadedModel(ModelRef(mv.name, int(mv.version), mv.run_id, alias), model, meta, strength)

    def load_oos(self, model: LoadedModel | ModelRef | str = CHAMPION) -> OosPredictions:
        """The walk-forward out-of-sample predictions stored with a model's run (see ``_log_oos``)."""
        if isinstance(model, str):
            model = self.load(model)
        ref = model.ref if isinstance(model, LoadedModel) else model
        from mlflow.exceptions import MlflowException

        missing = ModelError(
            f"model {ref} was registered without its out-of-sample predictions (registered before they were "
            f"stored): retrain and register it (`workbench train`) to backtest it out of sample"
        )
        artifact_uri = str(self.client.get_run(ref.run_id).info.artifact_uri)
        if artifact_uri.startswith("file:"):  # local store: read in place, as ``load`` does
            return self._read_oos(Path(unquote(urlparse(artifact_uri).path)) / _OOS_DIR, missing)
        with tempfile.TemporaryDirectory() as tmp:
            try:
                local = Path(self.client.download_artifacts(ref.run_id, _OOS_DIR, tmp))
            except (MlflowException, OSError) as e:
                raise missing from e
            return self._read_oos(local, missing)

    @staticmethod
    def _read_oos(directory: Path, missing: Exception) -> OosPredictions:
        if not (directory / _OOS_PROBA).exists():
            raise missing
        proba = pd.read_parquet(directory / _OOS_PROBA)
        fold = pd.read_parquet(directory / _OOS_FOLD)["fold"].astype(int)
        base = pd.read_parquet(directory / _OOS_BASELINE) if (directory / _OOS_BASELINE).exists() else None
        return OosPredictions(proba, fold, base)

    def evaluation(self, ref: str) -> tuple[LoadedModel, pd.DataFrame]:
        """A registered model and its per-fold table (``evaluation/folds.csv`` of its run; empty if none)."""
        from mlflow.exceptions import MlflowException

        model = self.load(ref)
        with tempfile.TemporaryDirectory() as tmp:
            try:
                path = Path(self.client.download_artifacts(model.ref.run_id, "evaluation/folds.csv", tmp))
                folds = pd.read_csv(path)
            except (MlflowException, OSError):
                folds = pd.DataFrame()
        return model, folds

    def load_or_backup(self, ref: str = CHAMPION, feature_set: str = "v1") -> tuple[object, bool, str]:
        """(model, used_backup, message): the registered model, or the rule-based backup when none is.

        Phase 1 of the live loop calls this and shows ``message`` as is; ``used_backup`` is True
        only when nothing is registered under ``ref`` (a corrupt store still raises).
        """
        from workbench.models.backup import BackupModel

        try:
            model = self.load(ref)
        except NoModelError as e:
            backup = BackupModel(feature_set=feature_set)
            return (
                backup,
                True,
                (
                    f"{e}. Using the BACKUP rule-based model instead ({backup.meta['description']}); "
                    "it is not trained and has no out-of-sample record."
                ),
            )
        return model, False, f"loaded {model.describe()}"

    def has(self, alias: str = CHAMPION) -> bool:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_model_version_by_alias(self.name, alias)
            return True
        except MlflowException:
            return False

    def list(self) -> pd.DataFrame:
        """One row per registered version: version, aliases, kind, feature_set, key metrics, created."""
        columns = [
            "version",
            "aliases",
            "kind",
            "feature_set",
            "horizon",
            "auc",
            "accuracy",
            "baseline_accuracy",
            "metrics",
            "run_id",
            "created",
        ]
        versions = self.client.search_model_versions(filter_string=f"name='{self.name}'")
        aliases: dict[str, list[str]] = {}
        if versions:  # search results do not carry aliases; the registered model does
            for alias, version in self.client.get_registered_model(self.name).aliases.items():
                aliases.setdefault(str(version), []).append(alias)
        rows = []
        for mv in versions:
            # a version registered from outside the workbench may have no run: listed, without metrics
            run = self.client.get_run(mv.run_id) if mv.run_id else None
            m, p = (run.data.metrics, run.data.params) if run is not None else ({}, {})
            rows.append(
                {
                    "version": int(mv.version),
                    "aliases": ", ".join(sorted(aliases.get(str(mv.version), []))),
                    "kind": p.get("kind", (mv.tags or {}).get("kind")),
                    "feature_set": p.get("feature_set"),
                    "horizon": int(p["horizon"]) if "horizon" in p else None,
                    "auc": m.get("auc", float("nan")),
                    "accuracy": m.get("accuracy", float("nan")),
                    "baseline_accuracy": m.get("baseline_accuracy", float("nan")),
                    "metrics": dict(m),
                    "run_id": mv.run_id,
                    "created": pd.Timestamp(mv.creation_timestamp, unit="ms", tz="UTC"),
                }
            )
        return pd.DataFrame(rows, columns=columns).sort_values("version", ignore_index=True)
