"""Customer addresses of the Heartland emulator: records, validation and rendering.

Heartland keeps phone numbers on a customer's addresses, as free text (`512-555-0147`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from yotposync.sandbox.payloads import Problems, parse_text, reject_unknown_keys
from yotposync.sandbox.policies import format_utc

# Text fields of an address, in the order they are rendered.
ADDRESS_TEXT_KEYS: Final = (
    "first_name",
    "last_name",
    "line_1",
    "line_2",
    "city",
    "state",
    "postal_code",
    "country",
    "phone",
)
ADDRESS_FIELDS: Final = frozenset({"id", "customer_id", "created_at", "updated_at"}) | frozenset(
    ADDRESS_TEXT_KEYS
)


@dataclass
class AddressRecord:
    """One address of a customer. Every text field may be null."""

    id: int
    customer_id: int
    created_at: datetime
    updated_at: datetime
    first_name: str | None = None
    last_name: str | None = None
    line_1: str | None = None
    line_2: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: str | None = None
    phone: str | None = None


def parse_address_values(body: dict[str, Any], problems: Problems) -> dict[str, str | None]:
    """Validate an address write: only the text fields, each text or null."""
    reject_unknown_keys(body, frozenset(ADDRESS_TEXT_KEYS), problems)
    values: dict[str, str | None] = {}
    for key in ADDRESS_TEXT_KEYS:
        if key in body:
            values[key] = None if body[key] is None else parse_text(body[key], key, problems)
    return values


def new_address(
    customer_id: int,
    values: dict[str, str | None],
    now: datetime,
    next_id: Callable[[], int],
) -> AddressRecord:
    address = AddressRecord(id=next_id(), customer_id=customer_id, created_at=now, updated_at=now)
    for key, value in values.items():
        setattr(address, key, value)
    return address


def render_address(address: AddressRecord) -> dict[str, Any]:
    rendered: dict[str, Any] = {"id": address.id, "customer_id": address.customer_id}
    for key in ADDRESS_TEXT_KEYS:
        rendered[key] = getattr(address, key)
    rendered["created_at"] = format_utc(address.created_at)
    rendered["updated_at"] = format_utc(address.updated_at)
    return rendered
