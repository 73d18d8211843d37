"""Indicators against straightforward pandas references, on real prices, late starts and gaps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.features import indicators as ind


def ref_seeded_ewm(s: pd.Series, n: int, alpha: float, first: int = 0) -> pd.Series:
    """TA-Lib style: the mean of the first n values from ``first`` seeds a plain recursive filter."""
    out = pd.Series(np.nan, index=s.index)
    seed_at = first + n - 1
    seeded = pd.concat([pd.Series([s.iloc[first : seed_at + 1].mean()]), s.iloc[seed_at + 1 :]], ignore_index=True)
    out.iloc[seed_at:] = seeded.ewm(alpha=alpha, adjust=False).mean().to_numpy()
    return out


def ref_rsi(s: pd.Series, n: int) -> pd.Series:
    d = s.diff()
    g = ref_seeded_ewm(d.clip(lower=0), n, 1 / n, first=1)
    l = ref_seeded_ewm((-d).clip(lower=0), n, 1 / n, first=1)
    return 100 * g / (g + l)


def ref_atr(h, l, c, n):
    pc = c.shift(1)
    tr = pd.concat([h - l, (h - pc).abs(), (l - pc).abs()], axis=1).max(axis=1, skipna=False)
    return ref_seeded_ewm(tr, n, 1 / n, first=1)


@pytest.fixture(scope="module")
def real(sp500_panel):
    return sp500_panel


def test_sma_ema_match_pandas_on_real_prices(real):
    close = real.close
    got_sma = ind.sma(close.to_numpy(), 20)
    got_ema = ind.ema(close.to_numpy(), 12)
    for j, sym in enumerate(close.columns):
        s = close[sym]
        np.testing.assert_allclose(got_sma[:, j], s.rolling(20).mean().to_numpy(), rtol=1e-12, equal_nan=True)
        np.testing.assert_allclose(got_ema[:, j], ref_seeded_ewm(s, 12, 2 / 13).to_numpy(), rtol=1e-12, equal_nan=True)
    assert np.isnan(got_ema[:11]).all() and np.isfinite(got_ema[11:]).all()
    # After a long warm-up the seed is forgotten: plain pandas ewm agrees too.
    plain = close.ewm(span=12, adjust=False).mean().to_numpy()
    np.testing.assert_allclose(got_ema[300:], plain[300:], rtol=1e-9)


def test_rsi_atr_match_wilder_references(real):
    got_rsi = ind.rsi(real.close.to_numpy(), 14)
    got_atr = ind.atr(real.high.to_numpy(), real.low.to_numpy(), real.close.to_numpy(), 14)
    for j, sym in enumerate(real.symbols):
        exp_rsi = ref_rsi(real.close[sym], 14).to_numpy()
        exp_atr = ref_atr(real.high[sym], real.low[sym], real.close[sym], 14).to_numpy()
        np.testing.assert_allclose(got_rsi[:, j], exp_rsi, rtol=1e-10, equal_nan=True)
        np.testing.assert_allclose(got_atr[:, j], exp_atr, rtol=1e-10, equal_nan=True)
    # TA-Lib lookbacks: both first defined at bar 14.
    assert np.isnan(got_rsi[:14]).all() and np.isfinite(got_rsi[14:]).all()
    assert np.isnan(got_atr[:14]).all() and np.isfinite(got_atr[14:]).all()
    assert (got_rsi[14:] >= 0).all() and (got_rsi[14:] <= 100).all()


def test_macd_bollinger_returns_volatility(real):
    c = real.close.to_numpy()
    line, sig, hist = ind.macd(c, 12, 26, 9)
    mid, up, _lo, pct_b = ind.bollinger(c, 20, 2.0)
    r5 = ind.returns(c, 5)
    vol = ind.rolling_volatility(c, 20)
    for j, sym in enumerate(real.symbols):
        s = real.close[sym]
        fast = pd.Series(np.nan, index=s.index)
        fast.iloc[14:] = ref_seeded_ewm(s.iloc[14:].reset_index(drop=True), 12, 2 / 13).to_numpy()  # TA-Lib alignment
        exp_line = fast - ref_seeded_ewm(s, 26, 2 / 27)
        exp_sig = ref_seeded_ewm(exp_line.reset_index(drop=True), 9, 0.2, first=25).to_numpy()
        np.testing.assert_allclose(line[:, j], exp_line.to_numpy(), rtol=1e-9, atol=1e-12, equal_nan=True)
        np.testing.assert_allclose(sig[:, j], exp_sig, rtol=1e-9, atol=1e-12, equal_nan=True)
        np.testing.assert_allclose(hist[:, j], line[:, j] - exp_sig, atol=1e-12, equal_nan=True)
        m, sd = s.rolling(20).mean(), s.rolling(20).std(ddof=0)
        np.testing.assert_allclose(mid[:, j], m.to_numpy(), rtol=1e-12, equal_nan=True)
        np.testing.assert_allclose(up[:, j], (m + 2 * sd).to_numpy(), rtol=1e-10, equal_nan=True)
        np.testing.assert_allclose(
            pct_b[:, j], ((s - (m - 2 * sd)) / (4 * sd)).to_numpy(), rtol=1e-8, atol=1e-9, equal_nan=True
        )
        np.testing.assert_allclose(r5[:, j], s.pct_change(5).to_numpy(), rtol=1e-12, equal_nan=True)
        np.testing.assert_allclose(vol[:, j], np.log(s).diff().rolling(20).std().to_numpy(), rtol=1e-8, equal_nan=True)
    assert np.isnan(line[:25]).all() and np.isfinite(line[25:]).all()
    assert np.isnan(sig[:33]).all() and np.isfinite(sig[33:]).all()
    assert np.isnan(vol[:20]).all() and np.isfinite(vol[20:]).all()


ALL = {
    "sma": lambda c, h, l: ind.sma(c, 10),
    "ema": lambda c, h, l: ind.ema(c, 10),
    "rsi": lambda c, h, l: ind.rsi(c, 14),
    "macd_line": lambda c, h, l: ind.macd(c)[0],
    "macd_signal": lambda c, h, l: ind.macd(c)[1],
    "bb_pct_b": lambda c, h, l: ind.bollinger(c)[3],
    "atr": lambda c, h, l: ind.atr(h, l, c, 14),
    "returns": lambda c, h, l: ind.returns(c, 3),
    "vol": lambda c, h, l: ind.rolling_volatility(c, 20),
}


@pytest.mark.parametrize("name", sorted(ALL))
def test_late_start_and_gap_equal_the_indicator_of_the_valid_bars(real, name):
    """A column's values are the indicator of its own valid bars; missing bars are NaN and skipped."""
    fn = ALL[name]
    c, h, l = (real.field(f)[["AAPL"]].to_numpy()[:300] for f in ("close", "high", "low"))
    holes = np.zeros(300, dtype=bool)
    holes[:37] = True  # late start
    holes[150:155] = True  # a halt
    holes[200] = True
    cc, hh, ll = (np.where(holes[:, None], np.nan, a) for a in (c, h, l))
    ll[230] = np.nan  # a missing low alone invalidates that bar for ATR only
    # Three columns: full history, holes, and all-NaN.
    grid = [np.hstack([a, b, np.full_like(a, np.nan)]) for a, b in ((c, cc), (h, hh), (l, ll))]
    got = fn(*grid)
    assert got.shape == (300, 3)
    assert not np.isinf(got).any()
    assert np.isnan(got[:, 2]).all()
    np.testing.assert_allclose(got[:, 0], fn(c, h, l)[:, 0], equal_nan=True)
    keep = ~holes if name != "atr" else ~holes & np.isfinite(ll[:, 0])
    compact = fn(cc[keep], hh[keep], ll[keep])[:, 0]
    np.testing.assert_allclose(got[keep, 1], compact, rtol=1e-12, equal_nan=True)
    assert np.isnan(got[~keep, 1]).all()
    assert np.isfinite(got[-1, 1])


