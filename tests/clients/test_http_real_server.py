"""HttpService against a real HTTP server on 127.0.0.1: timeouts, refused and dropped
connections, and connection reuse."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from yotposync.clients.http import HttpService, RateLimiter, RetryPolicy
from yotposync.errors import RetriableError

# Set by a test once the client has given up, so the slow handler stops waiting.
release_slow = threading.Event()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    client_ports: ClassVar[list[int]] = []
    paths: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        Handler.client_ports.append(self.client_address[1])
        Handler.paths.append(self.path)
        if self.path.startswith("/api/slow"):
            release_slow.wait(timeout=5.0)
        elif self.path.startswith("/api/drop"):
            self.close_connection = True
            return
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """Ignore the broken pipe of writing to a client that already timed out."""


@pytest.fixture
def server_url() -> Iterator[str]:
    release_slow.clear()
    Handler.client_ports = []
    Handler.paths = []
    server = QuietServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api"
    finally:
        release_slow.set()
        server.shutdown()
        server.server_close()
        thread.join()


def build_service(base_url: str, read_timeout: float = 5.0) -> HttpService:
    return HttpService(
        "heartland",
        base_url,
        headers={"Authorization": "Bearer test-token"},
        connect_timeout=1.0,
        read_timeout=read_timeout,
        limiter=RateLimiter(0),
        retry=RetryPolicy(max_tries=1),
    )


def test_read_timeout_applied(server_url: str) -> None:
    service = build_service(server_url, read_timeout=0.2)
    started = time.monotonic()

    with pytest.raises(RetriableError) as caught:
        service.get_json("/slow")
    elapsed = time.monotonic() - started
    release_slow.set()

    assert elapsed < 2.0
    assert caught.value.maybe_applied is True
    assert caught.value.reason == "read timed out after 0.2 s (ReadTimeout)"


def test_refused_connection_not_applied() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port once the probe socket is closed.
    service = build_service(f"http://127.0.0.1:{port}/api")

    with pytest.raises(RetriableError) as caught:
        service.get_json("/ok")

    assert caught.value.maybe_applied is False
    assert "check heartland.base_url" in str(caught.value)


def test_dropped_connection_maybe_applied(server_url: str) -> None:
    service = build_service(server_url)

    with pytest.raises(RetriableError) as caught:
        service.get_json("/drop")

    assert caught.value.maybe_applied is True


def test_session_reuses_connection(server_url: str) -> None:
    service = build_service(server_url)

    service.get_json("/ok")
    service.get_json("/ok")

    assert len(set(Handler.client_ports)) == 1


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_proxy_variable_is_honoured(server_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The test server acts as the proxy: it gets the absolute URL of a host that has
    # nothing listening, which only a request sent through the proxy could reach.
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", server_url.removesuffix("/api"))
    target = f"http://127.0.0.1:{_unused_port()}/api"
    service = build_service(target)
    assert service.get_json("/through-proxy") == {"ok": True}
    assert Handler.paths == [f"{target}/through-proxy"]


def test_no_proxy_variable_is_honoured(server_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", server_url.removesuffix("/api"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    target = f"http://127.0.0.1:{_unused_port()}/api"
    service = build_service(target)
    with pytest.raises(RetriableError, match="refused"):
        service.get_json("/direct")
    assert Handler.paths == []
