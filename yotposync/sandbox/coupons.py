"""Heartland coupons in the emulator, and what applying one does to a ticket.

The sandbox follows the representation in `yotposync.clients.heartland_coupons`: a coupon has
a unique `code`, a `name` shown to the cashier and on receipts, `active`, `max_uses` (null for
unlimited) and one ticket-level action, `amount_off_order` with `amount` or `percent_off_order`
with `percent`. A ticket created with `coupon_id` gets a ticket-level discount named after the
coupon. A use counts when the ticket completes. An inactive coupon, or one whose uses reached
`max_uses`, is rejected with 422 when it is applied and again when its ticket completes.
"""

from __future__ import annotations

import copy
import itertools
import threading
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Final

from yotposync.sandbox.clock import Clock
from yotposync.sandbox.filters import FieldSet
from yotposync.sandbox.httpkit import RequestError
from yotposync.sandbox.payloads import Problems, parse_bool, parse_money, reject_unknown_keys
from yotposync.sandbox.policies import ERROR_NOT_FOUND, ERROR_VALIDATION, format_utc
from yotposync.sandbox.records import DiscountRecord, money_json

AMOUNT_OFF: Final = "amount_off_order"
PERCENT_OFF: Final = "percent_off_order"
COUPON_KEYS: Final = frozenset(
    {"code", "name", "active", "max_uses", "action", "amount", "percent"}
)
COUPON_FIELD_SET: Final = FieldSet(
    frozenset({"id", "code", "name", "active", "max_uses", "uses", "action", "created_at"}),
    frozenset(),
)


@dataclass
class CouponRecord:
    id: int
    code: str
    name: str
    action: str
    amount_cents: int | None
    percent: Decimal | None
    active: bool
    max_uses: int | None
    created_at: datetime
    updated_at: datetime
    used_by: list[int] = field(default_factory=list)  # ids of completed tickets


def render_coupon(coupon: CouponRecord) -> dict[str, Any]:
    return {
        "id": coupon.id,
        "code": coupon.code,
        "name": coupon.name,
        "active": coupon.active,
        "max_uses": coupon.max_uses,
        "uses": len(coupon.used_by),
        "action": coupon.action,
        "amount": None if coupon.amount_cents is None else money_json(coupon.amount_cents),
        "percent": None if coupon.percent is None else float(coupon.percent),
        "created_at": format_utc(coupon.created_at),
        "updated_at": format_utc(coupon.updated_at),
    }


def _validation(field_name: str, message: str) -> RequestError:
    return RequestError(422, ERROR_VALIDATION, f"{field_name} {message}", {field_name: message})


