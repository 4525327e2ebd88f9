"""The WSGI application behind `[ops] listen`: `/healthz` and `/metrics`.

`/healthz` returns 200 when the daemon is healthy and 503 otherwise, with the report as JSON
either way. `/metrics` is the Prometheus text format. Both are read-only and hold no secret.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, make_wsgi_app

from yotposync.ops.health import HealthReport

StartResponse = Callable[..., Any]


class OpsEndpoint:
    """Route `/healthz` and `/metrics`; anything else is 404."""

    def __init__(self, health: Callable[[], HealthReport], registry: CollectorRegistry) -> None:
        self._health = health
        self._metrics = make_wsgi_app(registry)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path not in ("/healthz", "/metrics"):
            return _json(start_response, 404, {"error": "not found: use /healthz or /metrics"})
        if method not in ("GET", "HEAD"):
            return _json(
                start_response, 405, {"error": f"method {method} not allowed"}, allow="GET, HEAD"
            )
        if path == "/metrics":
            body: Iterable[bytes] = self._metrics(environ, start_response)
            return body
        report = self._health()
        return _json(start_response, 200 if report.healthy else 503, report.as_dict())


def _json(
    start_response: StartResponse, status: int, payload: Any, allow: str | None = None
) -> list[bytes]:
    body = json.dumps(payload, indent=2).encode() + b"\n"
    reasons = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-store"),
    ]
    if allow is not None:
        headers.append(("Allow", allow))
    start_response(f"{status} {reasons[status]}", headers)
    return [body]
