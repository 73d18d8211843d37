"""The notebooks' source: thin cells that import workbench and narrate. Edit here, then run
`.venv/bin/python notebooks/make_notebooks.py` (stable cell ids, no outputs) and commit both."""
import nbformat as nbf
from pathlib import Path
NB = Path(__file__).resolve().parent

def nb(cells):
    n = nbf.v4.new_notebook()
    n.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    n.metadata["language_info"] = {"name": "python"}
    n.cells = [_cell(c) for c in cells]
    for i, cell in enumerate(n.cells):  # stable ids: regenerating must not churn every notebook
        cell["id"] = f"cell-{i:02d}"
    return n

def _cell(c):
    """"md:..." → markdown; "parameters:..." → code cell tagged for papermill; else code."""
    if c.startswith("md:"):
        return nbf.v4.new_markdown_cell(c[3:])
    if c.startswith("parameters:"):
        cell = nbf.v4.new_code_cell(c[len("parameters:"):])
        cell.metadata["tags"] = ["parameters"]
        return cell
    return nbf.v4.new_code_cell(c)

SETUP = """from workbench.config import load_settings
from workbench.data.demo import load_demo_panel

settings = load_settings()  # honours WORKBENCH_HOME and $WORKBENCH_HOME/workbench.toml
universe, panel = load_demo_panel(settings)  # pulls the demo data only if the lake lacks it
print(universe.label, "|", universe.exchange, universe.timeframe, len(panel.index), "bars ×", len(panel.symbols), "instruments")"""

