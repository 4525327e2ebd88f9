"""Validation of Heartland write payloads into records.

Each parser records what is wrong in a `Problems` collection under the field's path
(`lines[0].qty`) and returns None, so one 422 response can list every problem at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from yotposync.sandbox.filters import CUSTOM_PREFIX
from yotposync.sandbox.httpkit import RequestError
from yotposync.sandbox.policies import ERROR_VALIDATION, PAYMENT_COMPLETE, PAYMENT_VOIDED
from yotposync.sandbox.records import (
    GIFT_CARD_LINE,
    ITEM_LINE,
    LINE_TYPES,
    TAX_LINE,
    DiscountRecord,
    LineRecord,
    PaymentRecord,
    PriceAdjustment,
)

_CENT = Decimal("0.01")

LINE_KEYS = frozenset(
    {
        "type",
        "item_id",
        "description",
        "qty",
        "unit_price",
        "original_unit_price",
        "adjusted_unit_price",
        "price_adjustments",
        "value",
    }
)
PAYMENT_KEYS = frozenset(
    {
        "type",
        "status",
        "amount",
        "payment_type_id",
        "description",
        "deposit",
        "completed_at",
        "created_at",
        "updated_at",
    }
)


class Problems:
    """Validation problems keyed by field path, raised together as one 422."""

    def __init__(self) -> None:
        self.details: dict[str, str] = {}

    def add(self, path: str, text: str) -> None:
        self.details.setdefault(path, text)

    def raise_if_any(self) -> None:
        if not self.details:
            return
        summary = "; ".join(f"{path} {text}" for path, text in self.details.items())
        raise RequestError(422, ERROR_VALIDATION, f"invalid record: {summary}", self.details)


def reject_unknown_keys(
    body: Mapping[str, Any], allowed: frozenset[str], problems: Problems, prefix: str = ""
) -> None:
    """Record every key of `body` that is neither allowed nor a `custom@<key>` member."""
    for key in body:
        if key not in allowed and not key.startswith(CUSTOM_PREFIX):
            problems.add(f"{prefix}{key}", "is not a field that can be written")


def parse_money(value: Any, path: str, problems: Problems) -> int | None:
    """Parse a JSON number (or numeric text) of currency units into cents, half-up."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        problems.add(path, "must be a number")
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        problems.add(path, "must be a number")
        return None
    if not amount.is_finite():
        problems.add(path, "must be a finite number")
        return None
    return int((amount.quantize(_CENT, rounding=ROUND_HALF_UP) * 100).to_integral_value())


def parse_int(value: Any, path: str, problems: Problems) -> int | None:
    """Parse a whole number; numeric text and whole floats are accepted."""
    if isinstance(value, bool):
        problems.add(path, "must be a whole number")
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    problems.add(path, "must be a whole number")
    return None


def parse_text(value: Any, path: str, problems: Problems) -> str | None:
    if not isinstance(value, str):
        problems.add(path, "must be text")
        return None
    return value


def parse_bool(value: Any, path: str, problems: Problems) -> bool | None:
    if not isinstance(value, bool):
        problems.add(path, "must be true or false")
        return None
    return value


def parse_time(value: Any, path: str, problems: Problems) -> datetime | None:
    """Parse an ISO timestamp as an aware datetime; a value without offset counts as UTC."""
    if not isinstance(value, str):
        problems.add(path, "must be an ISO 8601 timestamp")
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        problems.add(path, "must be an ISO 8601 timestamp")
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0)


def parse_wall_clock(value: Any, path: str, problems: Problems) -> datetime | None:
    """Parse a `local_*` timestamp, keeping its date and clock digits and dropping any offset."""
    if not isinstance(value, str):
        problems.add(path, "must be an ISO 8601 timestamp")
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        problems.add(path, "must be an ISO 8601 timestamp")
        return None
    return moment.replace(tzinfo=None, microsecond=0)


