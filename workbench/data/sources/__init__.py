"""Market-data sources: CSV files, ccxt exchanges, a synthetic GBM market (all ``OhlcvSource``)."""

from workbench.data.sources.base import OhlcvSource
from workbench.errors import SourceUnavailableError

__all__ = ["OhlcvSource", "SourceUnavailableError"]
