"""Market-data sources: CSV files and a synthetic GBM market (``OhlcvSource``); venues' own history
(ccxt, Kite, Alpaca) lives in their packages, ``workbench.venues.<name>.data``."""

from workbench.data.sources.base import OhlcvSource
from workbench.errors import SourceUnavailableError

__all__ = ["OhlcvSource", "SourceUnavailableError"]
