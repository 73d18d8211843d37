"""The ccxt venue: any exchange ccxt supports (``ccxt:<exchange id>``), Binance spot first."""

from workbench.venues.base import Venue, lazy
from workbench.venues.ccxt.config import CcxtConfig, exchange_id, key_fields

__all__ = ["VENUE", "CcxtConfig"]

VENUE = Venue(
    name="ccxt",
    config=CcxtConfig,
    broker=lazy("workbench.venues.ccxt.broker:make_broker"),
    data=lazy("workbench.venues.ccxt.data:make_source"),
    quotes=lazy("workbench.venues.ccxt.data:make_quotes"),
    instruments=lazy("workbench.venues.ccxt.instruments:load_instruments"),
    key_fields=key_fields,
    instance=exchange_id,
    instance_hint="ccxt:<exchange id>",
    default_instance="binance",
)
