"""The demo universe `make run` and the notebooks start from: real public candles when the network
is there, otherwise a synthetic market that says so in its name.

``ensure_demo_data`` is idempotent: a synthetic market once written is reused as is (a fixed
demo keeps models and backtests reproducible; ``workbench data pull --source synthetic`` extends
it on request), real candles are topped up incrementally. The returned ``DemoUniverse`` tells every caller which one it got, so the
dashboard and notebooks can label synthetic results plainly.
"""

from __future__ import annotations

from dataclasses import dataclass
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

__all__ = ["DemoUniverse", "ensure_demo_data", "demo_universe_in_lake", "load_demo_panel", "SYNTHETIC_LABEL"]

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


def ensure_demo_data(settings: Settings, source: str | None = None, progress: bool = False, *, ccxt_source: OhlcvSource | None = None) -> DemoUniverse:
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
