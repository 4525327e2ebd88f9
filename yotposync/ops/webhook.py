"""The Heartland webhook receiver behind `[ops] webhook_listen`.

Heartland posts the bare transaction record for `sales_transaction_completed`, with no
signature, so a caller is recognised by the shared secret in the path it was registered with:
`POST /heartland/<secret>`, compared in constant time. A recognised call only requests a
transactions run from the scheduler now. The body is never used as data, because the run
reads the tickets from the API as every poll does, so a forged or stale body can change
nothing. The regular polls still find anything a lost webhook would have announced.
"""

from __future__ import annotations

import hmac
import json
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import structlog

log = structlog.get_logger("yotposync.webhook")

PATH_PREFIX = "/heartland/"
EVENT = "sales_transaction_completed"
# Bodies are read and dropped in chunks up to this size; a transaction record is a few KB.
MAX_BODY_BYTES = 1_000_000
# Calls with a wrong secret are logged at most once per this many seconds, with a count.
REJECTED_LOG_SECONDS = 60.0

StartResponse = Callable[..., Any]


class RejectedCalls:
    """A count of rejected calls, due for a log line at most once per REJECTED_LOG_SECONDS."""

    def __init__(self, monotonic: Callable[[], float]) -> None:
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._count = 0
        self._logged_at: float | None = None

    def add(self) -> int | None:
        """Count one call; return the calls counted since the last line when one is due."""
        now = self._monotonic()
        with self._lock:
            self._count += 1
            if self._logged_at is not None and now - self._logged_at < REJECTED_LOG_SECONDS:
                return None
            count, self._count = self._count, 0
            self._logged_at = now
        return count


def webhook_path(secret: str) -> str:
    """Return the path Heartland must post to."""
    return f"{PATH_PREFIX}{secret}"


class WebhookReceiver:
    """WSGI application that turns authenticated webhook calls into `trigger()` calls."""

    def __init__(
        self,
        secret: str,
        trigger: Callable[[], None],
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._secret = secret.encode()
        self._trigger = trigger
        self._lock = threading.Lock()
        self._rejected = RejectedCalls(monotonic)
        self.accepted = 0

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        given = path[len(PATH_PREFIX) :].rstrip("/") if path.startswith(PATH_PREFIX) else ""
        # compare_digest takes as long for any wrong secret of a given length.
        if not hmac.compare_digest(given.encode(), self._secret):
            self._note_rejected(environ)
            return _json(start_response, 404, {"error": "not found"})
        method = environ.get("REQUEST_METHOD", "")
        if method != "POST":
            return _json(start_response, 405, {"error": "use POST"}, allow="POST")

        ticket_id = _ticket_id(_read_body(environ))
        with self._lock:
            self.accepted += 1
        log.info("webhook_received", webhook_event=EVENT, ticket_id=ticket_id)
        self._trigger()
        return _json(start_response, 200, {"status": "accepted"})

    def _note_rejected(self, environ: dict[str, Any]) -> None:
        count = self._rejected.add()
        if count is None:
            return
        log.warning(
            "webhook_rejected",
            reason="path does not match the webhook secret",
            calls=count,
            client=environ.get("REMOTE_ADDR"),
            detail=f"logged at most once per {REJECTED_LOG_SECONDS:g} s",
        )


def _read_body(environ: dict[str, Any]) -> bytes:
    """Read the request body, at most MAX_BODY_BYTES of it."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length <= 0:
        return b""
    stream = environ["wsgi.input"]
    body: bytes = stream.read(min(length, MAX_BODY_BYTES))
    return body


def _ticket_id(body: bytes) -> int | None:
    """Return the `id` of the posted record for the log line, or None; nothing else is used."""
    try:
        record = json.loads(body)
    except ValueError:
        return None
    value = record.get("id") if isinstance(record, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _json(
    start_response: StartResponse, status: int, payload: Any, allow: str | None = None
) -> list[bytes]:
    body = json.dumps(payload).encode()
    reasons = {200: "OK", 404: "Not Found", 405: "Method Not Allowed"}
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    if allow is not None:
        headers.append(("Allow", allow))
    start_response(f"{status} {reasons[status]}", headers)
    return [body]
