"""The demo universe `make run` and the notebooks start from: real public candles when the network
is there, otherwise a synthetic market that says so in its name.

``ensure_demo_data`` is idempotent: a synthetic market once written is reused as is (a fixed
demo keeps models and backtests reproducible; ``workbench data pull --source synthetic`` extends
it on request), real candles are topped up incrementally. The returned ``DemoUniverse`` tells every caller which one it got, so the
dashboard and notebooks can label synthetic results plainly.
"""

from __future__ import annotations

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
    "load_demo_panel",
    "research_panel",
]

SYNTHETIC_LABEL = "SYNTHETIC market (vectorbt GBMData)"


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


def _ccxt_universe(settings: Settings, lake: Lake) -> DemoUniverse | None:
    demo = settings.demo
    stored = _stored(lake, demo.ccxt_exchange, demo.timeframe, demo.ccxt_symbols)
    if not stored:
        return None
    return DemoUniverse(demo.ccxt_exchange, demo.timeframe, stored, False, f"ccxt:{demo.ccxt_exchange}")


def demo_universe_in_lake(settings: Settings) -> DemoUniverse | None:
    """The demo dataset already stored, if any (real candles preferred unless the setting says synthetic)."""
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
    source = SyntheticSource(demo.synthetic_symbols, seed=demo.seed, timeframe=demo.timeframe, bars=demo.bars)
    lake.write(source.candles(), source.exchange, demo.timeframe, source.name)
    return DemoUniverse("synthetic", demo.timeframe, tuple(demo.synthetic_symbols), True, "synthetic")


def _pull_ccxt(settings: Settings, lake: Lake, source: OhlcvSource, progress: bool) -> DemoUniverse:
    demo = settings.demo
    backfill = pd.Timestamp.now(tz="UTC").floor("D") - demo.bars * timeframe_delta(demo.timeframe)
    report = pull(lake, source, list(demo.ccxt_symbols), demo.timeframe, progress=progress, backfill_from=backfill)
    found = _ccxt_universe(settings, lake)
    if found is None:
        raise DataError(f"no demo candles could be pulled from {source.name}: {report.summary()}")
    return found


def ensure_demo_data(
    settings: Settings, source: str | None = None, progress: bool = False, *, ccxt_source: OhlcvSource | None = None
) -> DemoUniverse:
    """Make sure the lake holds the demo universe and say which one it is.

    ``source`` (default ``settings.demo.source``): ``synthetic``; ``ccxt`` (must succeed);
    ``auto`` — ccxt if the exchange answers within ``settings.demo.network_timeout_s``, else real
    candles already stored, else synthetic. ``ccxt_source`` replaces the default
    ``CcxtSource(settings.demo.ccxt_exchange)`` (tests point it at a local fake exchange).
    """
    choice = source or settings.demo.source
    if choice not in ("auto", "ccxt", "synthetic"):
        raise ConfigError(f"demo source {choice!r} is not one of auto, ccxt, synthetic")
    settings.ensure_dirs()
    lake = Lake(settings.lake_dir)
    if choice == "synthetic":
        return _make_synthetic(settings, lake, progress)
    if ccxt_source is None:
        from workbench.venues.ccxt.data import CcxtSource

        ccxt_source = CcxtSource(settings.demo.ccxt_exchange)
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
