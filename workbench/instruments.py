"""The instrument master: every tradable thing we know, from the lists the venues publish, in one table.

Why one table: the lake, the quote loop, the risk rules (lot size, tick size, minimum notional) and
the brokers (Kite instrument token, ccxt market id) all need to agree on what ``NSE:RELIANCE`` or
``binance:BTC/USDT`` is. Each loader reads one real published list as it is (raw data is
immutable) and maps it onto ``COLUMNS``; the master keeps one row per (source, instrument) on disk
and merges them on read, so Zerodha's dump adds its instrument token and tick size to the row NSE's
own list gives, without either list overwriting the other.

Keys are ``EXCHANGE:SYMBOL`` (Kite's own spelling for quotes). The same company on NSE and BSE is
two instruments that share an ISIN. ETFs, test issues and inactive rows are flagged
(``is_etf``, ``is_test``, ``active``), never dropped: ``tradable`` = active and not a test issue.

Storage: ``<home>/data/instruments.parquet`` replaced atomically (temp file + ``os.replace``). A
refresh parses every requested list first and writes only when all parsed, so a truncated or
malformed download raises ``InstrumentListError`` and the previous master stays as it was.
"""

from __future__ import annotations

import io
import json
import os
import re
import urllib.request
import uuid
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from workbench.errors import DataError, InstrumentListError, SourceUnavailableError, UnknownSymbolError

if TYPE_CHECKING:
    from workbench.config import Settings

__all__ = [
    "COLUMNS",
    "SOURCES",
    "InstrumentMaster",
    "RefreshReport",
    "load_nasdaqlisted",
    "load_otherlisted",
    "load_nse",
    "load_bse",
    "load_source",
    "refresh",
    "split_key",
    "master_path",
]

COLUMNS = (
    "key", "symbol", "name", "exchange", "asset_class", "currency", "isin",
    "lot_size", "tick_size", "min_notional", "kite_token", "exchange_token", "bse_code", "ccxt_id",
    "expiry", "strike", "is_etf", "is_test", "active", "status", "source", "as_of",
)  # fmt: skip
_STR = (
    "key",
    "symbol",
    "name",
    "exchange",
    "asset_class",
    "currency",
    "isin",
    "exchange_token",
    "bse_code",
    "ccxt_id",
    "status",
    "source",
)
_FLOAT = ("lot_size", "tick_size", "min_notional", "strike")
_BOOL = ("is_etf", "is_test", "active")

URLS = {
    "nasdaqlisted": "https://www.nasdaqtrader.com/dynamic/SymDir/nasdaqlisted.txt",
    "otherlisted": "https://www.nasdaqtrader.com/dynamic/SymDir/otherlisted.txt",
    "nse": "https://nsearchives.nseindia.com/content/equities/EQUITY_L.csv",
    "bse": "https://api.bseindia.com/BseIndiaAPI/api/ListofScripData/w?Group=&Scripcode=&industry=&segment=Equity&status=Active",
    "kite": "https://api.kite.trade/instruments",
}
# NASDAQ Trader's otherlisted "Exchange" codes → the venue names the rest of the workbench uses.
OTHER_EXCHANGES = {"N": "NYSE", "A": "AMEX", "P": "ARCA", "Z": "BATS", "V": "IEX", "M": "CHX"}


def split_key(key: str) -> tuple[str, str]:
    """``'NSE:RELIANCE'`` → ``('NSE', 'RELIANCE')``; the symbol may itself hold ':' (``BTC/USDT:USDT``)."""
    exchange, sep, symbol = str(key).partition(":")
    if not sep or not exchange or not symbol:
        raise UnknownSymbolError(
            f"{key!r} is not an instrument key: write EXCHANGE:SYMBOL, e.g. NSE:RELIANCE or binance:BTC/USDT"
        )
    return exchange, symbol


def master_path(settings: Settings) -> Path:
    return Path(settings.data_dir) / "instruments.parquet"


