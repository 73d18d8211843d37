"""The paper venue's config: simulated fills against live (or replayed) prices, no keys, no testnet.

The simulated account itself (starting cash, currency, volume cap, per-exchange costs) is the
``[paper]`` table and the costs the ``[costs]`` table of ``workbench.toml``, as before: they are shared
with the backtest. ``[venues.paper]`` holds nothing yet; it exists so every venue has the same files.
Secrets: none.
"""

from __future__ import annotations

from workbench.venues.base import VenueConfig

__all__ = ["PaperConfig"]


class PaperConfig(VenueConfig):
    """``[venues.paper]``: no settings of its own (see ``[paper]`` and ``[costs]``)."""
