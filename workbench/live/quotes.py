"""The quote cache: the latest price, bid, ask and timestamp of every instrument, as arrays indexed by slot.

Why arrays: a live universe is thousands of instruments and a stream delivers thousands of ticks a
second; a dict of quote objects costs a Python object per update. Here a batch of ticks is applied by
one numba loop and a snapshot of 20,000 instruments is a few array copies.

Staleness: a quote older than ``stale_after_s`` (or never received) is *stale*. ``fresh_prices``
— what a signal may use — gives NaN for it, and every stale instrument it refused is counted
(``stale_refused``), so a dashboard can show that a venue's data went quiet instead of trading on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from numba import njit

from workbench.live.ticks import Ticks, now_ns

__all__ = ["SlotMap", "QuoteCache", "QUOTE_SNAPSHOT_COLUMNS"]

QUOTE_SNAPSHOT_COLUMNS = ("key", "last", "bid", "ask", "ts", "age_s", "stale")


class SlotMap:
    """Instrument keys (``EXCHANGE:SYMBOL``) ↔ dense integer slots, fixed for a run's universe."""

    def __init__(self, keys: Iterable[str]):
        self.keys = tuple(dict.fromkeys(keys))
        self._slot = {k: i for i, k in enumerate(self.keys)}

    def __len__(self) -> int:
        return len(self.keys)

    def __contains__(self, key: str) -> bool:
        return key in self._slot

    def slot(self, key: str) -> int:
        """The slot of a key, -1 when it is not in the universe."""
        return self._slot.get(key, -1)

    def slots(self, keys: Sequence[str]) -> np.ndarray:
        get = self._slot.get
        return np.fromiter((get(k, -1) for k in keys), dtype="int64", count=len(keys))

    def key_array(self) -> np.ndarray:
        return np.asarray(self.keys, dtype=object)


@njit(cache=True)
def _apply(slot, price, bid, ask, ts, last, best_bid, best_ask, stamp, updates):  # pragma: no cover - numba
    """Latest-wins per slot by timestamp; an older tick (out of order) never overwrites a newer quote."""
    ignored = 0
    n_slots = last.shape[0]
    for i in range(slot.shape[0]):
        s = slot[i]
        if s < 0 or s >= n_slots:
            ignored += 1
            continue
        if ts[i] < stamp[s]:
            ignored += 1
            continue
        stamp[s] = ts[i]
        if not np.isnan(price[i]):
            last[s] = price[i]
        if not np.isnan(bid[i]):
            best_bid[s] = bid[i]
        if not np.isnan(ask[i]):
            best_ask[s] = ask[i]
        updates[s] += 1
    return ignored


class QuoteCache:
    """Latest quote per slot; ``apply`` a batch of ticks, read ``snapshot`` / ``fresh_prices``."""

    def __init__(self, slots: SlotMap | Sequence[str], stale_after_s: float = 60.0):
        self.slots = slots if isinstance(slots, SlotMap) else SlotMap(slots)
        n = len(self.slots)
        self.stale_after_s = float(stale_after_s)
        self.last = np.full(n, np.nan)
        self.bid = np.full(n, np.nan)
        self.ask = np.full(n, np.nan)
        self.ts = np.zeros(n, dtype="int64")  # ns since epoch; 0 = never quoted
        self.updates = np.zeros(n, dtype="int64")
        self.ignored = 0  # ticks older than the cached quote, or for instruments outside the universe
        self.stale_refused = 0  # stale instruments refused to signals, summed over every fresh_prices call
        self.last_stale = 0

    def __len__(self) -> int:
        return len(self.last)

    def apply(self, ticks: Ticks) -> None:
        if len(ticks) == 0:
            return
        self.ignored += int(
            _apply(
                ticks.slot,
                ticks.price,
                ticks.bid,
                ticks.ask,
                ticks.ts,
                self.last,
                self.bid,
                self.ask,
                self.ts,
                self.updates,
            )
        )

    def stale_mask(self, now: int | None = None) -> np.ndarray:
        """True where the quote is missing or older than ``stale_after_s`` at ``now`` (ns, default: the clock)."""
        t = now_ns() if now is None else int(now)
        return (self.ts == 0) | np.isnan(self.last) | ((t - self.ts) > self.stale_after_s * 1e9)

    def fresh_prices(self, now: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(last price with NaN where stale, stale mask): the only prices a signal may see; stale ones are counted."""
        stale = self.stale_mask(now)
        n = int(stale.sum())
        self.last_stale = n
        self.stale_refused += n
        return np.where(stale, np.nan, self.last), stale

    def snapshot(self, now: int | None = None) -> pd.DataFrame:
        """One row per instrument of the universe (``QUOTE_SNAPSHOT_COLUMNS``), consistent as of this call."""
        t = now_ns() if now is None else int(now)
        stale = self.stale_mask(t)
        ts = pd.to_datetime(np.where(self.ts == 0, np.iinfo("int64").min, self.ts), utc=True)
        age = np.where(self.ts == 0, np.nan, (t - self.ts) / 1e9)
        return pd.DataFrame(
            {
                "key": self.slots.key_array(),
                "last": self.last.copy(),
                "bid": self.bid.copy(),
                "ask": self.ask.copy(),
                "ts": ts,
                "age_s": age,
                "stale": stale,
            }
        )
