"""Zerodha Kite's instrument list (``kite.instruments()`` or its CSV dump) as instrument-master rows.

Its EQ rows on NSE/BSE become the same keys as the exchanges' own lists (loaded by
``workbench.instruments``) and fill in the Kite instrument token and tick size there.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from workbench.instruments import InstrumentListError, _csv, _file_date, _frame, _num, _require, _text

__all__ = ["load_kite"]


_KITE_CLASS = {"EQ": "equity", "FUT": "future", "CE": "option", "PE": "option"}
_KITE_CCY = {
    "NSE": "INR",
    "BSE": "INR",
    "NFO": "INR",
    "BFO": "INR",
    "MCX": "INR",
    "CDS": "INR",
    "BCD": "INR",
    "NCO": "INR",
}


def load_kite(path: Path | str | None = None, *, kite=None, as_of=None) -> pd.DataFrame:
    """Zerodha's instruments dump (``kite.instruments()`` or its CSV): every segment, with tokens.

    Its EQ rows on NSE/BSE become the same keys as the exchanges' own lists and fill in the Kite
    instrument token and tick size there; F&O, currency and commodity contracts are its own rows.
    """
    if kite is not None and path is None:
        df, origin = pd.DataFrame(kite.instruments()).astype(str), "kite.instruments()"
        df = df.apply(lambda s: s.str.strip().replace({"None": "", "NaT": ""}))
    else:
        text, origin = _text(path, "kite")
        df = _csv(text, origin)
    cols = [
        "instrument_token",
        "exchange_token",
        "tradingsymbol",
        "name",
        "expiry",
        "strike",
        "tick_size",
        "lot_size",
        "instrument_type",
        "segment",
        "exchange",
    ]
    _require(df, origin, cols, ["instrument_token", "tradingsymbol", "exchange", "instrument_type"])
    token = _num(df["instrument_token"], origin, "instrument_token")
    expiry = pd.to_datetime(df["expiry"], format="ISO8601", errors="coerce")
    retry = expiry.isna() & df["expiry"].ne("")
    if retry.any():  # re-saved dumps write dd-mm-yyyy
        expiry = expiry.fillna(pd.to_datetime(df["expiry"].where(retry), format="%d-%m-%Y", errors="coerce"))
    bad = expiry.isna() & df["expiry"].ne("")
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise InstrumentListError(origin, f"data row {i + 1}: expiry {df['expiry'].iloc[i]!r} is not a date")
    itype = df["instrument_type"]
    aclass = itype.map(_KITE_CLASS).fillna("other").mask(df["segment"].eq("INDICES"), "index")
    return _frame(
        len(df),
        symbol=df["tradingsymbol"], name=df["name"], exchange=df["exchange"], asset_class=aclass,
        currency=df["exchange"].map(_KITE_CCY).fillna("INR"),
        lot_size=_num(df["lot_size"], origin, "lot_size"), tick_size=_num(df["tick_size"], origin, "tick_size"),
        kite_token=token.astype("Int64"), exchange_token=df["exchange_token"],
        expiry=expiry.astype("datetime64[s]"), strike=_num(df["strike"], origin, "strike").where(itype.isin(["CE", "PE"])),
        active=True, status="segment " + df["segment"], source="kite",
        as_of=pd.Timestamp(as_of) if as_of is not None else _file_date(path),
    )  # fmt: skip


def load_instruments(path: Path | str | None = None, *, instance: str | None = None, **kw) -> pd.DataFrame:
    """The registry's loader: ``load_kite``."""
    return load_kite(path, **kw)
