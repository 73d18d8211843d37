"""The lake's files for one (exchange, timeframe) dataset: a compacted base, small deltas, a lock.

Layout of a dataset directory::

    data.parquet                 every symbol's bars, sorted by (symbol, ts), row groups of 128k rows
    delta-<ns>-<id>.parquet      bars appended since the last compaction (disjoint from the rest);
                                 one file: each append folds its bars into it
    .lock                        one writer at a time (exclusive flock); readers hold it shared

Why one sorted file instead of a file per symbol: a panel of 5,000 instruments is then one scan
of a few row groups, not 5,000 file opens, and a symbol filter still prunes row groups by their
min/max statistics. Appends write a delta (cheap) and the deltas are folded into the base when they
grow past a quarter of it (or, from older versions, number ``MAX_DELTAS``), so reads stay one big
file plus one small one.

Every writer takes the exclusive lock for its whole read-dedupe-write-compact step, so two writers
(two processes pulling at once) cannot lose each other's bars; readers take the shared lock, so they
never see a compaction half done (new base plus the deltas it already holds).

The per-symbol layout of earlier versions (``symbol=<quoted>/data.parquet``) is migrated into this
one, once, by the first access to the dataset that can write to it.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

log = logging.getLogger(__name__)

BASE = "data.parquet"
LOCK = ".lock"
LEGACY = "symbol=*/data.parquet"
MAX_DELTAS = 32
ROW_GROUP = 131_072
STORED = ("ts", "symbol", "open", "high", "low", "close", "volume", "source")
SCHEMA = pa.schema(
    [("ts", pa.timestamp("us", tz="UTC")), ("symbol", pa.string()), *[(f, pa.float64()) for f in STORED[2:7]],
     ("source", pa.string())]
)  # fmt: skip
_READ_SCHEMA = SCHEMA.set(1, pa.field("symbol", pa.dictionary(pa.int32(), pa.string())))
_READ_FORMAT = pads.ParquetFileFormat(read_options=pads.ParquetReadOptions(dictionary_columns=["symbol"]))


# ---- the lock ----------------------------------------------------------------------------------
@contextmanager
def locked(directory: Path, exclusive: bool) -> Iterator[None]:
    """Hold the dataset's lock (exclusive for writers, shared for readers) for the block.

    A reader of a directory it cannot write (a read-only lake) reads without the lock: nobody can
    be writing it either. Not re-entrant: take it once per public operation.
    """
    if exclusive:
        directory.mkdir(parents=True, exist_ok=True)
    try:
        fh = open(directory / LOCK, "a+b")  # noqa: SIM115 (held for the block, closed in finally)
    except OSError:
        if exclusive:
            raise
        yield
        return
    try:
        _flock(fh, exclusive)
        yield
    finally:
        _unflock(fh)
        fh.close()


def _flock(fh, exclusive: bool) -> None:
    if sys.platform == "win32":  # Windows: one lock for readers and writers alike
        import msvcrt

        fh.seek(0)
        msvcrt.locking(fh.fileno(), msvcrt.LK_LOCK, 1)
    else:
        import fcntl

        fcntl.flock(fh.fileno(), fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)


def _unflock(fh) -> None:
    if sys.platform == "win32":
        import msvcrt

        fh.seek(0)
        msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)
    else:
        import fcntl

        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


# ---- which files hold the dataset --------------------------------------------------------------
def deltas(directory: Path) -> list[Path]:
    return sorted(directory.glob("delta-*.parquet"))


def files(directory: Path) -> list[Path]:
    """Base then deltas in write order (legacy per-symbol files too while they are not migrated)."""
    base = directory / BASE
    out = ([base] if base.exists() else []) + deltas(directory)
    return out + sorted(directory.glob(LEGACY))


def has_legacy(directory: Path) -> bool:
    return directory.is_dir() and next(directory.glob(LEGACY), None) is not None


# ---- writing -----------------------------------------------------------------------------------
def _atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def append(directory: Path, frame: pd.DataFrame, source: str) -> None:
    """Store ``frame`` (``CANDLE_COLUMNS``, sorted by symbol and ts, disjoint from what is stored)
    as a new delta, then compact if due. Call under the exclusive lock."""
    us = pd.DatetimeIndex(frame["ts"]).as_unit("us").asi8
    arrays = [pa.array(us, pa.int64()).cast(SCHEMA.field("ts").type)]
    arrays.append(pa.array(frame["symbol"], pa.string()).dictionary_encode())  # a few labels: encoded once
    arrays += [pa.array(frame[c].to_numpy(dtype=np.float64), pa.float64()) for c in STORED[2:7]]
    one_source = pa.array(np.zeros(len(frame), np.int32))
    arrays.append(pa.DictionaryArray.from_arrays(one_source, pa.array([source], pa.string())))
    table = pa.Table.from_arrays(arrays, names=list(STORED))
    opts = {"row_group_size": ROW_GROUP, "use_dictionary": ["symbol", "source"], "store_schema": False}
    ds = deltas(directory)
    if len(ds) == 1 and (directory / BASE).exists():
        # Fold the new bars into the one delta (rewritten under the same name: os.replace is atomic,
        # so a crash leaves the old delta or the new one, never both): a read after many appends
        # opens two files, not one per append (each extra file cost a read ~40 ms).
        old = pq.read_table(ds[0], schema=SCHEMA)
        merged = pa.concat_tables([old, table.cast(SCHEMA)])
        _atomic(ds[0], lambda tmp: pq.write_table(merged, tmp, **opts))
    else:
        name = f"delta-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet"
        _atomic(directory / name, lambda tmp: pq.write_table(table, tmp, **opts))
    maybe_compact(directory)


def maybe_compact(directory: Path) -> None:
    """Fold the deltas into the base when they are many or a quarter of its size. Under the lock."""
    ds = deltas(directory)
    base = directory / BASE
    if not ds:
        return
    if not base.exists() and len(ds) == 1:
        os.replace(ds[0], base)  # the first write is sorted already: it is the base
        return
    base_size = base.stat().st_size if base.exists() else 0
    if len(ds) >= MAX_DELTAS or 4 * sum(p.stat().st_size for p in ds) >= base_size:
        compact(directory)


def _sql_list(paths: Sequence[Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


def compact(directory: Path, dedupe: bool = False) -> None:
    """Rewrite base + deltas (+ legacy files) as one base sorted by (symbol, ts), then drop the parts.

    ``dedupe`` keeps the first stored copy of a (symbol, ts) bar (base before deltas before legacy
    files); it is only needed when migrating, since appends are disjoint by construction.
    """
    parts = files(directory)
    if not parts:
        return
    cols = ", ".join(STORED)
    src = f"read_parquet({_sql_list(parts)}, hive_partitioning=false, union_by_name=true, filename=true)"
    if dedupe:
        order = {str(p): i for i, p in enumerate(parts)}
        whens = " ".join(f"WHEN '{k.replace(chr(39), chr(39) * 2)}' THEN {v}" for k, v in order.items())
        prio = f"CASE filename {whens} END"
        select = f"SELECT DISTINCT ON (symbol, ts) {cols} FROM {src} ORDER BY symbol, ts, {prio}"
    else:
        select = f"SELECT {cols} FROM {src} ORDER BY symbol, ts"
    base = directory / BASE

    def write(tmp: Path) -> None:
        with duckdb.connect() as con:
            con.execute("SET TimeZone = 'UTC'")
            target = str(tmp).replace("'", "''")
            con.execute(f"COPY ({select}) TO '{target}' (FORMAT parquet, ROW_GROUP_SIZE {ROW_GROUP})")

    _atomic(base, write)
    for p in parts:
        if p != base:
            p.unlink(missing_ok=True)
            if p.parent != directory:  # a legacy symbol=<x>/ directory
                try:
                    p.parent.rmdir()
                except OSError:
                    pass


def migrate(directory: Path) -> None:
    """Fold the per-symbol files of the earlier layout into the base, once. Under the exclusive lock."""
    if not has_legacy(directory):
        return
    t0 = time.perf_counter()
    n = sum(1 for _ in directory.glob(LEGACY))
    compact(directory, dedupe=True)
    log.info("lake %s: migrated %d per-symbol files into %s in %.1f s", directory, n, BASE, time.perf_counter() - t0)


# ---- reading -----------------------------------------------------------------------------------
def scan(
    parts: Sequence[Path | str], columns: Sequence[str], symbols=None, start=None, end=None, filesystem=None
) -> pa.Table:
    """One Arrow scan of the parts: only ``columns``, only ``symbols`` (row groups pruned by their
    statistics), start ≤ ts ≤ end. ``symbol`` comes back dictionary-encoded. ``filesystem``: an fsspec
    or Arrow filesystem the parts are paths of (an object-store lake); None: the local disk."""
    if not parts:
        return _READ_SCHEMA.empty_table().select(list(columns))
    dataset = pads.dataset([str(p) for p in parts], schema=_READ_SCHEMA, format=_READ_FORMAT, filesystem=filesystem)
    cond = None
    ts_type = _READ_SCHEMA.field("ts").type
    if symbols is not None:
        cond = pads.field("symbol").isin(pa.array(list(symbols), pa.string()))
    for value, op in ((start, "ge"), (end, "le")):
        if value is not None:
            c = getattr(pads.field("ts"), f"__{op}__")(pa.scalar(pd.Timestamp(value).to_pydatetime(), ts_type))
            cond = c if cond is None else cond & c
    return dataset.to_table(columns=list(columns), filter=cond)


def codes(table: pa.Table, columns: Sequence[str], prefix: str = "") -> tuple[np.ndarray, np.ndarray]:
    """(ts as int64 µs, column position in ``columns`` or −1) per row of a scanned table."""
    if not len(table):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    ts = table["ts"].combine_chunks().cast(pa.int64()).to_numpy(zero_copy_only=False)
    sym = table.select(["symbol"]).unify_dictionaries()["symbol"].combine_chunks()
    names = [prefix + s for s in sym.dictionary.to_pylist()]
    where = pd.Index(list(columns)).get_indexer(pd.Index(names))
    return ts, where[sym.indices.to_numpy(zero_copy_only=False)]
