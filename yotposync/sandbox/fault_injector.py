"""Apply a `FaultPlan` to the emulators: a WSGI middleware per emulator and one controller.

`FaultController` contains the sandbox's active plan, which rules are switched on, the seeded
random generator of each rule and the counts of what was injected. Tests switch rules with
`enable()` and `disable()`. Over HTTP, both emulators serve the same controller under
`/_sandbox/faults` with the emulator's own credential headers:

- `GET /_sandbox/faults` returns the plan, the switches and the counts.
- `PUT /_sandbox/faults` replaces the plan with the JSON body (the `FaultPlan` shape).
- `POST /_sandbox/faults/enable` and `POST /_sandbox/faults/disable` switch the rules named
  in the body's `rules` array, or every rule when the body is empty.

`FaultInjector` wraps one emulator. A request that no switched-on rule picks goes straight
to the emulator, so a sandbox without faults behaves exactly as before.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import random
import socket
import struct
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from fnmatch import fnmatchcase
from typing import Any

from werkzeug.wrappers import Request, Response

from yotposync.sandbox.clock import Clock
from yotposync.sandbox.faults import (
    HUGE_RESET_SECONDS,
    FaultKind,
    FaultPlan,
    FaultRule,
    Service,
    parse_fault_plan,
)
from yotposync.sandbox.heartland_state import HeartlandState
from yotposync.sandbox.httpkit import json_response

log = logging.getLogger(__name__)

ADMIN_PATH = "/_sandbox/faults"

# The body a malformed-JSON fault sends: the start of a list envelope with a stray comma.
MALFORMED_BODY = b'{"results": [{"id": 1,}'

# Appended to a ticket's sales rep by an edit-between-pages fault, and removed by the next.
EDIT_MARK = " (edited)"

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class FaultController:
    """The active fault plan of one sandbox, with its switches and counters; thread-safe."""

    def __init__(self, plan: FaultPlan | None = None) -> None:
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._total_injected = 0
        self._total_by_kind: Counter[str] = Counter()
        self._served: Counter[str] = Counter()
        self._install(plan or FaultPlan())

    def _install(self, plan: FaultPlan) -> None:
        self._plan = plan
        self._enabled = {rule.name: rule.enabled for rule in plan.rules}
        # Seeding with text is stable across runs and Python versions (random's version 2).
        self._random = {rule.name: random.Random(f"{plan.seed}:{rule.name}") for rule in plan.rules}
        self._skew_random = random.Random(f"{plan.seed}:clock-skew")
        self._matched: Counter[str] = Counter()
        self._injected: Counter[str] = Counter()

    @property
    def plan(self) -> FaultPlan:
        with self._lock:
            return self._plan

    def set_plan(self, plan: FaultPlan) -> None:
        """Replace the plan. Its rules start with their own `enabled` values and zero counts."""
        with self._lock:
            self._install(plan)
        log.info("fault plan replaced: %d rules, seed %d", len(plan.rules), plan.seed)

    def enable(self, *names: str) -> None:
        """Switch on the named rules, or every rule when no name is given."""
        self._switch(names, True)

    def disable(self, *names: str) -> None:
        """Switch off the named rules, or every rule when no name is given."""
        self._switch(names, False)

    def _switch(self, names: tuple[str, ...], on: bool) -> None:
        with self._lock:
            unknown = [name for name in names if name not in self._enabled]
            if unknown:
                raise KeyError(f"no fault rule named {', '.join(unknown)}")
            for name in names or tuple(self._enabled):
                self._enabled[name] = on

    def pick(
        self, service: Service, method: str, path: str
    ) -> tuple[FaultRule, random.Random] | None:
        """Count one API request and return the first switched-on rule that hits it."""
        with self._lock:
            self._served[service] += 1
            for rule in self._plan.rules:
                if rule.service != service or not self._enabled[rule.name]:
                    continue
                if rule.method != "*" and rule.method_upper != method:
                    continue
                if not fnmatchcase(path, rule.path):
                    continue
                self._matched[rule.name] += 1
                if self._matched[rule.name] <= rule.after:
                    continue
                if rule.times is not None and self._injected[rule.name] >= rule.times:
                    continue
                generator = self._random[rule.name]
                if rule.probability < 1 and generator.random() >= rule.probability:
                    continue
                self._injected[rule.name] += 1
                self._total_injected += 1
                self._total_by_kind[rule.kind.value] += 1
                return rule, generator
        return None

    def requests_seen(self) -> dict[str, int]:
        """Return how many API requests each emulator received, faulty or not."""
        with self._lock:
            return dict(self._served)

    def clock_skew_seconds(self) -> int:
        """Draw the lag of one Heartland write's timestamp, 0 when the plan has no skew."""
        with self._lock:
            most = self._plan.heartland_clock_skew_seconds
            return self._skew_random.randint(0, most) if most else 0

    def report(self) -> dict[str, Any]:
        """Return the plan, the switches and the counts, as JSON-ready data.

        Each rule of the plan shows its current switch as `enabled`, not the value it
        started with, so the plan read here can be sent back with `PUT` as it is.
        `total_injected`, `injected_by_kind` and `requests_seen` count since the sandbox
        started, across plan replacements. `matched` and `injected` count per rule of the
        current plan.
        """
        with self._lock:
            plan = self._plan.model_dump(mode="json")
            for rule in plan["rules"]:
                rule["enabled"] = self._enabled[rule["name"]]
            return {
                "plan": plan,
                "enabled": dict(self._enabled),
                "matched": dict(self._matched),
                "injected": dict(self._injected),
                "total_injected": self._total_injected,
                "injected_by_kind": dict(self._total_by_kind),
                "requests_seen": dict(self._served),
            }

    def hold(self, seconds: float) -> None:
        """Wait `seconds`, or less when the sandbox stops meanwhile."""
        if seconds > 0:
            self._stopping.wait(seconds)

    def release_held(self) -> None:
        """End every current and future `hold()` at once; called when the sandbox stops."""
        self._stopping.set()

    def skewed(self, clock: Clock) -> Clock:
        """Wrap `clock` so that its timestamps lag by the plan's Heartland clock skew."""
        return SkewedClock(clock, self)

    def wrap(
        self,
        service: Service,
        app: WsgiApp,
        credentials: Mapping[str, str],
        editor: TicketEditor | None = None,
    ) -> FaultInjector:
        """Put a FaultInjector for `service` around an emulator's WSGI application.

        The sandbox wraps its emulators each time it starts, so this also ends the effect
        of an earlier `release_held()`.
        """
        self._stopping.clear()
        return FaultInjector(service, app, self, credentials, editor)


