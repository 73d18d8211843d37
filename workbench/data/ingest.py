"""Pull candles from a source into the lake, resuming where each symbol stopped.

``pull`` is the one pipeline step behind ``workbench data pull``, the data notebook and the demo:
a plain function of (lake, source, symbols, timeframe). One symbol failing (unknown, exchange
down) is recorded and the rest go on, so a 500-symbol pull is not lost to one delisted ticker.
``ingest_folder`` imports a folder of CSV files the same way, reading them in parallel processes.

Two checks before bars are trusted: rows a lenient source set aside go to the lake's quarantine
with their reason (never dropped silently), and bars from a second vendor are not stitched onto a
symbol's history unless the caller allows it — two vendors' prices differ (adjustments, sessions),
so a series that silently switches vendor is not one series. An allowed stitch is recorded in
``stitches.jsonl`` beside the lake, and the bars keep their vendor in the lake's ``source`` column.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from tqdm.auto import tqdm

from workbench.data.candles import timeframe_delta
from workbench.data.lake import Lake
from workbench.data.sources.base import ChunkedSource, OhlcvSource, ScreenedSource
from workbench.errors import ConfigError, DataError, WorkbenchError

if TYPE_CHECKING:
    from workbench.config import Settings
    from workbench.data.sources.csv_source import CsvSource

__all__ = ["STITCH_LOG", "IngestReport", "PullReport", "ingest_folder", "pull", "source_from_spec", "stitches"]

STITCH_LOG = "stitches.jsonl"  # in the lake's root: one JSON line per allowed stitch


@dataclass(frozen=True)
class PullReport:
    """What a pull did: new bars per symbol, and the error text of each symbol that failed."""

    exchange: str
    timeframe: str
    new_rows: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    quarantined: dict[str, int] = field(default_factory=dict)
    stitched: dict[str, str] = field(default_factory=dict)  # symbol → what was stitched onto what

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
        if self.stitched:
            text += f"; stitched (recorded in {STITCH_LOG}): " + "; ".join(
                f"{s}: {n}" for s, n in self.stitched.items()
            )
        return text


_Stored = dict[tuple[str, str, str], frozenset[str]]  # (exchange, timeframe, symbol) → vendors stored


def _stored_sources(lake: Lake) -> _Stored:
    cat = lake.catalog()
    return {
        (str(r.exchange), str(r.timeframe), str(r.symbol)): frozenset(str(r.source).split(","))
        for r in cat.itertuples()
    }


def _check_stitch(
    lake: Lake,
    exchange: str,
    timeframe: str,
    symbol: str,
    vendor: str,
    have: frozenset[str],
    candles: pd.DataFrame,
    allow: bool,
) -> str | None:
    """None when nothing would be stitched; else a note (allowed) — or a refusal naming the fix."""
    if not have or vendor in have:
        return None
    stored = lake.load_candles(exchange, timeframe, [symbol])
    fresh = candles[~candles["ts"].isin(stored["ts"])]
    if fresh.empty:
        return None
    what = f"{len(fresh)} bars from {vendor} ({fresh['ts'].min().date()} .. {fresh['ts'].max().date()})"
    onto = f"{len(stored)} bars from {', '.join(sorted(have))} ({stored['ts'].min().date()} .. {stored['ts'].max().date()})"
    if not allow:
        raise DataError(
            f"{exchange}/{timeframe} {symbol} holds {onto}; {what} would be stitched onto that history, and two "
            "vendors' prices differ (adjustments, sessions). Refused: pass --allow-stitch (allow_stitch=True) to "
            "stitch them anyway (it is recorded), or import this file under another exchange name."
        )
    return f"{what} onto {onto}"


def _record_stitch(lake: Lake, exchange: str, timeframe: str, symbol: str, vendor: str, note: str, added: int) -> None:
    entry = {
        "at": pd.Timestamp.now(tz="UTC").isoformat(),
        "exchange": exchange,
        "timeframe": timeframe,
        "symbol": symbol,
        "source": vendor,
        "added": added,
        "note": note,
    }
    lake.root.mkdir(parents=True, exist_ok=True)
    with open(lake.root / STITCH_LOG, "a") as fh:
        fh.write(json.dumps(entry) + "\n")


def stitches(lake: Lake) -> pd.DataFrame:
    """Every stitch allowed so far (when, which symbol, which vendor onto which, bars added)."""
    path = lake.root / STITCH_LOG
    cols = ["at", "exchange", "timeframe", "symbol", "source", "added", "note"]
    if not path.exists():
        return pd.DataFrame(columns=cols)
    return pd.DataFrame([json.loads(line) for line in path.read_text().splitlines() if line.strip()], columns=cols)


def _store(
    lake: Lake,
    source: OhlcvSource,
    symbol: str,
    timeframe: str,
    candles: pd.DataFrame,
    stored: _Stored,
    allow_stitch: bool,
) -> tuple[int, int, str | None]:
    """Write one symbol's fetched bars (and quarantine what the source set aside): (added, quarantined, stitch)."""
    have = stored.get((source.exchange, timeframe, symbol), frozenset())
    note = _check_stitch(lake, source.exchange, timeframe, symbol, source.name, have, candles, allow_stitch)
    added = lake.write(candles, source.exchange, timeframe, source.name) if len(candles) else 0
    if added:  # a second file of the same symbol later in this import is checked against this one
        stored[(source.exchange, timeframe, symbol)] = have | {source.name}
    bad = source.rejected_for(symbol) if isinstance(source, ScreenedSource) else None
    if bad is not None and len(bad):
        lake.quarantine(bad, source.exchange, timeframe, source.name)
    if note is not None and added:
        _record_stitch(lake, source.exchange, timeframe, symbol, source.name, note, added)
    return added, 0 if bad is None else len(bad), note if added else None


