"""A synthetic market for offline demos and tests: vectorbt's ``GBMData`` closes, derived bars.

vectorbt generates only a close path; open, high, low and volume are derived from the same seed
so every bar is valid (high ≥ max(open, close), low ≤ min(open, close), volume > 0) and the whole
market is a pure function of (seed, symbols, timeframe, bars, end). It is always labelled
``synthetic`` (name and exchange) so no one mistakes it for a real market.
"""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Iterable

import numpy as np
import pandas as pd

from workbench.data.candles import empty_candles, timeframe_delta, validate_candles
from workbench.errors import UnknownSymbolError

__all__ = ["SyntheticSource", "last_complete_day"]

_DAY = pd.Timedelta(days=1)
_EPOCH = pd.Timestamp("2000-01-01", tz="UTC")
_BLOCK_BARS = 2000


def last_complete_day(now: pd.Timestamp | None = None) -> pd.Timestamp:
    """Today's 00:00 UTC: the end of the last complete UTC day (the series ends just before it)."""
    now = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    now = now.tz_localize("UTC") if now.tzinfo is None else now.tz_convert("UTC")
    return now.floor("D")


def _symbol_seed(seed: int, symbol: str) -> int:
    # crc32, not hash(): Python salts str hashes per process, and the market must not change.
    return (seed * 1_000_003 + zlib.crc32(symbol.encode())) % (2**32)


