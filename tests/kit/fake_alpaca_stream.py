"""A fake Alpaca market-data stream for the real alpaca-py ``StockDataStream`` (``url_override=fake.url``).

The protocol as the SDK speaks it, msgpack both ways: on connect the server sends
``[{"T": "success", "msg": "connected"}]``; the client sends ``{"action": "auth", "key", "secret"}``
and gets ``[{"T": "success", "msg": "authenticated"}]`` (or ``[{"T": "error", "code": 402, "msg":
"auth failed"}]`` when the fake was given other credentials); then ``{"action": "subscribe",
"trades": [...], "quotes": [...], "bars": [...]}`` (possibly split over several frames) answered by
``[{"T": "subscription", "trades": [...], "quotes": [...], "bars": [...], ...}]``. Market data comes
as arrays of messages: trades ``{"T": "t", "S", "i", "x", "p", "s", "t", "c", "z"}`` and quotes
``{"T": "q", "S", "bx", "bp", "bs", "ax", "ap", "as", "t", "c", "z"}``, ``t`` as a msgpack timestamp.
"""

from __future__ import annotations

import msgpack
from websockets.asyncio.server import ServerConnection

from tests.kit.tape import Tape
from tests.kit.ws_fake import WsFake

__all__ = ["FakeAlpacaStream"]

_CHANNELS = ("trades", "quotes", "bars", "updatedBars", "dailyBars", "statuses", "lulds")


class FakeAlpacaStream(WsFake):
    def __init__(self, key: str | None = None, secret: str | None = None, frame: int = 1000) -> None:
        super().__init__()
        self.key, self.secret = key, secret
        self.frame = frame  # messages per websocket frame
        self.subs: dict[ServerConnection, dict[str, set[str]]] = {}
        self.auth_failures = 0

    async def serve(self, conn: ServerConnection) -> None:
        await conn.send(msgpack.packb([{"T": "success", "msg": "connected"}]))
        authed = False
        subs = self.subs.setdefault(conn, {c: set() for c in _CHANNELS})
        async for raw in conn:
            msg = msgpack.unpackb(raw)
            action = msg.get("action")
            if action == "auth":
                ok = self.key is None or (msg.get("key"), msg.get("secret")) == (self.key, self.secret)
                if not ok:
                    self.auth_failures += 1
                    await conn.send(msgpack.packb([{"T": "error", "code": 402, "msg": "auth failed"}]))
                    await conn.close()
                    return
                authed = True
                await conn.send(msgpack.packb([{"T": "success", "msg": "authenticated"}]))
            elif not authed:
                await conn.send(msgpack.packb([{"T": "error", "code": 401, "msg": "not authenticated"}]))
            elif action in ("subscribe", "unsubscribe"):
                for c in _CHANNELS:
                    if action == "subscribe":
                        subs[c].update(msg.get(c, []))
                    else:
                        subs[c].difference_update(msg.get(c, []))
                await conn.send(msgpack.packb([{"T": "subscription", **{c: sorted(subs[c]) for c in _CHANNELS}}]))

    def subscribed(self, channel: str = "trades") -> set[str]:
        return {s for c in self.open_connections() for s in self.subs.get(c, {}).get(channel, ())}

    def send_tape(self, tape: Tape, frames: list[slice], quotes: bool = False) -> int:
        """Stream seconds of the tape as trades (and quotes around each trade) to the subscribers."""
        out, delivered = [], 0
        conns = self.open_connections()
        for sl in frames:
            msgs = []
            for i, p, s, t, n in zip(
                tape.idx[sl].tolist(),
                tape.price[sl].tolist(),
                tape.size[sl].tolist(),
                tape.ts[sl].tolist(),
                range(sl.start, sl.stop),
            ):
                sym = tape.symbols[i]
                stamp = msgpack.Timestamp.from_unix_nano(t)
                msgs.append(
                    {"T": "t", "S": sym, "i": n, "x": "V", "p": p, "s": int(s), "t": stamp, "c": ["@"], "z": "C"}
                )
                if quotes:
                    msgs.append(
                        {
                            "T": "q",
                            "S": sym,
                            "bx": "V",
                            "bp": round(p - 0.01, 2),
                            "bs": 1,
                            "ax": "V",
                            "ap": round(p + 0.01, 2),
                            "as": 1,
                            "t": stamp,
                            "c": ["R"],
                            "z": "C",
                        }
                    )
            for c in conns:
                subs = self.subs.get(c, {})
                trades, qs = subs.get("trades", set()), subs.get("quotes", set())
                mine = [m for m in msgs if (m["S"] in trades or "*" in trades) if m["T"] == "t"] + [
                    m for m in msgs if m["T"] == "q" and (m["S"] in qs or "*" in qs)
                ]
                mine.sort(key=lambda m: (m["t"].to_unix_nano(), m["T"] != "q"))
                for k in range(0, len(mine), self.frame):
                    out.append((c, msgpack.packb(mine[k : k + self.frame], datetime=False)))
                delivered += sum(1 for m in mine if m["T"] == "t")
        self.send_many(out)
        return delivered