# ---- reading the raw lists ---------------------------------------------------------------------
def _fetch_text(url: str, timeout: float = 30.0, headers: dict | None = None) -> str:
    req = urllib.request.Request(
        url, headers={"User-Agent": "Mozilla/5.0 (workbench instruments refresh)", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.read().decode("utf-8-sig", errors="replace")
    except OSError as e:
        raise SourceUnavailableError(
            f"could not download {url} ({e}); retry later or use --from-file with a saved copy"
        ) from e


def _file_date(path: Path | str | None) -> pd.Timestamp:
    """A list without a date in it is as of the day it was saved (today when read from the network)."""
    if path is None or not Path(path).is_file():
        return pd.Timestamp.now().normalize()
    return pd.Timestamp(Path(path).stat().st_mtime, unit="s").normalize()


def _text(path: Path | str | None, source: str) -> tuple[str, str]:
    if path is None:
        return _fetch_text(URLS[source]), URLS[source]
    p = Path(path)
    try:
        return p.read_text(encoding="utf-8-sig", errors="replace"), str(p)
    except OSError as e:
        raise InstrumentListError(str(p), f"cannot be read ({e})") from e


def _csv(text: str, origin: str, sep: str = ",", **kw) -> pd.DataFrame:
    if not text.strip():
        raise InstrumentListError(origin, "the file is empty")
    try:
        df = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, skipinitialspace=True, **kw)
    except (pd.errors.ParserError, ValueError) as e:
        raise InstrumentListError(origin, f"not a {sep!r}-separated table ({e})") from e
    df.columns = [str(c).strip() for c in df.columns]
    return df.apply(lambda s: s.str.strip())


def _require(df: pd.DataFrame, origin: str, columns: Iterable[str], nonempty: Iterable[str] = ()) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InstrumentListError(origin, f"missing columns {missing} (header has {list(df.columns)[:12]})")
    if df.empty:
        raise InstrumentListError(origin, "no data rows")
    for c in nonempty:
        blank = (df[c] == "").to_numpy()
        if blank.any():
            i = int(np.flatnonzero(blank)[0])
            hint = " (the file looks truncated)" if i == len(df) - 1 else ""
            raise InstrumentListError(origin, f"data row {i + 1}: empty {c!r}{hint}")


def _num(s: pd.Series, origin: str, column: str) -> pd.Series:
    out = pd.to_numeric(s.replace("", np.nan), errors="coerce")
    bad = out.isna() & s.ne("")
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise InstrumentListError(origin, f"data row {i + 1}: {column} {s.iloc[i]!r} is not a number")
    return out.astype("float64")


def _frame(n: int, **cols) -> pd.DataFrame:
    """A frame in the master's schema: given columns, the rest null; dtypes fixed here once."""
    df = pd.DataFrame(index=pd.RangeIndex(n))
    for c in COLUMNS:
        v = cols.get(c)
        if c in _STR:
            df[c] = (
                pd.Series(v if v is not None else [None] * n, dtype="str", index=df.index)
                if not isinstance(v, pd.Series)
                else v.reset_index(drop=True).astype("str")
            )
        elif c in _FLOAT:
            df[c] = (
                v.reset_index(drop=True)
                if isinstance(v, pd.Series)
                else pd.Series(v if v is not None else np.nan, index=df.index)
            ).astype("float64")
        elif c in _BOOL:
            df[c] = (
                v.reset_index(drop=True)
                if isinstance(v, pd.Series)
                else pd.Series(bool(v) if v is not None else False, index=df.index)
            ).astype("bool")
        elif c == "kite_token":
            df[c] = (
                v.reset_index(drop=True) if isinstance(v, pd.Series) else pd.Series([pd.NA] * n, index=df.index)
            ).astype("Int64")
        elif c in ("expiry", "as_of"):
            df[c] = (
                v.reset_index(drop=True)
                if isinstance(v, pd.Series)
                else pd.Series(v if v is not None else pd.NaT, index=df.index)
            ).astype("datetime64[s]")
    df["key"] = df["exchange"] + ":" + df["symbol"]
    return df[list(COLUMNS)]


_KIND = [
    ("warrant", r"\bwarrants?\b"),
    ("right", r"\brights?\b"),
    ("unit", r"\bunits?\b"),
    ("preferred", r"\bpreferred\b|\bpreference\b|\bdepositary shares\b.*\bseries\b"),
]


def _us_asset_class(names: pd.Series, etf: pd.Series) -> pd.Series:
    out = pd.Series("equity", index=names.index, dtype="str")
    low = names.str.lower()
    for kind, pattern in reversed(_KIND):  # earlier entries win
        out = out.mask(low.str.contains(pattern, regex=True), kind)
    return out.mask(etf, "etf")


_FOOTER = re.compile(r"^File Creation Time:\s*(\d{2})(\d{2})(\d{4})(\d{2}):(\d{2})")


def _nasdaq_trader(text: str, origin: str) -> tuple[pd.DataFrame, pd.Timestamp]:
    """Both NASDAQ Trader files end with a 'File Creation Time' line; without it the file was cut off."""
    lines = text.rstrip("\r\n").splitlines()
    m = _FOOTER.match(lines[-1]) if lines else None
    if m is None:
        raise InstrumentListError(
            origin, "no 'File Creation Time' footer line: the file is truncated or not a NASDAQ Trader symbol directory"
        )
    mm, dd, yyyy = m.group(1), m.group(2), m.group(3)
    as_of = pd.Timestamp(f"{yyyy}-{mm}-{dd}")
    return _csv("\n".join(lines[:-1]), origin, sep="|"), as_of


def load_nasdaqlisted(path: Path | str | None = None) -> pd.DataFrame:
    """NASDAQ Trader ``nasdaqlisted.txt``: every NASDAQ listing (Market Category Q/G/S)."""
    text, origin = _text(path, "nasdaqlisted")
    df, as_of = _nasdaq_trader(text, origin)
    _require(
        df,
        origin,
        ["Symbol", "Security Name", "Market Category", "Test Issue", "Financial Status", "Round Lot Size", "ETF"],
        ["Symbol", "Test Issue"],
    )
    etf = df["ETF"].eq("Y")
    return _frame(
        len(df),
        symbol=df["Symbol"], name=df["Security Name"], exchange="NASDAQ", asset_class=_us_asset_class(df["Security Name"], etf),
        currency="USD", lot_size=_num(df["Round Lot Size"], origin, "Round Lot Size"), tick_size=0.01,
        is_etf=etf, is_test=df["Test Issue"].eq("Y"), active=True, status="financial status " + df["Financial Status"],
        source="nasdaqlisted", as_of=as_of,
    )  # fmt: skip


def load_otherlisted(path: Path | str | None = None) -> pd.DataFrame:
    """NASDAQ Trader ``otherlisted.txt``: NYSE, NYSE American, NYSE Arca, Cboe BZX, IEX listings."""
    text, origin = _text(path, "otherlisted")
    df, as_of = _nasdaq_trader(text, origin)
    _require(
        df,
        origin,
        ["ACT Symbol", "Security Name", "Exchange", "ETF", "Round Lot Size", "Test Issue"],
        ["ACT Symbol", "Exchange", "Test Issue"],
    )
    unknown = ~df["Exchange"].isin(list(OTHER_EXCHANGES))
    if unknown.any():
        i = int(np.flatnonzero(unknown.to_numpy())[0])
        raise InstrumentListError(
            origin,
            f"data row {i + 1}: unknown Exchange code {df['Exchange'].iloc[i]!r} (known: {sorted(OTHER_EXCHANGES)})",
        )
    etf = df["ETF"].eq("Y")
    return _frame(
        len(df),
        symbol=df["ACT Symbol"], name=df["Security Name"], exchange=df["Exchange"].map(OTHER_EXCHANGES),
        asset_class=_us_asset_class(df["Security Name"], etf), currency="USD",
        lot_size=_num(df["Round Lot Size"], origin, "Round Lot Size"), tick_size=0.01,
        is_etf=etf, is_test=df["Test Issue"].eq("Y"), active=True, status="listed", source="otherlisted", as_of=as_of,
    )  # fmt: skip


_ISIN = re.compile(r"^[A-Z]{2}[A-Z0-9]{9}[0-9]$")


def _check_isin(isin: pd.Series, origin: str, column: str) -> None:
    bad = ~isin.str.fullmatch(_ISIN.pattern)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise InstrumentListError(origin, f"data row {i + 1}: {column} {isin.iloc[i]!r} is not an ISIN")


def load_nse(path: Path | str | None = None, as_of=None) -> pd.DataFrame:
    """NSE ``EQUITY_L.csv``. Series EQ trades normally, BE/BZ trade-for-trade (BZ: non-compliant); all listed.

    The file carries no date: ``as_of`` is the newest listing date in it unless given.
    """
    text, origin = _text(path, "nse")
    df = _csv(text, origin)
    _require(
        df,
        origin,
        ["SYMBOL", "NAME OF COMPANY", "SERIES", "DATE OF LISTING", "MARKET LOT", "ISIN NUMBER"],
        ["SYMBOL", "SERIES", "ISIN NUMBER"],
    )
    _check_isin(df["ISIN NUMBER"], origin, "ISIN NUMBER")
    listed = pd.to_datetime(df["DATE OF LISTING"], format="%d-%b-%Y", errors="coerce")
    stamp = pd.Timestamp(as_of) if as_of is not None else listed.max()
    return _frame(
        len(df),
        symbol=df["SYMBOL"], name=df["NAME OF COMPANY"], exchange="NSE", asset_class="equity", currency="INR",
        isin=df["ISIN NUMBER"], lot_size=_num(df["MARKET LOT"], origin, "MARKET LOT"),
        active=True, status="series " + df["SERIES"], source="nse", as_of=stamp,
    )  # fmt: skip


_BSE_JSON = {  # BSE's list-of-scrips API field → the CSV download's column
    "SCRIP_CD": "Security Code", "Issuer_Name": "Issuer Name", "scrip_id": "Security Id", "Scrip_Name": "Security Name",
    "Status": "Status", "GROUP": "Group", "FACE_VALUE": "Face Value", "ISIN_NUMBER": "ISIN No", "INDUSTRY": "Industry",
    "Segment": "Instrument",
}  # fmt: skip


def load_bse(path: Path | str | None = None, as_of=None) -> pd.DataFrame:
    """BSE's list of scrips (``Equity.csv`` from bseindia.com, or its API's JSON). Lines end in a stray comma."""
    text, origin = _text(path, "bse")
    if text.lstrip().startswith("["):
        try:
            df = pd.DataFrame(json.loads(text)).rename(columns=_BSE_JSON).astype(str)
        except ValueError as e:
            raise InstrumentListError(origin, f"not BSE's scrip list JSON ({e})") from e
    else:
        with warnings.catch_warnings():  # every line has one more (empty) field than the header
            warnings.simplefilter("ignore", pd.errors.ParserWarning)
            df = _csv(text, origin, index_col=False)
    _require(
        df,
        origin,
        ["Security Code", "Issuer Name", "Security Id", "Status", "ISIN No", "Instrument"],
        ["Security Code", "Security Id", "Status"],
    )
    code = _num(df["Security Code"], origin, "Security Code")
    status = df["Status"]
    equity = df["Instrument"].str.lower().eq("equity")
    isin = df["ISIN No"].where(df["ISIN No"] != "", None)
    fund = df["ISIN No"].str.startswith("INF")  # INF… ISINs are fund units: on BSE's list, ETFs
    return _frame(
        len(df),
        symbol=df["Security Id"], name=df["Issuer Name"], exchange="BSE",
        asset_class=pd.Series(np.where(fund, "etf", np.where(equity, "equity", "other")), dtype="str"), currency="INR",
        isin=isin, lot_size=1.0, is_etf=fund,
        bse_code=code.astype("int64").astype("str"), active=status.str.lower().eq("active"),
        status=status.str.lower() + " group " + df.get("Group", pd.Series("", index=df.index)),
        source="bse", as_of=pd.Timestamp(as_of) if as_of is not None else _file_date(path),
    )  # fmt: skip


# ---- which file is which -----------------------------------------------------------------------
_FILE_NAMES: dict[str, tuple[str, ...]] = {
    "nasdaqlisted": ("nasdaqlisted.txt",),
    "otherlisted": ("otherlisted.txt",),
    "nse": ("EQUITY_L.csv", "nse_EQUITY_L.csv"),
    "bse": ("Equity.csv", "bse_Equity.csv"),
    "kite": ("instruments.csv", "kite_instruments.csv", "kite_instruments*.csv"),
    "ccxt": ("{id}_markets.json", "{id}*exchangeInfo*.json", "{id}*markets*.json"),
}
SOURCES = ("nasdaq", "nse", "bse", "kite", "ccxt:<id>")


def _find(folder: Path, patterns: tuple[str, ...]) -> Path | None:
    for pat in patterns:
        hits = sorted(folder.glob(pat), key=lambda p: (-p.stat().st_size, p.name))  # the fullest dump first
        if hits:
            return hits[0]
    return None


def _expand(source: str) -> list[str]:
    """CLI source names → loader names (``nasdaq`` is NASDAQ Trader's two files; ``all`` is every one)."""
    s = source.strip()
    if s == "all":
        return ["nasdaqlisted", "otherlisted", "nse", "bse", "kite", "ccxt:binance"]
    if s == "nasdaq":
        return ["nasdaqlisted", "otherlisted"]
    if s in ("nasdaqlisted", "otherlisted", "nse", "bse", "kite") or s.startswith("ccxt:"):
        return [s]
    if s == "ccxt":
        return ["ccxt:binance"]
    raise DataError(f"unknown instrument source {source!r}: use nasdaq, nse, bse, kite, ccxt:<exchange id> or all")


def load_source(name: str, path: Path | str | None = None, **kw) -> pd.DataFrame:
    """One loader by name (``nasdaqlisted``, ``otherlisted``, ``nse``, ``bse``, ``kite``, ``ccxt:<id>``).

    ``path`` is a file, or a folder in which the list is found by its usual name (the layout of
    ``shared/data/instruments``); None reads the network.
    """
    if path is not None and Path(path).is_dir():
        kind = "ccxt" if name.startswith("ccxt:") else name
        ex_id = name.partition(":")[2]
        patterns = tuple(p.format(id=ex_id) for p in _FILE_NAMES[kind])
        found = _find(Path(path), patterns)
        if found is None:
            raise InstrumentListError(str(path), f"no {name} list in this folder (looked for {', '.join(patterns)})")
        path = found
    if name == "nasdaqlisted":
        return load_nasdaqlisted(path)
    if name == "otherlisted":
        return load_otherlisted(path)
    if name == "nse":
        return load_nse(path, **kw)
    if name == "bse":
        return load_bse(path, **kw)
    if name == "kite" or name.startswith("ccxt:"):  # a venue's own list: its package loads it
        from workbench.venues import venue_instruments

        return venue_instruments(name, path, **kw)
    raise DataError(f"unknown instrument source {name!r}")


def _guess_nasdaq_file(path: Path) -> str:
    head = path.open("r", encoding="utf-8-sig", errors="replace").readline()
    return "otherlisted" if head.startswith("ACT Symbol|") else "nasdaqlisted"


# ---- the master --------------------------------------------------------------------------------
# When two sources describe one key, the first source here wins each field it has (the venue's own
# list for names and ISINs; the broker dump for its token, tick size and F&O lot size).
_PRIORITY = ("nasdaqlisted", "otherlisted", "nse", "bse", "kite")


@dataclass(frozen=True)
class RefreshReport:
    """Rows loaded per source in this refresh, and the master's size afterwards."""

    rows: dict[str, int]
    total: int
    tradable: int

    def summary(self) -> str:
        parts = ", ".join(f"{s}: {n}" for s, n in self.rows.items())
        return f"refreshed {parts} → {self.total} instruments, {self.tradable} active and tradable"


class InstrumentMaster:
    """The instrument table at ``path`` (``master_path(settings)``); a value object, no caching across writes."""

    def __init__(self, path: Path | str):
        self.path = Path(path)

    @classmethod
    def of(cls, settings: Settings) -> InstrumentMaster:
        return cls(master_path(settings))

    def __repr__(self) -> str:
        return f"InstrumentMaster({str(self.path)!r})"

    def exists(self) -> bool:
        return self.path.exists()

    def raw(self) -> pd.DataFrame:
        """One row per (source, instrument), as loaded."""
        if not self.path.exists():
            return _frame(0)
        df = pd.read_parquet(self.path)
        return df[list(COLUMNS)]

    def replace_sources(self, frames: dict[str, pd.DataFrame]) -> None:
        """Swap the rows of these sources for the new ones in one atomic file replace."""
        old = self.raw()
        keep = old[~old["source"].isin(list(frames))]
        new = pd.concat([keep, *frames.values()], ignore_index=True) if frames else keep
        new = new.drop_duplicates(["source", "key"], keep="last").sort_values(["source", "key"], kind="stable")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex}.tmp")
        try:
            new.reset_index(drop=True).to_parquet(tmp, index=False)
            os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)

    def table(self, *, tradable_only: bool = False) -> pd.DataFrame:
        """One row per key: fields merged across sources by ``_PRIORITY``; ``source`` lists them all."""
        raw = self.raw()
        if raw.empty:
            return raw.assign(tradable=pd.Series(dtype="bool"))
        rank = raw["source"].map({s: i for i, s in enumerate(_PRIORITY)}).fillna(len(_PRIORITY))
        raw = raw.assign(_rank=rank).sort_values(["key", "_rank"], kind="stable")
        dup = raw["key"].duplicated(keep=False)
        single = raw[~dup]
        if dup.any():
            multi = raw[dup]
            g = multi.groupby("key", sort=False)
            merged = g.first()  # first non-null of each column, in priority order
            merged["source"] = g["source"].agg("+".join)
            merged["active"] = g["active"].all()
            merged["is_test"] = g["is_test"].any()
            merged["is_etf"] = g["is_etf"].any()
            # Lot/tick sizes: the broker's contract spec beats an exchange list's market lot.
            kite = multi[multi["source"] == "kite"].set_index("key")
            for c in ("tick_size", "lot_size"):
                merged.loc[kite.index, c] = kite[c].where(kite[c].notna(), merged.loc[kite.index, c])
            out = pd.concat([single, merged.reset_index()], ignore_index=True)
        else:
            out = single
        out = (
            out.drop(columns="_rank")[list(COLUMNS)]
            .sort_values(["exchange", "symbol"], kind="stable")
            .reset_index(drop=True)
        )
        out["tradable"] = out["active"] & ~out["is_test"]
        return out[out["tradable"]].reset_index(drop=True) if tradable_only else out

    def counts(self) -> pd.DataFrame:
        """Per exchange: instruments, tradable, ETFs, test issues, inactive."""
        t = self.table()
        return (
            t.groupby("exchange")
            .agg(
                instruments=("key", "size"),
                tradable=("tradable", "sum"),
                etfs=("is_etf", "sum"),
                test_issues=("is_test", "sum"),
                inactive=("active", lambda s: int((~s).sum())),
            )
            .astype("int64")
            .sort_values("instruments", ascending=False)
        )

    def search(
        self,
        text: str = "",
        *,
        exchange: str | None = None,
        asset_class: str | None = None,
        isin: str | None = None,
        tradable_only: bool = True,
        limit: int | None = 50,
    ) -> pd.DataFrame:
        """Instruments whose symbol or name contains ``text`` (case-insensitive), exact symbol matches first."""
        t = self.table(tradable_only=tradable_only)
        mask = pd.Series(True, index=t.index)
        if exchange:
            mask &= t["exchange"].str.lower() == exchange.lower()
        if asset_class:
            mask &= t["asset_class"] == asset_class
        if isin:
            mask &= t["isin"] == isin
        if text:
            q = text.lower()
            mask &= t["symbol"].str.lower().str.contains(q, regex=False) | t["name"].fillna(
                ""
            ).str.lower().str.contains(q, regex=False)
        hits = t[mask]
        if text:
            exact = hits["symbol"].str.lower().eq(text.lower())
            hits = hits.assign(_x=~exact).sort_values(["_x", "symbol"], kind="stable").drop(columns="_x")
        return (hits.head(limit) if limit else hits).reset_index(drop=True)

    def get(self, key: str) -> pd.Series:
        split_key(key)
        t = self.table()
        hit = t[t["key"] == key]
        if hit.empty:
            raise UnknownSymbolError(
                f"{key!r} is not in the instrument master ({len(t)} instruments); try `workbench instruments search`"
            )
        return hit.iloc[0]

    def resolve(self, keys: Iterable[str]) -> pd.DataFrame:
        """Rows for these keys, in order; unknown keys raise naming them."""
        keys = list(dict.fromkeys(keys))
        t = self.table().set_index("key")
        missing = [k for k in keys if k not in t.index]
        if missing:
            raise UnknownSymbolError(
                f"not in the instrument master: {missing[:10]}; refresh it or check the spelling (EXCHANGE:SYMBOL)"
            )
        return t.loc[keys].reset_index()


