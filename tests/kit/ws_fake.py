"""A real websocket server on 127.0.0.1 for fake venue streams (Binance, Kite ticker, Alpaca data stream).

The server runs its own asyncio loop in a daemon thread (the ``websockets`` package, the same one
the Alpaca SDK uses). A subclass implements ``serve(conn)`` (one coroutine per client connection:
handshake checks, subscriptions) and pushes market data with ``send(conn, payload)`` from any thread.

Faults: ``drop()`` aborts every open connection without a close frame (a network cut: the client
must notice and reconnect); ``refuse(n)`` rejects the next ``n`` connection attempts (HTTP 503), so
a client's backoff is exercised.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable

from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Response

__all__ = ["WsFake"]


class WsFake:
    def __init__(self) -> None:
        self.connections: list[ServerConnection] = []
        self.connects = 0
        self.refused = 0
        self._refuse = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._lock = threading.Lock()

    # ---- for subclasses ----------------------------------------------------------------------------
    async def serve(self, conn: ServerConnection) -> None:
        raise NotImplementedError

    # ---- control -----------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"ws://{host}:{port}"

    def open_connections(self) -> list[ServerConnection]:
        with self._lock:
            return [c for c in self.connections if c.state.name == "OPEN"]

    def send(self, conn: ServerConnection, payload: bytes | str) -> None:
        """Send one message to one connection from any thread (waits until it is written)."""
        fut = asyncio.run_coroutine_threadsafe(self._send(conn, payload), self._loop)
        fut.result(timeout=30)

    def send_many(self, items: Iterable[tuple[ServerConnection, bytes | str]]) -> None:
        fut = asyncio.run_coroutine_threadsafe(self._send_many(list(items)), self._loop)
        fut.result(timeout=60)

    async def _send(self, conn: ServerConnection, payload: bytes | str) -> None:
        try:
            await conn.send(payload)
        except Exception:  # the client went away meanwhile: its ticks are lost, as on a real venue
            pass

    async def _send_many(self, items: list[tuple[ServerConnection, bytes | str]]) -> None:
        for conn, payload in items:
            await self._send(conn, payload)

    def drop(self, timeout: float = 10.0) -> int:
        """Cut every open connection (no close frame) and wait until the server sees them closed."""
        conns = self.open_connections()

        async def cut() -> None:
            for c in conns:
                c.transport.abort()
            for c in conns:
                await c.wait_closed()

        asyncio.run_coroutine_threadsafe(cut(), self._loop).result(timeout)
        return len(conns)

    def refuse(self, times: int) -> None:
        """Reject the next ``times`` connection attempts with HTTP 503 (0: accept again)."""
        self._refuse = times

    # ---- plumbing ----------------------------------------------------------------------------------
    def _process_request(self, conn: ServerConnection, request) -> Response | None:
        if self._refuse > 0:
            self._refuse -= 1
            self.refused += 1
            return Response(503, "Service Unavailable", Headers(), b"try again later\n")
        return None

    async def _handler(self, conn: ServerConnection) -> None:
        with self._lock:
            self.connections.append(conn)
            self.connects += 1
        try:
            await self.serve(conn)
        except Exception:  # a dropped client ends its handler; the server keeps serving others
            pass

    async def _start(self) -> None:
        self._server = await serve(
            self._handler,
            "127.0.0.1",
            0,
            process_request=self._process_request,
            max_size=2**24,
            compression=None,
            ping_interval=None,
        )
        self._ready.set()

    def __enter__(self):
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            loop = self._loop
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self._start())
            loop.run_forever()
            # stopped: end every handler, then close the loop in its own thread
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for t in pending:
                t.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

        self._thread = threading.Thread(target=run, name=type(self).__name__, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake websocket server did not start")
        return self

    def __exit__(self, *exc) -> None:
        def stop() -> None:
            self._server.close(close_connections=False)
            for c in list(self.connections):
                c.transport.abort()
            self._loop.stop()

        self._loop.call_soon_threadsafe(stop)
        self._thread.join(timeout=10)