class SyntheticSource:
    """GBM closes from ``vbt.GBMData`` plus seeded open/high/low/volume; an ``OhlcvSource``.

    The series has ``bars`` bars of the requested timeframe ending just before ``end`` (default:
    today 00:00 UTC, so daily data looks current). Prices do not depend on ``end`` within one
    anchor block (see ``_path_index``), so pulling again tomorrow extends the same market.
    """

    name = "synthetic"
    exchange = "synthetic"

    def __init__(
        self,
        symbols: Iterable[str],
        seed: int = 42,
        timeframe: str = "1d",
        bars: int = 1000,
        end: pd.Timestamp | str | None = None,
        structure: float = 0.0,
    ):
        self._symbols = list(dict.fromkeys(symbols))
        if not self._symbols:
            raise ValueError("SyntheticSource needs at least one symbol")
        if bars < 2:
            raise ValueError(f"bars must be ≥ 2, got {bars}")
        if not -1.0 < structure < 1.0:
            raise ValueError(f"structure is a lag-1 autocorrelation in (-1, 1), got {structure}")
        self.seed, self.timeframe, self.bars, self.structure = int(seed), timeframe, int(bars), float(structure)
        timeframe_delta(timeframe)  # fail early on a bad timeframe
        self.end = last_complete_day() if end is None else last_complete_day(pd.Timestamp(end))

    def symbols(self) -> list[str]:
        return list(self._symbols)

    def _path_index(self, timeframe: str) -> pd.DatetimeIndex:
        """The grid the GBM path runs on: from an anchor fixed for a whole block of bars to ``end``.

        Anchoring makes a bar's price independent of the day the market is generated, as long as
        ``end`` stays in the same block (5.5 years of daily bars), so a later pull extends the same
        path instead of splicing a new one onto stored history.
        """
        step = timeframe_delta(timeframe)
        block = max(self.bars, _BLOCK_BARS) * step
        k = (self.end - _EPOCH) // block
        origin = _EPOCH + (k - 1) * block  # at least one whole block of history before `end`
        return pd.date_range(origin, self.end - step, freq=step, name="ts")

    def _params(self, symbol: str, timeframe: str) -> tuple[float, float, float]:
        """(S0, sigma per bar, mu per bar): each symbol its own level and volatility."""
        rng = np.random.default_rng(_symbol_seed(self.seed, symbol))
        scale = float(timeframe_delta(timeframe) / _DAY)
        s0 = float(np.round(rng.uniform(20, 400), 2))
        sigma = float(rng.uniform(0.012, 0.03)) * np.sqrt(scale)
        mu = 0.5 * sigma**2 + float(rng.normal(0.0001, 0.0002)) * scale  # median drift ≈ a small trend
        return s0, sigma, mu

    def _closes(self, timeframe: str, index: pd.DatetimeIndex) -> pd.DataFrame:
        """Close paths of all symbols from ``GBMData`` (one seed per symbol, so they differ)."""
        import vectorbt as vbt  # heavy import, only when synthetic data is really made

        params = {s: self._params(s, timeframe) for s in self._symbols}
        kwargs = {
            name: vbt.symbol_dict({s: params[s][i] for s in self._symbols})
            for i, name in enumerate(("S0", "sigma", "mu"))
        }
        seeds = vbt.symbol_dict({s: _symbol_seed(self.seed, s) for s in self._symbols})
        state = np.random.get_state()  # generate_gbm_paths reseeds numpy's global RNG: restore it
        try:
            with warnings.catch_warnings():
                # vectorbt 1.2 reads index.inferred_freq, which pandas 3.1 warns about; not ours to fix.
                warnings.filterwarnings("ignore", message=".*inferred_freq.*")
                data = vbt.GBMData.download(
                    self._symbols, start=index[0], end=index[-1], freq=index.freq, seed=seeds, **kwargs
                )
        finally:
            np.random.set_state(state)
        closes = data.get()
        if isinstance(closes, pd.Series):
            closes = closes.to_frame(self._symbols[0])
        closes.index = index
        closes = closes[self._symbols]
        return _with_momentum(closes, self.structure) if self.structure else closes

    def candles(self, timeframe: str | None = None) -> pd.DataFrame:
        """The last ``bars`` bars of every symbol as validated long candles."""
        timeframe = timeframe or self.timeframe
        index = self._path_index(timeframe)
        closes = self._closes(timeframe, index)
        n = len(index)
        parts = []
        for sym in self._symbols:
            close = closes[sym].to_numpy()
            _, sigma, _ = self._params(sym, timeframe)
            # One stream per quantity, so bar i draws the same numbers however long the path is.
            gap_rng, hi_rng, lo_rng, vol_rng = (
                np.random.default_rng([_symbol_seed(self.seed, sym), k]) for k in range(1, 5)
            )
            first_open = close[0] / np.exp(0.5 * sigma)
            open_ = np.concatenate([[first_open], close[:-1]]) * np.exp(gap_rng.normal(0.0, 0.25 * sigma, n))
            wick = np.abs(np.stack([hi_rng.normal(0.0, 0.6 * sigma, n), lo_rng.normal(0.0, 0.6 * sigma, n)]))
            high = np.maximum(open_, close) * np.exp(wick[0])
            low = np.minimum(open_, close) * np.exp(-wick[1])
            ret = np.abs(np.log(close / open_))
            volume = np.round(1e6 * np.exp(vol_rng.normal(0.0, 0.3, n)) * (1 + ret / sigma), 0) + 1.0
            frame = pd.DataFrame(
                {"ts": index, "symbol": sym, "open": open_, "high": high, "low": low, "close": close, "volume": volume}
            )
            parts.append(frame.iloc[-self.bars :])
        return validate_candles(pd.concat(parts, ignore_index=True), f"synthetic(seed={self.seed})")

    def fetch(
        self,
        symbol: str,
        timeframe: str,
        since: pd.Timestamp | None = None,
        until: pd.Timestamp | None = None,
    ) -> pd.DataFrame:
        if symbol not in self._symbols:
            raise UnknownSymbolError(f"the synthetic market has no symbol {symbol!r}; it has {self._symbols}")
        df = SyntheticSource([symbol], self.seed, timeframe, self.bars, self.end, self.structure).candles(timeframe)
        if since is not None:
            df = df[df["ts"] >= _utc(since)]
        if until is not None:
            df = df[df["ts"] <= _utc(until)]
        return df.reset_index(drop=True) if len(df) else empty_candles()


def _with_momentum(closes: pd.DataFrame, phi: float) -> pd.DataFrame:
    """The same GBM shocks passed through an AR(1) filter: log return r'_t = r_t + phi * r'_{t-1}.

    Why: a pure random walk gives a model nothing to learn, so the demo's model sits at its base rate
    and (long-only) never buys. A planted, known autocorrelation is structure a model can find out of
    sample, without faking any signal. The filter runs over the whole anchored path, so a bar's price
    still does not depend on the day the market is generated.
    """
    from scipy.signal import lfilter

    logc = np.log(closes.to_numpy(dtype="float64"))
    r = np.diff(logc, axis=0)
    filtered = lfilter([1.0], [1.0, -phi], r, axis=0)
    out = np.vstack([logc[:1], logc[:1] + np.cumsum(filtered, axis=0)])
    return pd.DataFrame(np.exp(out), index=closes.index, columns=closes.columns)


def _utc(ts) -> pd.Timestamp:
    t = pd.Timestamp(ts)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
