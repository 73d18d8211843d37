"""Pull candles from a source into the lake, resuming where each symbol stopped.

``pull`` is the one pipeline step behind ``workbench data pull``, the data notebook and the demo:
a plain function of (lake, source, symbols, timeframe). One symbol failing (unknown, exchange
down) is recorded and the rest go on, so a 500-symbol pull is not lost to one delisted ticker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from tqdm.auto import tqdm

from workbench.data.candles import timeframe_delta
from workbench.data.lake import Lake
from workbench.data.sources.base import ChunkedSource, OhlcvSource
from workbench.errors import ConfigError, WorkbenchError

if TYPE_CHECKING:
    from workbench.config import Settings

__all__ = ["PullReport", "pull", "source_from_spec"]


@dataclass(frozen=True)
class PullReport:
    """What a pull did: new bars per symbol, and the error text of each symbol that failed."""

    exchange: str
    timeframe: str
    new_rows: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    quarantined: dict[str, int] = field(default_factory=dict)

    @property
    def total_new(self) -> int:
        return sum(self.new_rows.values())

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        text = f"{self.exchange}/{self.timeframe}: {self.total_new} new bars for {len(self.new_rows)} symbols"
        if self.errors:
            text += f"; {len(self.errors)} failed: " + "; ".join(f"{s}: {e}" for s, e in self.errors.items())
        bad = sum(self.quarantined.values())
        if bad:
            text += f"; {bad} bad bars quarantined (see Lake.quarantined())"
        return text


def pull(
    lake: Lake,
    source: OhlcvSource,
    symbols: list[str],
    timeframe: str,
    since=None,
    progress: bool = True,
    *,
    backfill_from=None,
) -> PullReport:
    """Fetch each symbol and append it to the lake.

    With ``since=None`` a symbol resumes one bar after its last stored bar; a symbol with nothing
    stored starts at ``backfill_from`` (None: whatever the source gives by default, e.g. the
    exchange's latest page). An explicit ``since`` re-fetches from there; stored bars are kept
    (``Lake.write``), so overlaps cost time, never correctness.
    """
    step = timeframe_delta(timeframe)
    new_rows: dict[str, int] = {}
    errors: dict[str, str] = {}
    quarantined: dict[str, int] = {}
    bar = tqdm(list(dict.fromkeys(symbols)), desc=f"pull {source.name} {timeframe}", unit="symbol", disable=not progress, leave=False)
    for symbol in bar:
        bar.set_postfix_str(symbol)
        start = since
        if start is None:
            last = lake.last_ts(source.exchange, timeframe, symbol)
            start = last + step if last is not None else backfill_from
        try:
            since_ts = None if start is None else pd.Timestamp(start)
            if isinstance(source, ChunkedSource):
                # Page by page: an interrupted pull keeps what it stored; bad bars are quarantined.
                added = bad = 0
                try:
                    for page in source.iter_raw(symbol, timeframe, since=since_ts):
                        result = lake.write_screened(page, source.exchange, timeframe, source.name)
                        added, bad = added + result.added, bad + result.quarantined
                finally:  # pages stored before an error or Ctrl-C are counted, not lost
                    if added or bad:
                        new_rows[symbol] = added
                    if bad:
                        quarantined[symbol] = bad
                new_rows[symbol] = added
            else:
                candles = source.fetch(symbol, timeframe, since=since_ts)
                new_rows[symbol] = lake.write(candles, source.exchange, timeframe, source.name) if len(candles) else 0
        except WorkbenchError as e:  # data or source errors: record, go on; bugs still surface
            errors[symbol] = str(e)
    bar.close()
    return PullReport(source.exchange, timeframe, new_rows, errors, quarantined)


def source_from_spec(spec: str, settings: Settings) -> OhlcvSource:
    """``ccxt:<id>`` | ``kite[:EXCHANGE]`` | ``alpaca[:EXCHANGE]`` | ``csv:<path>[@<EXCHANGE>]`` | ``synthetic`` → a source.

    Venues' history comes from their package (``workbench.venues.<name>.data``), keys from the vault or
    the venue's ``WORKBENCH_KEY_*`` variables.

    For CSV the exchange is taken from the file's layout when it implies one (NSE/BSE exports,
    US vendor files → ``US``), else ``csv``; ``@EXCHANGE`` overrides it and also sets the time
    zone of naive intraday timestamps (NYSE/NASDAQ → New York, NSE/BSE → Kolkata).
    The synthetic market uses ``settings.demo`` (symbols, seed, bars, timeframe).
    """
    kind, _, rest = spec.partition(":")
    kind = kind.strip().lower()
    if kind == "synthetic":
        from workbench.data.sources.synthetic import SyntheticSource

        demo = settings.demo
        return SyntheticSource(demo.synthetic_symbols, seed=demo.seed, timeframe=demo.timeframe, bars=demo.bars)
    if kind == "csv":
        from workbench.data.sources.csv_source import EXCHANGE_TZ, CsvSource

        path_text, exchange = rest, None
        if "@" in rest:
            head, tail = rest.rsplit("@", 1)
            if tail and "/" not in tail and "\\" not in tail:
                path_text, exchange = head, tail.strip()
        path = Path(path_text).expanduser()
        if not path_text or not path.is_file():
            raise ConfigError(f"csv source {spec!r}: {path} is not a file; use csv:<path to one CSV>[@EXCHANGE]")
        if exchange is None:
            exchange = CsvSource(path, "csv").layout.exchange or "csv"
        return CsvSource(path, exchange, tz=EXCHANGE_TZ.get(exchange.upper(), "UTC"))
    from workbench.venues import VENUES, get_venue, venue_config

    make_source = get_venue(kind).data if kind in VENUES else None
    if make_source is not None:  # a venue's history: ccxt:<id>, kite[:EXCHANGE], alpaca[:EXCHANGE]
        return make_source(settings, venue_config(settings, kind), instance=rest.strip() or None)
    raise ConfigError(f"unknown data source {spec!r}: use ccxt:<exchange id>, kite[:EXCHANGE], alpaca[:EXCHANGE], csv:<path>[@EXCHANGE] or synthetic")
