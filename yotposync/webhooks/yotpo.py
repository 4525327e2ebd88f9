"""The receiver for Yotpo's `swell/redemption/created` webhook.

A customer who redeems an offer online gets a code from Yotpo (`reward_text`). This receiver
records the code in the ledger and replies at once. The online codes job then makes it a
single-use Heartland coupon. A code already recorded is answered 200 again, so Yotpo may
retry freely.

Requests must carry the shared secret, either in the `X-Api-Secret` header or as the last
segment of the path (`/yotpo/redemption-created/<secret>`), and it is compared in constant
time. Bodies are at most 64 KiB.

NOTE: Yotpo documents no signature or secret for this webhook. The header is the one Yotpo
sends to merchant-hosted coupon URLs, and the path form suits accounts that can set only a URL.
"""

from __future__ import annotations

import hmac
import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from werkzeug.wrappers import Request, Response

from yotposync.errors import LedgerError
from yotposync.ledger import Ledger
from yotposync.ledger.integrity import known_ledger_error
from yotposync.ledger.offers import OfferLedger
from yotposync.logs import mask_email
from yotposync.ops.webhook import REJECTED_LOG_SECONDS, RejectedCalls
from yotposync.sync.offers import ONLINE_CODE_RULE, is_online_code

log = structlog.get_logger("yotposync.webhooks.yotpo")

PATH = "/yotpo/redemption-created"
SECRET_HEADER = "X-Api-Secret"  # noqa: S105 - a header name, not a secret
MAX_BODY_BYTES = 64 * 1024
# SQLite stores signed 64-bit integers. sqlite3 raises OverflowError for a larger one.
_SQLITE_INTEGER = range(-(2**63), 2**63)


def _reply(status: int, message: str) -> Response:
    return Response(json.dumps({"status": message}), status=status, mimetype="application/json")


def _stored_int(value: Any) -> int | None:
    """Return `value` if it is an integer that SQLite can store, else None."""
    if isinstance(value, bool) or not isinstance(value, int) or value not in _SQLITE_INTEGER:
        return None
    return value


def read_redemption(body: Mapping[str, Any]) -> dict[str, Any] | str:
    """Pick the fields the ledger needs from a webhook body, or return what is wrong with it."""
    redemption = body.get("redemption")
    if not isinstance(redemption, dict):
        return "missing redemption object"
    code = redemption.get("reward_text")
    if not isinstance(code, str) or not is_online_code(code.strip()):
        return f"redemption.reward_text must be a code of {ONLINE_CODE_RULE}"
    option = body.get("redemption_option")
    option = option if isinstance(option, dict) else {}
    option_id = option.get("id")
    if isinstance(option_id, str) and option_id.strip().isdigit():
        option_id = int(option_id)
    option_id = _stored_int(option_id)
    customer = body.get("customer")
    email = customer.get("email") if isinstance(customer, dict) else None
    if not isinstance(email, str) or "@" not in email:
        # Every redemption is made by a customer; a body without one is not Yotpo's.
        return "missing or invalid customer.email"
    # The points cost is a number in real responses and text in Yotpo's documentation. A
    # return of a sale that used the code gives back a share of it.
    cost = option.get("amount")
    if isinstance(cost, str) and cost.strip().isdigit():
        cost = int(cost.strip())
    redemption_id = redemption.get("id")
    return {
        "code": code.strip(),
        "redemption_id": None if redemption_id is None else str(redemption_id),
        "option_id": option_id,
        "option_name": option.get("name") if isinstance(option.get("name"), str) else None,
        "email": email,
        "points_cost": _stored_int(cost),
    }


def _redemption_facts(body: Mapping[str, Any]) -> dict[str, Any]:
    """Return the redemption id, code and masked customer of a body that was not recorded."""
    redemption = body.get("redemption")
    redemption = redemption if isinstance(redemption, dict) else {}
    customer = body.get("customer")
    email = customer.get("email") if isinstance(customer, dict) else None
    code = redemption.get("reward_text")
    redemption_id = redemption.get("id")
    return {
        "redemption_id": None if redemption_id is None else repr(redemption_id)[:80],
        "code": None if code is None else repr(code)[:80],
        "customer": mask_email(email) if isinstance(email, str) else None,
    }


