"""Market-data sources: CSV files, ccxt exchanges, a synthetic GBM market (all ``OhlcvSource``)."""

from workbench.data.sources.base import OhlcvSource, SourceUnavailableError

__all__ = ["OhlcvSource", "SourceUnavailableError"]
