"""LSTM direction classifier ("lstm") over the last ``lookback`` feature rows of each instrument.

Why it is built this way:
- TensorFlow loads only here and only on first fit/load, so importing workbench never imports it;
- inputs are standardised with the training rows' mean and std, stored in the model, so live
  inference applies exactly the preprocessing training used;
- windows are cut per instrument from the rows it is given, in time order; a row with less than
  ``lookback`` rows of history repeats its instrument's first row (edge padding). Serving passes
  the whole feature history it has (``predict_panel``), so the last row sees the same window live
  as in the backtest;
- small by default (16 units, ≤ 20 epochs with early stopping on the latest 15 % of training rows),
  seeded with ``keras.utils.set_random_seed``: a few seconds on two cores;
- pickling goes through Keras' own ``.keras`` format, so a registered model predicts the very same
  numbers after a save/load.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from typing import Any

import numpy as np
import pandas as pd

from workbench.models.base import check_predict_input, check_xy

__all__ = ["LSTMModel", "DEFAULT_PARAMS", "sequence_windows"]

DEFAULT_PARAMS: dict = {
    "lookback": 10,
    "units": 16,
    "epochs": 20,
    "batch_size": 256,
    "patience": 3,
    "learning_rate": 2e-3,
    "validation_fraction": 0.15,
}


def sequence_windows(values: np.ndarray, symbols: np.ndarray, ts: np.ndarray, lookback: int) -> np.ndarray:
    """(rows, lookback, features): for each row, its instrument's previous ``lookback`` rows, oldest first."""
    n = len(values)
    if n == 0:
        return np.empty((0, lookback, values.shape[1]))
    codes = pd.factorize(np.asarray(symbols))[0]
    order = np.lexsort((np.asarray(ts), codes))  # by instrument, then time
    sorted_codes = codes[order]
    starts = np.r_[True, sorted_codes[1:] != sorted_codes[:-1]]
    group_start = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    idx = np.arange(n)[:, None] + np.arange(-(lookback - 1), 1)[None, :]
    idx = np.maximum(idx, group_start[:, None])
    windows = np.asarray(values, dtype=np.float32)[order][idx]
    out = np.empty_like(windows)
    out[order] = windows
    return out


def _keras():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    return keras


class LSTMModel:
    kind = "lstm"

    def __init__(self, params: dict | None = None, seed: int = 42):
        self.params = {**DEFAULT_PARAMS, **(params or {})}
        self.seed = seed
        self.lookback = int(self.params["lookback"])
        self.feature_names: tuple[str, ...] = ()
        self.mean_: np.ndarray | None = None
        self.std_: np.ndarray | None = None
        self.epochs_run_: int = 0
        self._net: Any = None  # a keras.Model once fitted (keras is untyped)

    def _windows(self, X: pd.DataFrame) -> np.ndarray:
        values = X[list(self.feature_names)].to_numpy(dtype=float)
        values = np.clip((values - self.mean_) / self.std_, -6.0, 6.0)
        ts = pd.DatetimeIndex(X.index.get_level_values("ts")).asi8
        return sequence_windows(values, X.index.get_level_values("symbol").to_numpy(), ts, self.lookback)

    def fit(self, X: pd.DataFrame, y: pd.Series) -> LSTMModel:
        y_arr = check_xy(X, y)
        keras = _keras()
        keras.utils.set_random_seed(self.seed)
        self.feature_names = tuple(map(str, X.columns))
        values = X.to_numpy(dtype=float)
        self.mean_ = values.mean(axis=0)
        std = values.std(axis=0)
        self.std_ = np.where(std > 0, std, 1.0)
        W = self._windows(X)
        order = np.argsort(
            pd.DatetimeIndex(X.index.get_level_values("ts")).asi8, kind="stable"
        )  # validation = latest rows
        W, yy = W[order], y_arr[order].astype(np.float32)
        p = self.params
        net = keras.Sequential(
            [
                keras.Input((self.lookback, len(self.feature_names))),
                keras.layers.LSTM(int(p["units"])),
                keras.layers.Dense(1, activation="sigmoid"),
            ]
        )
        net.compile(optimizer=keras.optimizers.Adam(float(p["learning_rate"])), loss="binary_crossentropy")
        stop = keras.callbacks.EarlyStopping(patience=int(p["patience"]), restore_best_weights=True)
        with warnings.catch_warnings():  # Keras' numpy-2 copy= DeprecationWarning is not ours to fix
            warnings.simplefilter("ignore", DeprecationWarning)
            hist = net.fit(
                W,
                yy,
                epochs=int(p["epochs"]),
                batch_size=int(p["batch_size"]),
                validation_split=float(p["validation_fraction"]),
                callbacks=[stop],
                verbose=0,
                shuffle=True,
            )
        self.epochs_run_ = len(hist.history["loss"])
        self._net = net
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        check_predict_input(self, X, self._net is not None)
        if len(X) == 0:
            return np.empty(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            out = self._net.predict(self._windows(X), batch_size=4096, verbose=0)
        return np.asarray(out, dtype=float)[:, 0]

    def feature_importance(self) -> pd.Series | None:
        return None  # no cheap, honest importance for a recurrent net

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        if self._net is not None:
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "net.keras")
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)
                    self._net.save(path)
                with open(path, "rb") as fh:
                    state["_net"] = fh.read()
        return state

    def __setstate__(self, state: dict) -> None:
        blob = state.get("_net")
        self.__dict__.update(state)
        if isinstance(blob, bytes):
            keras = _keras()
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "net.keras")
                with open(path, "wb") as fh:
                    fh.write(blob)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)
                    self._net = keras.saving.load_model(path, compile=False)

    def __repr__(self) -> str:
        state = f"fitted, {self.epochs_run_} epochs" if self._net is not None else "unfitted"
        return f"LSTMModel({state}, lookback {self.lookback}, {len(self.feature_names)} features)"
