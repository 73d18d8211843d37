"""Which data a model was trained on: a content hash of a panel that can be computed in pieces.

Why in blocks: a cluster fit (``dask_lgbm``) never holds the whole panel in one process, yet its
registered ``data_hash`` must equal the in-process ``panel_hash`` of the same panel, so that two runs
on the same bars say so whichever way they were fitted. The panel's timestamps are cut into fixed
blocks of ``BLOCK`` consecutive bars counted from its first bar; each block is hashed on its own
(its bar times and the five OHLCV fields of every symbol, in the panel's symbol order), and the
hash is the digest of the header (exchange, timeframe, number of bars, symbols) and the block
digests in order. A worker that reads whole blocks from the lake gives the same block digests as
the full panel; any changed bar, symbol or timestamp changes the hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from workbench.data.panel import FIELDS, Panel

__all__ = ["BLOCK", "block_digests", "block_ranges", "combine", "panel_hash"]

BLOCK = 256  # bars per hashed block


def block_ranges(n_stamps: int, first_block: int = 0, n_blocks: int | None = None) -> list[tuple[int, int]]:
    """[start, stop) positions of blocks ``first_block`` … (all remaining by default) of ``n_stamps`` bars."""
    total = -(-n_stamps // BLOCK)
    last = total if n_blocks is None else min(total, first_block + n_blocks)
    return [(k * BLOCK, min((k + 1) * BLOCK, n_stamps)) for k in range(first_block, last)]


def block_digests(panel: Panel, symbols: Sequence[str] | None = None) -> list[str]:
    """The digest of each block of ``panel``'s bars, counted from its first bar (columns in ``symbols``' order)."""
    syms = [str(s) for s in (symbols if symbols is not None else panel.symbols)]
    stamps = np.asarray(panel.index.asi8)
    fields = [panel.field(f).reindex(columns=syms).to_numpy(dtype=float) for f in FIELDS]
    out = []
    for a, b in block_ranges(len(stamps)):
        h = hashlib.sha256(np.ascontiguousarray(stamps[a:b]).tobytes())
        for values in fields:
            h.update(np.ascontiguousarray(values[a:b]).tobytes())
        out.append(h.hexdigest())
    return out


def combine(exchange: str, timeframe: str, symbols: Sequence[str], n_stamps: int, digests: Sequence[str]) -> str:
    """The panel hash from its header and its block digests in order."""
    h = hashlib.sha256(f"{exchange}|{timeframe}|{int(n_stamps)}|".encode())
    h.update("|".join(map(str, symbols)).encode())
    h.update("|".join(digests).encode())
    return h.hexdigest()[:16]


def panel_hash(panel: Panel) -> str:
    """Content hash of a panel (grid, symbols, OHLCV): which data a model was trained on."""
    syms = [str(s) for s in panel.symbols]
    return combine(panel.exchange, panel.timeframe, syms, len(panel.index), block_digests(panel, syms))
