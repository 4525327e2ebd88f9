"""A werkzeug request handler that keeps connections open between requests (HTTP/1.1).

werkzeug's development server (3.x) sends `Connection: close` with every response, because
Python's `http.server` cannot skip the unread part of a request body before the next request
line. A client then opens a TCP connection for each request, which costs both sides more CPU
than the request itself on loopback, and hides what keep-alive sessions save.

This handler removes the cause: it reads each request body completely before the application
reads it, so the next request starts exactly where the body ended, and it drops the forced
`Connection: close`. After each response werkzeug also reads and discards whatever the client
has sent since, which on an open connection would be the next request. So the handler gives
that step an empty stream to read, and restores the connection's stream for the next request.
A client that asks for `Connection: close`, or speaks HTTP/1.0, still gets its connection
closed by `http.server`.

Open connections are tracked per server, so that stopping the sandbox closes them too: a
client holding an idle connection must see the server gone, as it would after a restart.
"""

from __future__ import annotations

import io
import logging
import socket
import threading
from contextlib import suppress
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler

log = logging.getLogger("yotposync.sandbox.server")

# An idle connection is closed after this long, which ends its serving thread.
IDLE_TIMEOUT_SECONDS = 30.0


class OpenConnections:
    """The client connections a server keeps open, so that they can be closed on stop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()

    def add(self, connection: socket.socket) -> None:
        with self._lock:
            self._sockets.add(connection)

    def discard(self, connection: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(connection)

    def close_all(self) -> None:
        """Shut every open connection down, so that its serving thread reads the end and exits."""
        with self._lock:
            sockets = list(self._sockets)
            self._sockets.clear()
        for connection in sockets:
            with suppress(OSError):  # already closed by the client or the thread
                connection.shutdown(socket.SHUT_RDWR)

    def __len__(self) -> int:
        with self._lock:
            return len(self._sockets)


def track_connections(server: BaseWSGIServer) -> OpenConnections:
    """Attach an `OpenConnections` registry to `server`, for the handler to fill."""
    registry = OpenConnections()
    server.yotposync_connections = registry  # type: ignore[attr-defined]
    return registry


class KeepAliveRequestHandler(WSGIRequestHandler):
    """Serve several requests per connection; log each at debug level, not werkzeug's info."""

    timeout = IDLE_TIMEOUT_SECONDS
    # The status line, headers and body go out as separate small writes. With Nagle's
    # algorithm on, a write waits for the client's delayed acknowledgement of the one before
    # (about 40 ms on Linux), which on a reused connection stalls every request.
    disable_nagle_algorithm = True
    _serving_application = False

    def setup(self) -> None:
        super().setup()
        registry = self._registry()
        if registry is not None:
            registry.add(self.connection)

    def finish(self) -> None:
        registry = self._registry()
        if registry is not None:
            registry.discard(self.connection)
        super().finish()

    def handle_one_request(self) -> None:
        connection_stream = self.rfile
        self._serving_application = False
        try:
            super().handle_one_request()
        finally:
            self.rfile = connection_stream
            self._serving_application = False

    def handle_expect_100(self) -> bool:
        # werkzeug sends its own "100 Continue" when it runs the application.
        return True

    def make_environ(self) -> Any:
        # werkzeug calls this first when it runs the application for a parsed request.
        self._serving_application = True
        environ = super().make_environ()
        environ["wsgi.input"] = io.BytesIO(self._read_body(environ))
        # From here on this request reads nothing more from the connection: werkzeug's
        # clean-up after the response would otherwise swallow the next request.
        self.rfile = io.BytesIO()
        return environ

    def _read_body(self, environ: dict[str, Any]) -> bytes:
        """Read the whole request body, whatever the application will do with it."""
        stream = environ["wsgi.input"]
        if environ.get("wsgi.input_terminated"):
            # A chunked body: werkzeug's de-chunking stream ends after the last chunk.
            return bytes(stream.read())
        length = (environ.get("CONTENT_LENGTH") or "").strip()
        if not length:
            return b""
        if not length.isdigit():
            # Where this body ends is unknown, so nothing after it can be read as a request.
            self.close_connection = True
            return b""
        return bytes(stream.read(int(length)))

    def send_header(self, keyword: str, value: str) -> None:
        if (
            keyword.lower() == "connection"
            and value.lower() == "close"
            and self._serving_application
            and not self.close_connection
        ):
            # werkzeug forces this on every application response; leaving it out keeps the
            # connection open. It still goes out when the request asked to close (or is
            # HTTP/1.0, as http.server decides) and on http.server's own error responses.
            return
        super().send_header(keyword, value)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # A request line that could not be parsed leaves no command or path.
        path = str(getattr(self, "path", "")).split("?", 1)[0]
        log.debug("%s %s -> %s", getattr(self, "command", None), path, code)

    def log_error(self, format: str, *args: Any) -> None:
        if format.startswith("Request timed out"):
            # An idle keep-alive connection reached IDLE_TIMEOUT_SECONDS: not an error.
            log.debug("closing an idle connection")
            return
        super().log_error(format, *args)

    def _registry(self) -> OpenConnections | None:
        registry = getattr(self.server, "yotposync_connections", None)
        return registry if isinstance(registry, OpenConnections) else None
