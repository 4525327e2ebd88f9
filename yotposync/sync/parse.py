"""Conversion of raw Heartland JSON tickets and customers to the model dataclasses.

A value that cannot be used raises InvalidRecordError naming the record, the field and what
was expected. Values that are odd but usable (a null `adjusted_unit_price`, a tax line with
`qty: 0`, an unknown line type, a placeholder name) are accepted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from yotposync.errors import InvalidRecordError
from yotposync.logs import redact_text
from yotposync.money import optional_cents, to_cents, to_decimal
from yotposync.sync.model import CouponReference, Customer, Line, Ticket
from yotposync.timeutil import local_date, optional_timestamp, parse_timestamp

_INTEGER_TEXT = re.compile(r"[+-]?\d+")

# Quantities beyond this many units are treated as corrupt data.
MAX_QTY = 1_000_000

# Heartland's placeholder for a missing customer name.
_PLACEHOLDER_NAME = "?"


def _missing(record: str, field: str) -> InvalidRecordError:
    return InvalidRecordError(record, field, None, "the field is required but missing or null")


def _unnamed_record(kind: str, raw: Mapping[str, Any]) -> str:
    """Label a record whose id is not usable yet, using its public_id when it has one."""
    public_id = raw.get("public_id")
    if isinstance(public_id, str | int) and not isinstance(public_id, bool):
        return f"{kind} with public_id {public_id}"
    return f"{kind} without an id"


def _require(raw: Mapping[str, Any], key: str, record: str) -> object:
    value = raw.get(key)
    if value is None:
        raise _missing(record, key)
    return value


def parse_id(value: object, *, record: str, field: str) -> int:
    """Convert an integer, or a string holding only an integer, to an int id.

    Raises InvalidRecordError for anything else, including floats and booleans.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _INTEGER_TEXT.fullmatch(value.strip()):
        return int(value.strip())
    raise InvalidRecordError(record, field, value, "expected an integer id such as 5001")


def _optional_id(value: object, *, record: str, field: str) -> int | None:
    if value is None:
        return None
    return parse_id(value, record=record, field=field)


def _flag(raw: Mapping[str, Any], key: str, record: str) -> bool:
    """Read a boolean key such as `completed?`, where null or absent means false."""
    value = raw.get(key)
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    raise InvalidRecordError(record, key, value, "expected true, false or null")


def _text(raw: Mapping[str, Any], key: str, record: str) -> str:
    """Read an optional text field, trimmed. Null or absent becomes an empty string."""
    value = raw.get(key)
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    raise InvalidRecordError(record, key, value, "expected text or null")


def _public_id(raw: Mapping[str, Any], record: str) -> str:
    """Read `public_id` as text, converting a number to its digits. Absent becomes ""."""
    value = raw.get("public_id")
    if value is None:
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        return value.strip()
    raise InvalidRecordError(record, "public_id", value, "expected text such as 5001")


