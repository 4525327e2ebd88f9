"""A small threaded HTTP server for a WSGI application, run in a background thread.

The health, metrics and webhook endpoints serve a few short requests a minute, so the
standard library's WSGI server is enough. Each request gets its own thread, so a slow client
cannot hold up the next scrape.
"""

from __future__ import annotations

import errno
import socket
import socketserver
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

import structlog

from yotposync.errors import FatalError
from yotposync.ops.address import format_listen_address

log = structlog.get_logger("yotposync.http_server")

# How often the serving thread checks for a stop request; bounds how long stop() waits.
POLL_SECONDS = 0.1
# A client that sends nothing for this long is disconnected, so it cannot hold a thread.
REQUEST_TIMEOUT_SECONDS = 10.0


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _ThreadingServer6(_ThreadingServer):
    address_family = socket.AF_INET6


class _Handler(WSGIRequestHandler):
    """Log requests at debug level through structlog, never with their query strings."""

    timeout = REQUEST_TIMEOUT_SECONDS

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # The path may carry a secret (the webhook's), so only its first segment is logged.
        first_segment = self.path.split("?", 1)[0].lstrip("/").split("/", 1)[0]
        log.debug("http_request", method=self.command, path=f"/{first_segment}", status=code)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http_server_message", message=format % args)


def listen_failure(key: str, address: str, exc: OSError) -> FatalError:
    """Return the error for a server that could not bind the address set at `key`, with the fix."""
    if exc.errno == errno.EADDRNOTAVAIL:
        advice = "use an address of this machine, such as 127.0.0.1"
    else:
        advice = "choose a free port, or stop the process that uses it"
    return FatalError(f"cannot listen on {key} = {address}: {exc.strerror or exc}; {advice}")


class BackgroundServer:
    """Serve one WSGI application on `host:port` until `stop()`."""

    def __init__(self, name: str, host: str, port: int, app: Any) -> None:
        self.name = name
        self.host = host
        self._requested_port = port
        self._app = app
        self._server: _ThreadingServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Bind the address and start serving; raises OSError when it cannot bind."""
        server_class = _ThreadingServer6 if ":" in self.host else _ThreadingServer
        server = server_class((self.host, self._requested_port), _Handler)
        server.set_app(self._guarded_app)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": POLL_SECONDS},
            name=f"http-{self.name}",
            daemon=True,
        )
        self._thread.start()
        log.info("http_server_started", server=self.name, address=self.address)

    def _guarded_app(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """Respond with 500 and log through structlog when the application fails.

        wsgiref would print the traceback to stderr, outside the JSON log lines.
        """
        try:
            result: Iterable[bytes] = self._app(environ, start_response)
        except Exception:
            log.exception("http_app_failed", server=self.name, method=environ.get("REQUEST_METHOD"))
            body = b'{"error": "internal error; see the yotposync log"}'
            start_response(
                "500 Internal Server Error",
                [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
                sys.exc_info(),
            )
            return [body]
        return result

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"the {self.name} server is not running")
        return int(self._server.server_address[1])

    @property
    def address(self) -> str:
        return format_listen_address(self.host, self.port)

    def stop(self) -> None:
        """Stop serving and close the socket; calling it twice is harmless."""
        if self._server is None:
            return
        self._server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server.server_close()
        self._server = None
        self._thread = None
