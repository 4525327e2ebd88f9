"""Webhooks in the Heartland Retail emulator: `/api/webhooks` and `sales_transaction_completed`.

`HeartlandWebhooks` wraps the Heartland WSGI application. It serves the registrations itself
and watches the ticket writes that pass through to the emulator. When a create or an update
leaves a ticket completed that was not completed before, every registration for the event
receives a POST of the ticket record.

Choices where the Heartland reference leaves a fact unknown:
- `POST /api/webhooks` takes `{"url", "events"}` and responds with 201 and the new record as JSON
  and a `Location` header. `GET /api/webhooks` lists them in the usual envelope, and
  `DELETE /api/webhooks/{id}` responds with 204. Bad bodies are 422 `validation_error`.
- Supported events: `sales_transaction_completed`. Other event names are accepted and
  stored but never sent, since the emulator has nothing else to announce.
- The body is the ticket as `GET /api/sales/tickets/{id}` renders it without `_include[]`,
  with no envelope, event name or signature.
- Each call is sent once, from a background thread, with a 5 second timeout and no retry.
- Calls go only to loopback addresses unless the sandbox allows non-loopback hosts, so a test
  can never make the sandbox post to another machine.
"""

from __future__ import annotations

import hmac
import itertools
import json
import logging
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

import requests
from werkzeug.wrappers import Request, Response

from yotposync.clients.http import is_loopback_url
from yotposync.sandbox.heartland import heartland_error
from yotposync.sandbox.heartland_state import HeartlandState
from yotposync.sandbox.httpkit import RequestError, json_response, read_json_object
from yotposync.sandbox.policies import (
    ERROR_INVALID_REQUEST,
    ERROR_NOT_FOUND,
    ERROR_UNAUTHORIZED,
    ERROR_VALIDATION,
)

log = logging.getLogger(__name__)

TRANSACTION_COMPLETED = "sales_transaction_completed"
DELIVERY_TIMEOUT_SECONDS = 5.0

# Ticket fields a client gets only with `_include[]`, left out of webhook bodies.
_INCLUDE_ONLY = frozenset({"subtotal", "tax_total", "lines", "payments"})
_WEBHOOK_PATH = re.compile(r"/api/webhooks(?:/(?P<id>\d+))?/?")
_TICKET_PATH = re.compile(r"/api/sales/tickets/(?P<id>\d+)/?")

StartResponse = Callable[..., Any]


class WebhookRegistry:
    """The registrations of one emulated account and a log of the calls made to them."""

    def __init__(self, *, allow_non_loopback: bool = False) -> None:
        self._allow_non_loopback = allow_non_loopback
        self._lock = threading.Lock()
        self._hooks: dict[int, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self._threads: list[threading.Thread] = []
        self.deliveries: list[dict[str, Any]] = []

    def register(self, body: dict[str, Any]) -> dict[str, Any]:
        url = body.get("url")
        events = body.get("events")
        details: dict[str, str] = {}
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
            details["url"] = "must be an http or https URL"
        elif not self._allow_non_loopback and not is_loopback_url(url):
            details["url"] = "the sandbox posts only to loopback addresses such as 127.0.0.1"
        if (
            not isinstance(events, list)
            or not events
            or not all(isinstance(event, str) for event in events)
        ):
            details["events"] = f'must be a list of event names, e.g. ["{TRANSACTION_COMPLETED}"]'
        if details:
            raise RequestError(422, ERROR_VALIDATION, "invalid webhook", details)
        with self._lock:
            hook_id = next(self._ids)
            hook = {"id": hook_id, "url": url, "events": list(events or [])}
            self._hooks[hook_id] = hook
            return dict(hook)

    def registrations(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(hook) for hook in self._hooks.values()]

    def get(self, hook_id: int) -> dict[str, Any]:
        with self._lock:
            hook = self._hooks.get(hook_id)
        if hook is None:
            raise RequestError(404, ERROR_NOT_FOUND, f"webhook {hook_id} not found")
        return dict(hook)

    def delete(self, hook_id: int) -> None:
        with self._lock:
            if self._hooks.pop(hook_id, None) is None:
                raise RequestError(404, ERROR_NOT_FOUND, f"webhook {hook_id} not found")

    def publish(self, event: str, record: dict[str, Any]) -> None:
        """Post `record` to every registration for `event`, each from its own thread."""
        with self._lock:
            targets = [hook["url"] for hook in self._hooks.values() if event in hook["events"]]
        for url in targets:
            thread = threading.Thread(
                target=self._deliver, args=(url, event, record), name="sandbox-webhook"
            )
            thread.daemon = True
            thread.start()
            with self._lock:
                self._threads = [t for t in self._threads if t.is_alive()] + [thread]

    def wait_for_deliveries(self, timeout: float = DELIVERY_TIMEOUT_SECONDS + 1) -> None:
        """Wait until the calls started so far have finished, for tests and shutdown."""
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)

    def _deliver(self, url: str, event: str, record: dict[str, Any]) -> None:
        outcome: dict[str, Any] = {"event": event, "ticket_id": record.get("id"), "url": url}
        try:
            response = requests.post(
                url,
                data=json.dumps(record),
                headers={"Content-Type": "application/json"},
                timeout=DELIVERY_TIMEOUT_SECONDS,
            )
            outcome["status"] = response.status_code
            response.close()
        except requests.RequestException as exc:
            outcome["status"] = None
            outcome["error"] = type(exc).__name__
        with self._lock:
            self.deliveries.append(outcome)
        log.debug(
            "webhook for ticket %s: response status %s", outcome["ticket_id"], outcome["status"]
        )


