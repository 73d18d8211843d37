"""The verdict in plain words, from per-fold evidence, and the summary table beside the baselines.

Why per fold: one good stretch can carry a pooled figure. A model has an edge only if it beats every
ranking baseline on the primary metric (the mean daily rank IC for cross-sectional labels, the AUC
otherwise) in most folds *and* on the mean, and the evidence is significant (IC t ≥ ``IC_T_MIN``;
for probability labels, a log loss below the majority class's).
"""

from __future__ import annotations

import math

import pandas as pd

from workbench.features.labels import CROSS_SECTIONAL
from workbench.models.baselines import BASELINES

__all__ = ["IC_T_MIN", "primary_metric", "verdict_text", "comparison_table", "TABLE_KEYS"]

IC_T_MIN = 3.0  # the daily-IC t-statistic a cross-sectional edge needs


def primary_metric(label: str) -> str:
    """What decides the verdict: the daily rank IC for cross-sectional labels, the AUC otherwise."""
    return "ic_mean" if label in CROSS_SECTIONAL else "auc"


def verdict_text(kind: str, label: str, m: dict) -> str:
    """One sentence: edge or NO edge, with the figures that decided it."""
    key = primary_metric(label)
    n = int(m.get("n_folds", 0))
    won = int(m.get("folds_beating", 0))
    base = "the best baseline" if key == "ic_mean" else "the momentum/reversal baselines"
    parts = [
        _ic_part(label, m),
        f"fold-mean AUC {_num(m.get('auc'), '.3f')}",
        f"beats {base} on {key} in {won} of {n} folds",
    ]
    if key == "ic_mean":
        parts.append(f"IC t {'≥' if m.get('ic_t', 0) >= IC_T_MIN else '<'} {IC_T_MIN:g}")
    if m.get("beats_baselines"):
        head = "has an out-of-sample edge"
    else:
        head = "has NO edge out of sample (does NOT beat the baselines)"
    return f"{kind} ({label} label) {head}: {'; '.join(parts)}"


def _num(x: object, spec: str) -> str:
    """A figure, or "n/a" where none was measured (never "+nan")."""
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "n/a"
    return "n/a" if math.isnan(v) else format(v, spec)


def _ic_part(label: str, m: dict) -> str:
    """The rank-IC figures, or why there are none: a per-instrument label (sign, direction) is not
    ranked across instruments, and a cross-sectional one needs ≥ 2 instruments with a score per date."""
    ic = m.get("ic_mean")
    if ic is None or (isinstance(ic, float) and math.isnan(ic)):
        why = (
            "too few instruments with a score on the test dates to rank"
            if label in CROSS_SECTIONAL
            else f"not measured: a {label} label is judged per instrument, by its AUC, not by a cross-sectional rank"
        )
        return f"mean daily rank IC n/a ({why})"
    return (
        f"mean daily rank IC {_num(ic, '+.4f')} (t {_num(m.get('ic_t'), '.1f')}, "
        f"ICIR {_num(m.get('ic_ir'), '+.3f')}) vs momentum {_num(m.get('momentum_ic_mean'), '+.4f')}, "
        f"reversal {_num(m.get('reversal_ic_mean'), '+.4f')}"
    )


TABLE_KEYS = (
    "ic_mean",
    "ic_t",
    "ic_ir",
    "ls_return",
    "turnover",
    "auc",
    "log_loss",
    "brier",
    "ece",
    "ece_quantile",
    "accuracy",
)


def comparison_table(results: dict | list) -> pd.DataFrame:
    """Summary out-of-sample scores: one row per model, then the baselines; fold-mean probability
    scores, per-date IC over all test dates, folds won, fit seconds and the verdict flag."""
    items = list(results.values()) if isinstance(results, dict) else list(results)
    rows = {}
    for r in items:
        rows[r.kind] = {
            **{k: r.metrics[k] for k in TABLE_KEYS},
            "folds_beating": r.metrics["folds_beating"],
            "fit_seconds": r.metrics["fit_seconds"],
            "beats_baselines": bool(r.metrics["beats_baselines"]),
        }
    m = items[0].metrics
    for b in BASELINES:
        rows[f"baseline: {b}"] = {
            **{k: m[f"{b}_{k}"] for k in TABLE_KEYS},
            "folds_beating": None,
            "fit_seconds": 0.0,
            "beats_baselines": None,
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "model"
    return table