def pull(
    lake: Lake,
    source: OhlcvSource,
    symbols: list[str],
    timeframe: str,
    since=None,
    progress: bool = True,
    *,
    backfill_from=None,
    allow_stitch: bool = False,
) -> PullReport:
    """Fetch each symbol and append it to the lake.

    With ``since=None`` a symbol resumes one bar after its last stored bar; a symbol with nothing
    stored starts at ``backfill_from`` (None: whatever the source gives by default, e.g. the
    exchange's latest page). An explicit ``since`` re-fetches from there; stored bars are kept
    (``Lake.write``), so overlaps cost time, never correctness. Bars from another vendor than the
    symbol's stored ones are refused for that symbol unless ``allow_stitch`` (see the module doc);
    this is checked for whole-history sources (files, synthetic), not for paged API sources, which
    resume their own exchange partition (the lake has no cheap per-symbol vendor lookup yet).
    """
    step = timeframe_delta(timeframe)
    new_rows: dict[str, int] = {}
    errors: dict[str, str] = {}
    quarantined: dict[str, int] = {}
    stitched: dict[str, str] = {}
    chunked = isinstance(source, ChunkedSource)
    # The vendor check reads the lake's catalog (every stored file): once per import, not on every
    # cycle of the live feed, which pulls an API source (chunked) into its own partition every 30 s.
    stored = {} if chunked else _stored_sources(lake)
    bar = tqdm(
        list(dict.fromkeys(symbols)),
        desc=f"pull {source.name} {timeframe}",
        unit="symbol",
        disable=not progress,
        leave=False,
    )
    for symbol in bar:
        bar.set_postfix_str(symbol)
        start = since
        # a source spanning exchanges (Alpaca: NASDAQ, NYSE, …) names each symbol's own
        exchange = source.exchange_of(symbol) if hasattr(source, "exchange_of") else source.exchange
        if start is None:
            last = lake.last_ts(exchange, timeframe, symbol)
            start = last + step if last is not None else backfill_from
        try:
            since_ts = None if start is None else pd.Timestamp(start)
            if isinstance(source, ChunkedSource):
                # Page by page: an interrupted pull keeps what it stored; bad bars are quarantined.
                added = bad = 0
                try:
                    for page in source.iter_raw(symbol, timeframe, since=since_ts):
                        result = lake.write_screened(page, exchange, timeframe, source.name)
                        added, bad = added + result.added, bad + result.quarantined
                finally:  # pages stored before an error or Ctrl-C are counted, not lost
                    if added or bad:
                        new_rows[symbol] = added
                    if bad:
                        quarantined[symbol] = bad
                new_rows[symbol] = added
            else:
                candles = source.fetch(symbol, timeframe, since=since_ts)
                added, bad, note = _store(lake, source, symbol, timeframe, candles, stored, allow_stitch)
                new_rows[symbol] = added
                if bad:
                    quarantined[symbol] = bad
                if note is not None:
                    stitched[symbol] = note
        except WorkbenchError as e:  # data or source errors: record, go on; bugs still surface
            errors[symbol] = str(e)
    bar.close()
    return PullReport(source.exchange, timeframe, new_rows, errors, quarantined, stitched)


