"""Yotpo redemptions in the emulator: codes, locked records and the redemption webhook.

Policies chosen where the Yotpo reference is silent:
- `POST /redemptions` returns `{"id", "reward_text", "approved", "approved_at", "created_at",
  "updated_at"}`. Codes are `SBX` followed by six upper-case letters and digits, from a
  seeded generator, so runs repeat.
- A redemption takes the option's `amount` in points at once, or, with
  `delay_points_deduction: true`, when an order's `coupon_code` names the code. Its history
  row has the option's name as `action`, the negative points and the code as `status`; a
  delayed one shows 0 points until the order, then a second row takes the points.
- A customer can be locked through the admin path; `POST /points/adjust` and
  `POST /redemptions` for a locked customer answer 423 until the lock is lifted.
- With a webhook URL set (loopback only), each approved redemption is posted there as
  `swell/redemption/created` with the shared secret in `X-Api-Secret`. A failed post is
  logged and not retried.
"""

from __future__ import annotations

import copy
import ipaddress
import logging
import random
import string
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests

from yotposync.sandbox.clock import Clock
from yotposync.sandbox.httpkit import RequestError
from yotposync.sandbox.policies import format_yotpo_time, normalize_email
from yotposync.sandbox.yotpo_state import YotpoState

log = logging.getLogger(__name__)

WEBHOOK_TOPIC = "swell/redemption/created"
WEBHOOK_TIMEOUT_SECONDS = 5.0


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class RedemptionDesk:
    """Redemptions, customer locks and the webhook target of one emulated Yotpo account."""

    def __init__(self, state: YotpoState, clock: Clock, seed: int = 3) -> None:
        self.state = state
        self._clock = clock
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self._ids = iter(range(77001, 10**9))
        self._locked: set[str] = set()
        self._webhook: tuple[str, str] | None = None
        self._log: list[dict[str, Any]] = []

    # Administration.

    def set_lock(self, email: str, locked: bool) -> None:
        with self._lock:
            if locked:
                self._locked.add(normalize_email(email))
            else:
                self._locked.discard(normalize_email(email))

    def set_webhook(self, url: str | None, secret: str) -> None:
        """Post each redemption to `url` (a loopback address), or stop posting with None."""
        if url is not None:
            host = urlsplit(url).hostname or ""
            if not _is_loopback(host):
                raise RequestError(422, "invalid_request", "the webhook URL must be on loopback")
        with self._lock:
            self._webhook = None if url is None else (url, secret)

    def check_lock(self, body: Mapping[str, Any]) -> None:
        """Raise 423 when the customer named in `body` is locked."""
        email = body.get("customer_email")
        with self._lock:
            locked = isinstance(email, str) and normalize_email(email) in self._locked
        if locked:
            self._record({"body": copy.deepcopy(dict(body)), "status": 423, "locked": True})
            raise RequestError(423, "locked", "customer record is locked; retry later")

    def records(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._log)

    # The API.

    def create_redemption(self, body: Mapping[str, Any]) -> dict[str, Any]:
        self.check_lock(body)
        option = self._option(body.get("redemption_option_id"))
        cost = self._cost(option, body)
        with self._lock:
            code = "SBX" + "".join(
                self._random.choices(string.ascii_uppercase + string.digits, k=6)
            )
            redemption_id = next(self._ids)
        delay = body.get("delay_points_deduction") is True
        try:
            email = self.state.redeem(body, cost, str(option.get("name", "")), code, delay)
        except RequestError as error:
            self._record({"body": copy.deepcopy(dict(body)), "status": error.status})
            raise
        now = format_yotpo_time(self._clock.now())
        response = {
            "id": redemption_id,
            "reward_text": code,
            "approved": True,
            "approved_at": now,
            "created_at": now,
            "updated_at": now,
        }
        self._record({"body": copy.deepcopy(dict(body)), "status": 200, "response": response})
        self._post_webhook(response, option, email, cost)
        return response

    def _option(self, raw_id: Any) -> dict[str, Any]:
        if isinstance(raw_id, bool) or not isinstance(raw_id, int):
            raise RequestError(422, "unprocessable", "redemption_option_id must be an integer")
        for option in self.state.redemption_options():
            if option.get("id") == raw_id:
                return option
        raise RequestError(404, "not_found", f"redemption option {raw_id} not found")

    @staticmethod
    def _cost(option: Mapping[str, Any], body: Mapping[str, Any]) -> int:
        kind = str(option.get("discount_type") or "")
        if kind.startswith("generic") and "variable" in kind:
            points = body.get("points_to_redeem")
            if isinstance(points, bool) or not isinstance(points, int) or points <= 0:
                raise RequestError(
                    422, "unprocessable", "points_to_redeem is required for this option"
                )
            return points
        return int(str(option.get("amount", 0)))

    def _post_webhook(
        self, response: dict[str, Any], option: Mapping[str, Any], email: str, cost: int
    ) -> None:
        with self._lock:
            target = self._webhook
        if target is None:
            return
        url, secret = target
        body = {
            "topic": WEBHOOK_TOPIC,
            "redemption": response,
            # The real event carries a reduced option, without its discount type.
            "redemption_option": {
                "id": option.get("id"),
                "name": option.get("name"),
                "amount": cost,
            },
            "customer": self.state.customer_snapshot(email) or {"email": email},
            "is_pos": False,
        }
        try:
            requests.post(
                url, json=body, headers={"X-Api-Secret": secret}, timeout=WEBHOOK_TIMEOUT_SECONDS
            )
        except requests.RequestException as exc:
            log.warning("redemption webhook post failed: %s", type(exc).__name__)

    def _record(self, entry: dict[str, Any]) -> None:
        entry["received_at"] = format_yotpo_time(self._clock.now())
        with self._lock:
            self._log.append(entry)
