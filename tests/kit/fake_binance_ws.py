"""A fake Binance spot market stream that the real ``ccxt.pro.binance`` client connects to over a websocket.

The protocol as Binance speaks it (and as ccxt.pro builds it): the client opens ``<ws url>/<n>``
(ccxt appends a stream index to ``urls['api']['ws']['spot']``), sends
``{"method": "SUBSCRIBE", "params": ["!miniTicker@arr"] or ["btcusdt@miniTicker", ...], "id": n}``
and gets ``{"result": null, "id": n}``. Then the server pushes, per second, an array of
``24hrMiniTicker`` events for the all-market stream, or one event per subscribed symbol stream::

    {"e": "24hrMiniTicker", "E": <ms>, "s": "BTCUSDT", "c": "<last>", "o": ..., "h": ..., "l": ...,
     "v": "<base volume>", "q": "<quote volume>"}

``send_tape(tape, frames)`` streams seconds of a ``Tape`` (last price = the trade's price, ``v`` = the
running volume, ``E`` = the trade's time) to every subscribed connection; ticks sent while nobody is
connected are lost, as on the real venue.

    with FakeBinance(symbols) as rest, FakeBinanceWs() as ws:
        ex = ccxt.pro.binance(ws.ccxt_config(rest))
"""

from __future__ import annotations

import json

from websockets.asyncio.server import ServerConnection

from tests.kit.tape import Tape
from tests.kit.ws_fake import WsFake

__all__ = ["FakeBinanceWs"]


class FakeBinanceWs(WsFake):
    def __init__(self) -> None:
        super().__init__()
        self.subscriptions: dict[ServerConnection, set[str]] = {}
        self.requests: list[dict] = []

    def ccxt_config(self, rest=None) -> dict:
        """ccxt.pro constructor config: REST at the ``FakeBinance`` ``rest`` (markets), streams here."""
        cfg = rest.ccxt_config() if rest is not None else {"urls": {"api": {}}}
        cfg["urls"]["api"]["ws"] = {"spot": f"{self.url}/ws", "margin": f"{self.url}/ws"}
        return cfg

    async def serve(self, conn: ServerConnection) -> None:
        self.subscriptions[conn] = set()
        async for raw in conn:
            msg = json.loads(raw)
            self.requests.append(msg)
            method = msg.get("method")
            if method == "SUBSCRIBE":
                self.subscriptions[conn].update(msg.get("params", []))
                await conn.send(json.dumps({"result": None, "id": msg.get("id")}))
            elif method == "UNSUBSCRIBE":
                self.subscriptions[conn].difference_update(msg.get("params", []))
                await conn.send(json.dumps({"result": None, "id": msg.get("id")}))
            else:
                await conn.send(
                    json.dumps({"code": 2, "msg": f"Invalid request: unknown method {method}", "id": msg.get("id")})
                )

    def subscribed(self) -> set[str]:
        return {p for c in self.open_connections() for p in self.subscriptions.get(c, ())}

    @staticmethod
    def _event(mid: str, price: float, total: float, ms: int) -> dict:
        return {
            "e": "24hrMiniTicker",
            "E": ms,
            "s": mid,
            "c": f"{price:.8f}",
            "o": f"{price:.8f}",
            "h": f"{price:.8f}",
            "l": f"{price:.8f}",
            "v": f"{total:.8f}",
            "q": f"{total * price:.8f}",
        }

    def send_tape(self, tape: Tape, frames: list[slice]) -> int:
        """Stream these seconds of the tape; returns the ticks delivered to at least one connection."""
        ids = [s.replace("/", "") for s in tape.symbols]
        out, delivered = [], 0
        conns = [(c, self.subscriptions.get(c, set())) for c in self.open_connections()]
        for sl in frames:
            events = [
                self._event(ids[i], p, v, t // 10**6)
                for i, p, v, t in zip(
                    tape.idx[sl].tolist(), tape.price[sl].tolist(), tape.total[sl].tolist(), tape.ts[sl].tolist()
                )
            ]
            for conn, subs in conns:
                if "!miniTicker@arr" in subs:
                    out.append((conn, json.dumps(events)))
                else:
                    for e in events:
                        if f"{e['s'].lower()}@miniTicker" in subs:
                            out.append((conn, json.dumps(e)))
            if conns:
                delivered += sl.stop - sl.start
        self.send_many(out)
        return delivered