def test_constant_and_degenerate_inputs_never_give_inf():
    flat = np.full((60, 2), 50.0)
    flat[:, 1] = 0.0  # a zero price
    with np.errstate(all="raise"):  # no floating-point warnings leak out either
        outs = [ALL[k](flat, flat, flat) for k in ALL]
    for o in outs:
        assert not np.isinf(o).any()
    assert np.allclose(ind.rsi(flat, 14)[14:, 0], 50.0)
    assert np.allclose(ind.bollinger(flat, 20)[3][19:, 0], 0.5)
    assert np.allclose(ind.atr(flat, flat, flat, 14)[14:, 0], 0.0)
    assert np.isnan(ind.returns(flat, 1)[1:, 1]).all()  # 0/0 is unknown, not inf
    short = np.arange(5.0).reshape(-1, 1)  # shorter than the window
    assert np.isnan(ind.ema(short, 10)).all() and np.isnan(ind.sma(short, 10)).all()


def test_frames_in_frames_out_and_1d(real):
    close = real.close
    out = ind.ema(close, 12)
    assert isinstance(out, pd.DataFrame) and out.index.equals(close.index) and out.columns.equals(close.columns)
    mid, up, lo, pct = ind.bollinger(close)
    assert all(isinstance(x, pd.DataFrame) for x in (mid, up, lo, pct))
    s = ind.rsi(close["AAPL"], 14)
    assert isinstance(s, pd.Series) and s.name == "AAPL"
    one_d = ind.rsi(close["AAPL"].to_numpy(), 14)
    assert one_d.shape == (len(close),)
    np.testing.assert_allclose(one_d, s.to_numpy(), equal_nan=True)
    with pytest.raises(ValueError, match="positive integer"):
        ind.sma(close, 0)
