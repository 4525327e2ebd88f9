"""An HTTP server on 127.0.0.1 that records each request and responds with a chosen status."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from yotposync.ops.http_server import BackgroundServer


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    body: bytes


class Recorder:
    """Records requests; `status` is the status every request gets."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._server = BackgroundServer("recorder", "127.0.0.1", 0, self._app)

    def __enter__(self) -> Recorder:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.port}"

    def paths(self) -> list[str]:
        with self._lock:
            return [request.path for request in self.requests]

    def wait_for(self, count: int, timeout: float = 10) -> list[Recorded]:
        """Wait until `count` requests arrived; return them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            time.sleep(0.02)
        with self._lock:
            return list(self.requests)

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        with self._lock:
            self.requests.append(Recorded(environ["REQUEST_METHOD"], environ["PATH_INFO"], body))
        start_response(f"{self.status} Status", [("Content-Length", "2")])
        return [b"OK"]
