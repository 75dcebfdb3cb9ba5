"""The thread-hosted HTTP server both fakes run on (a free port on 127.0.0.1)."""

from __future__ import annotations

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class FakeHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    state: Any

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up mid-response (a test's purpose, often) are not errors here."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class LocalServer:
    """Serves ``state`` through ``handler`` in a background thread; a context manager."""

    def __init__(self, state: Any, handler: type[BaseHTTPRequestHandler], name: str) -> None:
        self.state = state
        self._server = FakeHTTPServer(("127.0.0.1", 0), handler)
        self._server.state = state
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name=name)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
