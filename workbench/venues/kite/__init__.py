"""The Kite venue: Zerodha Kite Connect, NSE/BSE equities (no sandbox: real money only)."""

from workbench.venues.base import Venue, lazy
from workbench.venues.kite.config import KEY_FIELDS, KEY_HINT, TRADING_KEYS, KiteConfig

__all__ = ["VENUE", "KiteConfig"]

VENUE = Venue(
    name="kite",
    config=KiteConfig,
    broker=lazy("workbench.venues.kite.broker:make_broker"),
    data=lazy("workbench.venues.kite.data:make_source"),
    quotes=lazy("workbench.venues.kite.data:make_quotes"),
    instruments=lazy("workbench.venues.kite.instruments:load_instruments"),
    key_fields=KEY_FIELDS,
    trading_keys=TRADING_KEYS,
    has_testnet=False,
    key_hint=KEY_HINT,
)
