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
# # 2 · Feature research
#
# Features come from named, versioned sets (`build_features(panel, feature_set="v2")`): `v1` is the original 13 (returns, volatility, RSI, MACD, Bollinger, ATR, EMA ratios); `v2` adds ADX, stochastic, MFI, OBV flow, volume z-score, VWAP distance, distance to rolling highs/lows, breakouts, beta/correlation to the market, cross-sectional ranks and calendar time features. Every indicator TA-Lib also has matches it, every feature at *t* uses bars up to *t* only, and the live loop's incremental update equals the full recomputation — all tested in `tests/unit/features`.

# %% [markdown]
# The research tools need many instruments over years, so this notebook uses **real S&P 500 daily bars** from `settings.research_data_dir` (env `WORKBENCH_RESEARCH_DATA_DIR`: a folder laid out like the project's shared data) when it holds them; otherwise it falls back to the demo panel and says so.

# %%
from workbench.config import load_settings
from workbench.data.demo import research_panel

settings = load_settings()  # honours WORKBENCH_HOME, $WORKBENCH_HOME/workbench.toml and WORKBENCH_RESEARCH_DATA_DIR
TICKERS = ["AAPL", "MSFT", "AMZN", "GOOGL", "JPM", "XOM", "CVX", "JNJ", "PFE", "PG", "KO", "PEP", "WMT", "HD", "DIS",
           "INTC", "CSCO", "ORCL", "IBM", "GE", "BA", "CAT", "MMM", "MRK", "UNH", "VZ", "T", "BAC", "WFC", "C"]
data = research_panel(settings, TICKERS)  # real S&P 500 bars when research_data_dir holds them, else the demo panel
research = data.panel
print(data.label)

# %%
from workbench.features import FEATURE_SETS, build_features_report

features, report = build_features_report(research, feature_set="v2")
print(FEATURE_SETS["v2"].name, len(FEATURE_SETS["v2"].columns), "features, warm-up", FEATURE_SETS["v2"].warmup, "bars")
print(report)  # which instruments had gaps, flat prices or no volume, and what that did to their features
features.describe().T[["count", "mean", "std", "min", "max"]]

# %% [markdown]
# **Rank IC per month**: the Spearman correlation of each feature with the next bar's return, pooled over the stocks within each month. The bar is the mean IC with its standard error; |IC| of a few hundredths is normal for daily bars.

# %%
from workbench.features import research as R

fwd1 = R.forward_returns_long(research, horizon=1)
ic = R.ic_by_period(features, fwd1, freq="ME")
summary = R.ic_summary(ic).sort_values("mean_ic")
fig = R.plot_ic_summary(summary)
summary.round(3).tail(8)

# %%
strongest = str(summary["t_stat"].abs().idxmax())
fig = R.plot_ic_timeseries(ic, strongest)

# %% [markdown]
# **IC decay**: how the information fades (or builds) as the forecast horizon grows, for the features with the largest |IC|:

# %%
decay = R.ic_decay(research, features, horizons=(1, 2, 5, 10, 20))
fig = R.plot_ic_decay(decay)

# %% [markdown]
# **Turnover** (1 − rank autocorrelation from one bar to the next): fast features are expensive to trade on.

# %%
R.feature_turnover(features).sort_values().to_frame().T.round(2)

# %%
corr = R.feature_correlation(features)
fig = R.plot_correlation(corr)

# %% [markdown]
# ## Labels
#
# Three targets: the forward return, up/flat/down with a cost-aware dead zone (a move smaller than a round trip's fees and slippage is *flat*), and **triple-barrier** outcomes that use the very stop-loss / take-profit rule of the signals (close ∓ ATR multiples).

# %%
import pandas as pd

from workbench.features import triple_barrier, updown_label

labels = pd.DataFrame({"updown_5": updown_label(research, horizon=5)}).join(triple_barrier(research, horizon=10))
print(labels["updown_5"].value_counts(normalize=True).round(3).to_dict())
labels.groupby("label")[["ret", "bars"]].describe().round(3)

# %% [markdown]
# ## Live: incremental features
#
# The live loop keeps the indicator state and computes only the newest bar; the numbers are the same as recomputing everything:

# %%
import numpy as np

from workbench.features import IncrementalFeatures

inc = IncrementalFeatures.from_history(research.iloc(slice(0, -3)), "v2")
for t in range(len(research.index) - 3, len(research.index)):
    newest = inc.update(research.iloc(slice(t, t + 1)))
full = features.xs(research.index[-1], level="ts").reindex(newest.index)
print("incremental == full recomputation:", np.array_equal(newest.to_numpy(), full.to_numpy(), equal_nan=True))
