"""The signal contract: probabilities → BUY/SELL/HOLD with strength, confidence and ATR prices."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.config import SignalParams
from workbench.signals import Signal, entry_exit_masks, latest_signals, signal_frame, strength_from_reference

IDX = pd.date_range("2024-01-01", periods=3, freq="1D", tz="UTC", name="ts")
COLS = pd.Index(["A", "B", "C", "D"], name="symbol")


def _wide(rows) -> pd.DataFrame:
    return pd.DataFrame(np.asarray(rows, float), index=IDX, columns=COLS)


@pytest.fixture
def frames():
    proba = _wide([[0.9, 0.1, 0.52, np.nan], [0.6, 0.4, 0.5, 0.7], [0.95, 0.05, 0.55, 0.8]])
    close = _wide([[100, 50, 10, 20]] * 3)
    atr = _wide([[2, 1, 0.5, np.nan]] * 3)
    reference = np.linspace(0.0025, 0.4975, 100)  # conviction |p − 0.5| uniform on [0, 0.5]
    return signal_frame(proba, close, atr, SignalParams(), reference)


def test_strength_is_the_empirical_cdf_of_conviction():
    ref = np.array([0.0, 0.1, 0.2, 0.3, np.nan])
    got = strength_from_reference(np.array([0.05, 0.2, 0.45, np.nan]), ref)
    np.testing.assert_allclose(got, [0.25, 0.75, 1.0, np.nan])
    np.testing.assert_allclose(strength_from_reference(np.array([0.1, 0.4]), np.array([])), [0.2, 0.8])


def test_signal_frame_directions_strength_and_prices(frames):
    last = {k: v.iloc[-1] for k, v in frames.items()}
    assert last["side"].tolist() == [1.0, -1.0, 0.0, 0.0]  # C is weak → HOLD; D has no ATR → HOLD
    np.testing.assert_allclose(last["strength"].to_numpy(), [0.9, 0.9, 0.1, 0.6])
    np.testing.assert_allclose(last["confidence"].to_numpy(), [0.95, 0.95, 0.55, 0.8])
    p = SignalParams()
    assert last["target"]["A"] == pytest.approx(100 + p.target_atr * 2)
    assert last["stop"]["A"] == pytest.approx(100 - p.stop_atr * 2)
    assert last["take_profit"]["A"] == pytest.approx(100 + p.take_profit_atr * 2)
    assert last["stop"]["B"] == pytest.approx(50 + p.stop_atr * 1)  # a SELL's stop is above
    assert last["take_profit"]["B"] == pytest.approx(50 - p.take_profit_atr * 1)
    assert np.isnan(last["target"]["C"]) and np.isnan(last["stop"]["D"])
    first = {k: v.iloc[0] for k, v in frames.items()}
    assert np.isnan(first["confidence"]["D"]) and first["side"]["D"] == 0.0  # no probability → HOLD
    assert frames["side"].iloc[1]["C"] == 0.0  # p = 0.5 exactly has no direction


def test_latest_signals_follow_the_contract(frames):
    sigs = {s.symbol: s for s in latest_signals(frames, exchange="TEST")}
    assert set(sigs) == {"A", "B", "C", "D"}
    a = sigs["A"]
    assert (a.signal, a.exchange, a.price, a.ts) == ("BUY", "TEST", 100.0, IDX[-1])
    assert a.to_dict() == {
        "symbol": "A",
        "signal": "BUY",
        "strength": 0.9,
        "confidence": 0.95,
        "target_price": 102.0,
        "stop_loss": 96.0,
        "take_profit": 106.0,
    }
    assert sigs["B"].signal == "SELL" and sigs["B"].stop_loss == 52.0
    assert sigs["C"].signal == "HOLD" and sigs["C"].target_price is None and sigs["C"].stop_loss is None
    first_row = latest_signals({k: v.iloc[:1] for k, v in frames.items()})
    assert "D" not in {s.symbol for s in first_row}  # no probability, no signal
    # Built without __post_init__ (checked by construction): each passes the validating constructor
    # and is equal to what it builds, types included.
    for sig in sigs.values():
        again = Signal(**{f: getattr(sig, f) for f in Signal.__dataclass_fields__})
        assert again == sig and type(sig.strength) is float and type(sig.signal) is str
        assert sig.target_price is None or type(sig.target_price) is float


def test_entry_exit_masks_use_the_risk_threshold(frames):
    entries, exits = entry_exit_masks(frames, min_strength=0.7)
    assert entries.dtypes.eq(bool).all() and exits.dtypes.eq(bool).all()
    assert entries["A"].tolist() == [True, False, True]  # row 1: p = 0.6 has strength 0.21
    assert exits["B"].tolist() == [True, False, True]
    assert not entries["C"].any() and not exits[["A", "C", "D"]].any().any()
    entries_hi, _ = entry_exit_masks(frames, min_strength=0.95)
    assert not entries_hi.any().any()


def test_signal_validation():
    with pytest.raises(ValueError, match="BUY, SELL or HOLD"):
        Signal("A", "LONG", 0.5, 0.5, None, None, None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="strength"):
        Signal("A", "BUY", 1.5, 0.5, 1.0, 0.9, 1.1)
    with pytest.raises(ValueError, match="HOLD signal carries no prices"):
        Signal("A", "HOLD", 0.1, 0.5, 1.0, None, None)
