"""The Alpaca venue's config: US equities, its paper endpoint by default (``broker.testnet``).

``[venues.alpaca]`` in ``workbench.toml``::

    [venues.alpaca]
    url = "https://paper-api.alpaca.markets"   # trading API override (tests, proxies); default Alpaca's own
    data_url = "https://data.alpaca.markets"    # market-data API override (default: ``url`` when set)
    stream_url = "wss://stream.data.alpaca.markets"  # market-data websocket override (tests, proxies)
    feed = "iex"                 # market-data feed: iex (free) or sip
    history_per_second = 3.0     # market-data calls a second (the free plan allows 200 a minute)

Secrets (one name each): the vault's ``alpaca/api_key`` and ``alpaca/secret`` (`workbench keys set
alpaca`), or the environment variables ``WORKBENCH_KEY_ALPACA_API_KEY`` and ``WORKBENCH_KEY_ALPACA_SECRET``.
They serve both trading and market data.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from workbench.venues.base import VenueConfig

__all__ = ["AlpacaConfig", "KEY_FIELDS"]

KEY_FIELDS = ("api_key", "secret")


class AlpacaConfig(VenueConfig):
    """``[venues.alpaca]``: API URLs, data feed, request rate."""

    url: str | None = Field(None, description="Alpaca trading API URL override (tests, proxies)")
    data_url: str | None = Field(None, description="Alpaca market-data URL override (default: url)")
    stream_url: str | None = Field(
        None, description="Alpaca market-data websocket URL override (tests, proxies); default the SDK's own"
    )
    feed: Literal["iex", "sip"] = Field("iex", description="market-data feed")
    history_per_second: float = Field(3.0, gt=0, description="market-data calls a second")
