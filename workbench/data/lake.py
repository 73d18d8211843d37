"""The parquet lake: one file per (exchange, timeframe, symbol), read back as panels through DuckDB.

Layout::

    <root>/ohlcv/exchange=<ex>/timeframe=<tf>/symbol=<quoted symbol>/data.parquet

Partition values are URL-quoted (``BTC/USDT`` → ``BTC%2FUSDT``, ``M&M`` → ``M%26M``) so any symbol is
a safe directory name; the plain symbol is also a column, which is what queries filter on
(``hive_partitioning=false``: the path is for humans and for pruning, the column is the truth).

Writes replace a symbol's file atomically (temp file in the same directory + ``os.replace``), so a
reader sees the old file or the new one, never half of one. There is one writer at a time (the
CLI, a notebook, the live process's refresh); concurrent writers to the *same* symbol could lose
one of the two appends. Every query opens its own in-memory DuckDB connection: no shared state.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path
from urllib.parse import quote, unquote

import duckdb
import pandas as pd

from workbench.data.candles import CANDLE_COLUMNS, validate_candles
from workbench.data.panel import FIELDS, Panel
from workbench.errors import NoDataError, UnknownSymbolError

__all__ = ["Lake", "CATALOG_COLUMNS"]

log = logging.getLogger(__name__)

CATALOG_COLUMNS = ("exchange", "timeframe", "symbol", "source", "rows", "first", "last")
_STORED = (*CANDLE_COLUMNS, "source")
_FILE = "data.parquet"


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
        """The parquet file that holds one symbol's bars (it may not exist yet)."""
        return self._dataset_dir(exchange, timeframe) / f"symbol={_q(symbol)}" / _FILE

    def _glob(self, exchange: str, timeframe: str) -> str:
        return str(self._dataset_dir(exchange, timeframe) / "symbol=*" / _FILE).replace("'", "''")

    # ---- writing -------------------------------------------------------------------------------
    def write(self, candles: pd.DataFrame, exchange: str, timeframe: str, source: str) -> int:
        """Validate, merge into each symbol's file, and return how many bars were new.

        Stored bars win over incoming bars with the same timestamp: history, once stored, is not
        rewritten by a later pull (a source that revises a bar is logged, not obeyed). To replace
        history, delete that symbol's directory and pull again. Re-writing a stored range adds 0.
        """
        clean = validate_candles(candles, f"{source} → lake {exchange}/{timeframe}")
        added = 0
        for symbol, new in clean.groupby("symbol", sort=True):
            new = new.assign(source=source)
            path = self.path(exchange, timeframe, str(symbol))
            if path.exists():
                old = pd.read_parquet(path)
                old["ts"] = old["ts"].astype("datetime64[ns, UTC]")
                seen = new["ts"].isin(old["ts"])
                self._warn_revisions(old, new[seen], path)
                fresh = new[~seen]
                if fresh.empty:
                    continue
                merged = pd.concat([old[list(_STORED)], fresh], ignore_index=True).sort_values("ts", kind="stable")
            else:
                fresh = merged = new
            self._replace(path, merged.reset_index(drop=True))
            added += len(fresh)
        return added

    @staticmethod
    def _warn_revisions(old: pd.DataFrame, overlap: pd.DataFrame, path: Path) -> None:
        if overlap.empty:
            return
        both = overlap.merge(old, on="ts", suffixes=("", "_old"))
        differs = pd.concat([both[f] != both[f"{f}_old"] for f in FIELDS], axis=1).any(axis=1)
        if differs.any():
            log.warning("%d incoming bars differ from stored ones in %s; kept the stored bars", int(differs.sum()), path)

    @staticmethod
    def _replace(path: Path, frame: pd.DataFrame) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            # Microseconds: DuckDB's plain TIMESTAMPTZ (ns would be TIMESTAMPTZ_NS, awkward to compare).
            frame[list(_STORED)].astype({"ts": "datetime64[us, UTC]"}).to_parquet(tmp, index=False)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    # ---- what is stored ------------------------------------------------------------------------
    def datasets(self) -> list[tuple[str, str]]:
        """(exchange, timeframe) pairs that hold at least one symbol."""
        out = []
        for ex_dir in sorted((self.root / "ohlcv").glob("exchange=*")):
            for tf_dir in sorted(ex_dir.glob("timeframe=*")):
                if any(tf_dir.glob(f"symbol=*/{_FILE}")):
                    out.append((unquote(ex_dir.name.split("=", 1)[1]), unquote(tf_dir.name.split("=", 1)[1])))
        return out

    def symbols(self, exchange: str, timeframe: str) -> list[str]:
        d = self._dataset_dir(exchange, timeframe)
        return sorted(unquote(p.parent.name.split("=", 1)[1]) for p in d.glob(f"symbol=*/{_FILE}"))

    def last_ts(self, exchange: str, timeframe: str, symbol: str) -> pd.Timestamp | None:
        path = self.path(exchange, timeframe, symbol)
        if not path.exists():
            return None
        value = _query("SELECT max(ts) AS last FROM read_parquet(?)", [str(path)])["last"].iloc[0]
        return None if pd.isna(value) else _utc(value)

    def catalog(self) -> pd.DataFrame:
        """One row per stored symbol: where from, how many bars, first and last timestamp."""
        parts = []
        for exchange, timeframe in self.datasets():
            df = _query(
                f"""SELECT symbol, string_agg(DISTINCT source, ',' ORDER BY source) AS source,
                               count(*) AS rows, min(ts) AS first, max(ts) AS last
                    FROM read_parquet('{self._glob(exchange, timeframe)}', hive_partitioning=false)
                    GROUP BY symbol ORDER BY symbol"""
            )
            df.insert(0, "timeframe", timeframe)
            df.insert(0, "exchange", exchange)
            parts.append(df)
        if not parts:
            return pd.DataFrame({c: pd.Series(dtype="object") for c in CATALOG_COLUMNS})
        out = pd.concat(parts, ignore_index=True)
        for c in ("first", "last"):
            out[c] = out[c].astype("datetime64[ns, UTC]")
        out["rows"] = out["rows"].astype("int64")
        return out[list(CATALOG_COLUMNS)]

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
        unknown = [s for s in symbols if s not in stored]
        if unknown:
            shown = ", ".join(stored[:8]) + (f", … ({len(stored)} in all)" if len(stored) > 8 else "")
            raise UnknownSymbolError(
                f"{', '.join(map(repr, unknown))} not in the lake for {exchange}/{timeframe}; available: {shown}. "
                f"Pull it with `workbench data pull --symbols {' '.join(unknown)} --timeframe {timeframe}`."
            )
        return list(dict.fromkeys(symbols))

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
        sql = f"SELECT {', '.join(CANDLE_COLUMNS)} FROM read_parquet('{self._glob(exchange, timeframe)}', hive_partitioning=false) WHERE true"
        params: list = []
        if symbols is not None:
            sql += f" AND symbol IN ({', '.join('?' * len(wanted))})"
            params += wanted
        if start is not None:
            sql += " AND ts >= ?"
            params.append(_utc(start).to_pydatetime())
        if end is not None:
            sql += " AND ts <= ?"
            params.append(_utc(end).to_pydatetime())
        df = _query(sql + " ORDER BY symbol, ts", params)
        df["ts"] = df["ts"].astype("datetime64[ns, UTC]")
        df["symbol"] = df["symbol"].astype("str")
        return df

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
        wanted = self._check(exchange, timeframe, symbols)
        long = self.load_candles(exchange, timeframe, wanted if symbols is not None else None, start, end)
        if long.empty:
            span = self.catalog().query("exchange == @exchange and timeframe == @timeframe")
            raise NoDataError(
                f"no {exchange}/{timeframe} bars between {start} and {end} for {wanted[:8]}; stored bars run "
                f"{span['first'].min()} … {span['last'].max()}. Widen the dates or pull more history."
            )
        panel = Panel.from_long(long, exchange, timeframe)
        fields = {}
        for f in FIELDS:
            frame = panel.field(f).reindex(columns=wanted)
            frame.columns.name = "symbol"
            fields[f] = frame
        return Panel(**fields, exchange=exchange, timeframe=timeframe)
