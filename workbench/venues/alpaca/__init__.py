"""The Alpaca venue: US equities (NYSE, NASDAQ), the paper endpoint by default."""

from workbench.venues.alpaca.config import KEY_FIELDS, AlpacaConfig
from workbench.venues.base import Venue, lazy

__all__ = ["VENUE", "AlpacaConfig"]

VENUE = Venue(
    name="alpaca",
    config=AlpacaConfig,
    broker=lazy("workbench.venues.alpaca.broker:make_broker"),
    data=lazy("workbench.venues.alpaca.data:make_source"),
    quotes=lazy("workbench.venues.alpaca.data:make_quotes"),
    key_fields=KEY_FIELDS,
)
