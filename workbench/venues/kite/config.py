"""The Kite (Zerodha Kite Connect) venue's config: NSE/BSE equities; no sandbox, so every order is real.

``[venues.kite]`` in ``workbench.toml``::

    [venues.kite]
    product = "CNC"          # CNC (delivery) or MIS (intraday)
    exchange = "NSE"         # exchange of bare symbols (the lake's tradingsymbols): NSE or BSE
    root = "https://api.kite.trade"   # API root override (tests, proxies); default Kite's own
    ws_root = "wss://ws.kite.trade"   # KiteTicker websocket override (tests, proxies); default Kite's own
    history_per_second = 3.0  # historical-data calls a second (Kite allows 3)
    quotes_per_second = 1.0   # quote calls a second (500 instruments each)

Secrets (one name each): the vault's ``kite/api_key`` and ``kite/api_secret`` (`workbench keys set
kite`) and ``kite/access_token`` (today's session, stored by `workbench keys kite-login`); or the
environment variables ``WORKBENCH_KEY_KITE_API_KEY``, ``WORKBENCH_KEY_KITE_API_SECRET`` and
``WORKBENCH_KEY_KITE_ACCESS_TOKEN``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from workbench.venues.base import VenueConfig

__all__ = ["KiteConfig", "KEY_FIELDS", "TRADING_KEYS", "KEY_HINT"]

KEY_FIELDS = ("api_key", "api_secret")  # what `workbench keys set kite` asks for
TRADING_KEYS = ("api_key", "access_token")  # what trading reads: the access token comes from the daily login
KEY_HINT = (
    "run `workbench keys set kite` (api_key, api_secret), then `workbench keys kite-login` for today's access token"
)


class KiteConfig(VenueConfig):
    """``[venues.kite]``: product, exchange of bare symbols, API root, request rates."""

    product: Literal["CNC", "MIS"] = Field("CNC", description="CNC (delivery) or MIS (intraday)")
    exchange: Literal["NSE", "BSE"] = Field("NSE", description="exchange of bare Kite symbols")
    root: str | None = Field(None, description="Kite Connect API root override (tests, proxies)")
    ws_root: str | None = Field(None, description="KiteTicker websocket root override (tests, proxies)")
    history_per_second: float = Field(3.0, gt=0, description="historical-data calls a second")
    quotes_per_second: float = Field(1.0, gt=0, description="quote calls a second")