def parse_custom(
    body: Mapping[str, Any], allowed_keys: frozenset[str], problems: Problems
) -> dict[str, str | None]:
    """Collect custom field values from a nested `custom` object and `custom@<key>` members."""
    values: dict[str, Any] = {}
    nested = body.get("custom")
    if nested is not None:
        if isinstance(nested, dict):
            values.update(nested)
        else:
            problems.add("custom", "must be an object")
    for key, value in body.items():
        if key.startswith(CUSTOM_PREFIX):
            values[key[len(CUSTOM_PREFIX) :]] = value
    parsed: dict[str, str | None] = {}
    for key, value in values.items():
        path = f"custom@{key}"
        if key not in allowed_keys:
            problems.add(path, "is not a defined custom field; create it at /api/custom_fields")
        elif value is None or isinstance(value, str):
            parsed[key] = value
        elif isinstance(value, int | float) and not isinstance(value, bool):
            parsed[key] = str(value)
        else:
            problems.add(path, "must be text or null")
    return parsed


def parse_line(
    raw: Any,
    path: str,
    default_type: str | None,
    keep_given_value: bool,
    now: datetime,
    next_id: Callable[[], int],
    problems: Problems,
) -> LineRecord | None:
    """Build a line from a create payload; `keep_given_value` is `recalculate: false`."""
    if not isinstance(raw, dict):
        problems.add(path, "must be an object")
        return None
    before = len(problems.details)
    reject_unknown_keys(raw, LINE_KEYS, problems, f"{path}.")
    line_type = raw.get("type", default_type)
    if line_type not in LINE_TYPES:
        problems.add(f"{path}.type", f"must be one of {', '.join(sorted(LINE_TYPES))}")
        return None
    description = parse_text(raw.get("description", ""), f"{path}.description", problems)
    item_id = None
    if raw.get("item_id") is not None:
        item_id = parse_int(raw["item_id"], f"{path}.item_id", problems)
    if line_type == ITEM_LINE:
        line = _parse_item_line(raw, path, keep_given_value, now, next_id, problems)
    elif line_type == GIFT_CARD_LINE:
        line = _parse_priced_line(raw, path, line_type, now, next_id, problems)
    else:
        line = _parse_amount_line(raw, path, line_type, now, next_id, problems)
    if line is None or len(problems.details) > before:
        return None
    line.item_id = item_id
    line.description = description or ""
    return line


def _parse_item_line(
    raw: Mapping[str, Any],
    path: str,
    keep_given_value: bool,
    now: datetime,
    next_id: Callable[[], int],
    problems: Problems,
) -> LineRecord | None:
    qty = parse_int(raw.get("qty"), f"{path}.qty", problems)
    original = _optional_money(raw, "original_unit_price", path, problems)
    unit = _optional_money(raw, "unit_price", path, problems)
    adjusted = _optional_money(raw, "adjusted_unit_price", path, problems)
    deltas = _parse_deltas(raw.get("price_adjustments"), f"{path}.price_adjustments", problems)
    list_price = original if original is not None else unit
    if list_price is None:
        problems.add(f"{path}.original_unit_price", "or unit_price is required")
        return None
    if qty is None or deltas is None:
        return None

    if deltas:
        paid = list_price + sum(deltas)
    elif adjusted is not None:
        paid = adjusted
    elif unit is not None:
        paid = unit
    else:
        paid = list_price
    if paid != list_price and not deltas:
        deltas = [paid - list_price]
    value = qty * paid
    if keep_given_value and raw.get("value") is not None:
        given_value = parse_money(raw["value"], f"{path}.value", problems)
        if given_value is None:
            return None
        value = given_value

    return LineRecord(
        id=next_id(),
        type=ITEM_LINE,
        qty=qty,
        value_cents=value,
        created_at=now,
        updated_at=now,
        original_unit_cents=list_price,
        unit_cents=paid,
        adjustments=[PriceAdjustment(id=next_id(), delta_cents=delta) for delta in deltas],
    )


def _parse_priced_line(
    raw: Mapping[str, Any],
    path: str,
    line_type: str,
    now: datetime,
    next_id: Callable[[], int],
    problems: Problems,
) -> LineRecord | None:
    qty = parse_int(raw.get("qty", 1), f"{path}.qty", problems)
    unit = _optional_money(raw, "unit_price", path, problems)
    value = _optional_money(raw, "value", path, problems)
    if qty is None:
        return None
    if value is None and unit is None:
        problems.add(f"{path}.value", "or unit_price is required")
        return None
    if value is None and unit is not None:
        value = qty * unit
    assert value is not None
    return LineRecord(
        id=next_id(),
        type=line_type,
        qty=qty,
        value_cents=value,
        created_at=now,
        updated_at=now,
        original_unit_cents=unit,
        unit_cents=unit,
    )