class CouponBook:
    """Every coupon of one emulated Heartland account. Thread-safe."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.RLock()
        self._coupons: dict[int, CouponRecord] = {}
        self._ids = itertools.count(61)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [render_coupon(c) for c in self._coupons.values()]

    def get(self, coupon_id: int) -> dict[str, Any]:
        with self._lock:
            return render_coupon(self._coupon(coupon_id))

    def create(self, body: dict[str, Any]) -> int:
        with self._lock:
            values = self._parse(body, None)
            code = values["code"]
            if any(c.code.lower() == code.lower() for c in self._coupons.values()):
                raise _validation("code", f"{code!r} is already used by another coupon")
            now = self._clock.now()
            coupon = CouponRecord(
                id=next(self._ids),
                created_at=now,
                updated_at=now,
                **values,
            )
            self._coupons[coupon.id] = coupon
            return coupon.id

    def update(self, coupon_id: int, body: dict[str, Any]) -> None:
        with self._lock:
            coupon = self._coupon(coupon_id)
            values = self._parse(body, coupon)
            if values["code"].lower() != coupon.code.lower() and any(
                c.code.lower() == values["code"].lower() for c in self._coupons.values()
            ):
                raise _validation("code", f"{values['code']!r} is already used by another coupon")
            for name, value in values.items():
                setattr(coupon, name, value)
            coupon.updated_at = self._clock.now()

    def discount_for(self, coupon_id: int, item_cents: int) -> DiscountRecord:
        """Check that a coupon can be applied now and return the discount it gives."""
        with self._lock:
            coupon = self._usable(coupon_id)
            if coupon.amount_cents is not None:
                cents = min(coupon.amount_cents, max(0, item_cents))
            else:
                assert coupon.percent is not None
                share = Decimal(max(0, item_cents)) * coupon.percent / 100
                cents = int(share.quantize(Decimal(1), rounding=ROUND_HALF_UP))
            return DiscountRecord(description=coupon.name, amount_cents=cents)

    def use(self, coupon_id: int, ticket_id: int) -> None:
        """Count a completed ticket's use of a coupon, or raise 422 when none is left."""
        with self._lock:
            coupon = self._usable(coupon_id, ticket_id)
            if ticket_id not in coupon.used_by:
                coupon.used_by.append(ticket_id)

    def _usable(self, coupon_id: int, ticket_id: int | None = None) -> CouponRecord:
        coupon = self._coupons.get(coupon_id)
        if coupon is None:
            raise _validation("coupon_id", f"coupon {coupon_id} not found")
        if not coupon.active:
            raise _validation("coupon_id", f"coupon {coupon.code} is not active")
        others = [t for t in coupon.used_by if t != ticket_id]
        if coupon.max_uses is not None and len(others) >= coupon.max_uses:
            raise _validation("coupon_id", f"coupon {coupon.code} has no uses left")
        return coupon

    def _coupon(self, coupon_id: int) -> CouponRecord:
        coupon = self._coupons.get(coupon_id)
        if coupon is None:
            raise RequestError(404, ERROR_NOT_FOUND, f"coupon {coupon_id} not found")
        return coupon

    def _parse(self, body: dict[str, Any], current: CouponRecord | None) -> dict[str, Any]:
        """Validate a full (create) or partial (update) body and return every field's value."""
        problems = Problems()
        reject_unknown_keys(body, COUPON_KEYS, problems)
        values: dict[str, Any] = (
            {}
            if current is None
            else copy.copy(
                {
                    "code": current.code,
                    "name": current.name,
                    "action": current.action,
                    "amount_cents": current.amount_cents,
                    "percent": current.percent,
                    "active": current.active,
                    "max_uses": current.max_uses,
                }
            )
        )
        for key in ("code", "name"):
            if key in body or current is None:
                value = body.get(key)
                if not isinstance(value, str) or not value.strip():
                    problems.add(key, "is required and must be text")
                else:
                    values[key] = value.strip()
        if "code" in values and not values["code"].isalnum():
            problems.add("code", "must contain only letters and digits")
        if "active" in body or current is None:
            active = parse_bool(body.get("active", True), "active", problems)
            values["active"] = bool(active)
        if "max_uses" in body or current is None:
            max_uses = body.get("max_uses")
            if max_uses is not None and (
                isinstance(max_uses, bool) or not isinstance(max_uses, int) or max_uses < 1
            ):
                problems.add("max_uses", "must be a whole number of at least 1, or null")
            values["max_uses"] = max_uses
        if "action" in body or current is None:
            self._parse_action(body, values, problems)
        problems.raise_if_any()
        return values

    @staticmethod
    def _parse_action(body: dict[str, Any], values: dict[str, Any], problems: Problems) -> None:
        action = body.get("action")
        values["action"] = action
        values["amount_cents"] = None
        values["percent"] = None
        if action == AMOUNT_OFF:
            amount = parse_money(body.get("amount"), "amount", problems)
            if amount is not None and amount <= 0:
                problems.add("amount", "must be above 0")
            values["amount_cents"] = amount
        elif action == PERCENT_OFF:
            try:
                percent = Decimal(str(body.get("percent")))
            except InvalidOperation:
                percent = Decimal(-1)
            if not percent.is_finite() or not Decimal(0) < percent <= Decimal(100):
                problems.add("percent", "must be above 0 and at most 100")
            values["percent"] = percent
        else:
            problems.add("action", f"must be {AMOUNT_OFF} or {PERCENT_OFF}")
