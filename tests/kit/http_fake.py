"""A minimal real HTTP server for fake venues (Kite, Alpaca): routes by regex, JSON or raw answers.

    class FakeX(FakeHttp):
        def __init__(self):
            super().__init__()
            self.route("GET", r"/v2/stocks/bars", self._bars)   # handler(match, query, body) -> (status, payload)

A payload that is ``bytes`` is sent as is with ``content_type``; anything else as JSON. ``delay_s``
slows every answer (to test per-source timeouts); ``requests`` records (method, path, query).

Faults for trading tests: ``fail_next(status)`` answers an error without running the handler,
``delay_next(seconds)`` slows the next answer only, ``lose_next()`` runs the handler (the order is
accepted) and then drops the connection without an answer. ``authorize(method, path, headers)`` runs
before routing (a fake checks the client's real credentials there); ``request_headers()`` gives a
handler the headers of the request it is serving.
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

__all__ = ["FakeHttp"]

_LOST = object()


class FakeHttp:
    def __init__(self, delay_s: float = 0.0):
        self.delay_s = delay_s
        self.requests: list[tuple[str, str, dict[str, list[str]]]] = []
        self._routes: list[tuple[str, re.Pattern, object]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._failures: list[int] = []
        self._delays: list[float] = []
        self._lost: list[str | None] = []
        self._local = threading.local()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def route(self, method: str, pattern: str, handler) -> None:
        self._routes.insert(0, (method.upper(), re.compile(f"^{pattern}$"), handler))

    def fail_next(self, status: int, times: int = 1, path: str | None = None) -> None:
        """The next ``times`` requests (to ``path`` only, when given) answer ``status``."""
        with self._lock:
            self._failures += [(status, path)] * times

    def delay_next(self, seconds: float, times: int = 1) -> None:
        with self._lock:
            self._delays += [float(seconds)] * times

    def lose_next(self, times: int = 1, path: str | None = None) -> None:
        """The next ``times`` requests (to ``path`` only, when given) run, then their answer is lost."""
        with self._lock:
            self._lost += [path] * times

    def error_body(self, status: int) -> object:
        return {"error": f"HTTP {status}"}

    def authorize(self, method: str, path: str, headers) -> tuple[int, object] | None:
        """None lets the request through; else the (status, payload) to answer instead."""
        return None

    def request_headers(self):
        return getattr(self._local, "headers", {})

    def _handle(self, method: str, raw: str, body: bytes, headers=None):
        parts = urlsplit(raw)
        query = parse_qs(parts.query)
        self._local.headers = headers or {}
        with self._lock:
            self.requests.append((method, parts.path, query))
            i = next((k for k, (_, p) in enumerate(self._failures) if p is None or p == parts.path), None)
            failure = self._failures.pop(i)[0] if i is not None else None
            delay = self._delays.pop(0) if self._delays and failure is None else 0.0
            j = (
                next((k for k, p in enumerate(self._lost) if p is None or p == parts.path), None)
                if failure is None
                else None
            )
            lose = j is not None
            if lose:
                self._lost.pop(j)
        if self.delay_s or delay:
            time.sleep(self.delay_s + delay)
        if failure is not None:
            return failure, self.error_body(failure), "application/json"
        denied = self.authorize(method, parts.path, self._local.headers)
        if denied is not None:
            return denied[0], denied[1], "application/json"
        for m, pattern, handler in self._routes:
            match = pattern.match(parts.path)
            if m == method and match:
                status, payload, *ctype = handler(match, query, body)
                return status, (_LOST if lose else payload), (ctype[0] if ctype else "application/json")
        return 404, {"error": f"no route {method} {parts.path}"}, "application/json"

    def __enter__(self):
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                status, payload, ctype = fake._handle(
                    self.command, self.path, self.rfile.read(length) if length else b"", self.headers
                )
                if payload is _LOST:  # accepted, then the answer is lost: close without a response
                    self.close_connection = True
                    return
                data = payload if isinstance(payload, bytes) else json.dumps(payload, default=str).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
                    pass

            do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _serve

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