@dataclass(frozen=True)
class IngestReport:
    """What ``ingest_folder`` did, per file and per symbol."""

    folder: str
    exchange: str
    files: int
    new_rows: dict[str, int] = field(default_factory=dict)  # symbol → bars added
    errors: dict[str, str] = field(default_factory=dict)  # file (or symbol) → why it was not imported
    quarantined: dict[str, int] = field(default_factory=dict)  # symbol → rows set aside
    stitched: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def total_new(self) -> int:
        return sum(self.new_rows.values())

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        text = (
            f"{self.folder} → {self.exchange}: {self.files} files, {self.total_new} new bars for "
            f"{len(self.new_rows)} symbols in {self.seconds:.1f} s"
        )
        bad = sum(self.quarantined.values())
        if bad:
            text += f"; {bad} bad rows of {len(self.quarantined)} symbols quarantined (see Lake.quarantined())"
        if self.stitched:
            text += f"; {len(self.stitched)} symbols stitched onto another vendor (recorded in {STITCH_LOG})"
        if self.errors:
            text += f"; {len(self.errors)} not imported:" + "".join(f"\n  {k}: {v}" for k, v in self.errors.items())
        return text


def _read_file(path: Path, exchange: str, tz: str, lenient: bool) -> tuple[Path, CsvSource | None, str | None]:
    """Parse and check one file (in a worker process): the source with its bars read, or why not."""
    from workbench.data.sources.csv_source import CsvSource

    src = CsvSource(path, exchange, tz=tz, lenient=lenient)
    try:
        src.candles, src.rejected, src.timeframe  # noqa: B018 - fill the cached reads before pickling back
        return path, src, None
    except WorkbenchError as e:
        return path, None, str(e)


def _files(folder: Path, pattern: str) -> list[Path]:
    if not folder.is_dir():
        raise ConfigError(f"{folder} is not a folder: give a folder of CSV files")
    files = sorted(p for p in folder.glob(pattern) if p.is_file())
    if not files:
        raise ConfigError(f"{folder} has no files matching {pattern!r}")
    return files