def _custom_text(value: object) -> str | None:
    """Convert one custom-field value to text: numbers to their digits, null to None."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    # Objects and arrays are not documented for custom fields, but they keep their content.
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _may_have_key_with(raw: Mapping[Any, Any], prefix: str) -> bool:
    """Return False when no key of `raw` contains `prefix`, looking at all keys in one search.

    Most records have no custom fields at the top level, and one search in the joined keys
    costs less than testing each key. Keys that are not text are left to the caller's test.
    """
    try:
        return prefix in "\n".join(raw)
    except TypeError:
        return True


def _custom_fields(raw: Mapping[str, Any], record: str) -> dict[str, str | None]:
    """Read the `custom` object, plus any top-level `custom@<key>` members.

    Heartland's own import tool writes custom fields as top-level `custom@<key>` members. A
    key present in both places keeps the value from `custom`.
    """
    nested = raw.get("custom")
    if nested is not None and not isinstance(nested, Mapping):
        raise InvalidRecordError(record, "custom", nested, "expected an object of custom fields")

    fields: dict[str, str | None] = {}
    if _may_have_key_with(raw, "custom@"):
        for key, value in raw.items():
            if isinstance(key, str) and key.startswith("custom@"):
                fields[key.removeprefix("custom@")] = _custom_text(value)
    for key, value in (nested or {}).items():
        fields[str(key)] = _custom_text(value)
    return fields


def _parse_qty(value: object, *, record: str, required: bool) -> int:
    """Convert a line quantity to int. Null or absent is 0 unless the line needs one."""
    if value is None:
        if required:
            raise _missing(record, "qty")
        return 0
    if isinstance(value, int) and not isinstance(value, bool) and -MAX_QTY <= value <= MAX_QTY:
        return value  # the usual case, without a Decimal
    hint = "expected a whole number of units such as 2 or -1"
    qty = to_decimal(value, record=record, field="qty", hint=hint)
    if qty.copy_abs() > MAX_QTY:
        raise InvalidRecordError(
            record, "qty", value, f"quantities above {MAX_QTY} are not accepted"
        )
    if qty != qty.to_integral_value():
        raise InvalidRecordError(record, "qty", value, "fractional quantities are not supported")
    return int(qty)


def parse_line(raw_line: object, *, ticket_record: str) -> Line:
    """Convert one raw ticket line to a Line.

    `value_cents` comes from `value`. When `value` is null or absent it is qty times the
    unit price, where the unit price is `adjusted_unit_price` when set, else `unit_price`.
    """
    if not isinstance(raw_line, Mapping):
        raise InvalidRecordError(
            ticket_record, "lines", raw_line, "expected each line to be an object"
        )

    line_id = parse_id(
        _require(raw_line, "id", f"{ticket_record} line"),
        record=f"{ticket_record} line",
        field="id",
    )
    record = f"{ticket_record} line {line_id}"

    line_type = _require(raw_line, "type", record)
    if not isinstance(line_type, str):
        raise InvalidRecordError(record, "type", line_type, "expected a line type such as ItemLine")

    qty = _parse_qty(raw_line.get("qty"), record=record, required=line_type == "ItemLine")

    unit_price_cents = optional_cents(
        raw_line.get("adjusted_unit_price"), record=record, field="adjusted_unit_price"
    )
    if unit_price_cents is None:
        unit_price_cents = optional_cents(
            raw_line.get("unit_price"), record=record, field="unit_price"
        )

    raw_value = raw_line.get("value")
    if raw_value is not None:
        value_cents = to_cents(raw_value, record=record, field="value")
    elif unit_price_cents is not None:
        value_cents = qty * unit_price_cents
    else:
        raise InvalidRecordError(
            record, "value", None, "the line has neither a value nor a unit price to compute one"
        )

    status = raw_line.get("status")
    voided_by_status = isinstance(status, str) and status.strip().lower() == "voided"

    description = _text(raw_line, "description", record) or _text(
        raw_line, "item_description", record
    )

    return Line(
        id=line_id,
        type=line_type,
        qty=qty,
        value_cents=value_cents,
        voided=_flag(raw_line, "voided?", record) or voided_by_status,
        item_id=_optional_id(raw_line.get("item_id"), record=record, field="item_id"),
        description=description,
        unit_price_cents=unit_price_cents,
    )


def _line_source(
    raw: Mapping[str, Any], lines: Sequence[Mapping[str, Any]] | None, record: str
) -> Sequence[object]:
    source: object = lines if lines is not None else raw.get("lines")
    if source is None:
        raise InvalidRecordError(
            record,
            "lines",
            None,
            "the ticket carries no lines, so fetch them from its /lines endpoint and parse again",
        )
    if isinstance(source, str | bytes) or not isinstance(source, Sequence):
        raise InvalidRecordError(record, "lines", source, "expected an array of line objects")
    return source


def parse_ticket(
    raw: Mapping[str, Any], lines: Sequence[Mapping[str, Any]] | None = None
) -> Ticket:
    """Convert one raw Heartland ticket, and its lines, to a Ticket.

    Lines come from `lines` when given, else from `raw["lines"]`. When neither is there the
    ticket raises InvalidRecordError, so the caller fetches the lines and calls again.
    Raises InvalidRecordError for a missing `id`, `type` or `updated_at` and for any value
    that cannot be converted.
    """
    ticket_id = parse_id(raw.get("id"), record=_unnamed_record("ticket", raw), field="id")
    record = f"ticket {ticket_id}"

    ticket_type = _require(raw, "type", record)
    if not isinstance(ticket_type, str):
        raise InvalidRecordError(record, "type", ticket_type, 'expected "Ticket" or "Return"')

    status = raw.get("status")
    if status is not None and not isinstance(status, str):
        raise InvalidRecordError(record, "status", status, 'expected text such as "complete"')

    total_cents = optional_cents(raw.get("total"), record=record, field="total")
    tax_field = "total_tax" if raw.get("total_tax") is not None else "tax_total"
    tax_cents = optional_cents(raw.get(tax_field), record=record, field=tax_field)
    balance_cents = optional_cents(raw.get("balance"), record=record, field="balance")
    if balance_cents is None:
        # NOTE: a ticket without `balance` is taken as unpaid (balance equal to its total),
        # so it never counts as paid in full. Every documented ticket shape has `balance`.
        balance_cents = total_cents or 0

    parsed_lines = tuple(
        parse_line(raw_line, ticket_record=record) for raw_line in _line_source(raw, lines, record)
    )
    parent_id = _optional_id(
        raw.get("parent_transaction_id"), record=record, field="parent_transaction_id"
    )
    if parent_id == ticket_id:
        raise InvalidRecordError(
            record,
            "parent_transaction_id",
            parent_id,
            "a ticket cannot be its own parent sale: correct the return's original sale in "
            "Heartland",
        )

    return Ticket(
        id=ticket_id,
        public_id=_public_id(raw, record),
        type=ticket_type,
        status=(status or "").strip().lower(),
        completed=_flag(raw, "completed?", record),
        voided=_flag(raw, "voided?", record),
        customer_id=_optional_id(raw.get("customer_id"), record=record, field="customer_id"),
        station_id=_optional_id(raw.get("station_id"), record=record, field="station_id"),
        location_id=_optional_id(
            raw.get("source_location_id"), record=record, field="source_location_id"
        ),
        sales_rep=_text(raw, "sales_rep", record),
        parent_id=parent_id,
        total_cents=total_cents or 0,
        subtotal_cents=optional_cents(raw.get("subtotal"), record=record, field="subtotal"),
        tax_cents=tax_cents or 0,
        balance_cents=balance_cents,
        completed_at=optional_timestamp(
            raw.get("completed_at"), record=record, field="completed_at"
        ),
        updated_at=parse_timestamp(
            _require(raw, "updated_at", record), record=record, field="updated_at"
        ),
        local_completed_date=local_date(raw.get("local_completed_at")),
        custom=_custom_fields(raw, record),
        lines=parsed_lines,
        coupon=_coupon_reference(raw.get("coupon_id")),
    )


def _coupon_reference(value: object) -> CouponReference | None:
    """Read a ticket's `coupon_id` into the id or the code of the coupon it names.

    NOTE: no source shows what `coupon_id` holds when a coupon is used. An id is assumed,
    and a code or an object with `id` and `code` are accepted too. The coupon does not change
    what the sale earns, because its discount is already in the ticket's amounts. So any
    other value keeps the ticket usable. It is kept as `unreadable` for the loyalty step,
    which logs it, instead of making the sale invalid.
    """
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return CouponReference(coupon_id=value)
    if isinstance(value, str):
        text = value.strip()
        if _INTEGER_TEXT.fullmatch(text):
            return CouponReference(coupon_id=int(text))
        return CouponReference(code=text) if text else None
    if isinstance(value, Mapping):
        raw_id, raw_code = value.get("id"), value.get("code")
        coupon_id = raw_id if isinstance(raw_id, int) and not isinstance(raw_id, bool) else None
        if isinstance(raw_id, str) and _INTEGER_TEXT.fullmatch(raw_id.strip()):
            coupon_id = int(raw_id.strip())
        code = raw_code.strip() if isinstance(raw_code, str) and raw_code.strip() else None
        if coupon_id is not None or code is not None:
            return CouponReference(coupon_id=coupon_id, code=code)
    return CouponReference(unreadable=redact_text(repr(value), "[redacted]")[:120])


def check_email(value: object) -> tuple[str | None, str | None]:
    """Normalise an e-mail address and return `(email, problem)`.

    The address is trimmed and lower-cased. Null or blank returns `(None, None)`. An
    unusable address returns `(None, problem)`, where the problem names at most the domain,
    never the part before the `@`.
    """
    if value is None:
        return None, None
    if not isinstance(value, str):
        return None, "the e-mail address is not text"

    email = value.strip().lower()
    if not email:
        return None, None

    at_count = email.count("@")
    if at_count == 0:
        return None, "the e-mail address has no @"
    if at_count > 1:
        return None, "the e-mail address has more than one @"
    local_part, domain = email.split("@")
    if any(char.isspace() for char in email):
        return None, "the e-mail address contains a space"
    if not local_part:
        return None, "the e-mail address has nothing before the @"
    if not domain:
        return None, "the e-mail address has no domain after the @"
    if "." not in domain:
        return None, f"the e-mail domain {_quoted(domain)} has no dot"
    if any(not label for label in domain.split(".")):
        return None, f"the e-mail domain {_quoted(domain)} has an empty label"
    return email, None


def _quoted(value: str) -> str:
    """Quote a value from a record for a message, masking any registered secret in it."""
    return redact_text(repr(value), "[redacted]")


def _name(raw: Mapping[str, Any], key: str) -> str:
    value = raw.get(key)
    if value is None:
        return ""
    text = str(value).strip()
    return "" if text == _PLACEHOLDER_NAME else text


def parse_customer(raw: Mapping[str, Any]) -> Customer:
    """Convert one raw Heartland customer to a Customer.

    An unusable e-mail address does not raise: it becomes `email=None` with the reason in
    `email_problem`. Raises InvalidRecordError for a missing or non-integer `id`.
    """
    customer_id = parse_id(raw.get("id"), record=_unnamed_record("customer", raw), field="id")
    record = f"customer {customer_id}"

    email, email_problem = check_email(raw.get("email"))

    return Customer(
        id=customer_id,
        public_id=_public_id(raw, record),
        email=email,
        first_name=_name(raw, "first_name"),
        last_name=_name(raw, "last_name"),
        custom=_custom_fields(raw, record),
        deleted=raw.get("deleted_at") is not None,
        email_problem=email_problem,
    )
