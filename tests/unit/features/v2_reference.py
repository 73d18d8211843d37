"""Feature set v2 composed from the streaming indicators, as it was built before the fused kernels
(``workbench.features.fused``): the reference those kernels are tested equal to. Each streaming
indicator here is itself tested against TA-Lib (test_feature_talib.py)."""

from __future__ import annotations

import numpy as np

from workbench.features import kernels as K
from workbench.features import streams as S
from workbench.features.indicators import cs_rank, cs_zscore
from workbench.features.sets import V2_COLUMNS, Bars, _clock, benchmark_returns, v1_stream
from workbench.features.timefeatures import TIME_COLUMNS, time_features


def v2_composed(st: S.StreamState, b: Bars) -> dict[str, np.ndarray]:
    """Feature set v2: v1 plus trend strength, oscillators, volume, support/resistance, market beta,
    cross-sectional ranks and calendar time. Volume features are NaN where volume is missing or zero."""
    h, lo, c = b.high, b.low, b.close
    with np.errstate(invalid="ignore"):
        vol_v = np.where(b.volume > 0, b.volume, np.nan)  # zero volume = not reported (some CSVs): NaN, not a signal
    out = v1_stream(st, b)
    out["ret_10"] = S.s_returns(st, c, 10)
    out["ret_60"] = S.s_returns(st, c, 60)
    out["vol_60"] = S.s_volatility(st, c, 60)
    out["ema_ratio_50"] = S.ratio(c, S.s_ema(st, c, 50)) - 1.0
    adx, pdi, mdi = S.s_adx(st, h, lo, c, 14)
    out["adx_14"] = adx / 100.0
    out["di_spread_14"] = (pdi - mdi) / 100.0
    k, d = S.s_stochastic(st, h, lo, c, 14, 3, 3)
    out["stoch_k"], out["stoch_d"] = k / 100.0, d / 100.0
    out["mfi_14"] = S.s_mfi(st, h, lo, c, vol_v, 14) / 100.0
    cm, vm = S.masked(c, vol_v)
    obv = S.s_obv(st, cm, vm)
    out["obv_flow_20"] = S.ratio(obv - S.s_lag(st, obv, 20), S.s_rolling(st, vm, 20, K.SUM), positive=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        logv = np.log(vol_v)
    out["volume_z_20"] = S.s_zscore(st, logv, 20)
    out["vwap_dist_20"] = S.ratio(c, S.s_rolling_vwap(st, h, lo, c, vol_v, 20)) - 1.0
    for n in (20, 60):
        hm, cm_ = S.masked(h, c)
        out[f"dist_high_{n}"] = S.ratio(cm_, S.s_rolling(st, hm, n, K.MAX)) - 1.0
        lm, cm_ = S.masked(lo, c)
        out[f"dist_low_{n}"] = S.ratio(cm_, S.s_rolling(st, lm, n, K.MIN)) - 1.0
    out["breakout_up_20"], out["breakout_down_20"] = S.s_breakout(st, h, lo, c, 20)
    r1 = out["ret_1"]
    out["beta_60"], out["corr_60"] = S.s_beta_corr(st, r1, benchmark_returns(r1, b), 60)
    out["cs_rank_ret_5"] = cs_rank(out["ret_5"])
    out["cs_rank_ret_20"] = cs_rank(out["ret_20"])
    out["cs_z_ret_20"] = cs_zscore(out["ret_20"])
    out["cs_rank_vol_20"] = cs_rank(out["vol_20"])
    out["cs_rank_volume_z_20"] = cs_rank(out["volume_z_20"])
    tf = time_features(b.index, _clock(st, b), b.timeframe)
    shape = c.shape
    for name in TIME_COLUMNS:
        out[name] = np.broadcast_to(tf[name][:, None], shape)
    return {name: out[name] for name in V2_COLUMNS}
