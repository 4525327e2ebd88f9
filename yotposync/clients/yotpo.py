"""The Yotpo Loyalty & Referrals API (v2): orders, refunds, customers, points, offers.

The callers build the payloads. This client sends them and maps the responses to errors.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests

from yotposync.clients.http import DEFAULT_RETRY, HttpService, RateLimiter, RetryPolicy
from yotposync.errors import NotFoundError, RetriableError

SERVICE = "yotpo"

# Yotpo responds with 423 to /points/adjust while another change locks the customer record.
LOCKED = 423


class AdjustOutcome(enum.StrEnum):
    """The result of `adjust_points_once`."""

    SENT = "sent"  # sent now, and Yotpo returned 200
    CONFIRMED_BY_HISTORY = "confirmed_by_history"  # the response was lost, the history has it
    ALREADY_APPLIED = "already_applied"  # the history showed it before anything was sent


class YotpoClient:
    """Calls to one Yotpo Loyalty account, authenticated with its GUID and API key."""

    def __init__(
        self,
        base_url: str,
        guid: str,
        api_key: str,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        requests_per_second: float = 10.0,
        limiter: RateLimiter | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.http = HttpService(
            SERVICE,
            base_url,
            headers={"x-guid": guid, "x-api-key": api_key},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            # `limiter`, when given, is shared with the other clients of the same account and
            # replaces `requests_per_second`.
            limiter=limiter or RateLimiter(requests_per_second, sleep=sleep),
            retry=retry,
            session=session,
            retriable_statuses=frozenset({LOCKED}),
            auth_hint="check the GUID and API key (yotpo.guid, yotpo.api_key)",
            sleep=sleep,
        )

    def close(self) -> None:
        """Close the keep-alive connections."""
        self.http.close()

    def create_order(self, payload: Mapping[str, Any] | str) -> None:
        """Send one order (`POST /orders`); Yotpo awards its points by the account's campaigns.

        `payload` is the order, or its JSON text, which is sent as it is.
        """
        # NOTE: retried after a timeout because a repeated order_id is assumed to be ignored.
        # Yotpo does not document that; the sandbox emulates it as a policy.
        self._post_json("/orders", payload)

    def create_refund(self, payload: Mapping[str, Any] | str) -> None:
        """Send one refund against an earlier order (`POST /refunds`), as dict or JSON text."""
        # NOTE: retried after a timeout because a repeated refund id is assumed to be ignored.
        # Yotpo does not document that; the sandbox emulates it as a policy.
        self._post_json("/refunds", payload)

    def _post_json(self, path: str, payload: Mapping[str, Any] | str) -> None:
        """POST `payload` as JSON, retried after a timeout like any idempotent request."""
        if isinstance(payload, str):
            self.http.request("POST", path, json_text=payload, idempotent=True)
        else:
            self.http.request("POST", path, json=dict(payload), idempotent=True)

    def upsert_customer(self, payload: Mapping[str, Any]) -> None:
        """Create or update one customer (`POST /customers`); sending it twice changes nothing."""
        self.http.request("POST", "/customers", json=dict(payload), idempotent=True)

    def get_customer(
        self,
        *,
        email: str | None = None,
        customer_id: str | int | None = None,
        pos_account_id: str | None = None,
        phone_number: str | None = None,
        with_history: bool = False,
    ) -> dict[str, Any] | None:
        """Return one customer's details by exactly one identifier, or None when not enrolled.

        `phone_number` must be in E.164 form. `with_history` adds the `history_items` list.
        """
        identifiers = {
            "customer_email": email,
            "customer_id": customer_id,
            "pos_account_id": pos_account_id,
            "phone_number": phone_number,
        }
        supplied = {name: value for name, value in identifiers.items() if value is not None}
        if len(supplied) != 1:
            raise ValueError(
                "get_customer needs exactly one of email, customer_id, pos_account_id, "
                f"phone_number; got {len(supplied)}"
            )
        params: dict[str, str | int] = dict(supplied)
        if with_history:
            params["with_history"] = "true"
        try:
            customer: dict[str, Any] = self.http.get_json(
                "/customers", params, check=_object_problem
            )
        except NotFoundError:
            return None
        return customer

    def adjust_points(self, payload: Mapping[str, Any]) -> None:
        """Add or remove points (`POST /points/adjust`).

        Not retried after a timeout or 5xx, because Yotpo has no way to recognise a repeated
        adjustment: the RetriableError has `maybe_applied` set, and the caller checks the
        customer's history before sending it again. A 423 is retried here. A 422 (the
        adjustment would overdraw the balance) raises RejectedError.
        """
        self.http.request("POST", "/points/adjust", json=dict(payload), idempotent=False)

    def adjust_points_once(
        self, payload: Mapping[str, Any], *, marker: str, max_sends: int = 3
    ) -> AdjustOutcome:
        """Send a points adjustment unless the customer's history shows it was applied.

        `marker` is an id of ours that `payload["history_title"]` contains, such as
        `[hl-red-5012]`. The history is read before the first send, and again after every
        send whose outcome is unknown (a timeout, a dropped connection or a 5xx). The
        adjustment is sent again only when the marker is still absent. Raises the last
        RetriableError after `max_sends` sends with unknown outcomes, and RejectedError when
        Yotpo rejects the adjustment (422: not enough points).

        NOTE: A request that Yotpo applies only after the history was read (a slow server
        that finishes after the client gave up) is not seen, and a second send doubles it.
        The history is assumed to list every row of the customer; Yotpo documents no limit.
        """
        title = payload.get("history_title")
        if not marker or not isinstance(title, str) or marker not in title:
            raise ValueError(f"history_title must contain the marker {marker!r}")
        if max_sends < 1:
            raise ValueError(f"max_sends must be at least 1, got {max_sends}")
        if self.history_has_marker(payload, marker):
            return AdjustOutcome.ALREADY_APPLIED
        for send in range(1, max_sends + 1):
            try:
                self.adjust_points(payload)
            except RetriableError as exc:
                if not exc.maybe_applied or send == max_sends:
                    raise
                if self.history_has_marker(payload, marker):
                    return AdjustOutcome.CONFIRMED_BY_HISTORY
                continue
            return AdjustOutcome.SENT
        raise AssertionError("unreachable: the last send returns or raises")

    def history_has_marker(self, payload: Mapping[str, Any], marker: str) -> bool:
        """Tell whether the history of the payload's customer has a row titled with `marker`.

        The customer is found by `customer_email`, else `customer_id`. A customer Yotpo does
        not know has no history.
        """
        email = payload.get("customer_email")
        if isinstance(email, str) and email.strip():
            customer = self.get_customer(email=email, with_history=True)
        elif payload.get("customer_id") is not None:
            customer = self.get_customer(customer_id=payload["customer_id"], with_history=True)
        else:
            raise ValueError("the adjustment names no customer_email or customer_id")
        items = customer.get("history_items") if customer is not None else None
        if not isinstance(items, list):
            return False
        return any(
            isinstance(item, dict) and marker in str(item.get("action") or "") for item in items
        )

    def vip_tiers(self) -> list[dict[str, Any]]:
        """Return the account's VIP tiers."""
        tiers: list[dict[str, Any]] = self.http.get_json("/vip_tiers", check=_list_problem)
        return tiers

    def redemption_options(self, **filters: str | int | bool) -> list[dict[str, Any]]:
        """Return the active redemption options, narrowed by optional query filters.

        Filters are query parameters such as `customer_email` or `discount_type`. Booleans
        are sent as `true` or `false`.
        """
        params: dict[str, str | int] = {}
        for name, value in filters.items():
            if isinstance(value, bool):
                params[name] = "true" if value else "false"
            else:
                params[name] = value
        options: list[dict[str, Any]] = self.http.get_json(
            "/redemption_options", params, check=_list_problem
        )
        return options

    def check(self) -> None:
        """Read the VIP tiers, which fails with AuthError when the credentials are not accepted."""
        self.http.get_json("/vip_tiers")


def _object_problem(body: Any) -> str | None:
    return None if isinstance(body, dict) else "not a JSON object"


def _list_problem(body: Any) -> str | None:
    if not isinstance(body, list):
        return "not a JSON array"
    if not all(isinstance(item, dict) for item in body):
        return "array holds something other than objects"
    return None
