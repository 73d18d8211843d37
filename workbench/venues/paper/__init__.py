"""The paper venue: the default, a simulated account (fees, slippage, partial fills by volume,
stops and take-profits) in the operational store."""

from workbench.venues.base import Venue, lazy
from workbench.venues.paper.config import PaperConfig

__all__ = ["VENUE", "PaperConfig"]

VENUE = Venue(
    name="paper",
    config=PaperConfig,
    broker=lazy("workbench.venues.paper.broker:make_broker"),
    has_testnet=False,
    simulated=True,
)
