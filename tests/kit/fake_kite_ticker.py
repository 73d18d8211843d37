"""A fake Kite ticker: the websocket ``KiteTicker`` (kiteconnect) connects to, speaking Kite's binary protocol.

Connection: ``<root>?api_key=…&access_token=…`` (checked when the fake is given credentials: a bad
pair is refused with HTTP 403, as Kite does). Text requests from the client::

    {"a": "subscribe", "v": [token, …]}   {"a": "unsubscribe", "v": [...]}   {"a": "mode", "v": ["full", [token, …]]}

At most ``max_tokens`` (3,000) instruments per connection, as on Kite: a subscription beyond it is
answered with a text ``{"type": "error", "data": …}`` and ignored.

Ticks are binary messages: a 2-byte packet count, then per packet a 2-byte length and the packet,
big-endian integers, prices in paise (÷100 for NSE/BSE tokens). Packet sizes by mode: ltp 8 (token,
last price), quote 44 (+ last qty, average price, day volume, buy/sell qty, day open/high/low/close),
full 184 (+ last trade time, OI ×3, exchange time, 5+5 depth levels of qty/price/orders). The
packets are built with numpy structured arrays, one frame per connection per second of the tape.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import numpy as np
from websockets.asyncio.server import ServerConnection

from tests.kit.tape import Tape
from tests.kit.ws_fake import WsFake

__all__ = ["FakeKiteTicker", "pack_ticks", "nse_token"]

_DEPTH = np.dtype([("q", ">u4"), ("p", ">u4"), ("o", ">u2"), ("pad", ">u2")])
_FULL = np.dtype(
    [
        ("len", ">u2"),
        ("token", ">u4"),
        ("last", ">u4"),
        ("last_qty", ">u4"),
        ("avg", ">u4"),
        ("volume", ">u4"),
        ("buy_qty", ">u4"),
        ("sell_qty", ">u4"),
        ("open", ">u4"),
        ("high", ">u4"),
        ("low", ">u4"),
        ("close", ">u4"),
        ("ltt", ">u4"),
        ("oi", ">u4"),
        ("oi_hi", ">u4"),
        ("oi_lo", ">u4"),
        ("ets", ">u4"),
        ("depth", _DEPTH, (10,)),
    ]
)
_SIZE = {"ltp": 8, "quote": 44, "full": 184}


def nse_token(i: int) -> int:
    """An instrument token of the NSE segment (the low byte is the segment: 1 = NSE)."""
    return (int(i) + 1) << 8 | 1


def pack_ticks(token, last, last_qty, volume, ts_s, bid, ask, mode: str = "full") -> bytes:
    """One binary message with a packet per instrument (all in ``mode``)."""
    n = len(token)
    a = np.zeros(n, dtype=_FULL)
    paise = lambda x: np.round(np.asarray(x, dtype="float64") * 100).astype(">u4")
    a["len"] = _SIZE[mode]
    a["token"], a["last"], a["last_qty"], a["avg"] = token, paise(last), last_qty, paise(last)
    a["volume"], a["buy_qty"], a["sell_qty"] = volume, 500, 600
    a["open"], a["high"], a["low"], a["close"] = paise(last), paise(last), paise(last), paise(last)
    a["ltt"], a["ets"] = ts_s, ts_s
    a["depth"]["q"] = 10
    a["depth"]["o"] = 1
    a["depth"]["p"][:, :5] = paise(bid)[:, None]
    a["depth"]["p"][:, 5:] = paise(ask)[:, None]
    raw = a.view(np.uint8).reshape(n, _FULL.itemsize)[:, : 2 + _SIZE[mode]]
    return np.array([n], dtype=">u2").tobytes() + raw.tobytes()


class FakeKiteTicker(WsFake):
    def __init__(self, api_key: str | None = None, access_token: str | None = None, max_tokens: int = 3000) -> None:
        super().__init__()
        self.api_key, self.access_token = api_key, access_token
        self.max_tokens = max_tokens
        self.modes: dict[ServerConnection, dict[int, str]] = {}
        self.errors: list[str] = []

    def _process_request(self, conn, request):
        refused = super()._process_request(conn, request)
        if refused is not None or self.api_key is None:
            return refused
        q = parse_qs(urlsplit(request.path).query)
        if q.get("api_key", [""])[0] != self.api_key or q.get("access_token", [""])[0] != self.access_token:
            from websockets.datastructures import Headers
            from websockets.http11 import Response

            return Response(403, "Forbidden", Headers(), b"invalid api_key or access_token\n")
        return None

    async def serve(self, conn: ServerConnection) -> None:
        modes = self.modes.setdefault(conn, {})
        async for raw in conn:
            if isinstance(raw, bytes):
                raw = raw.decode()
            msg = json.loads(raw)
            action, v = msg.get("a"), msg.get("v")
            if action == "subscribe":
                new = [int(t) for t in v if int(t) not in modes]
                if len(modes) + len(new) > self.max_tokens:
                    err = f"Too many instruments: at most {self.max_tokens} per connection"
                    self.errors.append(err)
                    await conn.send(json.dumps({"type": "error", "data": err}))
                    continue
                for t in new:
                    modes[t] = "quote"  # Kite's default mode on subscribe
            elif action == "unsubscribe":
                for t in v:
                    modes.pop(int(t), None)
            elif action == "mode":
                mode, tokens = v
                for t in tokens:
                    if int(t) in modes:
                        modes[int(t)] = mode

    def subscribed(self) -> dict[int, str]:
        """token → mode over every open connection."""
        return {t: m for c in self.open_connections() for t, m in self.modes.get(c, {}).items()}

    def per_connection(self) -> list[int]:
        return [len(self.modes.get(c, {})) for c in self.open_connections()]

    def send_tape(self, tape: Tape, frames: list[slice], tokens: np.ndarray) -> int:
        """Stream seconds of the tape (instrument i has token ``tokens[i]``) to whoever subscribed it."""
        out, delivered = [], 0
        conns = self.open_connections()
        lookup = []
        for c in conns:
            m = self.modes.get(c, {})
            lookup.append((c, np.fromiter((t in m for t in tokens.tolist()), dtype=bool, count=len(tokens)), m))
        for sl in frames:
            idx = tape.idx[sl]
            for c, has, m in lookup:
                sel = has[idx]
                if not sel.any():
                    continue
                i = idx[sel]
                mode = m[int(tokens[i[0]])]
                last = tape.price[sl][sel]
                out.append(
                    (
                        c,
                        pack_ticks(
                            tokens[i],
                            last,
                            tape.size[sl][sel],
                            tape.total[sl][sel],
                            tape.ts[sl][sel] // 10**9,
                            last - 0.05,
                            last + 0.05,
                            mode,
                        ),
                    )
                )
                delivered += int(sel.sum())
        self.send_many(out)
        return delivered
