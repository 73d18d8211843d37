"""Long candles (one row per bar) and the one gate every bar passes before it reaches the lake.

Every source hands its bars to ``validate_candles`` so that the lake, features and backtests can
trust them without re-checking: UTC timestamps, float prices, ascending order per symbol, no
duplicates, consistent OHLC. A bad bar is never repaired silently; the error names the origin
(file) and the 1-based data row so the user can fix the file and import again.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from workbench.errors import BadCandlesError

__all__ = [
    "CANDLE_COLUMNS",
    "PRICE_COLUMNS",
    "QUARANTINE_COLUMNS",
    "validate_candles",
    "screen_candles",
    "timeframe_delta",
    "timeframe_of",
    "empty_candles",
    "empty_quarantine",
]

CANDLE_COLUMNS = ("ts", "symbol", "open", "high", "low", "close", "volume")
PRICE_COLUMNS = ("open", "high", "low", "close")

_TF = re.compile(r"^(\d+)(m|h|d|w)$")


def timeframe_delta(timeframe: str) -> pd.Timedelta:
    """ccxt-style timeframe ('1m', '4h', '1d', '1w') → its length; months are not fixed-length, so refused."""
    m = _TF.match(timeframe.strip())
    if not m:
        raise ValueError(f"unsupported timeframe {timeframe!r}: use <n>m, <n>h, <n>d or <n>w, e.g. '5m', '1h', '1d'")
    n, unit = int(m.group(1)), m.group(2)
    if n <= 0:
        raise ValueError(f"unsupported timeframe {timeframe!r}: the count must be positive")
    minutes = {"m": 1, "h": 60, "d": 24 * 60, "w": 7 * 24 * 60}[unit]
    return pd.Timedelta(minutes=n * minutes)


def timeframe_of(delta: pd.Timedelta) -> str:
    """The ccxt-style name of a bar length (inverse of ``timeframe_delta``)."""
    seconds = int(pd.Timedelta(delta).total_seconds())
    if seconds <= 0 or seconds % 60:
        raise ValueError(f"bar length {delta} is not a whole number of minutes")
    minutes = seconds // 60
    for unit, size in (("w", 7 * 24 * 60), ("d", 24 * 60), ("h", 60), ("m", 1)):
        if minutes % size == 0:
            return f"{minutes // size}{unit}"
    raise AssertionError("unreachable")


def empty_candles() -> pd.DataFrame:
    """A zero-row frame with the validated dtypes (what a source returns when there is nothing new)."""
    return pd.DataFrame(
        {
            "ts": pd.Series([], dtype="datetime64[ns, UTC]"),
            "symbol": pd.Series([], dtype="str"),
            **{c: pd.Series([], dtype="float64") for c in ("open", "high", "low", "close", "volume")},
        }
    )


def _to_utc(ts: pd.Series, origin: str) -> pd.Series:
    if isinstance(ts.dtype, pd.DatetimeTZDtype):
        out = ts.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_dtype(ts.dtype):
        out = ts.dt.tz_localize("UTC")
    else:
        out = pd.to_datetime(ts, utc=True, errors="coerce")
        bad = out.isna() & ts.notna()
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise BadCandlesError(origin, i + 1, f"unparseable timestamp {ts.iloc[i]!r}")
    return out.astype("datetime64[ns, UTC]")


def _sorted_codes(labels: pd.Series) -> np.ndarray:
    """Integer codes of string labels, numbered in sorted label order (Arrow's hash, not Python's)."""
    import pyarrow as pa

    enc = pa.chunked_array([pa.array(labels, pa.string())]).combine_chunks().dictionary_encode()
    rank = np.empty(len(enc.dictionary), dtype=np.int64)
    rank[np.argsort(np.asarray(enc.dictionary.to_pylist(), dtype=object), kind="stable")] = np.arange(len(rank))
    return rank[enc.indices.to_numpy(zero_copy_only=False)]


def _per_symbol_checks(codes: np.ndarray, tsv: np.ndarray, nat: np.ndarray):
    """(order by (symbol, ts) or None when already in it, duplicated (symbol, ts) after its first,
    rows against their symbol's direction) on integer codes: numpy sorts, no groupby over labels."""
    n = len(codes)
    zeros = np.zeros(n, dtype=bool)
    if n < 2 or ((codes[1:] > codes[:-1]) | ((codes[1:] == codes[:-1]) & (tsv[1:] > tsv[:-1]))).all():
        return None, zeros, zeros  # the usual import: sorted, strictly ascending per symbol
    by_key = np.lexsort((tsv, codes))  # stable: equal (symbol, ts) keep the given order
    dup = zeros.copy()
    dup[by_key[1:]] = (codes[by_key[1:]] == codes[by_key[:-1]]) & (tsv[by_key[1:]] == tsv[by_key[:-1]])
    # Order: each symbol must run one way only. The majority direction decides, so the row named
    # is the one that breaks the run rather than the first row of the file.
    by_sym = np.argsort(codes, kind="stable")  # each symbol's rows, in the given order
    cs, ts_, ns_ = codes[by_sym], tsv[by_sym], nat[by_sym]
    ok = (cs[1:] == cs[:-1]) & ~ns_[1:] & ~ns_[:-1]
    step = np.zeros(n)
    step[1:] = np.where(ok, np.sign(ts_[1:] - ts_[:-1]), 0.0)
    sign = np.empty(n)
    sign[by_sym] = step
    direction = np.bincount(codes, weights=sign, minlength=int(codes.max()) + 1)[codes]
    against = np.where(direction < 0, sign > 0, sign < 0)
    return by_key, dup, against


def _first(mask: np.ndarray) -> int:
    idx = np.flatnonzero(mask)
    return int(idx[0]) if len(idx) else -1


def validate_candles(df: pd.DataFrame, origin: str, *, rows: np.ndarray | None = None) -> pd.DataFrame:
    """Check and normalise long candles; raise ``BadCandlesError`` at the first bad row.

    Rows are numbered 1-based in the order given (a file's data rows, header excluded), so the
    message points into the file the user has. A symbol whose rows are strictly newest-first is a
    legitimate export layout (NSE and BSE websites) and is reversed; a mixed order is an error,
    because it means rows were lost or pasted. Returns only ``CANDLE_COLUMNS``, sorted by
    (symbol, ts), index reset. ``rows`` gives each input row's 1-based file row when the caller
    has already merged or dropped rows, so messages still point at the right line.
    """
    row_no = np.arange(1, len(df) + 1) if rows is None else np.asarray(rows, dtype="int64")

    def bad(i: int, reason: str) -> BadCandlesError:
        return BadCandlesError(origin, int(row_no[i]), reason)

    missing = [c for c in CANDLE_COLUMNS if c not in df.columns]
    if missing:
        raise BadCandlesError(origin, None, f"missing columns {missing}; expected {list(CANDLE_COLUMNS)}")
    out = pd.DataFrame(index=pd.RangeIndex(len(df)))
    try:
        out["ts"] = _to_utc(df["ts"].reset_index(drop=True), origin)
    except BadCandlesError as e:
        if e.row is None:
            raise
        raise bad(e.row - 1, e.reason) from None
    sym = df["symbol"].reset_index(drop=True)
    empty_sym = sym.isna() | (sym.astype("str").str.strip() == "")
    if empty_sym.any():
        raise bad(_first(empty_sym.to_numpy()), "missing symbol")
    out["symbol"] = sym.astype("str").str.strip()
    for col in ("open", "high", "low", "close", "volume"):
        raw = df[col].reset_index(drop=True)
        num = pd.to_numeric(raw, errors="coerce").astype("float64")
        unparsed = num.isna() & raw.notna()
        if unparsed.any():
            i = _first(unparsed.to_numpy())
            raise bad(i, f"{col} is not a number: {raw.iloc[i]!r}")
        out[col] = num

    o, h, lo, c, v = (out[k].to_numpy() for k in ("open", "high", "low", "close", "volume"))
    checks: list[tuple[str, np.ndarray]] = [("missing timestamp", out["ts"].isna().to_numpy())]
    for name, arr in (("open", o), ("high", h), ("low", lo), ("close", c), ("volume", v)):
        checks.append((f"missing {name}", ~np.isfinite(arr)))
    with np.errstate(invalid="ignore"):
        for name, arr in (("open", o), ("high", h), ("low", lo), ("close", c)):
            checks.append((f"non-positive {name}", arr <= 0))
        checks += [
            ("high < low", h < lo),
            ("high below max(open, close)", h < np.maximum(o, c)),
            ("low above min(open, close)", lo > np.minimum(o, c)),
            ("negative volume", v < 0),
        ]
    codes = _sorted_codes(out["symbol"])
    by_key, dup, against = _per_symbol_checks(codes, out["ts"].array.asi8, out["ts"].isna().to_numpy())
    checks.append(("duplicated timestamp for its symbol", dup))
    checks.append(("timestamps out of order (neither ascending nor strictly newest-first)", against))

    firsts = [(i, reason) for reason, mask in checks if (i := _first(mask)) >= 0]
    if firsts:
        row, reason = min(firsts, key=lambda t: t[0])  # stable: earlier check wins on the same row
        detail = out.iloc[row]
        raise bad(
            row,
            f"{reason} (ts={detail['ts']}, open={detail['open']}, high={detail['high']}, "
            f"low={detail['low']}, close={detail['close']}, volume={detail['volume']})",
        )
    if by_key is None:
        return out  # sorted by (symbol, ts) already
    return out.take(by_key).reset_index(drop=True)  # sorted by (symbol, ts)


QUARANTINE_COLUMNS = (*CANDLE_COLUMNS, "row", "reason", "origin")


def empty_quarantine() -> pd.DataFrame:
    out = empty_candles()
    out["row"] = pd.Series([], dtype="int64")
    out["reason"] = pd.Series([], dtype="str")
    out["origin"] = pd.Series([], dtype="str")
    return out


def screen_candles(df: pd.DataFrame, origin: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split bars from an API into (good, bad): good as ``validate_candles`` returns them, bad with a reason.

    Why not raise like ``validate_candles``: a feed of 5,000 instruments should not lose a whole
    symbol to one broken bar, and a broken bar must not vanish either. The bad rows go to the lake's
    quarantine table with the reason; the good ones are stored. Input order is the feed's order
    (ascending): a bar earlier than one already seen is out of order, a repeated timestamp a
    duplicate (the first one is kept). Rows are numbered 1-based in the order given.
    """
    missing = [c for c in CANDLE_COLUMNS if c not in df.columns]
    if missing:
        raise BadCandlesError(origin, None, f"missing columns {missing}; expected {list(CANDLE_COLUMNS)}")
    n = len(df)
    out = pd.DataFrame(index=pd.RangeIndex(n))
    raw_ts = df["ts"].reset_index(drop=True)
    if isinstance(raw_ts.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(raw_ts.dtype):
        out["ts"] = _to_utc(raw_ts, origin)
    else:
        out["ts"] = pd.to_datetime(raw_ts, utc=True, errors="coerce").astype("datetime64[ns, UTC]")
    sym = df["symbol"].reset_index(drop=True)
    out["symbol"] = sym.astype("str").str.strip().where(sym.notna(), "")
    reasons: list[tuple[str, np.ndarray]] = [
        ("unparseable or missing timestamp", out["ts"].isna().to_numpy()),
        ("missing symbol", (out["symbol"] == "").to_numpy()),
    ]
    for col in ("open", "high", "low", "close", "volume"):
        raw = df[col].reset_index(drop=True)
        out[col] = pd.to_numeric(raw, errors="coerce").astype("float64")
        reasons.append((f"{col} is not a number: {{}}", (out[col].isna() & raw.notna()).to_numpy()))
    o, h, lo, c, v = (out[k].to_numpy() for k in ("open", "high", "low", "close", "volume"))
    for name, arr in (("open", o), ("high", h), ("low", lo), ("close", c), ("volume", v)):
        reasons.append((f"NaN {name}", ~np.isfinite(arr)))
    with np.errstate(invalid="ignore"):
        for name, arr in (("open", o), ("high", h), ("low", lo), ("close", c)):
            reasons.append((f"non-positive {name}", arr <= 0))
        reasons += [
            ("high < low", h < lo),
            ("high below max(open, close)", h < np.maximum(o, c)),
            ("low above min(open, close)", lo > np.minimum(o, c)),
            ("negative volume", v < 0),
        ]
    conds = [m for _, m in reasons]
    reason = np.select(conds, [r.replace(": {}", "") for r, _ in reasons], default="").astype(object)
    ok = reason == ""
    # Order checks only among rows that are otherwise fine, per symbol, in feed order.
    fine = out[ok]
    dup = fine.duplicated(["symbol", "ts"], keep="first").to_numpy()
    prev_max = fine["ts"].astype("int64").groupby(fine["symbol"].to_numpy()).cummax()
    prev_max = prev_max.groupby(fine["symbol"].to_numpy()).shift(1).to_numpy()
    late = (~dup) & (fine["ts"].astype("int64").to_numpy() < np.nan_to_num(prev_max, nan=-np.inf))
    idx = np.flatnonzero(ok)
    reason[idx[dup]] = "duplicate timestamp"
    reason[idx[late]] = "timestamp out of order"
    ok = reason == ""
    good = out[ok].sort_values(["symbol", "ts"], kind="stable").reset_index(drop=True)
    bad = out[~ok].copy()
    bad["row"] = np.flatnonzero(~ok).astype("int64") + 1
    bad["reason"] = pd.Series(reason[~ok], index=bad.index, dtype="str")
    bad["origin"] = origin
    return good, bad.reset_index(drop=True)[list(QUARANTINE_COLUMNS)]
