"""The last-bar price book the broker fakes (Alpaca, Kite) keep per instrument, and how a new bar enters it."""

from __future__ import annotations

__all__ = ["PriceBook"]


class PriceBook:
    """``prices[key]``: the current bar (last/open/high/low/close/volume); ``_used[key]``: the depth
    already taken from it by fills (a new bar brings fresh liquidity)."""

    prices: dict[str, dict]
    _used: dict[str, float]

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
