# ---
# jupyter:
#   jupytext:
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 5 · Retrain: challenger vs champion
#
# Run by `workbench retrain` and `workbench scheduler` through papermill (the executed copy is kept under `data/retrain/`). It pulls new data, retrains walk-forward, registers the best kind as **challenger**, scores it and the current **champion** on the same out-of-sample window, and promotes the challenger only if it is better by `promote_margin`. Nothing is promoted if any step fails.

# %% tags=["parameters"]
# Parameters (papermill overrides these).
exchange = ""           # "" → the champion's universe, or the demo data when there is no champion
timeframe = ""
symbols: list[str] = []  # [] → every symbol of that universe
start = None            # ISO dates bounding the history used
end = None
source = ""             # a `workbench data pull` source (e.g. "ccxt:binance") to pull new bars first; "" → none
kinds = ["lgbm"]        # several kinds → their ensemble competes too
n_folds = 3
promote_metric = None   # None → settings.retrain.promote_metric (auc)
promote_margin = None   # None → settings.retrain.promote_margin
model_params: dict[str, dict] = {}  # kind → params, e.g. {"lgbm": {"n_estimators": 100}}
home = None             # workbench home (None → $WORKBENCH_HOME)
mlflow_uri = None
decision_path = None    # where to write the decision as JSON (run_retrain reads it)

# %%
from workbench.config import load_settings
from workbench.models.retrain import prepare_universe

settings = load_settings(home, **({"mlflow_uri": mlflow_uri} if mlflow_uri else {}))
panel, lineage, note = prepare_universe(settings, exchange, timeframe, list(symbols), source, start, end)
print(note, "|", panel.exchange, panel.timeframe, len(panel.index), "bars ×", len(panel.symbols), "instruments")

# %%
from workbench.models.retrain import retrain_and_decide
from workbench.models.training import comparison_table

decision, results = retrain_and_decide(settings, panel, kinds=list(kinds), n_folds=n_folds, metric=promote_metric,
                                       margin=promote_margin, lineage=lineage, params=model_params)
print(decision.reason)
comparison_table(results).round(4)

# %%
import pandas as pd

pd.Series(decision.table, name=f"{decision.metric} on the common window", dtype=float).to_frame()

# %%
from workbench.models.registry import Registry
from workbench.models.retrain import write_decision

write_decision(decision, decision_path)
Registry(settings).list()[["version", "aliases", "kind", "auc", "accuracy", "baseline_accuracy"]]
