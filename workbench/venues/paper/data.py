"""Paper trades on the prices the live loop's feed gives it (``workbench.trading.feeds``: live
quotes or a labelled replay of the lake); it has no market-data API of its own. What it uses from
the shared types is re-exported here so the paper package has the same shape as the others."""

from __future__ import annotations

from workbench.market import Bar, Quote

__all__ = ["Bar", "Quote"]
