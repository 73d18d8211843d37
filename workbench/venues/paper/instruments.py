"""Paper lists no instruments of its own: it trades whatever the instrument master and the lake hold
(``workbench.instruments``), with lot and tick rules from ``workbench.market.Market``."""

from __future__ import annotations

__all__: list[str] = []
