"""The demo universe `make run` and the notebooks start from: real public candles when the network
is there, otherwise a synthetic market that says so in its name.

``ensure_demo_data`` is idempotent: a synthetic market once written is reused as is (a fixed
demo keeps models and backtests reproducible; ``workbench data pull --source synthetic`` extends
it on request), real candles are topped up incrementally. The returned ``DemoUniverse`` tells every caller which one it got, so the
dashboard and notebooks can label synthetic results plainly.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from workbench.data.candles import timeframe_delta
from workbench.data.ingest import pull
from workbench.data.lake import Lake
from workbench.data.panel import Panel
from workbench.data.sources.base import OhlcvSource
from workbench.errors import ConfigError, DataError

if TYPE_CHECKING:
    from workbench.config import Settings

__all__ = [
    "SP500_FOLDER",
    "SYNTHETIC_LABEL",
    "DemoUniverse",
    "ResearchData",
    "demo_universe_in_lake",
    "ensure_demo_data",
    "top_pairs",
    "load_demo_panel",
    "research_panel",
]

# Said wherever the offline demo shows: made-up prices, and whatever a model finds in them was planted.
SYNTHETIC_LABEL = "SYNTHETIC market (vectorbt GBM with a planted momentum: any edge here is made up)"


@dataclass(frozen=True)
class DemoUniverse:
    exchange: str
    timeframe: str
    symbols: tuple[str, ...]
    synthetic: bool
    source: str

    @property
    def label(self) -> str:
        return SYNTHETIC_LABEL if self.synthetic else f"{self.exchange} public candles"


def _stored(lake: Lake, exchange: str, timeframe: str, wanted: tuple[str, ...]) -> tuple[str, ...]:
    have = set(lake.symbols(exchange, timeframe))
    return tuple(s for s in wanted if s in have)


def _synthetic_universe(settings: Settings, lake: Lake) -> DemoUniverse | None:
    demo = settings.demo
    stored = _stored(lake, "synthetic", demo.timeframe, demo.synthetic_symbols)
    if stored != tuple(demo.synthetic_symbols):
        return None
    return DemoUniverse("synthetic", demo.timeframe, stored, True, "synthetic")


# Bases that are not a market a momentum model should trade: dollar stablecoins and fiat (their price
# is pinned near 1 USDT) and leveraged tokens (a rebalancing product, not the coin).
_PINNED = frozenset(
    {"USDT", "USDC", "BUSD", "TUSD", "FDUSD", "USDP", "DAI", "PAX", "USDD", "UST", "EUR", "GBP", "AEUR", "EURI",
     "TRY", "BRL", "USD1", "XUSD", "BFUSD", "PYUSD", "RLUSD", "USDE"}
)  # fmt: skip
_LEVERAGED = ("UP", "DOWN", "BULL", "BEAR")


def top_pairs(markets: dict[str, dict], tickers: dict[str, dict], quote: str, n: int) -> tuple[str, ...]:
    """The ``n`` active spot ``quote`` pairs with the largest 24 h quote volume, largest first.

    Why quote volume: it is what a desk ranks liquidity by, and the exchange reports it for every pair
    in one ``fetch_tickers`` call (Binance: one request of weight 80), so the demo needs no key and no
    per-pair request to choose its universe. Ties are broken by symbol, so the choice is reproducible.
    """
    ranked: list[tuple[float, str]] = []
    for sym, m in markets.items():
        base = str(m.get("base") or "")
        if m.get("quote") != quote or not m.get("spot", True) or m.get("active") is False:
            continue
        if base in _PINNED or (base.endswith(_LEVERAGED) and len(base) > 4):
            continue
        t = tickers.get(sym) or {}
        qv = t.get("quoteVolume")
        if qv is None and t.get("baseVolume") is not None and t.get("last") is not None:
            qv = float(t["baseVolume"]) * float(t["last"])
        ranked.append((-float(qv or 0.0), sym))
    return tuple(sym for _, sym in sorted(ranked)[:n])


def _manifest_path(settings: Settings) -> Path:
    return Path(settings.home) / "demo_universe.json"


def _read_manifest(settings: Settings) -> dict | None:
    path = _manifest_path(settings)
    try:
        got = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise DataError(f"{path} is not readable ({e}): delete it and run `workbench init --demo` again") from e
    return got if isinstance(got, dict) and isinstance(got.get("symbols"), list) else None


def _ccxt_universe(settings: Settings, lake: Lake) -> DemoUniverse | None:
    """The online demo universe chosen earlier (its manifest) that the lake holds; else the fixed pairs."""
    demo = settings.demo
    chosen = _read_manifest(settings)
    if chosen is not None and chosen.get("exchange") == demo.ccxt_exchange:
        timeframe = str(chosen.get("timeframe") or demo.ccxt_timeframe)
        stored = _stored(lake, demo.ccxt_exchange, timeframe, tuple(chosen["symbols"]))
        if stored:
            return DemoUniverse(demo.ccxt_exchange, timeframe, stored, False, f"ccxt:{demo.ccxt_exchange}")
    stored = _stored(lake, demo.ccxt_exchange, demo.ccxt_timeframe, demo.ccxt_symbols)
    if not stored:
        return None
    return DemoUniverse(demo.ccxt_exchange, demo.ccxt_timeframe, stored, False, f"ccxt:{demo.ccxt_exchange}")


def demo_universe_in_lake(settings: Settings) -> DemoUniverse | None:
    """The demo dataset already stored, if any (real candles preferred unless the setting says synthetic).

    Online this is the few hundred pairs ``init --demo`` chose; the Start page defaults to it."""
    lake = Lake(settings.lake_dir)
    choice = settings.demo.source
    if choice in ("auto", "ccxt"):
        found = _ccxt_universe(settings, lake)
        if found is not None or choice == "ccxt":
            return found
    return _synthetic_universe(settings, lake)


def _make_synthetic(settings: Settings, lake: Lake, progress: bool) -> DemoUniverse:
    existing = _synthetic_universe(settings, lake)
    if existing is not None:
        return existing
    from workbench.data.sources.synthetic import SyntheticSource

    demo = settings.demo
    source = SyntheticSource(
        demo.synthetic_symbols, seed=demo.seed, timeframe=demo.timeframe, bars=demo.bars,
        structure=demo.synthetic_structure,
    )  # fmt: skip
    lake.write(source.candles(), source.exchange, demo.timeframe, source.name)
    return DemoUniverse("synthetic", demo.timeframe, tuple(demo.synthetic_symbols), True, "synthetic")


def _choose_pairs(settings: Settings, source: OhlcvSource, progress: bool) -> tuple[str, ...]:
    """The pairs to pull: those chosen on an earlier run (so a re-run tops up, and the champion's
    universe stays put), else the top ``ccxt_top_n`` by quote volume, else ``ccxt_symbols``."""
    demo = settings.demo
    chosen = _read_manifest(settings)
    if (
        chosen is not None
        and chosen.get("exchange") == demo.ccxt_exchange
        and chosen.get("timeframe") == demo.ccxt_timeframe
        and chosen.get("top_n") == demo.ccxt_top_n
    ):
        return tuple(chosen["symbols"])
    pairs: tuple[str, ...] = ()
    client = getattr(source, "client", None)
    if demo.ccxt_top_n and client is not None:
        try:
            markets = client.load_markets()
            tickers = client.fetch_tickers()
        except Exception as e:  # ccxt's errors: the ranking is a nicety, the fixed pairs still work
            if progress:
                print(f"could not rank {demo.ccxt_exchange}'s pairs ({type(e).__name__}: {e}); using the fixed pairs")
        else:
            pairs = top_pairs(markets, tickers, demo.ccxt_quote, demo.ccxt_top_n)
    pairs = pairs or tuple(demo.ccxt_symbols)
    settings.ensure_dirs()
    manifest = {
        "exchange": demo.ccxt_exchange,
        "timeframe": demo.ccxt_timeframe,
        "top_n": demo.ccxt_top_n,
        "quote": demo.ccxt_quote,
        "chosen_at": pd.Timestamp.now(tz="UTC").isoformat(),
        "symbols": list(pairs),
    }
    _manifest_path(settings).write_text(json.dumps(manifest, indent=1))
    if progress:
        print(f"demo universe: {len(pairs)} {demo.ccxt_quote} pairs of {demo.ccxt_exchange} by 24 h quote volume")
    return pairs


def _pull_ccxt(settings: Settings, lake: Lake, source: OhlcvSource, progress: bool) -> DemoUniverse:
    demo = settings.demo
    pairs = _choose_pairs(settings, source, progress)
    step = timeframe_delta(demo.ccxt_timeframe)
    backfill = pd.Timestamp.now(tz="UTC").floor(step) - demo.bars * step
    report = pull(lake, source, list(pairs), demo.ccxt_timeframe, progress=progress, backfill_from=backfill)
    found = _ccxt_universe(settings, lake)
    if found is None:
        raise DataError(f"no demo candles could be pulled from {source.name}: {report.summary()}")
    return found


def _default_ccxt_source(settings: Settings) -> OhlcvSource:
    """``[venues.ccxt]`` applies (urls, options, rate limit), so the demo can be pointed at a proxy or
    a local fake exchange exactly like trading."""
    from workbench.venues import venue_config
    from workbench.venues.ccxt.data import make_source

    return make_source(settings, venue_config(settings, "ccxt"))


def ensure_demo_data(
    settings: Settings, source: str | None = None, progress: bool = False, *, ccxt_source: OhlcvSource | None = None
) -> DemoUniverse:
    """Make sure the lake holds the demo universe and say which one it is.

    ``source`` (default ``settings.demo.source``): ``synthetic``; ``ccxt`` (must succeed);
    ``auto`` — ccxt if the exchange answers within ``settings.demo.network_timeout_s``, else real
    candles already stored, else synthetic. ``ccxt_source`` replaces the default source of
    ``settings.demo.ccxt_exchange`` built from ``[venues.ccxt]``.
    """
    choice = source or settings.demo.source
    if choice not in ("auto", "ccxt", "synthetic"):
        raise ConfigError(f"demo source {choice!r} is not one of auto, ccxt, synthetic")
    settings.ensure_dirs()
    lake = Lake(settings.lake_dir)
    if choice == "synthetic":
        return _make_synthetic(settings, lake, progress)
    if ccxt_source is None:
        ccxt_source = _default_ccxt_source(settings)
    if choice == "ccxt":
        return _pull_ccxt(settings, lake, ccxt_source, progress)
    reachable = getattr(ccxt_source, "reachable", None)
    if reachable is not None and reachable(settings.demo.network_timeout_s):
        try:
            return _pull_ccxt(settings, lake, ccxt_source, progress)
        except DataError:
            pass  # the exchange answered the ping but not the candles: fall through
    return _ccxt_universe(settings, lake) or _make_synthetic(settings, lake, progress)


def load_demo_panel(settings: Settings, source: str | None = None) -> tuple[DemoUniverse, Panel]:
    """The demo universe and its panel: the first lines of every research notebook."""
    universe = ensure_demo_data(settings, source=source)
    panel = Lake(settings.lake_dir).load_panel(universe.exchange, universe.timeframe, list(universe.symbols))
    return universe, panel


# Where the daily S&P 500 files sit inside ``settings.research_data_dir`` (the shared data's layout).
SP500_FOLDER = Path("us_equities") / "sp500_5yr_kaggle_cnuge"


@dataclass(frozen=True)
class ResearchData:
    """The panel a research notebook works on, and a label saying plainly where it came from."""

    panel: Panel
    exchange: str
    timeframe: str
    symbols: tuple[str, ...]
    real: bool
    label: str

    def __str__(self) -> str:
        return self.label


def _real_folder(settings: Settings, symbols: Sequence[str]) -> tuple[Path | None, str]:
    """The folder holding every requested symbol's file, or None and why not."""
    root = settings.research_data_dir
    if root is None:
        return None, "research_data_dir is not set (WORKBENCH_RESEARCH_DATA_DIR)"
    folder = Path(root) / SP500_FOLDER
    missing = [s for s in symbols if not (folder / f"{s}_data.csv").is_file()]
    if missing:
        return None, f"{folder} lacks {', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}"
    return folder, ""


