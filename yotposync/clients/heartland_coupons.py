"""Loyalty discounts in Heartland: the one place that decides how they look on both sides.

The representation chosen: every Yotpo offer, and every code a customer redeemed online, is a
Heartland coupon whose code we define. The cashier scans or types the code, Heartland applies
a ticket-level "$X off" or "X% off the entire order" action, and the ticket then carries the
coupon's id in `coupon_id`. A ticket used a loyalty discount exactly when its `coupon_id` is the
id of a coupon this module created.

NOTE: The Heartland references confirm coupons, their codes, names, dates and ticket-level
actions in the UI, and a `coupon_id` key on tickets. They do not confirm the coupon API itself.
Assumed here, and emulated the same way by the sandbox: `GET /coupons` with the usual list
filters, `POST /coupons` returning 201 with a `Location` header, `PUT /coupons/{id}`, the fields
below, `max_uses` for single-use coupons, and a ticket's `coupon_id` holding the id of the
coupon applied to it. Check these against a real account before going live.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from yotposync.clients.heartland import HeartlandClient
from yotposync.errors import NotFoundError, RetriableError
from yotposync.money import format_cents, format_percent

COUPONS_PATH = "/coupons"

# Letters and digits only: Heartland coupon codes may have to match a printed barcode.
OFFER_CODE_PREFIX = "LOYALTY"


@dataclass(frozen=True)
class CouponSpec:
    """What one loyalty coupon should look like in Heartland.

    Exactly one of `amount_cents` (a fixed amount off the order) and `percent` (a percentage
    off the order) is set. `single_use` coupons stop working after one completed ticket.
    """

    code: str
    name: str
    amount_cents: int | None
    percent: Decimal | None
    single_use: bool
    active: bool = True

    def __post_init__(self) -> None:
        if (self.amount_cents is None) == (self.percent is None):
            raise ValueError(f"coupon {self.code}: set exactly one of amount_cents and percent")

    def as_json(self) -> str:
        """Serialise the spec for the ledger, so a later run can tell whether it changed."""
        return json.dumps(coupon_body(self), sort_keys=True)


def offer_code(option_id: int) -> str:
    """Return the coupon code of a Yotpo redemption option, e.g. `LOYALTY3101`."""
    return f"{OFFER_CODE_PREFIX}{option_id}"


def discount_text(amount_cents: int | None, percent: Decimal | None) -> str:
    """Write a discount as the cashier reads it: `5.00` or `12.5%`."""
    if amount_cents is not None:
        return format_cents(amount_cents)
    if percent is not None:
        return format_percent(percent)
    raise ValueError("discount_text: set one of amount_cents and percent")


def offer_text(amount_cents: int | None, percent: Decimal | None, points_cost: int) -> str:
    """Describe an offer for people: `5.00 off for 500 points`, `12.5% off for 800 points`."""
    return f"{discount_text(amount_cents, percent)} off for {points_cost} points"


def coupon_body(spec: CouponSpec) -> dict[str, Any]:
    """Build the Heartland coupon record for a spec (amounts in dollars, as Heartland writes)."""
    body: dict[str, Any] = {
        "code": spec.code,
        "name": spec.name,
        "active": spec.active,
        "max_uses": 1 if spec.single_use else None,
    }
    if spec.amount_cents is not None:
        body["action"] = "amount_off_order"
        body["amount"] = float(Decimal(spec.amount_cents) / 100)
    else:
        body["action"] = "percent_off_order"
        body["percent"] = float(spec.percent) if spec.percent is not None else None
    return body


class HeartlandCoupons:
    """Coupon calls on one Heartland account, through the client's HTTP service."""

    def __init__(self, client: HeartlandClient) -> None:
        self.http = client.http

    def find_by_code(self, code: str) -> dict[str, Any] | None:
        """Return the coupon with this code, or None when there is none."""
        body = self.http.get_json(
            COUPONS_PATH,
            {"_filter": json.dumps({"code": code}), "page": 1, "per_page": 1},
            check=_envelope_problem,
        )
        results: list[dict[str, Any]] = body["results"]
        return results[0] if results else None

    def create(self, spec: CouponSpec) -> int:
        """Create a coupon and return its id.

        A create whose outcome is unknown (timeout after sending) is not repeated blindly:
        the coupon is looked up by its code first, because codes are unique.
        """
        try:
            response = self.http.request(
                "POST", COUPONS_PATH, json=coupon_body(spec), idempotent=False
            )
        except RetriableError as exc:
            if not exc.maybe_applied:
                raise
            existing = self.find_by_code(spec.code)
            if existing is None:
                raise
            return _coupon_id(existing)
        location = response.headers.get("Location", "")
        tail = location.rstrip("/").rsplit("/", 1)[-1]
        if tail.isdigit():
            return int(tail)
        existing = self.find_by_code(spec.code)
        if existing is None:
            raise RetriableError(
                "heartland", "POST", COUPONS_PATH, response.status_code, "created coupon not found"
            )
        return _coupon_id(existing)

    def update(self, coupon_id: int, spec: CouponSpec) -> None:
        """Replace the coupon's fields with the spec (PUT is safe to repeat)."""
        self.http.request("PUT", f"{COUPONS_PATH}/{coupon_id}", json=coupon_body(spec))

    def deactivate(self, coupon_id: int) -> bool:
        """Switch a coupon off; return False when Heartland no longer has it."""
        try:
            self.http.request("PUT", f"{COUPONS_PATH}/{coupon_id}", json={"active": False})
        except NotFoundError:
            return False
        return True

    def upsert(self, spec: CouponSpec, coupon_id: int | None) -> CouponWrite:
        """Bring the coupon with `coupon_id`, or with the spec's code, to the spec.

        A coupon found by code is reused, so a ledger restored from an old backup never
        creates a second coupon with the same code.
        """
        if coupon_id is not None:
            try:
                self.update(coupon_id, spec)
            except NotFoundError:
                coupon_id = None
            else:
                return CouponWrite(coupon_id, created=False)
        existing = self.find_by_code(spec.code)
        if existing is not None:
            found = _coupon_id(existing)
            self.update(found, spec)
            return CouponWrite(found, created=False)
        return CouponWrite(self.create(spec), created=True)


@dataclass(frozen=True)
class CouponWrite:
    """The coupon an upsert wrote, and whether it had to be created."""

    coupon_id: int
    created: bool


def _coupon_id(record: dict[str, Any]) -> int:
    value = record.get("id")
    if isinstance(value, bool) or not isinstance(value, int):
        raise RetriableError("heartland", "GET", COUPONS_PATH, 200, "coupon without an integer id")
    return value


def _envelope_problem(body: Any) -> str | None:
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, list):
        return "no results list"
    if not all(isinstance(item, dict) for item in results):
        return "results list holds something other than objects"
    return None