class SkewedClock:
    """A clock whose `now()` lags the wrapped clock by the controller's clock skew."""

    def __init__(self, clock: Clock, controller: FaultController) -> None:
        self._clock = clock
        self._controller = controller

    def now(self) -> datetime:
        lag = self._controller.clock_skew_seconds()
        moment = self._clock.now()
        return moment - timedelta(seconds=lag) if lag else moment

    def monotonic(self) -> float:
        return self._clock.monotonic()


class TicketEditor:
    """An editor of the Heartland emulator's tickets that changes them as a cashier would."""

    def __init__(self, state: HeartlandState) -> None:
        self._state = state

    def edit_random(self, generator: random.Random) -> int | None:
        """Toggle a mark on the sales rep of a random ticket that is not voided.

        The edit moves the ticket's `updated_at` to now and changes nothing that decides
        points, unless a sales rep exclusion rule names the marked text. Returns the ticket
        id, or None when no ticket can be edited.
        """
        candidates = [
            ticket for ticket in self._state.ticket_snapshot() if not ticket.get("voided?")
        ]
        if not candidates:
            return None
        ticket = generator.choice(candidates)
        sales_rep = str(ticket.get("sales_rep") or "")
        if sales_rep.endswith(EDIT_MARK):
            changed = sales_rep.removesuffix(EDIT_MARK)
        else:
            changed = f"{sales_rep}{EDIT_MARK}"
        ticket_id = int(ticket["id"])
        self._state.update_ticket(ticket_id, {"sales_rep": changed})
        return ticket_id