def ingest_folder(
    lake: Lake,
    folder: Path | str,
    exchange: str,
    *,
    timeframe: str | None = None,
    lenient: bool = False,
    allow_stitch: bool = False,
    workers: int | None = None,
    pattern: str = "*.csv",
    progress: bool = True,
) -> IngestReport:
    """Import every CSV file of ``folder`` into ``exchange`` in one go.

    Files are parsed and checked in ``workers`` processes (default: the CPUs this process may use);
    the lake is written by this process alone (one writer, see ``Lake``). A file that cannot be read
    is reported and the rest go on; with ``lenient`` its bad rows are quarantined instead. The
    timeframe is each file's own (the most common step) unless ``timeframe`` is given.
    """
    from workbench.data.sources.csv_source import EXCHANGE_TZ

    t0 = time.perf_counter()
    folder = Path(folder).expanduser()
    files = _files(folder, pattern)
    tz = EXCHANGE_TZ.get(exchange.upper(), "UTC")
    n = max(1, min(workers or len(os.sched_getaffinity(0)), len(files)))
    new_rows: dict[str, int] = {}
    errors: dict[str, str] = {}
    quarantined: dict[str, int] = {}
    stitched: dict[str, str] = {}
    stored = _stored_sources(lake)

    def results() -> Iterable[tuple[Path, CsvSource | None, str | None]]:
        if n == 1:
            return (_read_file(p, exchange, tz, lenient) for p in files)
        pool = ProcessPoolExecutor(max_workers=n, mp_context=_reader_context())
        chunk = max(1, len(files) // (n * 8))
        return _closing(
            pool,
            pool.map(
                _read_file, files, [exchange] * len(files), [tz] * len(files), [lenient] * len(files), chunksize=chunk
            ),
        )

    bar = tqdm(results(), total=len(files), desc=f"ingest {folder.name}", unit="file", disable=not progress)
    for path, src, err in bar:
        if src is None:
            errors[path.name] = err or "unreadable"
            continue
        tf = timeframe or src.timeframe or "1d"
        for symbol in src.symbols():
            try:
                added, bad, note = _store(lake, src, symbol, tf, src.fetch(symbol, tf), stored, allow_stitch)
            except WorkbenchError as e:
                errors[f"{path.name} {symbol}"] = str(e)
                continue
            new_rows[symbol] = new_rows.get(symbol, 0) + added
            if bad:
                quarantined[symbol] = quarantined.get(symbol, 0) + bad
            if note is not None:
                stitched[symbol] = note
    bar.close()
    return IngestReport(
        str(folder), exchange, len(files), new_rows, errors, quarantined, stitched, time.perf_counter() - t0
    )


def _reader_context() -> multiprocessing.context.BaseContext:
    """Readers start from a clean, single-threaded server process that has already imported this module.

    Why not plain fork: the caller (a notebook kernel, the CLI with DuckDB or TensorFlow loaded) may
    run threads, and a forked child can inherit a lock one of them held. The forkserver is started
    once per process and forks each reader from its preloaded state, so a reader still starts in
    milliseconds. Where there is no forkserver (Windows), readers are spawned.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])
    return ctx


def _closing(pool: ProcessPoolExecutor, it: Iterable) -> Iterable:
    """Yield from ``it``, then shut the pool down (also when the caller stops early)."""
    try:
        yield from it
    finally:
        pool.shutdown(cancel_futures=True)


def source_from_spec(spec: str, settings: Settings, *, lenient: bool = False) -> OhlcvSource:
    """``ccxt:<id>`` | ``kite[:EXCHANGE]`` | ``alpaca[:EXCHANGE]`` | ``csv:<path>[@<EXCHANGE>]`` | ``synthetic`` → a source.

    Venues' history comes from their package (``workbench.venues.<name>.data``), keys from the vault or
    the venue's ``WORKBENCH_KEY_*`` variables.

    For CSV the exchange is taken from the file's layout when it implies one (NSE/BSE website
    exports); any other file must name it (``@NYSE``): a US vendor file does not say NYSE or NASDAQ,
    and a guess would file the bars where no model or broker looks for them. ``@EXCHANGE`` also sets
    the time zone of naive intraday timestamps (NYSE/NASDAQ → New York, NSE/BSE → Kolkata).
    ``lenient`` quarantines a CSV file's bad rows instead of refusing the file.
    The synthetic market uses ``settings.demo`` (symbols, seed, bars, timeframe).
    """
    kind, _, rest = spec.partition(":")
    kind = kind.strip().lower()
    if kind == "synthetic":
        from workbench.data.sources.synthetic import SyntheticSource

        demo = settings.demo
        return SyntheticSource(
            demo.synthetic_symbols,
            seed=demo.seed,
            timeframe=demo.timeframe,
            bars=demo.bars,
            structure=demo.synthetic_structure,
        )
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
            layout = CsvSource(path, "csv").layout
            if layout.exchange is None:
                raise ConfigError(
                    f"csv source {spec!r}: the file ({layout.name} layout) does not say which exchange its bars "
                    f"trade on; name it after an @, e.g. csv:{path}@NYSE (or @NASDAQ, @NSE, @BSE, ...)"
                )
            exchange = layout.exchange
        return CsvSource(path, exchange, tz=EXCHANGE_TZ.get(exchange.upper(), "UTC"), lenient=lenient)
    from workbench.venues import VENUES, get_venue, venue_config

    make_source = get_venue(kind).data if kind in VENUES else None
    if make_source is not None:  # a venue's history: ccxt:<id>, kite[:EXCHANGE], alpaca[:EXCHANGE]
        return make_source(settings, venue_config(settings, kind), instance=rest.strip() or None)
    raise ConfigError(
        f"unknown data source {spec!r}: use ccxt:<exchange id>, kite[:EXCHANGE], alpaca[:EXCHANGE], csv:<path>[@EXCHANGE] or synthetic"
    )