def research_panel(settings: Settings, symbols: Sequence[str], *, exchange: str = "NYSE") -> ResearchData:
    """Real daily S&P 500 bars for ``symbols`` when ``settings.research_data_dir`` holds them all, else the demo.

    Why one function: every research notebook needs "many instruments over years if we have them,
    the demo otherwise, and say which". The real files go through the lake like any import
    (``pull`` resumes, so a second call adds nothing), so lineage and checks are the same as for
    ``workbench data pull``. A file the import refuses is an error, not a silently smaller universe.
    """
    folder, why_not = _real_folder(settings, symbols)
    if folder is None:
        universe, panel = load_demo_panel(settings)
        label = f"NOTE: real data not found ({why_not}); the demo panel instead: {universe.label}"
        return ResearchData(panel, universe.exchange, universe.timeframe, universe.symbols, False, label)
    from workbench.data.sources.csv_source import CsvSource

    settings.ensure_dirs()
    lake = Lake(settings.lake_dir)
    wanted = tuple(dict.fromkeys(symbols))
    failed: dict[str, str] = {}
    for sym in wanted:
        report = pull(
            lake, CsvSource(folder / f"{sym}_data.csv", exchange=exchange, symbol=sym), [sym], "1d", progress=False
        )
        failed.update(report.errors)
    if failed:
        raise DataError(
            f"real data in {folder} could not be imported: " + "; ".join(f"{s}: {e}" for s, e in failed.items())
        )
    panel = lake.load_panel(exchange, "1d", list(wanted))
    label = (
        f"REAL data: {len(wanted)} S&P 500 stocks, daily bars, {panel.index[0].date()} .. "
        f"{panel.index[-1].date()}, from {folder}"
    )
    return ResearchData(panel, exchange, "1d", wanted, True, label)
