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
# # 4 · Backtest the champion, out of sample
#
# A model is judged only on bars it never trained on: the probabilities each **walk-forward fold**'s model gave on its own test window are stored with the registered model, and only those are traded. They become signals through the live `signal_frame` (same parameters, the model's own out-of-sample strength reference) and are traded by the engine that replays the live loop's rules bar by bar (10% per position, risk-based size, strength > 0.7, ATR stops, the daily-loss halt, fees and slippage). Every order says which fold it came from.
#
# The result stands beside two yardsticks run over the same bars: **buy & hold** of the universe (equal weight) and the **baseline model** (the momentum rule scored on the same folds, traded through the same engine). The report (HTML + PNG) is logged to the model's MLflow run.
#
# Data: ten S&P 500 stocks (daily, 2013–2018) from `settings.research_data_dir` (env `WORKBENCH_RESEARCH_DATA_DIR`) when it holds them, otherwise the demo data.

# %%
from workbench.config import load_settings
from workbench.data.demo import research_panel
from workbench.data.lake import Lake

settings = load_settings()  # honours WORKBENCH_HOME and WORKBENCH_RESEARCH_DATA_DIR
lake = Lake(settings.lake_dir)
STOCKS = ["AAPL", "MSFT", "XOM", "JPM", "JNJ", "PG", "KO", "GE", "INTC", "WMT"]
data = research_panel(settings, STOCKS)  # the same ten stocks as notebook 03 (re-ingesting adds nothing)
exchange, timeframe, symbols = data.exchange, data.timeframe, list(data.symbols)
print(data.label)

# %% [markdown]
# The champion from notebook 03 is used when it carries its out-of-sample predictions; otherwise (notebook 03 skipped) a LightGBM model is trained walk-forward here and registered as champion.

# %%
from workbench.errors import ModelError
from workbench.models.registry import Registry

registry = Registry(settings)
try:
    registry.load_oos("champion")
except ModelError as e:  # no champion yet, or one registered before out-of-sample predictions were stored
    from workbench.models.training import panel_lineage, walk_forward

    print(f"{e}\n→ training a walk-forward LightGBM on {exchange} {timeframe} instead")
    panel = lake.load_panel(exchange, timeframe, symbols)
    result = walk_forward(panel, "lgbm", n_folds=3, lineage=panel_lineage(lake, exchange, timeframe, symbols))
    registry.register(result, alias="champion")
print(registry.load("champion").describe())

# %%
from workbench.backtest import backtest_model

report = backtest_model(settings, ref="champion")  # the CLI: workbench backtest --model champion
print(report.verdict)
report.formatted()

# %% [markdown]
# The walk-forward windows traded (each fold's model predicted only its own window), with each column's return inside the window and the strategy's trades there — one lucky fold can carry a whole backtest:

# %%
from workbench.backtest import format_windows

format_windows(report.windows)

# %%
report.result.trades[["symbol", "entry_ts", "exit_ts", "entry_price", "exit_price", "pnl", "return_pct", "exit_reason", "window"]].head(10)

# %% [markdown]
# The plots written with the report — equity (windows shaded), drawdown, P&L per trade coloured by window, and fills on the most-traded symbols:

# %%
from IPython.display import Image, display

for name in ("equity", "drawdown", "trade_pnl", "fills"):
    display(Image(filename=str(report.paths[name])))

# %% [markdown]
# The same numbers are logged to the model's MLflow run as `backtest_*` metrics (buy & hold as `backtest_buy_hold_*`, the baseline as `backtest_baseline_*`), with the HTML and PNG files under the run's `reports/` artifacts:

# %%
import pandas as pd

runs = registry.list().set_index("version")
logged = runs.loc[runs["run_id"] == report.run_id, "metrics"].iloc[0]
print("report:", report.paths["html"])
pd.Series({k: v for k, v in logged.items() if k.startswith("backtest_") and k.endswith(("total_return", "sharpe", "max_drawdown"))}).round(4).to_frame("logged")

# %% [markdown]
# From a shell, for a subset of the universe and a window inside the out-of-sample stretch:
#
# ```
# workbench backtest --model champion --universe AAPL,MSFT,XOM --start 2017-01-01 --end 2017-12-31
# ```
# It prints this table, says whether the strategy beat buy & hold and the baseline after costs, and writes `report.html` + PNGs under `$WORKBENCH_HOME/reports/`.