def _parse_amount_line(
    raw: Mapping[str, Any],
    path: str,
    line_type: str,
    now: datetime,
    next_id: Callable[[], int],
    problems: Problems,
) -> LineRecord | None:
    if raw.get("value") is None:
        problems.add(f"{path}.value", "is required")
        return None
    value = parse_money(raw["value"], f"{path}.value", problems)
    if value is None:
        return None
    return LineRecord(
        id=next_id(),
        type=line_type,
        qty=0 if line_type == TAX_LINE else 1,
        value_cents=value,
        created_at=now,
        updated_at=now,
    )


def _optional_money(raw: Mapping[str, Any], key: str, path: str, problems: Problems) -> int | None:
    value = raw.get(key)
    return None if value is None else parse_money(value, f"{path}.{key}", problems)


def _parse_deltas(raw: Any, path: str, problems: Problems) -> list[int] | None:
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.add(path, "must be an array of {delta_price}")
        return None
    deltas: list[int] = []
    for index, entry in enumerate(raw):
        if not isinstance(entry, dict) or "delta_price" not in entry:
            problems.add(f"{path}[{index}]", "must be an object with delta_price")
            return None
        delta = parse_money(entry["delta_price"], f"{path}[{index}].delta_price", problems)
        if delta is None:
            return None
        deltas.append(delta)
    return deltas


def parse_payment(
    raw: Any,
    path: str,
    now: datetime,
    next_id: Callable[[], int],
    problems: Problems,
) -> PaymentRecord | None:
    """Build a payment; a `voided` status records a failed attempt that does not count."""
    if not isinstance(raw, dict):
        problems.add(path, "must be an object")
        return None
    before = len(problems.details)
    reject_unknown_keys(raw, PAYMENT_KEYS, problems, f"{path}.")
    if raw.get("amount") is None:
        problems.add(f"{path}.amount", "is required")
    amount = _optional_money(raw, "amount", path, problems)
    status = raw.get("status", PAYMENT_COMPLETE)
    if status not in (PAYMENT_COMPLETE, PAYMENT_VOIDED):
        problems.add(f"{path}.status", f"must be {PAYMENT_COMPLETE} or {PAYMENT_VOIDED}")
    payment_type = parse_text(
        raw.get("type", "Payments::ExternalPayment"), f"{path}.type", problems
    )
    description = parse_text(raw.get("description", ""), f"{path}.description", problems)
    deposit = parse_bool(raw.get("deposit", False), f"{path}.deposit", problems)

    payment_type_id = None
    if raw.get("payment_type_id") is not None:
        payment_type_id = parse_int(raw["payment_type_id"], f"{path}.payment_type_id", problems)
    completed_at: datetime | None = now
    if raw.get("completed_at") is not None:
        completed_at = parse_time(raw["completed_at"], f"{path}.completed_at", problems)
    if amount is None or len(problems.details) > before:
        return None

    return PaymentRecord(
        id=next_id(),
        amount_cents=amount,
        created_at=now,
        updated_at=now,
        completed_at=completed_at if status == PAYMENT_COMPLETE else None,
        status=str(status),
        type=payment_type or "Payments::ExternalPayment",
        payment_type_id=payment_type_id,
        description=description or "",
        deposit=bool(deposit),
    )


def parse_discount(raw: Any, path: str, problems: Problems) -> DiscountRecord | None:
    """Build a ticket-level discount from `{"description", "amount"}` ($X off the order)."""
    if not isinstance(raw, dict):
        problems.add(path, "must be an object with description and amount")
        return None
    reject_unknown_keys(raw, frozenset({"description", "amount"}), problems, f"{path}.")
    amount = None
    if raw.get("amount") is None:
        problems.add(f"{path}.amount", "is required")
    else:
        amount = parse_money(raw["amount"], f"{path}.amount", problems)
    if amount is not None and amount < 0:
        problems.add(f"{path}.amount", "must not be negative")
        return None
    description = parse_text(raw.get("description", ""), f"{path}.description", problems)
    if amount is None or description is None:
        return None
    return DiscountRecord(description=description, amount_cents=amount)
