"""A loopback HTTP server for download tests (shared by tests/engine and tests/security)."""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def serve_http(handler_class: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serves ``handler_class`` on 127.0.0.1 (a free port) from a daemon thread; yields the base URL
    ``http://127.0.0.1:<port>`` and shuts the server down (and joins the thread) afterwards."""
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler_class)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f'http://127.0.0.1:{server.server_address[1]}'
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