class RedemptionWebhook:
    """WSGI application that records redeemed codes in the ledger at `ledger_path`."""

    def __init__(
        self,
        ledger_path: Path,
        secret: str,
        *,
        clock: Callable[[], datetime],
        on_recorded: Callable[[], None] = lambda: None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not secret:
            raise ValueError("the webhook secret must not be empty")
        self.ledger_path = ledger_path
        self._secret = secret.encode()
        self.clock = clock
        self.on_recorded = on_recorded
        self._unauthorized = RejectedCalls(monotonic)

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        response = self.handle(Request(environ))
        return response(environ, start_response)

    def handle(self, request: Request) -> Response:
        path = request.path.rstrip("/")
        if path != PATH and not path.startswith(PATH + "/"):
            return _reply(404, "not found")
        if request.method != "POST":
            return _reply(405, "only POST is allowed")

        if not self._authorized(request, path):
            self._note_unauthorized(request)
            return _reply(401, "missing or invalid secret")
        if (request.content_length or 0) > MAX_BODY_BYTES:
            return _reply(413, "body too large")
        try:
            body = json.loads(request.get_data(cache=False)[: MAX_BODY_BYTES + 1])
        except (ValueError, RecursionError):
            # ValueError covers invalid JSON, text that is not UTF-8 and integers longer than
            # sys.get_int_max_str_digits() (4300 digits by default since Python 3.11).
            # RecursionError is raised for arrays or objects nested too deep.
            return _reply(400, "body is not valid JSON")
        if not isinstance(body, dict):
            return _reply(400, "body must be a JSON object")

        fields = read_redemption(body)
        if isinstance(fields, str):
            # Yotpo may have taken points for this redemption, so the line names what staff
            # need to find it in Yotpo and settle it by hand.
            log.warning("webhook_invalid", error=fields, **_redemption_facts(body))
            return _reply(400, fields)
        try:
            new = self._record(fields)
        except LedgerError as exc:
            # A damaged, hand-edited or full ledger: the code is not recorded, and Yotpo
            # retries on an error. The daemon's jobs fail on the same problem until it is fixed.
            log.error("webhook_ledger_unusable", code=fields["code"], error=str(exc))
            return _reply(503, "the ledger cannot be used, retry later")
        except sqlite3.OperationalError as exc:
            # The ledger stayed locked past its busy timeout; Yotpo retries on an error.
            log.warning("webhook_ledger_busy", code=fields["code"], error=str(exc))
            return _reply(503, "busy, retry later")
        log.info(
            "online_code_received",
            code=fields["code"],
            new=new,
            customer=mask_email(fields["email"]) if fields["email"] else None,
        )
        if new:
            self.on_recorded()
        return _reply(200, "recorded" if new else "already recorded")

    def _authorized(self, request: Request, path: str) -> bool:
        supplied = request.headers.get(SECRET_HEADER, "")
        if not supplied and path.startswith(PATH + "/"):
            supplied = path[len(PATH) + 1 :]
        return hmac.compare_digest(supplied.encode(), self._secret)

    def _note_unauthorized(self, request: Request) -> None:
        """Log calls without the secret at most once per REJECTED_LOG_SECONDS, with a count."""
        count = self._unauthorized.add()
        if count is None:
            return
        log.warning(
            "webhook_unauthorized",
            path=PATH,
            calls=count,
            client=request.remote_addr,
            detail=f"logged at most once per {REJECTED_LOG_SECONDS:g} s",
        )

    def _record(self, fields: dict[str, Any]) -> bool:
        # One connection per request: SQLite connections belong to the thread that opened them.
        # A ledger removed or emptied while the daemon runs raises LedgerError, as it does for
        # the jobs. Creating a new, empty ledger here would let the jobs carry on with it.
        ledger = Ledger.open_existing(self.ledger_path)
        try:
            with ledger.transaction():
                return OfferLedger(ledger).record_online_code(
                    source="webhook", now=self.clock(), **fields
                )
        except sqlite3.DatabaseError as exc:
            known = known_ledger_error(exc, self.ledger_path)
            if known is None:
                raise
            raise known from exc
        finally:
            ledger.close()
