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
# # 3 · Train and compare models
#
# Three model kinds — **LightGBM**, scikit-learn **RandomForest** and a small **LSTM** (TensorFlow/Keras) over the last 10 feature rows of each instrument — plus the **ensemble** of their calibrated probabilities, trained on the same `v1` features and scored by **walk-forward validation**: the last 30 % of the history is cut into 3 consecutive test windows, each scored by models trained only on earlier rows whose labels end before the window (purge) and at least `horizon` bars before it (embargo).
#
# Every probability is **calibrated** (Platt scaling on the latest 20 % of each training window, held out from the base model). Each model is shown beside two baselines it must beat: the **majority class** of its training window and a **momentum rule**.
#
# Data: ten S&P 500 stocks (daily, 2013–2018) from `settings.research_data_dir` (env `WORKBENCH_RESEARCH_DATA_DIR`) when it holds them, otherwise the demo data.

# %%
import pandas as pd

from workbench.config import load_settings
from workbench.data.demo import research_panel
from workbench.data.lake import Lake
from workbench.models.training import panel_lineage

settings = load_settings()  # honours WORKBENCH_HOME and WORKBENCH_RESEARCH_DATA_DIR
STOCKS = ["AAPL", "MSFT", "XOM", "JPM", "JNJ", "PG", "KO", "GE", "INTC", "WMT"]
data = research_panel(settings, STOCKS)  # real S&P 500 stocks when research_data_dir holds them, else the demo data
panel = data.panel
lineage = panel_lineage(Lake(settings.lake_dir), data.exchange, data.timeframe, list(data.symbols))  # logged with each model
print(data.label)
print(data.exchange, data.timeframe, len(panel.index), "bars ×", len(panel.symbols), "instruments")

# %%
from workbench.models.training import compare, comparison_table

results = compare(panel, kinds=("lgbm", "rf", "lstm"), n_folds=3, lineage=lineage)
table = comparison_table(results)
table.round(4)

# %% [markdown]
# The table is **out of sample** only, over the three test windows: `auc`, `log_loss`, `ece` are means over the folds (pooled figures are named `pooled_*`); `ic_mean` is the mean of the daily cross-sectional rank ICs and `ic_t` its Newey–West t-statistic; `fit_seconds` the training time summed over the folds (including calibration). Daily direction of large caps is close to a coin flip: a model that does **not** beat the baselines is said so below, and the same sentence is logged to MLflow as the run's `workbench.verdict` tag.

# %%
for r in results.values():
    print(r.verdict())

# %%
import matplotlib.pyplot as plt

fig, axes = plt.subplots(1, 2, figsize=(12, 4))
per_fold = pd.DataFrame({k: r.folds.set_index("fold")["auc"] for k, r in results.items()})
per_fold["momentum rule"] = results["lgbm"].folds.set_index("fold")["momentum_auc"]
per_fold.plot.bar(ax=axes[0], title="out-of-sample AUC per walk-forward fold", rot=0)
axes[0].axhline(0.5, color="grey", ls="--", lw=1)
axes[0].set_ylim(0.4, 0.6)
for k, r in results.items():
    t = r.reliability[r.reliability["n"] > 0]
    axes[1].plot(t["mean_predicted"], t["observed"], marker="o", label=k)
axes[1].plot([0.35, 0.65], [0.35, 0.65], "k--", lw=1, label="perfectly calibrated")
axes[1].set(title="reliability curve (out of sample)", xlabel="predicted P(up)", ylabel="observed frequency of up")
axes[1].legend(fontsize=8);

# %% [markdown]
# Per-fold detail of one model (windows, sizes, training time, its scores and the baselines'):

# %%
results["lgbm"].folds[["fold", "test_start", "test_end", "n_train", "n_test", "fit_seconds", "auc", "log_loss",
                        "ece", "ic_mean", "ic_t", "majority_accuracy", "momentum_auc"]].round(4)

# %% [markdown]
# Which features the tree models lean on (share of total importance; the LSTM has none to show):

# %%
pd.DataFrame({k: r.importance / r.importance.sum() for k, r in results.items()
              if r.importance is not None and k != "ensemble"}).round(3)

# %% [markdown]
# ## Stock selection, not market timing: the cross-sectional label
# The sign label mixes timing (every stock rises on a good day) with selection. Below, the same models learn `xs_median`: does a stock beat that day's median return over the next 5 days? They are judged per date and per fold: the mean daily rank IC with its t-statistic and ICIR, top-minus-bottom quintile returns, turnover, per-fold reliability, beside momentum and short-term reversal. An edge needs most folds, the mean, and IC t ≥ 3.

# %%
from IPython.display import display

from workbench.models.evidence import fold_table, ic_figure, quantile_figure, quantile_table, reliability_figure_by_fold

xs = compare(panel, kinds=("lgbm", "rf", "lstm"), label="xs_median", horizon=5, embargo=5, n_folds=3,
             test_fraction="3y" if data.real else 0.3, lineage=lineage)
for r in xs.values():
    print(r.verdict())
comparison_table(xs).round(4)

# %%
fold_table(xs["ensemble"]).round(4)

# %%
display(ic_figure(xs["ensemble"]))

# %%
display(quantile_figure(xs["lgbm"]))
quantile_table(xs["lgbm"]).round(5)

# %%
display(reliability_figure_by_fold(xs["lgbm"]))
xs["lgbm"].folds[["fold", "ece", "ece_quantile", "confidence_ece"]].round(4)

# %% [markdown]
# Register the best model by out-of-sample AUC. The first registered model becomes `champion`, later ones `challenger`; the run carries the fold table, importance, reliability plot, model signature and data lineage.

# %%
from workbench.models.registry import Registry

registry = Registry(settings)
best = max(results.values(), key=lambda r: r.metrics["auc"])
ref = registry.register(best)
print(ref, "—", best.verdict())
registry.list()[["version", "aliases", "kind", "auc", "accuracy", "baseline_accuracy"]]
