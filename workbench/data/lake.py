"""The parquet lake: one sorted file per (exchange, timeframe) with a symbol column, read as panels.

Layout::

    <root>/ohlcv/exchange=<ex>/timeframe=<tf>/data.parquet          (+ small delta-*.parquet, .lock)

Partition values are URL-quoted (``BTC/USDT`` → ``BTC%2FUSDT``, ``M&M`` → ``M%26M``) so any name is
a safe directory name. A dataset's bars live in one file sorted by (symbol, ts) plus the deltas
appended since its last compaction (``lakefiles`` holds the file mechanics). Panels are read by one
Arrow scan straight into (time × symbol) arrays; ad-hoc queries go through DuckDB over ``_glob``.

Writes are atomic (temp file + ``os.replace``) and serialised by the dataset's file lock, so two
writers (the CLI and the live process's refresh) cannot lose each other's appends and a reader never
sees half a write. Lakes in the earlier per-symbol layout (``symbol=<x>/data.parquet``) are migrated
automatically, once, on the first access to each dataset.
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

import duckdb
import numpy as np
import pandas as pd
import pyarrow.compute as pc

from workbench.data import lakefiles as lf
from workbench.data.candles import CANDLE_COLUMNS, QUARANTINE_COLUMNS, screen_candles, validate_candles
from workbench.data.panel import FIELDS, Panel
from workbench.errors import NoDataError, UnknownSymbolError

__all__ = ["Lake", "CATALOG_COLUMNS", "QUARANTINE_TABLE_COLUMNS", "WriteResult", "catalog_frame", "wide_frames"]

log = logging.getLogger(__name__)

CATALOG_COLUMNS = ("exchange", "timeframe", "symbol", "source", "rows", "first", "last")
QUARANTINE_TABLE_COLUMNS = ("exchange", "timeframe", *QUARANTINE_COLUMNS, "source", "quarantined_at")
_STORED = lf.STORED


def _q(value: str) -> str:
    return quote(str(value), safe="")


def _utc(ts) -> pd.Timestamp:
    t = pd.Timestamp(ts)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def _query(sql: str, params: list | None = None) -> pd.DataFrame:
    """Run one query on a fresh in-memory DuckDB (UTC session) and return a pandas frame."""
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        return con.sql(sql, params=params or None).to_arrow_table().to_pandas()


@dataclass(frozen=True)
class WriteResult:
    """What one screened write did: bars stored (new), bars quarantined."""

    added: int
    quarantined: int


def wide_frames(long: pd.DataFrame, fields, columns: list[str], column_of: str = "symbol") -> dict[str, pd.DataFrame]:
    """Long bars → one (ts × column) float frame per field, by direct numpy placement.

    Why not ``pivot_table``: it groups and aggregates, which costs seconds on millions of bars; the
    lake already guarantees one bar per (symbol, ts), so each value has exactly one cell.
    """
    ts_codes, ts_values = pd.factorize(long["ts"], sort=True)
    col_index = pd.Index(columns)
    col_codes = col_index.get_indexer(pd.Index(long[column_of]))
    index = pd.DatetimeIndex(ts_values, name="ts")
    if index.tz is None:
        index = index.tz_localize("UTC")
    keep = col_codes >= 0
    out = {}
    for f in fields:
        arr = np.full((len(index), len(col_index)), np.nan)
        arr[ts_codes[keep], col_codes[keep]] = long[f].to_numpy(dtype="float64")[keep]
        frame = pd.DataFrame(arr, index=index, columns=pd.Index(columns, name="symbol"))
        out[f] = frame
    return out


def _place(tables, fields, columns: list[str]) -> dict[str, pd.DataFrame]:
    """Scanned Arrow tables (each with the prefix that turns its symbols into ``columns`` names) →
    one (ts × column) float frame per field, values placed straight from Arrow's buffers.

    Each field is filled as a (column × ts) array, which the symbol-sorted rows fill nearly in
    memory order, and handed to pandas transposed: that is pandas' own block layout, so no copy."""
    ts_parts, col_parts = zip(*(lf.codes(t, columns, prefix) for t, prefix in tables), strict=True)
    ts_all, cols_all = np.concatenate(ts_parts), np.concatenate(col_parts)
    keep = cols_all >= 0
    everything = bool(keep.all())
    ts_codes, ts_values = pd.factorize(ts_all if everything else ts_all[keep], sort=True)
    cols = cols_all if everything else cols_all[keep]
    index = pd.DatetimeIndex(ts_values.astype("datetime64[us]"), name="ts").tz_localize("UTC").as_unit("ns")
    col_index = pd.Index(columns, name="symbol")
    flat = cols.astype(np.int64) * len(index) + ts_codes
    # Every (column, ts) once, in that order (the files' (symbol, ts) sort, columns in stored order):
    # the values already are the (column × ts) array. Why: the general placement below touches three
    # fresh arrays a field, which cost a fresh process 0.3 s of the 5-field load at 5,000 × 730.
    dense = everything and len(flat) == len(col_index) * len(index) and bool((np.diff(flat) == 1).all())
    out = {}
    for f in fields:
        parts = [t[f].to_numpy() if len(t) else np.zeros(0) for t, _ in tables]
        values = parts[0] if len(parts) == 1 else np.concatenate(parts)
        if dense and values.dtype == np.float64:
            arr = values.reshape(len(col_index), len(index))
            if not arr.flags.writeable:  # Arrow's zero-copy buffer: frames a user edits must own theirs
                arr = arr.copy()
        else:
            arr = np.full((len(col_index), len(index)), np.nan)
            np.put(arr, flat, values if everything else values[keep])
        out[f] = pd.DataFrame(arr.T, index=index, columns=col_index, copy=False)
    return out


