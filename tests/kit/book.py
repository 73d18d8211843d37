"""The last-bar price book the broker fakes (Alpaca, Kite) keep per instrument, and how a new bar enters it."""

from __future__ import annotations

import threading

__all__ = ["PriceBook"]


class PriceBook:
    """``prices[key]``: the current bar (last/open/high/low/close/volume); ``_used[key]``: the depth
    already taken from it by fills (a new bar brings fresh liquidity)."""

    prices: dict[str, dict]
    _used: dict[str, float]
    _engine: threading.RLock

    def move(
        self,
        key: str,
        last: float,
        low: float | None = None,
        high: float | None = None,
        open: float | None = None,
        volume: float | None = None,
    ) -> None:
        """A new bar for ``key`` (unset bounds at ``last``): resting orders it reaches fill."""
        key = self._book_key(key)
        with self._engine:
            self._fill_on_bar(key, self._new_bar(key, last, low, high, open, volume))

    @staticmethod
    def _stop_fill(buy: bool, stop: float, bar: dict) -> float | None:
        """Where a stop (a trigger) at ``stop`` fills within ``bar``: at the stop, or at the open when the
        bar gapped through it; None when the bar did not reach it."""
        if buy and bar["high"] >= stop:
            return max(stop, bar["open"])
        if not buy and bar["low"] <= stop:
            return min(stop, bar["open"])
        return None

    def _book_key(self, key: str) -> str:
        return key

    def _fill_on_bar(self, key: str, bar: dict) -> None:
        raise NotImplementedError

    def set_price(self, key: str, last: float, **bar: float) -> None:
        self.prices[key] = {"last": float(last), "open": float(bar.get("open", last)), "high": float(bar.get("high", last)),
                            "low": float(bar.get("low", last)), "volume": float(bar.get("volume", 0.0)), "close": float(bar.get("close", last))}  # fmt: skip

    def _new_bar(
        self, key: str, last: float, low: float | None, high: float | None, open: float | None, volume: float | None
    ) -> dict:
        """Book a new bar (unset bounds at ``last``; ``close`` keeps the previous bar's) and return it."""
        prev = self.prices.get(key, {}).get("close", last)
        self.set_price(key, last, low=last if low is None else low, high=last if high is None else high,
                       open=last if open is None else open, volume=volume or 0.0, close=prev)  # fmt: skip
        self._used[key] = 0.0
        return self.prices[key]
