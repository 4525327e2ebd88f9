"""Heartland records as the emulator stores them, their totals and their JSON rendering.

Money is integer cents inside the sandbox. It leaves as a JSON number, an integer when
whole and a float otherwise (`20`, `158.03`), as the real API writes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from yotposync.sandbox.policies import PAYMENT_COMPLETE, format_local, format_utc

if TYPE_CHECKING:
    # Only a type here: the addresses module imports the payload parsers, which import this.
    from yotposync.sandbox.addresses import AddressRecord

ITEM_LINE: Final = "ItemLine"
TAX_LINE: Final = "TaxLine"
SHIPPING_LINE: Final = "ShippingLine"
GIFT_CARD_LINE: Final = "GiftCardLine"
LINE_TYPES: Final = frozenset({ITEM_LINE, TAX_LINE, SHIPPING_LINE, GIFT_CARD_LINE})

TICKET_TYPE_SALE: Final = "Ticket"
TICKET_TYPE_RETURN: Final = "Return"

# Custom field groups, as Heartland names them.
GROUP_CUSTOMER: Final = "customer"
GROUP_TICKET: Final = "sales.transaction"

# Fields of a rendered ticket that filters and sorts may use (lines and payments excluded).
TICKET_FIELDS: Final = frozenset(
    {
        "id",
        "public_id",
        "type",
        "status",
        "completed?",
        "voided?",
        "customer_id",
        "customer_name",
        "sales_rep",
        "station_id",
        "source_location_id",
        "parent_transaction_id",
        "original_subtotal",
        "subtotal",
        "total_discounts",
        "total_tax",
        "tax_total",
        "total",
        "total_paid",
        "balance",
        "total_item_qty",
        "coupon_id",
        "created_at",
        "updated_at",
        "completed_at",
        "local_completed_at",
        "custom",
    }
)
TICKET_INCLUDES: Final = frozenset({"lines", "payments", "subtotal", "tax_total"})

CUSTOMER_FIELDS: Final = frozenset(
    {
        "id",
        "public_id",
        "first_name",
        "last_name",
        "email",
        "active",
        "custom",
        "created_at",
        "updated_at",
        "deleted_at",
    }
)
LINE_FIELDS: Final = frozenset(
    {
        "id",
        "type",
        "item_id",
        "description",
        "qty",
        "unit_price",
        "original_unit_price",
        "adjusted_unit_price",
        "value",
        "voided?",
        "created_at",
        "updated_at",
    }
)
PAYMENT_FIELDS: Final = frozenset(
    {
        "id",
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
LOCATION_FIELDS: Final = frozenset({"id", "public_id", "name"})
CUSTOM_FIELD_FIELDS: Final = frozenset(
    {"id", "group_id", "key", "name", "validation_type", "required", "unique"}
)


def money_json(cents: int) -> int | float:
    """Render cents as Heartland does: an integer when whole, a float otherwise."""
    if cents % 100 == 0:
        return cents // 100
    return float(Decimal(cents) / 100)


def _optional_money(cents: int | None) -> int | float | None:
    return None if cents is None else money_json(cents)


def _optional_utc(moment: datetime | None) -> str | None:
    return None if moment is None else format_utc(moment)


@dataclass
class StationRecord:
    id: int
    location_id: int
    name: str
    active: bool = True


@dataclass
class LocationRecord:
    """A store location. `time_zone` (IANA name) sets the wall clock of `local_*` fields."""

    id: int
    public_id: str
    name: str
    time_zone: str
    stations: list[StationRecord] = field(default_factory=list)


@dataclass
class CustomFieldRecord:
    """A custom field definition; records store values under its `key`."""

    id: int
    group_id: str
    key: str
    name: str
    validation_type: str = "text"
    required: bool = False
    unique: bool = False


@dataclass
class CustomerRecord:
    id: int
    public_id: str
    first_name: str
    last_name: str
    email: str | None
    created_at: datetime
    updated_at: datetime
    active: bool = True
    custom: dict[str, str | None] = field(default_factory=dict)
    deleted_at: datetime | None = None
    addresses: list[AddressRecord] = field(default_factory=list)

    @property
    def display_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


@dataclass
class PriceAdjustment:
    """A line markdown: `delta_cents` is negative for a price cut."""

    id: int
    delta_cents: int


@dataclass
class LineRecord:
    """A ticket line. `unit_cents` is the price paid per unit, after markdowns.

    `value_cents` is the line amount: qty x unit price, computed at creation unless the
    ticket was created with `recalculate: false`.
    """

    id: int
    type: str
    qty: int
    value_cents: int
    created_at: datetime
    updated_at: datetime
    item_id: int | None = None
    description: str = ""
    original_unit_cents: int | None = None
    unit_cents: int | None = None
    adjustments: list[PriceAdjustment] = field(default_factory=list)
    voided: bool = False

    @property
    def marked_down(self) -> bool:
        return bool(self.adjustments)


@dataclass
class PaymentRecord:
    id: int
    amount_cents: int
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    status: str = PAYMENT_COMPLETE
    type: str = "Payments::ExternalPayment"
    payment_type_id: int | None = None
    description: str = ""
    deposit: bool = False


@dataclass
class DiscountRecord:
    """A ticket-level discount ("$X off the entire order"), positive cents."""

    description: str
    amount_cents: int


@dataclass
class TicketRecord:
    id: int
    public_id: str
    type: str
    status: str
    station_id: int
    source_location_id: int
    created_at: datetime
    updated_at: datetime
    completed: bool = False
    voided: bool = False
    customer_id: int | None = None
    sales_rep: str = ""
    parent_id: int | None = None
    completed_at: datetime | None = None
    local_completed_at: datetime | None = None  # store wall clock, naive
    custom: dict[str, str | None] = field(default_factory=dict)
    coupon_id: int | None = None
    lines: list[LineRecord] = field(default_factory=list)
    payments: list[PaymentRecord] = field(default_factory=list)
    discounts: list[DiscountRecord] = field(default_factory=list)
    recalculate: bool = True


@dataclass(frozen=True)
class TicketTotals:
    """Ticket money in cents, computed from its lines, discounts and payments."""

    original_subtotal: int
    item_value: int
    ticket_discounts: int
    subtotal: int
    total_discounts: int
    total_tax: int
    total: int
    total_paid: int
    balance: int
    total_item_qty: int


def ticket_totals(ticket: TicketRecord) -> TicketTotals:
    """Compute a ticket's totals from its lines that are not voided.

    - subtotal = item line values - ticket-level discounts
    - total_discounts = original subtotal - subtotal, which counts line markdowns and
      ticket-level discounts together
    - total = subtotal + tax + shipping + gift card lines
    - balance = total - complete payments
    """
    original_subtotal = 0
    item_value = 0
    item_qty = 0
    tax = 0
    other = 0
    for line in ticket.lines:
        if line.voided:
            continue
        if line.type == ITEM_LINE:
            list_price = line.original_unit_cents
            if list_price is None:
                list_price = line.unit_cents
            original_subtotal += line.value_cents if list_price is None else line.qty * list_price
            item_value += line.value_cents
            item_qty += line.qty
        elif line.type == TAX_LINE:
            tax += line.value_cents
        else:
            other += line.value_cents
    ticket_discounts = sum(discount.amount_cents for discount in ticket.discounts)
    subtotal = item_value - ticket_discounts
    total = subtotal + tax + other
    paid = sum(p.amount_cents for p in ticket.payments if p.status == PAYMENT_COMPLETE)
    return TicketTotals(
        original_subtotal=original_subtotal,
        item_value=item_value,
        ticket_discounts=ticket_discounts,
        subtotal=subtotal,
        total_discounts=original_subtotal - subtotal,
        total_tax=tax,
        total=total,
        total_paid=paid,
        balance=total - paid,
        total_item_qty=item_qty,
    )


def render_custom(values: dict[str, str | None], keys: list[str]) -> dict[str, str | None]:
    """Render a `custom` object: every defined key, null when unset."""
    rendered: dict[str, str | None] = dict.fromkeys(keys)
    rendered.update(values)
    return rendered


def render_line(line: LineRecord) -> dict[str, Any]:
    adjusted = line.unit_cents if line.marked_down else None
    return {
        "id": line.id,
        "type": line.type,
        "item_id": line.item_id,
        "description": line.description,
        "qty": line.qty,
        "unit_price": _optional_money(line.unit_cents),
        "original_unit_price": _optional_money(line.original_unit_cents),
        "adjusted_unit_price": _optional_money(adjusted),
        "price_adjustments": [
            {"id": adjustment.id, "delta_price": money_json(adjustment.delta_cents)}
            for adjustment in line.adjustments
        ],
        "value": money_json(line.value_cents),
        "voided?": line.voided,
        "created_at": format_utc(line.created_at),
        "updated_at": format_utc(line.updated_at),
    }


def render_payment(payment: PaymentRecord) -> dict[str, Any]:
    return {
        "id": payment.id,
        "type": payment.type,
        "status": payment.status,
        "amount": money_json(payment.amount_cents),
        "payment_type_id": payment.payment_type_id,
        "description": payment.description,
        "deposit": payment.deposit,
        "completed_at": _optional_utc(payment.completed_at),
        "created_at": format_utc(payment.created_at),
        "updated_at": format_utc(payment.updated_at),
    }


def render_ticket(
    ticket: TicketRecord, customer_name: str | None, custom_keys: list[str]
) -> dict[str, Any]:
    """Render every field of a ticket, including those a client gets only with `_include[]`."""
    totals = ticket_totals(ticket)
    local = ticket.local_completed_at
    return {
        "id": ticket.id,
        "public_id": ticket.public_id,
        "type": ticket.type,
        "status": ticket.status,
        "completed?": ticket.completed,
        "voided?": ticket.voided,
        "customer_id": ticket.customer_id,
        "customer_name": customer_name,
        "sales_rep": ticket.sales_rep,
        "station_id": ticket.station_id,
        "source_location_id": ticket.source_location_id,
        "parent_transaction_id": ticket.parent_id,
        "original_subtotal": money_json(totals.original_subtotal),
        "subtotal": money_json(totals.subtotal),
        "total_discounts": money_json(totals.total_discounts),
        "total_tax": money_json(totals.total_tax),
        "tax_total": money_json(totals.total_tax),
        "total": money_json(totals.total),
        "total_paid": money_json(totals.total_paid),
        "balance": money_json(totals.balance),
        "total_item_qty": totals.total_item_qty,
        "coupon_id": ticket.coupon_id,
        "created_at": format_utc(ticket.created_at),
        "updated_at": format_utc(ticket.updated_at),
        "completed_at": _optional_utc(ticket.completed_at),
        "local_completed_at": None if local is None else format_local(local),
        "custom": render_custom(ticket.custom, custom_keys),
        "lines": [render_line(line) for line in ticket.lines],
        "payments": [render_payment(payment) for payment in ticket.payments],
    }


def render_customer(customer: CustomerRecord, custom_keys: list[str]) -> dict[str, Any]:
    return {
        "id": customer.id,
        "public_id": customer.public_id,
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "email": customer.email,
        "active": customer.active,
        "custom": render_custom(customer.custom, custom_keys),
        "created_at": format_utc(customer.created_at),
        "updated_at": format_utc(customer.updated_at),
        "deleted_at": _optional_utc(customer.deleted_at),
    }


def render_station(station: StationRecord) -> dict[str, Any]:
    return {
        "id": station.id,
        "location_id": station.location_id,
        "name": station.name,
        "active": station.active,
    }


def render_location(location: LocationRecord) -> dict[str, Any]:
    """Render a location with its stations; the listing drops `stations` unless included."""
    return {
        "id": location.id,
        "public_id": location.public_id,
        "name": location.name,
        "stations": [render_station(station) for station in location.stations],
    }


def render_custom_field(definition: CustomFieldRecord) -> dict[str, Any]:
    return {
        "id": definition.id,
        "group_id": definition.group_id,
        "key": definition.key,
        "name": definition.name,
        "validation_type": definition.validation_type,
        "required": definition.required,
        "unique": definition.unique,
    }