class Lake:
    """Market data at rest. ``root`` is ``settings.lake_dir``."""

    def __init__(self, root: Path | str):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"Lake({str(self.root)!r})"

    # ---- paths ---------------------------------------------------------------------------------
    def _dataset_dir(self, exchange: str, timeframe: str) -> Path:
        return self.root / "ohlcv" / f"exchange={_q(exchange)}" / f"timeframe={_q(timeframe)}"

    def path(self, exchange: str, timeframe: str, symbol: str) -> Path:
        """The compacted parquet file that holds the dataset's bars, ``symbol``'s among them (it may
        not exist yet; recent appends may still sit in deltas beside it)."""
        return self._dataset_dir(exchange, timeframe) / lf.BASE

    def _glob(self, exchange: str, timeframe: str) -> str:
        """A DuckDB ``read_parquet`` pattern for every bar of the dataset (base and deltas are disjoint)."""
        return str(self._dataset_dir(exchange, timeframe) / "*.parquet").replace("'", "''")

    def _parts(self, exchange: str, timeframe: str) -> list[Path]:
        """The dataset's files; a dataset still in the per-symbol layout is migrated first (once).
        Call without holding the lock."""
        d = self._dataset_dir(exchange, timeframe)
        if lf.has_legacy(d):
            try:
                with lf.locked(d, exclusive=True):
                    lf.migrate(d)
            except OSError as e:  # a read-only lake: read the old layout as it is
                log.warning("lake %s is in the per-symbol layout and cannot be migrated here (%s)", d, e)
        return lf.files(d)

    # ---- writing -------------------------------------------------------------------------------
    def write(self, candles: pd.DataFrame, exchange: str, timeframe: str, source: str) -> int:
        """Validate, append the bars not stored yet, and return how many bars were new.

        Stored bars win over incoming bars with the same timestamp: history, once stored, is not
        rewritten by a later pull (a source that revises a bar is logged, not obeyed). Re-writing a
        stored range adds 0. One writer at a time per dataset (a file lock), across processes.
        """
        clean = validate_candles(candles, f"{source} → lake {exchange}/{timeframe}")
        if clean.empty:
            return 0
        new = clean
        d = self._dataset_dir(exchange, timeframe)
        self._parts(exchange, timeframe)  # migrate an old layout before taking the lock
        with lf.locked(d, exclusive=True):
            parts = lf.files(d)
            if parts:
                syms = pd.unique(new["symbol"])
                old = lf.scan(parts, ("ts", "symbol", *FIELDS), syms, new["ts"].min(), new["ts"].max()).to_pandas()
                if len(old):
                    old["symbol"] = old["symbol"].astype(str)
                    old["ts"] = old["ts"].astype("datetime64[ns, UTC]")
                    key_old = pd.MultiIndex.from_arrays([old["symbol"], old["ts"]])
                    seen = pd.MultiIndex.from_arrays([new["symbol"], new["ts"]]).isin(key_old)
                    self._warn_revisions(old, new[seen], d)
                    new = new[~seen]
            if new.empty:
                return 0
            lf.append(d, new, source)
        return len(new)

    @staticmethod
    def _warn_revisions(old: pd.DataFrame, overlap: pd.DataFrame, path: Path) -> None:
        if overlap.empty:
            return
        both = overlap.merge(old, on=["symbol", "ts"], suffixes=("", "_old"))
        differs = pd.concat([both[f] != both[f"{f}_old"] for f in FIELDS], axis=1).any(axis=1)
        if differs.any():
            log.warning(
                "%d incoming bars differ from stored ones in %s; kept the stored bars", int(differs.sum()), path
            )

    def write_screened(self, candles: pd.DataFrame, exchange: str, timeframe: str, source: str) -> WriteResult:
        """Store the good bars of a feed and quarantine the bad ones with their reason.

        For API feeds (ccxt, Kite, Alpaca): a bad bar neither blocks the good ones nor disappears.
        Files the user imports keep the strict ``write`` (the error names the file's row to fix).
        """
        good, bad = screen_candles(candles, f"{source} → lake {exchange}/{timeframe}")
        added = self.write(good, exchange, timeframe, source) if len(good) else 0
        if len(bad):
            self.quarantine(bad, exchange, timeframe, source)
        return WriteResult(added, len(bad))

    def _quarantine_dir(self, exchange: str, timeframe: str) -> Path:
        return self.root / "quarantine" / f"exchange={_q(exchange)}" / f"timeframe={_q(timeframe)}"

    def quarantine(self, bad: pd.DataFrame, exchange: str, timeframe: str, source: str) -> Path:
        """Append rejected bars (``QUARANTINE_COLUMNS``) as one new file, atomically; returns it."""
        frame = bad[list(QUARANTINE_COLUMNS)].copy()
        frame.insert(0, "timeframe", timeframe)
        frame.insert(0, "exchange", exchange)
        frame["source"] = source
        frame["quarantined_at"] = pd.Timestamp.now(tz="UTC")
        frame = frame.astype({"ts": "datetime64[us, UTC]", "quarantined_at": "datetime64[us, UTC]"})
        path = self._quarantine_dir(exchange, timeframe) / f"part-{uuid.uuid4().hex}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            frame.to_parquet(tmp, index=False)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return path

    def quarantined(self, exchange: str | None = None, timeframe: str | None = None) -> pd.DataFrame:
        """Every quarantined bar (a re-pulled bad bar is listed once: the earliest quarantine wins)."""
        ex = _q(exchange) if exchange else "*"
        tf = _q(timeframe) if timeframe else "*"
        pattern = str(self.root / "quarantine" / f"exchange={ex}" / f"timeframe={tf}" / "part-*.parquet").replace(
            "'", "''"
        )
        if not any((self.root / "quarantine").glob(f"exchange={ex}/timeframe={tf}/part-*.parquet")):
            return pd.DataFrame({c: pd.Series(dtype="object") for c in QUARANTINE_TABLE_COLUMNS})
        cols = ", ".join(QUARANTINE_TABLE_COLUMNS)
        df = _query(
            f"""SELECT {cols} FROM read_parquet('{pattern}', hive_partitioning=false)
                QUALIFY row_number() OVER (PARTITION BY exchange, timeframe, symbol, ts, reason, open, high, low, close, volume
                                           ORDER BY quarantined_at) = 1
                ORDER BY exchange, timeframe, symbol, ts NULLS FIRST"""
        )
        for c in ("ts", "quarantined_at"):
            df[c] = df[c].astype("datetime64[ns, UTC]")
        return df.reset_index(drop=True)

    # ---- what is stored ------------------------------------------------------------------------
    def datasets(self) -> list[tuple[str, str]]:
        """(exchange, timeframe) pairs that hold at least one symbol."""
        out = []
        for ex_dir in sorted((self.root / "ohlcv").glob("exchange=*")):
            for tf_dir in sorted(ex_dir.glob("timeframe=*")):
                if lf.files(tf_dir):
                    out.append((unquote(ex_dir.name.split("=", 1)[1]), unquote(tf_dir.name.split("=", 1)[1])))
        return out

    def _scan(self, exchange: str, timeframe: str, columns, symbols=None, start=None, end=None):
        """One Arrow scan of the dataset under the shared lock (``lakefiles.scan``)."""
        d = self._dataset_dir(exchange, timeframe)
        self._parts(exchange, timeframe)
        if not d.is_dir():
            return lf.scan([], columns)
        with lf.locked(d, exclusive=False):
            return lf.scan(lf.files(d), columns, symbols, start, end)

    def symbols(self, exchange: str, timeframe: str) -> list[str]:
        table = self._scan(exchange, timeframe, ("symbol",))
        if not len(table):
            return []
        sym = table.unify_dictionaries()["symbol"].combine_chunks()
        used = np.unique(sym.indices.to_numpy(zero_copy_only=False))
        return sorted(np.asarray(sym.dictionary.to_pylist(), dtype=object)[used].tolist())

    def last_ts(self, exchange: str, timeframe: str, symbol: str) -> pd.Timestamp | None:
        table = self._scan(exchange, timeframe, ("ts",), [symbol])
        if not len(table):
            return None
        return _utc(pd.Timestamp(pc.max(table["ts"]).as_py()))

    def catalog(self) -> pd.DataFrame:
        """One row per stored symbol: where from, how many bars, first and last timestamp."""
        parts = []
        for exchange, timeframe in self.datasets():
            d = self._dataset_dir(exchange, timeframe)
            self._parts(exchange, timeframe)
            with lf.locked(d, exclusive=False):
                files = [str(p) for p in lf.files(d)]
                if not files:
                    continue
                df = _query(
                    """SELECT symbol, string_agg(DISTINCT source, ',' ORDER BY source) AS source,
                              count(*) AS rows, min(ts) AS first, max(ts) AS last
                       FROM read_parquet(?, hive_partitioning=false, union_by_name=true)
                       GROUP BY symbol ORDER BY symbol""",
                    [files],
                )
            df.insert(0, "timeframe", timeframe)
            df.insert(0, "exchange", exchange)
            parts.append(df)
        return catalog_frame(parts)

    # ---- reading -------------------------------------------------------------------------------
    def _check(self, exchange: str, timeframe: str, symbols: list[str] | None) -> list[str]:
        stored = self.symbols(exchange, timeframe)
        if not stored:
            have = ", ".join(f"{e}/{t}" for e, t in self.datasets()) or "nothing"
            raise NoDataError(
                f"no {timeframe} candles of exchange {exchange!r} in the lake at {self.root} (it holds: {have}). "
                f"Run `workbench data pull --timeframe {timeframe}` (with --source for that exchange) first."
            )
        if symbols is None:
            return stored
        stored_set = set(stored)  # a list's ``in`` made this O(symbols²): 0.11 s of a 5,000-symbol load
        unknown = [s for s in symbols if s not in stored_set]
        if unknown:
            shown = ", ".join(stored[:8]) + (f", … ({len(stored)} in all)" if len(stored) > 8 else "")
            raise UnknownSymbolError(
                f"{', '.join(map(repr, unknown))} not in the lake for {exchange}/{timeframe}; available: {shown}. "
                f"Pull it with `workbench data pull --symbols {' '.join(unknown)} --timeframe {timeframe}`."
            )
        return list(dict.fromkeys(symbols))

    def _read(self, exchange: str, timeframe: str, symbols: list[str] | None, start, end, columns) -> pd.DataFrame:
        """Long bars of the named symbols (all when None), ts in [start, end], sorted by symbol and ts."""
        table = self._scan(exchange, timeframe, columns, symbols, start, end)
        df = table.to_pandas()
        df["ts"] = df["ts"].astype("datetime64[ns, UTC]")
        df["symbol"] = df["symbol"].astype("str")
        return df.sort_values(["symbol", "ts"], kind="stable", ignore_index=True)

    def load_candles(
        self,
        exchange: str,
        timeframe: str,
        symbols: list[str] | None = None,
        start=None,
        end=None,
    ) -> pd.DataFrame:
        """Long candles (``CANDLE_COLUMNS``) with start ≤ ts ≤ end, sorted by symbol and ts."""
        wanted = self._check(exchange, timeframe, symbols)
        return self._read(exchange, timeframe, wanted if symbols is not None else None, start, end, CANDLE_COLUMNS)

    def _no_bars(self, exchange: str, timeframe: str, wanted: list[str], start, end) -> NoDataError:
        span = self.catalog().query("exchange == @exchange and timeframe == @timeframe")
        return NoDataError(
            f"no {exchange}/{timeframe} bars between {start} and {end} for {wanted[:8]}; stored bars run "
            f"{span['first'].min()} … {span['last'].max()}. Widen the dates or pull more history."
        )

    def load_frames(
        self,
        exchange: str,
        timeframe: str,
        symbols: list[str] | None = None,
        start=None,
        end=None,
        fields=FIELDS,
    ) -> dict[str, pd.DataFrame]:
        """Only the requested fields as aligned (time × symbol) frames (NaN where a symbol has no bar)."""
        fields = tuple(fields)
        unknown = [f for f in fields if f not in FIELDS]
        if unknown:
            raise KeyError(f"unknown fields {unknown}; choose from {FIELDS}")
        wanted = self._check(exchange, timeframe, symbols)
        only = wanted if symbols is not None else None
        table = self._scan(exchange, timeframe, ("ts", "symbol", *fields), only, start, end)
        if not len(table):
            raise self._no_bars(exchange, timeframe, wanted, start, end)
        return _place([(table, "")], fields, wanted)

    def load_panel(
        self,
        exchange: str,
        timeframe: str,
        symbols: list[str] | None = None,
        start=None,
        end=None,
    ) -> Panel:
        """The (time × symbol) panel; a symbol without a bar at some time is NaN there (no filling).

        Columns follow ``symbols`` when given (all stored symbols, sorted, otherwise).
        """
        frames = self.load_frames(exchange, timeframe, symbols, start, end, FIELDS)
        return Panel(**frames, exchange=exchange, timeframe=timeframe, calendars=None)  # the caller may add its home's

    def load_panel_for(
        self,
        instruments,
        timeframe: str,
        start=None,
        end=None,
        fields=("close",),
    ) -> dict[str, pd.DataFrame]:
        """Frames (time × instrument key) for instruments across exchanges: ``['NSE:TCS', 'binance:BTC/USDT']``.

        ``instruments``: keys, or a frame with ``exchange`` and ``symbol`` columns (the instrument
        master's rows). Columns are the keys in the order given. Daily bars of every venue are
        labelled by session date at 00:00 UTC, so NSE, NYSE and crypto share one date grid.
        """
        from workbench.instruments import split_key

        if isinstance(instruments, pd.DataFrame):
            pairs = list(zip(instruments["exchange"].astype(str), instruments["symbol"].astype(str), strict=True))
        else:
            pairs = [split_key(k) for k in instruments]
        pairs = list(dict.fromkeys(pairs))
        keys = [f"{e}:{s}" for e, s in pairs]
        tables = []
        for exchange in dict.fromkeys(e for e, _ in pairs):
            syms = [s for e, s in pairs if e == exchange]
            self._check(exchange, timeframe, syms)
            table = self._scan(exchange, timeframe, ("ts", "symbol", *fields), syms, start, end)
            tables.append((table, f"{exchange}:"))
        if not sum(len(t) for t, _ in tables):
            raise NoDataError(f"no {timeframe} bars between {start} and {end} for {keys[:8]}: pull them first")
        return _place(tables, tuple(fields), keys)


def catalog_frame(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """One catalog from per-(exchange, timeframe) parts, typed alike whichever store they came from."""
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in CATALOG_COLUMNS})
    out = pd.concat(parts, ignore_index=True)
    for c in ("first", "last"):
        out[c] = out[c].astype("datetime64[ns, UTC]")
    out["rows"] = out["rows"].astype("int64")
    return out[list(CATALOG_COLUMNS)]