def refresh(
    master: InstrumentMaster,
    source: str = "all",
    from_file: Path | str | None = None,
    *,
    loaders: dict[str, Callable[..., pd.DataFrame]] | None = None,
    **kw,
) -> RefreshReport:
    """Load the requested lists (all of them before writing anything), then replace their rows.

    ``from_file``: a file (one list; for ``nasdaq`` its header says which of the two) or a folder
    holding the lists under their usual names. With ``all`` and a folder, a list missing from the
    folder is skipped (named in the report as 0 rows); a list present but broken fails the refresh.
    """
    names = _expand(source)
    if from_file is not None and Path(from_file).is_file() and len(names) > 1:
        if source.strip() == "nasdaq":
            names = [_guess_nasdaq_file(Path(from_file))]
        else:
            raise DataError(
                f"--from-file {from_file} is one file; name its --source (nasdaq, nse, bse, kite, ccxt:<id>) or pass a folder"
            )
    frames: dict[str, pd.DataFrame] = {}
    skipped: list[str] = []
    for name in names:
        fn = (loaders or {}).get(name)
        try:
            frames[name] = fn(from_file) if fn is not None else load_source(name, from_file, **kw)
        except InstrumentListError as e:
            if (
                source.strip() == "all"
                and from_file is not None
                and Path(from_file).is_dir()
                and "no " in e.problem
                and "list in this folder" in e.problem
            ):
                skipped.append(name)
                continue
            raise
    if not frames:
        raise DataError(f"no instrument list found for {source!r} in {from_file}")
    frames = {(f["source"].iloc[0] if len(f) else n): f for n, f in frames.items()}
    master.replace_sources(frames)
    table = master.table()
    rows = {n: len(f) for n, f in frames.items()} | {n: 0 for n in skipped}
    return RefreshReport(rows, len(table), int(table["tradable"].sum()))
