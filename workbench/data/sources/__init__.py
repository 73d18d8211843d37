"""Market-data sources: CSV files and a synthetic GBM market (``OhlcvSource``); venues' own history
(ccxt, Kite, Alpaca) lives in their packages, ``workbench.venues.<name>.data``."""

from workbench.data.sources.base import OhlcvSource, SourceUnavailableError

__all__ = ["OhlcvSource", "SourceUnavailableError"]