nbs = {
"01_data_pull.ipynb": [
"md:# 1 · Data pull\n\n1. **Instruments**: the master table of everything tradable (NASDAQ Trader, NSE, BSE, Zerodha Kite, ccxt exchanges) — `workbench instruments refresh`.\n2. **Candles** go from a source (ccxt exchange, Kite, Alpaca, CSV file, or the synthetic generator) into the parquet lake under `WORKBENCH_HOME/data/lake`, and come back as aligned (time × instrument) frames read with DuckDB.\n3. **Checks**: gaps against each exchange's trading calendar, and bad bars kept aside in a quarantine table with the reason.\n\nThe demo data set is public Binance candles when the network answers, otherwise a **synthetic** market (vectorbt `GBMData`), labelled as such everywhere.",
"""import os
from pathlib import Path

from workbench.config import load_settings
from workbench.instruments import InstrumentMaster, refresh

settings = load_settings()
settings.ensure_dirs()
master = InstrumentMaster.of(settings)
saved_lists = Path(os.environ.get("WORKBENCH_TEST_DATA", "../../shared/data")) / "instruments"
if saved_lists.is_dir():  # saved copies of the published lists (offline)
    print(refresh(master, "all", saved_lists).summary())
elif not master.exists():
    print("No saved lists here: `workbench instruments refresh` downloads them (NASDAQ Trader, NSE, BSE, Kite, Binance).")""",
"""master.counts() if master.exists() else None""",
"md:Pick a universe from the master, e.g. the NSE listings of a few large companies (the same ISIN on BSE is another instrument):",
"""master.search("infosys", limit=6)[["key", "name", "isin", "kite_token", "tick_size", "source"]] if master.exists() else None""",
"md:## Candles\n\nThe demo universe is pulled only if the lake lacks it (a progress bar shows long pulls; an interrupted pull resumes from the last stored bar).",
"""from workbench.data.demo import ensure_demo_data
from workbench.data.lake import Lake

universe = ensure_demo_data(settings, progress=True)
lake = Lake(settings.lake_dir)
universe""",
"md:What the lake holds (one row per exchange / timeframe / symbol):",
"""lake.catalog()""",
"md:**Gaps**: bars the exchange calendar expects between a symbol's first and last stored bar that are missing (NSE/BSE, NYSE/NASDAQ sessions and holidays from `exchange_calendars`; crypto trades 24/7). **Quarantine**: bars a feed sent that failed a check (NaN, non-positive price, high < low, negative volume, duplicate, out of order), stored apart with the reason — never silently dropped or kept.",
"""from workbench.data.calendars import find_gaps

find_gaps(lake, universe.exchange, universe.timeframe)""",
"""lake.quarantined()""",
"md:Panels: aligned (time × instrument) frames of the fields you ask for, for instruments named `EXCHANGE:SYMBOL` (several exchanges may be mixed).",
"""keys = [f"{universe.exchange}:{s}" for s in universe.symbols]
frames = lake.load_panel_for(keys, universe.timeframe, fields=("close", "volume"))
close = frames["close"]
close.tail()""",
"""ax = (close / close.bfill().iloc[0]).plot(figsize=(10, 4), title=f"{universe.label}: growth of 1")
ax.set_ylabel("× first close");""",
"md:## Your own data\n\n```python\nfrom workbench.data.ingest import pull, source_from_spec\nreport = pull(lake, source_from_spec('csv:/path/to/AAPL_data.csv@NASDAQ', settings), ['AAPL'], '1d')\n```\nor from a shell: `workbench data pull --source ccxt:binance -s BTC/USDT -s ETH/USDT --timeframe 1d` (also `--source kite:NSE` after `workbench keys set kite` and `workbench keys kite-login`, `--source alpaca:NASDAQ` after `workbench keys set alpaca`; or the `WORKBENCH_KEY_*` variables, see the README). A CSV file you import is checked strictly: a bad bar stops the import with the file and row named. Live quotes for thousands of instruments: `workbench.data.quotes.fetch_quotes(keys, sources)`.",
],
"02_feature_research.ipynb": [
"md:# 2 · Feature research\n\nFeatures come from named, versioned sets (`build_features(panel, feature_set=\"v2\")`): `v1` is the original 13 (returns, volatility, RSI, MACD, Bollinger, ATR, EMA ratios); `v2` adds ADX, stochastic, MFI, OBV flow, volume z-score, VWAP distance, distance to rolling highs/lows, breakouts, beta/correlation to the market, cross-sectional ranks and calendar time features. Every indicator TA-Lib also has matches it, every feature at *t* uses bars up to *t* only, and the live loop's incremental update equals the full recomputation — all tested in `tests/unit/features`.",
SETUP,
"md:The research tools need many instruments over years, so this notebook uses **real S&P 500 daily bars** from the shared data folder when it is there (`$WORKBENCH_TEST_DATA` or `../../shared/data`); otherwise it falls back to the demo panel above and says so.",
"""import os
from pathlib import Path

import pandas as pd

from workbench.data.panel import Panel

real_dir = Path(os.environ.get("WORKBENCH_TEST_DATA", "../../shared/data")) / "us_equities" / "sp500_5yr_kaggle_cnuge"
TICKERS = ["AAPL", "MSFT", "AMZN", "GOOGL", "JPM", "XOM", "CVX", "JNJ", "PFE", "PG", "KO", "PEP", "WMT", "HD", "DIS",
           "INTC", "CSCO", "ORCL", "IBM", "GE", "BA", "CAT", "MMM", "MRK", "UNH", "VZ", "T", "BAC", "WFC", "C"]
if all((real_dir / f"{t}_data.csv").exists() for t in TICKERS):
    frames = [pd.read_csv(real_dir / f"{t}_data.csv").rename(columns={"date": "ts", "Name": "symbol"}) for t in TICKERS]
    long = pd.concat(frames, ignore_index=True)
    long["ts"] = pd.to_datetime(long["ts"]).dt.tz_localize("UTC")
    research = Panel.from_long(long, exchange="NYSE", timeframe="1d")
    print(f"REAL data: {len(TICKERS)} S&P 500 stocks, {research.index[0].date()} .. {research.index[-1].date()} (daily)")
else:
    research = panel
    print(f"NOTE: real data not found at {real_dir.resolve()}; the tools below run on the demo panel ({universe.label}) instead")""",
"""from workbench.features import FEATURE_SETS, build_features_report

features, report = build_features_report(research, feature_set="v2")
print(FEATURE_SETS["v2"].name, len(FEATURE_SETS["v2"].columns), "features, warm-up", FEATURE_SETS["v2"].warmup, "bars")
print(report)  # which instruments had gaps, flat prices or no volume, and what that did to their features
features.describe().T[["count", "mean", "std", "min", "max"]]""",
"md:**Rank IC per month**: the Spearman correlation of each feature with the next bar's return, pooled over the stocks within each month. The bar is the mean IC with its standard error; |IC| of a few hundredths is normal for daily bars.",
"""from workbench.features import research as R

fwd1 = R.forward_returns_long(research, horizon=1)
ic = R.ic_by_period(features, fwd1, freq="ME")
summary = R.ic_summary(ic).sort_values("mean_ic")
fig = R.plot_ic_summary(summary)
summary.round(3).tail(8)""",
"""strongest = summary["t_stat"].abs().idxmax()
fig = R.plot_ic_timeseries(ic, strongest)""",
"md:**IC decay**: how the information fades (or builds) as the forecast horizon grows, for the features with the largest |IC|:",
"""decay = R.ic_decay(research, features, horizons=(1, 2, 5, 10, 20))
fig = R.plot_ic_decay(decay)""",
"md:**Turnover** (1 − rank autocorrelation from one bar to the next): fast features are expensive to trade on.",
"""R.feature_turnover(features).sort_values().to_frame().T.round(2)""",
"""corr = R.feature_correlation(features)
fig = R.plot_correlation(corr)""",
"md:## Labels\n\nThree targets: the forward return, up/flat/down with a cost-aware dead zone (a move smaller than a round trip's fees and slippage is *flat*), and **triple-barrier** outcomes that use the very stop-loss / take-profit rule of the signals (close ∓ ATR multiples).",
"""from workbench.features import triple_barrier, updown_label

labels = pd.DataFrame({"updown_5": updown_label(research, horizon=5)}).join(triple_barrier(research, horizon=10))
print(labels["updown_5"].value_counts(normalize=True).round(3).to_dict())
labels.groupby("label")[["ret", "bars"]].describe().round(3)""",
"md:## Live: incremental features\n\nThe live loop keeps the indicator state and computes only the newest bar; the numbers are the same as recomputing everything:",
"""import numpy as np

from workbench.features import IncrementalFeatures

inc = IncrementalFeatures.from_history(research.iloc(slice(0, -3)), "v2")
for t in range(len(research.index) - 3, len(research.index)):
    newest = inc.update(research.iloc(slice(t, t + 1)))
full = features.xs(research.index[-1], level="ts").reindex(newest.index)
print("incremental == full recomputation:", np.array_equal(newest.to_numpy(), full.to_numpy(), equal_nan=True))""",
],
"03_train_models.ipynb": [
"md:# 3 · Train and compare models\n\nThree model kinds — **LightGBM**, scikit-learn **RandomForest** and a small **LSTM** (TensorFlow/Keras) over the last 10 feature rows of each instrument — plus the **ensemble** of their calibrated probabilities, trained on the same `v1` features and scored by **walk-forward validation**: the last 30 % of the history is cut into 3 consecutive test windows, each scored by models trained only on earlier rows whose labels end before the window (purge) and at least `horizon` bars before it (embargo).\n\nEvery probability is **calibrated** (Platt scaling on the latest 20 % of each training window, held out from the base model). Each model is shown beside two baselines it must beat: the **majority class** of its training window and a **momentum rule**.\n\nData: ten S&P 500 stocks (daily, 2013–2018) from `../shared/data` when it is there, otherwise the demo data.",
"""import os
from pathlib import Path

import pandas as pd

from workbench.config import load_settings
from workbench.data.lake import Lake
from workbench.models.training import panel_lineage

settings = load_settings()  # honours WORKBENCH_HOME
settings.ensure_dirs()
lake = Lake(settings.lake_dir)
real = Path(os.environ.get("WORKBENCH_TEST_DATA") or "../../shared/data") / "us_equities" / "sp500_5yr_kaggle_cnuge"
STOCKS = ["AAPL", "MSFT", "XOM", "JPM", "JNJ", "PG", "KO", "GE", "INTC", "WMT"]
if real.is_dir():
    from workbench.data.ingest import pull
    from workbench.data.sources.csv_source import CsvSource

    for sym in STOCKS:
        pull(lake, CsvSource(real / f"{sym}_data.csv", exchange="NYSE", symbol=sym), [sym], "1d", progress=False)
    exchange, timeframe, symbols = "NYSE", "1d", STOCKS
    print(f"real data: {len(STOCKS)} S&P 500 stocks, daily bars, from {real.resolve()}")
else:
    from workbench.data.demo import ensure_demo_data

    uni = ensure_demo_data(settings)
    exchange, timeframe, symbols = uni.exchange, uni.timeframe, list(uni.symbols)
    print(f"NOTE: real data not found at {real}; using the demo data instead — {uni.label}")
panel = lake.load_panel(exchange, timeframe, symbols)
lineage = panel_lineage(lake, exchange, timeframe, symbols)  # logged with each model: which lake query it saw
print(exchange, timeframe, len(panel.index), "bars ×", len(panel.symbols), "instruments")""",
"""from workbench.models.training import compare, comparison_table

results = compare(panel, kinds=("lgbm", "rf", "lstm"), n_folds=3, lineage=lineage)
table = comparison_table(results)
table.round(4)""",
"md:The table is **out of sample** only: all rows of the three test windows, pooled. `rank_ic` is the Spearman correlation of the probability with the next bar's return; `ece` the calibration error; `fit_seconds` the training time summed over the folds (including calibration). Daily direction of large caps is close to a coin flip: a model that does **not** beat the baselines is said so below, and the same sentence is logged to MLflow as the run's `workbench.verdict` tag.",
"""for r in results.values():
    print(r.verdict())""",
"""import matplotlib.pyplot as plt

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
axes[1].legend(fontsize=8);""",
"md:Per-fold detail of one model (windows, sizes, training time, its scores and the baselines'):",
"""results["lgbm"].folds[["fold", "test_start", "test_end", "n_train", "n_test", "fit_seconds", "auc", "log_loss",
                        "ece", "rank_ic", "majority_accuracy", "momentum_auc"]].round(4)""",
"md:Which features the tree models lean on (share of total importance; the LSTM has none to show):",
"""pd.DataFrame({k: r.importance / r.importance.sum() for k, r in results.items()
              if r.importance is not None and k != "ensemble"}).round(3)""",
"md:Register the best model by out-of-sample AUC. The first registered model becomes `champion`, later ones `challenger`; the run carries the fold table, importance, reliability plot, model signature and data lineage.",
"""from workbench.models.registry import Registry

registry = Registry(settings)
best = max(results.values(), key=lambda r: r.metrics["auc"])
ref = registry.register(best)
print(ref, "—", best.verdict())
registry.list()[["version", "aliases", "kind", "auc", "accuracy", "baseline_accuracy"]]""",
],
"05_retrain.ipynb": [
"md:# 5 · Retrain: challenger vs champion\n\nRun by `workbench retrain` and `workbench scheduler` through papermill (the executed copy is kept under `data/retrain/`). It pulls new data, retrains walk-forward, registers the best kind as **challenger**, scores it and the current **champion** on the same out-of-sample window, and promotes the challenger only if it is better by `promote_margin`. Nothing is promoted if any step fails.",
"""parameters:# Parameters (papermill overrides these).
exchange = ""           # "" → the champion's universe, or the demo data when there is no champion
timeframe = ""
symbols = []            # [] → every symbol of that universe
start = None            # ISO dates bounding the history used
end = None
source = ""             # a `workbench data pull` source (e.g. "ccxt:binance") to pull new bars first; "" → none
kinds = ["lgbm"]        # several kinds → their ensemble competes too
n_folds = 3
promote_metric = None   # None → settings.retrain.promote_metric (auc)
promote_margin = None   # None → settings.retrain.promote_margin
model_params = {}       # kind → params, e.g. {"lgbm": {"n_estimators": 100}}
home = None             # workbench home (None → $WORKBENCH_HOME)
mlflow_uri = None
decision_path = None    # where to write the decision as JSON (run_retrain reads it)""",
"""from workbench.config import load_settings
from workbench.models.retrain import prepare_universe

settings = load_settings(home, **({"mlflow_uri": mlflow_uri} if mlflow_uri else {}))
panel, lineage, note = prepare_universe(settings, exchange, timeframe, list(symbols), source, start, end)
print(note, "|", panel.exchange, panel.timeframe, len(panel.index), "bars ×", len(panel.symbols), "instruments")""",
"""from workbench.models.retrain import retrain_and_decide
from workbench.models.training import comparison_table

decision, results = retrain_and_decide(settings, panel, kinds=list(kinds), n_folds=n_folds, metric=promote_metric,
                                       margin=promote_margin, lineage=lineage, params=model_params)
print(decision.reason)
comparison_table(results).round(4)""",
"""import pandas as pd

pd.Series(decision.table, name=f"{decision.metric} on the common window", dtype=float).to_frame()""",
"""from workbench.models.retrain import write_decision
from workbench.models.registry import Registry

write_decision(decision, decision_path)
Registry(settings).list()[["version", "aliases", "kind", "auc", "accuracy", "baseline_accuracy"]]""",
],
"04_backtest.ipynb": [
"md:# 4 · Backtest the champion, out of sample\n\nA model is judged only on bars it never trained on: the probabilities each **walk-forward fold**'s model gave on its own test window are stored with the registered model, and only those are traded. They become signals through the live `signal_frame` (same parameters, the model's own out-of-sample strength reference) and are traded by the engine that replays the live loop's rules bar by bar (10% per position, risk-based size, strength > 0.7, ATR stops, the daily-loss halt, fees and slippage). Every order says which fold it came from.\n\nThe result stands beside two yardsticks run over the same bars: **buy & hold** of the universe (equal weight) and the **baseline model** (the momentum rule scored on the same folds, traded through the same engine). The report (HTML + PNG) is logged to the model's MLflow run.\n\nData: ten S&P 500 stocks (daily, 2013–2018) from `../shared/data` when it is there, otherwise the demo data.",
"""import os
from pathlib import Path

from workbench.config import load_settings
from workbench.data.lake import Lake

settings = load_settings()  # honours WORKBENCH_HOME
settings.ensure_dirs()
lake = Lake(settings.lake_dir)
real = Path(os.environ.get("WORKBENCH_TEST_DATA") or "../../shared/data") / "us_equities" / "sp500_5yr_kaggle_cnuge"
STOCKS = ["AAPL", "MSFT", "XOM", "JPM", "JNJ", "PG", "KO", "GE", "INTC", "WMT"]
if real.is_dir():  # the same ten stocks as notebook 03 (re-ingesting adds nothing)
    from workbench.data.ingest import pull
    from workbench.data.sources.csv_source import CsvSource

    for sym in STOCKS:
        pull(lake, CsvSource(real / f"{sym}_data.csv", exchange="NYSE", symbol=sym), [sym], "1d", progress=False)
    exchange, timeframe, symbols = "NYSE", "1d", STOCKS
    print(f"real data: {len(STOCKS)} S&P 500 stocks, daily bars, from {real.resolve()}")
else:
    from workbench.data.demo import ensure_demo_data

    uni = ensure_demo_data(settings)
    exchange, timeframe, symbols = uni.exchange, uni.timeframe, list(uni.symbols)
    print(f"NOTE: real data not found at {real}; using the demo data instead — {uni.label}")""",
"md:The champion from notebook 03 is used when it carries its out-of-sample predictions; otherwise (notebook 03 skipped) a LightGBM model is trained walk-forward here and registered as champion.",
"""from workbench.errors import ModelError
from workbench.models.registry import Registry

registry = Registry(settings)
try:
    registry.load_oos("champion")
except ModelError as e:  # no champion yet, or one registered before out-of-sample predictions were stored
    from workbench.models.training import panel_lineage, walk_forward

    print(f"{e}\\n→ training a walk-forward LightGBM on {exchange} {timeframe} instead")
    panel = lake.load_panel(exchange, timeframe, symbols)
    result = walk_forward(panel, "lgbm", n_folds=3, lineage=panel_lineage(lake, exchange, timeframe, symbols))
    registry.register(result, alias="champion")
print(registry.load("champion").describe())""",
"""from workbench.backtest import backtest_model

report = backtest_model(settings, ref="champion")  # the CLI: workbench backtest --model champion
print(report.verdict)
report.formatted()""",
"md:The walk-forward windows traded (each fold's model predicted only its own window), with each column's return inside the window and the strategy's trades there — one lucky fold can carry a whole backtest:",
"""from workbench.backtest import format_windows\n\nformat_windows(report.windows)""",
"""report.result.trades[["symbol", "entry_ts", "exit_ts", "entry_price", "exit_price", "pnl", "return_pct", "exit_reason", "window"]].head(10)""",
"md:The plots written with the report — equity (windows shaded), drawdown, P&L per trade coloured by window, and fills on the most-traded symbols:",
"""from IPython.display import Image, display

for name in ("equity", "drawdown", "trade_pnl", "fills"):
    display(Image(filename=str(report.paths[name])))""",
"md:The same numbers are logged to the model's MLflow run as `backtest_*` metrics (buy & hold as `backtest_buy_hold_*`, the baseline as `backtest_baseline_*`), with the HTML and PNG files under the run's `reports/` artifacts:",
"""import pandas as pd

runs = registry.list().set_index("version")
logged = runs.loc[runs["run_id"] == report.run_id, "metrics"].iloc[0]
print("report:", report.paths["html"])
pd.Series({k: v for k, v in logged.items() if k.startswith("backtest_") and k.endswith(("total_return", "sharpe", "max_drawdown"))}).round(4).to_frame("logged")""",
"md:From a shell, for a subset of the universe and a window inside the out-of-sample stretch:\n\n```\nworkbench backtest --model champion --universe AAPL,MSFT,XOM --start 2017-01-01 --end 2017-12-31\n```\nIt prints this table, says whether the strategy beat buy & hold and the baseline after costs, and writes `report.html` + PNGs under `$WORKBENCH_HOME/reports/`.",
],
"dashboard.ipynb": [
"""from workbench.config import load_settings
from workbench.dashboard import Dashboard

app = Dashboard(load_settings())
app.start_autorefresh()
app.widget""",
],
}
NB.mkdir(parents=True, exist_ok=True)
for name, cells in nbs.items():
    nbf.write(nb(cells), NB / name)
print("ok")