class HeartlandWebhooks:
    """WSGI middleware: `/api/webhooks` here, everything else to the Heartland emulator."""

    def __init__(
        self, app: Any, state: HeartlandState, registry: WebhookRegistry, token: str
    ) -> None:
        self._app = app
        self._state = state
        self._registry = registry
        self._token = token

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        match = _WEBHOOK_PATH.fullmatch(request.path)
        if match is not None:
            response = self._webhooks(request, match.group("id"))
            return response(environ, start_response)
        ticket_id, watched = self._watched_write(request)
        if not watched:
            result: Iterable[bytes] = self._app(environ, start_response)
            return result
        return self._forward_and_publish(environ, start_response, ticket_id)

    def _watched_write(self, request: Request) -> tuple[int | None, bool]:
        """Tell whether a request may complete a ticket, and which ticket if it is known."""
        if request.method == "POST" and request.path.rstrip("/") == "/api/sales/tickets":
            return None, True
        match = _TICKET_PATH.fullmatch(request.path)
        if request.method == "PUT" and match is not None:
            return int(match.group("id")), True
        return None, False

    def _forward_and_publish(
        self, environ: dict[str, Any], start_response: StartResponse, ticket_id: int | None
    ) -> Iterable[bytes]:
        was_completed = ticket_id is not None and self._completed(ticket_id)
        seen: dict[str, Any] = {}

        def recording_start_response(
            status: str, headers: list[tuple[str, str]], *rest: Any
        ) -> Any:
            seen["status"] = int(status.split(" ", 1)[0])
            seen["location"] = dict(headers).get("Location", "")
            return start_response(status, headers, *rest)

        body: Iterable[bytes] = self._app(environ, recording_start_response)
        if not 200 <= seen.get("status", 500) < 300:
            return body
        if ticket_id is None:
            created = _TICKET_PATH.fullmatch(urlsplit(seen.get("location", "")).path)
            ticket_id = int(created.group("id")) if created is not None else None
        if ticket_id is not None and not was_completed and self._completed(ticket_id):
            record = self._state.get_ticket(ticket_id)
            payload = {key: value for key, value in record.items() if key not in _INCLUDE_ONLY}
            self._registry.publish(TRANSACTION_COMPLETED, payload)
        return body

    def _completed(self, ticket_id: int) -> bool:
        try:
            return bool(self._state.get_ticket(ticket_id).get("completed?"))
        except RequestError:
            return False

    def _webhooks(self, request: Request, hook_id: str | None) -> Response:
        if not self._authorized(request):
            return heartland_error(
                RequestError(401, ERROR_UNAUTHORIZED, "missing or invalid API token")
            )
        try:
            if hook_id is not None:
                if request.method == "GET":
                    return json_response(self._registry.get(int(hook_id)))
                if request.method == "DELETE":
                    self._registry.delete(int(hook_id))
                    return Response(b"", status=204)
            elif request.method == "GET":
                hooks = self._registry.registrations()
                return json_response({"results": hooks, "total": len(hooks), "pages": 1})
            elif request.method == "POST":
                hook = self._registry.register(read_json_object(request, ERROR_INVALID_REQUEST))
                return json_response(hook, 201, headers={"Location": f"/api/webhooks/{hook['id']}"})
            message = f"method {request.method} is not allowed on {request.path}"
            raise RequestError(405, ERROR_INVALID_REQUEST, message)
        except RequestError as error:
            return heartland_error(error)

    def _authorized(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        return hmac.compare_digest(token.strip().encode(), self._token.encode())