class FaultInjector:
    """WSGI middleware that applies the controller's rules for one service to its emulator."""

    def __init__(
        self,
        service: Service,
        app: WsgiApp,
        controller: FaultController,
        credentials: Mapping[str, str],
        editor: TicketEditor | None,
    ) -> None:
        self.service = service
        self.app = app
        self.controller = controller
        self._credentials = dict(credentials)
        self._editor = editor

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        if path == ADMIN_PATH or path.startswith(ADMIN_PATH + "/"):
            response = self._admin(Request(environ))
            return response(environ, start_response)
        if path.startswith("/_sandbox/"):
            return self.app(environ, start_response)
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        picked = self.controller.pick(self.service, method, path)
        if picked is None:
            return self.app(environ, start_response)
        rule, generator = picked
        log.info("fault %s (%s) on %s %s", rule.name, rule.kind.value, method, path)
        return self._inject(rule, generator, environ, start_response)

    # Faults.

    def _inject(
        self,
        rule: FaultRule,
        generator: random.Random,
        environ: dict[str, Any],
        start_response: Callable[..., Any],
    ) -> Iterable[bytes]:
        kind = rule.kind
        if kind is FaultKind.SLOW:
            self.controller.hold(rule.delay_seconds)
            return self.app(environ, start_response)
        if kind is FaultKind.RESET:
            return _drop_connection(environ, start_response)
        if kind is FaultKind.RATE_LIMIT:
            response = self._error(429, rule.message or "rate limit exceeded")
            response.headers.update(_reset_headers(self.service, rule))
            return response(environ, start_response)
        if kind is FaultKind.SERVER_ERROR:
            message = rule.message or "the service is unavailable, try again later"
            return self._error(rule.error_status, message)(environ, start_response)
        if kind is FaultKind.CLIENT_ERROR:
            message = rule.message or "the request was rejected"
            return self._error(rule.error_status, message)(environ, start_response)
        if kind is FaultKind.EMPTY_PAGE:
            return json_response(self._empty_page(rule, environ))(environ, start_response)

        status, headers, body = _call(self.app, environ)
        if kind is FaultKind.LOST_RESPONSE:
            self.controller.hold(rule.delay_seconds)
            return _drop_connection(environ, start_response)
        if kind is FaultKind.MALFORMED_JSON:
            body = MALFORMED_BODY
        elif kind is FaultKind.TRUNCATED_JSON:
            body = body[: max(1, len(body) // 2)]
        elif kind is FaultKind.PATCH_RECORDS:
            body = _patched(body, rule)
        elif kind is FaultKind.EDIT_BETWEEN_PAGES and self._editor is not None:
            edited = self._editor.edit_random(generator)
            log.info("fault %s edited ticket %s", rule.name, edited)
        return _respond(start_response, status, headers, body)

    def _empty_page(self, rule: FaultRule, environ: dict[str, Any]) -> object:
        """Build the body of an empty_page fault: no records, with the counts `rule` selects.

        Only a Heartland GET is passed to the emulator for its counts, so no other request is
        applied.
        """
        if self.service == "yotpo":
            return []
        empty: dict[str, Any] = {"results": [], "total": 0, "pages": 0}
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        if rule.empty_total == "zero" or method != "GET":
            return empty
        _, _, body = _call(self.app, environ)
        try:
            listed = json.loads(body)
        except ValueError:
            return empty
        if isinstance(listed, dict):
            for key in ("total", "pages"):
                if isinstance(listed.get(key), int):
                    empty[key] = listed[key]
        return empty

    def _error(self, status: int, message: str) -> Response:
        if self.service == "heartland":
            code = {429: "rate_limited", 422: "validation_error"}.get(status, "server_error")
            if 400 <= status < 500 and status not in (422, 429):
                code = "invalid_request"
            return json_response({"error": code, "message": message}, status)
        return json_response({"error": message}, status)

    # Administration.

    def _admin(self, request: Request) -> Response:
        if not self._authorized(request):
            return json_response({"error": "missing or invalid credentials"}, 401)
        action = request.path.removeprefix(ADMIN_PATH).strip("/")
        try:
            if action == "" and request.method == "GET":
                return json_response(self.controller.report())
            if action == "" and request.method == "PUT":
                body = _json_body(request)
                self.controller.set_plan(parse_fault_plan(body, "fault plan in the request"))
                return json_response(self.controller.report())
            if action in ("enable", "disable") and request.method == "POST":
                names = _rule_names(_json_body(request, allow_empty=True))
                if action == "enable":
                    self.controller.enable(*names)
                else:
                    self.controller.disable(*names)
                return json_response(self.controller.report())
        except ValueError as exc:
            return json_response({"error": str(exc)}, 400)
        except KeyError as exc:
            return json_response({"error": str(exc.args[0])}, 404)
        return json_response(
            {"error": f"use GET or PUT {ADMIN_PATH}, or POST {ADMIN_PATH}/enable or /disable"},
            404,
        )

    def _authorized(self, request: Request) -> bool:
        for name, expected in self._credentials.items():
            sent = request.headers.get(name, "")
            if not hmac.compare_digest(sent.encode(), expected.encode()):
                return False
        return True


def _reset_headers(service: Service, rule: FaultRule) -> dict[str, str]:
    """Headers that announce when to retry, in the rule's style and the service's headers."""
    if rule.reset == "missing":
        return {}
    if rule.reset == "http-date":
        moment = datetime.now(UTC) + timedelta(seconds=rule.reset_seconds)
        return {"Retry-After": format_datetime(moment, usegmt=True)}
    seconds = str(HUGE_RESET_SECONDS if rule.reset == "huge" else rule.reset_seconds)
    if service == "yotpo":
        return {"ratelimit-limit": "10", "ratelimit-remaining": "0", "ratelimit-reset": seconds}
    return {"Retry-After": seconds}


def _call(app: WsgiApp, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    """Run the emulator on the request and return its status line, headers and whole body."""
    captured: dict[str, Any] = {}
    chunks: list[bytes] = []

    def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        captured["status"] = status
        captured["headers"] = list(headers)
        return chunks.append

    result = app(environ, capture)
    try:
        chunks.extend(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return captured["status"], captured["headers"], b"".join(chunks)


def _respond(
    start_response: Callable[..., Any], status: str, headers: list[tuple[str, str]], body: bytes
) -> Iterable[bytes]:
    kept = [(name, value) for name, value in headers if name.lower() != "content-length"]
    start_response(status, [*kept, ("Content-Length", str(len(body)))])
    return [body]


def _drop_connection(
    environ: dict[str, Any], start_response: Callable[..., Any]
) -> Iterable[bytes]:
    """Close the client's connection without a response, so the client sees it dropped.

    A zero linger time makes the final close send a TCP reset. werkzeug's own attempt to
    write the empty response below then fails with a broken pipe, which it ignores.
    """
    connection = environ.get("werkzeug.socket")
    if not isinstance(connection, socket.socket):
        raise RuntimeError("the server does not expose the connection's socket")
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):  # the client may have closed it first
        connection.shutdown(socket.SHUT_RDWR)
    start_response("500 Connection Dropped", [("Content-Length", "0")])
    return [b""]


def _patched(body: bytes, rule: FaultRule) -> bytes:
    """Apply the rule's record patches to a JSON body: an envelope, an array or one record."""
    try:
        document = json.loads(body)
    except ValueError:
        return body
    if isinstance(document, dict) and isinstance(document.get("results"), list):
        records = document["results"]
    elif isinstance(document, list):
        records = document
    else:
        records = [document]
    for record in records:
        if not isinstance(record, dict):
            continue
        patch = rule.patches.get(str(record.get("id")))
        if patch is None:
            continue
        for key in patch.remove:
            record.pop(key, None)
        record.update(json.loads(json.dumps(patch.set)))
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def _json_body(request: Request, *, allow_empty: bool = False) -> object:
    raw = request.get_data(cache=False)
    if not raw.strip():
        if allow_empty:
            return {}
        raise ValueError("the request body is empty: send a JSON object")
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"the request body is not valid JSON: {exc}") from None


def _rule_names(body: object) -> tuple[str, ...]:
    if not isinstance(body, dict):
        raise ValueError('send a JSON object such as {"rules": ["yotpo-down"]}, or nothing')
    names = body.get("rules", [])
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise ValueError('"rules" must be an array of rule names')
    return tuple(names)
