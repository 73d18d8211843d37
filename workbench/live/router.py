"""Which venue's market data serves each instrument of a universe.

A universe is instrument keys ``EXCHANGE:SYMBOL`` (``NSE:RELIANCE``, ``NASDAQ:AAPL``,
``binance:BTC/USDT``). Each exchange has one data venue: the run's own broker for the exchange it
trades (``ccxt:binance`` reads Binance), else ``[live] data_venues``, else the default — Kite for
the Indian exchanges, Alpaca for the US ones, the ccxt exchange of the same id for crypto. A paper
run therefore trades live prices from the venues that publish them; which venue *fills* an order is
the broker's business, not this module's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from workbench.errors import ConfigError

__all__ = ["Route", "check_venue", "data_venue", "route", "KITE_EXCHANGES", "US_EXCHANGES"]

KITE_EXCHANGES = frozenset({"NSE", "BSE", "NFO", "BFO", "MCX", "CDS"})
US_EXCHANGES = frozenset({"NYSE", "NASDAQ", "AMEX", "ARCA", "NYSEARCA", "BATS", "US"})


def check_venue(name: str) -> str:
    """A data venue's name, normalised (``kite``, ``alpaca``, ``ccxt:<id>``), or a ``ConfigError`` saying what is."""
    n = name.strip()
    low = n.lower()
    if low in ("kite", "alpaca"):
        return low
    if low.startswith("ccxt:"):
        import ccxt

        ex = low.partition(":")[2]
        if ex in ccxt.exchanges:
            return f"ccxt:{ex}"
        raise ConfigError(f"data venue {name!r}: ccxt has no exchange {ex!r} (e.g. ccxt:binance)")
    raise ConfigError(f"data venue {name!r} is not one of kite, alpaca, ccxt:<exchange id>")


def data_venue(exchange: str, overrides: Mapping[str, str] | None = None, broker: str | None = None) -> str:
    """The venue whose market data serves ``exchange``: the broker's own exchange first (``ccxt:binance``
    trading ``binance``), then ``overrides`` (``[live] data_venues``), then the defaults."""
    up = exchange.upper()
    if broker and broker.lower().startswith("ccxt:") and broker.partition(":")[2].lower() == exchange.lower():
        return check_venue(broker)
    if overrides and up in overrides:
        return check_venue(overrides[up])
    if up in KITE_EXCHANGES:
        return "kite"
    if up in US_EXCHANGES:
        return "alpaca"
    return check_venue(f"ccxt:{exchange}")


@dataclass(frozen=True)
class Route:
    """One data venue and the instrument keys it serves."""

    venue: str
    keys: tuple[str, ...]

    @property
    def exchanges(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(k.partition(":")[0] for k in self.keys))


def route(
    keys: Sequence[str] | Iterable[str], overrides: Mapping[str, str] | None = None, broker: str | None = None
) -> list[Route]:
    """Split a universe by data venue (venues in first-seen order, keys in universe order)."""
    by: dict[str, list[str]] = {}
    cache: dict[str, str] = {}
    for k in keys:
        ex, sep, sym = k.partition(":")
        if not sep or not ex or not sym:
            raise ConfigError(f"instrument {k!r} is not a key EXCHANGE:SYMBOL (e.g. NSE:RELIANCE, binance:BTC/USDT)")
        v = cache.get(ex)
        if v is None:
            v = cache[ex] = data_venue(ex, overrides, broker)
        by.setdefault(v, []).append(k)
    return [Route(v, tuple(ks)) for v, ks in by.items()]
