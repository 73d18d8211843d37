"""Alpaca lists its tradable assets per ticker through the trading API (``AlpacaBroker.markets``
asks for the ones traded); the instrument master takes US listings from NASDAQ Trader's files
(``workbench.instruments``), so Alpaca has no list loader of its own."""

from __future__ import annotations

__all__: list[str] = []
