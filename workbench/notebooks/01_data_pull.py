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
# # 1 · Data pull
#
# 1. **Instruments**: the master table of everything tradable (NASDAQ Trader, NSE, BSE, Zerodha Kite, ccxt exchanges) — `workbench instruments refresh`.
# 2. **Candles** go from a source (ccxt exchange, Kite, Alpaca, CSV file, or the synthetic generator) into the parquet lake under `WORKBENCH_HOME/data/lake`, and come back as aligned (time × instrument) frames read with DuckDB.
# 3. **Checks**: gaps against each exchange's trading calendar, and bad bars kept aside in a quarantine table with the reason.
#
# The demo data set is public Binance candles when the network answers, otherwise a **synthetic** market (vectorbt `GBMData`), labelled as such everywhere.

# %%
from workbench.config import load_settings
from workbench.instruments import InstrumentMaster, refresh

settings = load_settings()  # honours WORKBENCH_HOME, $WORKBENCH_HOME/workbench.toml and WORKBENCH_RESEARCH_DATA_DIR
settings.ensure_dirs()
master = InstrumentMaster.of(settings)
saved_lists = settings.research_data_dir / "instruments" if settings.research_data_dir else None
if saved_lists is not None and saved_lists.is_dir():  # saved copies of the published lists (offline)
    print(refresh(master, "all", saved_lists).summary())
elif not master.exists():
    print("No saved lists here: `workbench instruments refresh` downloads them (NASDAQ Trader, NSE, BSE, Kite, Binance).")

# %%
master.counts() if master.exists() else None

# %% [markdown]
# Pick a universe from the master, e.g. the NSE listings of a few large companies (the same ISIN on BSE is another instrument):

# %%
master.search("infosys", limit=6)[["key", "name", "isin", "kite_token", "tick_size", "source"]] if master.exists() else None

# %% [markdown]
# ## Candles
#
# The demo universe is pulled only if the lake lacks it (a progress bar shows long pulls; an interrupted pull resumes from the last stored bar).

# %%
from workbench.data.demo import ensure_demo_data
from workbench.data.lake import Lake

universe = ensure_demo_data(settings, progress=True)
lake = Lake(settings.lake_dir)
universe

# %% [markdown]
# What the lake holds (one row per exchange / timeframe / symbol):

# %%
lake.catalog()

# %% [markdown]
# **Gaps**: bars the exchange calendar expects between a symbol's first and last stored bar that are missing (NSE/BSE, NYSE/NASDAQ sessions and holidays from `exchange_calendars`; crypto trades 24/7). NSE/BSE holidays are recorded only up to the calendar's horizon (the last year the installed `exchange_calendars` lists them for): beyond it a weekday is expected to be a session unless you add the holiday under `[calendars] extra_holidays` in `workbench.toml`, and the gap table's note says when a range reaches there. **Quarantine**: bars a feed sent that failed a check (NaN, non-positive price, high < low, negative volume, duplicate, out of order), stored apart with the reason — never silently dropped or kept.

# %%
from workbench.data.calendars import Calendars, exchange_calendar, find_gaps

gaps = find_gaps(lake, universe.exchange, universe.timeframe, calendars=Calendars.from_settings(settings))
horizon = exchange_calendar(universe.exchange).horizon
print(f"holidays recorded to: {horizon:%Y-%m-%d}" if horizon is not None else "trades around the clock")
print(gaps.attrs.get("note") or "every date here lies in the years whose holidays are recorded")
gaps

# %%
lake.quarantined()

# %% [markdown]
# Panels: aligned (time × instrument) frames of the fields you ask for, for instruments named `EXCHANGE:SYMBOL` (several exchanges may be mixed).

# %%
keys = [f"{universe.exchange}:{s}" for s in universe.symbols]
frames = lake.load_panel_for(keys, universe.timeframe, fields=("close", "volume"))
close = frames["close"]
close.tail()

# %%
ax = (close / close.bfill().iloc[0]).plot(figsize=(10, 4), title=f"{universe.label}: growth of 1")
ax.set_ylabel("× first close");

# %% [markdown]
# ## Your own data
#
# ```python
# from workbench.data.ingest import pull, source_from_spec
# report = pull(lake, source_from_spec('csv:/path/to/AAPL_data.csv@NASDAQ', settings), ['AAPL'], '1d')
# ```
# or from a shell: `workbench data pull --source ccxt:binance -s BTC/USDT -s ETH/USDT --timeframe 1d` (also `--source kite:NSE` after `workbench keys set kite` and `workbench keys kite-login`, `--source alpaca:NASDAQ` after `workbench keys set alpaca`; or the `WORKBENCH_KEY_*` variables, see the README). A CSV file you import is checked strictly: a bad bar stops the import with the file and row named; `--lenient` keeps the good bars and quarantines the bad ones with their row and reason. A folder of files: `workbench data ingest FOLDER --exchange NYSE [--lenient]` (read in parallel). A second vendor's bars are not added to a symbol's stored history unless you pass `--allow-stitch`. Live quotes for thousands of instruments: `workbench.data.quotes.fetch_quotes(keys, sources)`.
