"""A deterministic tape of trades for many instruments: what fake venues stream and the bars they report.

Why one tape: the streaming fakes send its ticks and the REST fakes serve ``bars()`` computed from the
same trades, so a test can check that bars built live from the stream equal the venue's own history.
Each instrument trades at most once per second (whole-second timestamps, as Kite stamps ticks), so
one second of the tape is one frame of a stream.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["Tape"]


@dataclass(frozen=True)
class Tape:
    symbols: tuple[str, ...]
    idx: np.ndarray  # instrument index per trade
    ts: np.ndarray  # ns, whole seconds, ascending
    price: np.ndarray  # two decimals
    size: np.ndarray  # whole units
    total: np.ndarray  # cumulative volume of the trade's instrument after it (base 1000)

    @classmethod
    def make(cls, symbols, start: pd.Timestamp, minutes: int, per_minute: int = 4, seed: int = 0) -> Tape:
        rng = np.random.default_rng(seed)
        n_sym, secs = len(symbols), minutes * 60
        per = min(per_minute * minutes, secs)
        # distinct seconds per instrument: a random permutation's first `per` entries
        sec = np.argsort(rng.random((n_sym, secs)), axis=1)[:, :per]
        idx = np.repeat(np.arange(n_sym), per)
        t = np.sort(sec, axis=1).ravel()
        order = np.lexsort((idx, t))
        idx, t = idx[order], t[order]
        base = 10.0 + (np.arange(n_sym) % 500) * 3.0
        steps = rng.normal(0, 0.002, len(idx))
        price = np.empty(len(idx))
        for i in range(n_sym):  # a walk per instrument (setup only, not a hot path)
            m = idx == i
            price[m] = base[i] * np.exp(np.cumsum(steps[m]))
        price = np.round(price, 2)
        size = rng.integers(1, 50, len(idx)).astype("float64")
        total = np.empty(len(idx))
        for i in range(n_sym):
            m = idx == i
            total[m] = 1000.0 + np.cumsum(size[m])
        start_ns = int(pd.Timestamp(start).value)
        return cls(tuple(symbols), idx.astype("int64"), start_ns + t.astype("int64") * 10**9, price, size, total)

    def __len__(self) -> int:
        return len(self.idx)

    def seconds(self) -> list[slice]:
        """Slices of the tape, one per distinct second (one stream frame each)."""
        cut = np.flatnonzero(np.diff(self.ts)) + 1
        bounds = np.r_[0, cut, len(self.ts)]
        return [slice(int(a), int(b)) for a, b in itertools.pairwise(bounds)]

    def bars(self, timeframe_ns: int = 60 * 10**9) -> pd.DataFrame:
        """OHLCV per (symbol, bar) of the whole tape: what the venue's history reports."""
        df = pd.DataFrame({"i": self.idx, "t": self.ts, "p": self.price, "v": self.size})
        df["start"] = df["t"] - df["t"] % timeframe_ns
        g = df.groupby(["i", "start"], sort=True)
        out = g.agg(
            open=("p", "first"), high=("p", "max"), low=("p", "min"), close=("p", "last"), volume=("v", "sum")
        ).reset_index()
        out.insert(0, "symbol", np.asarray(self.symbols, dtype=object)[out["i"].to_numpy()])
        out.insert(0, "ts", pd.to_datetime(out["start"].to_numpy(), utc=True).astype("datetime64[ns, UTC]"))
        return out.drop(columns=["i", "start"])
