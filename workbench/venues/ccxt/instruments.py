"""A ccxt exchange's markets (``load_markets()``, a saved copy of it, or Binance's raw
``exchangeInfo``) as instrument-master rows, with lot, tick and minimum notional.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench.instruments import InstrumentListError, _frame

__all__ = ["load_ccxt"]


def _ccxt_markets_from_file(exchange_id: str, path: Path | str) -> tuple[list[dict], pd.Timestamp | None]:
    """A saved ``load_markets()`` (dict or list of markets) or, for Binance, a raw ``exchangeInfo`` response."""
    import ccxt

    origin = str(path)
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise InstrumentListError(origin, f"not a JSON market list ({e}); it may be truncated") from e
    if isinstance(data, dict) and "symbols" in data and isinstance(data["symbols"], list):
        if not exchange_id.startswith("binance"):
            raise InstrumentListError(
                origin, "a raw exchangeInfo response can only be read for Binance; save load_markets() as JSON instead"
            )
        ex = getattr(ccxt, exchange_id)({"options": {"fetchMarkets": {"types": ["spot"]}}})
        ex.options.setdefault("crossMarginPairsData", [])
        ex.options.setdefault("isolatedMarginPairsData", [])
        try:
            markets = [m for m in (ex.parse_market(raw) for raw in data["symbols"]) if m is not None]
        except (KeyError, TypeError, ValueError) as e:
            raise InstrumentListError(origin, f"an entry of 'symbols' is malformed ({type(e).__name__}: {e})") from e
        as_of = pd.Timestamp(int(data["serverTime"]), unit="ms") if "serverTime" in data else None
        return markets, as_of
    if isinstance(data, dict):
        data = list(data.values())
    if not isinstance(data, list) or not all(isinstance(m, dict) and "symbol" in m and "id" in m for m in data):
        raise InstrumentListError(
            origin, "expected ccxt markets (objects with 'id' and 'symbol') or Binance exchangeInfo"
        )
    return data, None


def load_ccxt(
    exchange_id: str = "binance", path: Path | str | None = None, *, exchange=None, as_of=None
) -> pd.DataFrame:
    """Markets of a ccxt exchange (``load_markets()``), spot by default for Binance."""
    origin = str(path) if path is not None else f"ccxt:{exchange_id}.load_markets()"
    file_as_of = None
    if path is not None:
        markets, file_as_of = _ccxt_markets_from_file(exchange_id, path)
    else:
        from workbench.venues.ccxt.data import CcxtSource

        src = CcxtSource(exchange_id, exchange=exchange)
        with src._translate("the market list"):
            markets = list(src.client.load_markets().values())
        exchange_id = src.exchange
    if not markets:
        raise InstrumentListError(origin, "no markets")

    def g(m: dict, *path_: str) -> Any:
        v: Any = m
        for k in path_:
            v = v.get(k) if isinstance(v, dict) else None
        return v

    df = pd.DataFrame(
        {
            "symbol": [m["symbol"] for m in markets],
            "ccxt_id": [str(m["id"]) for m in markets],
            "name": [f"{m.get('base')}/{m.get('quote')} {m.get('type') or 'spot'}" for m in markets],
            "currency": [m.get("quote") for m in markets],
            "lot_size": [g(m, "precision", "amount") for m in markets],
            "tick_size": [g(m, "precision", "price") for m in markets],
            "min_notional": [g(m, "limits", "cost", "min") for m in markets],
            "active": [m.get("active") is not False for m in markets],
            "type": [m.get("type") or "spot" for m in markets],
            "status": [
                str(g(m, "info", "status") or ("active" if m.get("active") is not False else "inactive"))
                for m in markets
            ],
        }
    )
    stamp = pd.Timestamp(as_of) if as_of is not None else (file_as_of or pd.Timestamp.now())
    return _frame(
        len(df),
        symbol=df["symbol"], name=df["name"], exchange=exchange_id,
        asset_class=pd.Series(np.where(df["type"].eq("spot"), "crypto", "crypto_" + df["type"]), dtype="str"),
        currency=df["currency"], lot_size=pd.to_numeric(df["lot_size"]), tick_size=pd.to_numeric(df["tick_size"]),
        min_notional=pd.to_numeric(df["min_notional"]), ccxt_id=df["ccxt_id"], active=df["active"], status=df["status"],
        source=f"ccxt:{exchange_id}", as_of=stamp.normalize(),
    )  # fmt: skip


def load_instruments(path: Path | str | None = None, *, instance: str | None = None, **kw) -> pd.DataFrame:
    """The registry's loader: ``load_ccxt`` for the exchange of ``ccxt:<instance>`` (Binance by default)."""
    return load_ccxt(instance or "binance", path, **kw)
