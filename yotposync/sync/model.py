"""Plain data for Heartland records after parsing, and for the decisions made on them.

Everything here is immutable (mypy rejects assignments, see `yotposync.immutable`) and free
of I/O. Money is integer cents, times are timezone-aware UTC datetimes.
"""

from __future__ import annotations

import enum
from dataclasses import field
from datetime import datetime

from yotposync.immutable import immutable


@immutable
class Line:
    """One ticket line. `value_cents` is the line amount after line markdowns (qty x price)."""

    id: int
    type: str  # ItemLine, TaxLine, ShippingLine, GiftCardLine, or anything else Heartland sends
    qty: int
    value_cents: int
    voided: bool = False
    item_id: int | None = None
    description: str = ""
    unit_price_cents: int | None = None


@immutable
class CouponReference:
    """The coupon a ticket's `coupon_id` names: by id, by code, or neither."""

    coupon_id: int | None = None
    code: str | None = None
    unreadable: str | None = None  # the value, shortened, when it gives neither


@immutable
class Ticket:
    """One version of a Heartland sales ticket (sale, return or exchange)."""

    id: int
    public_id: str
    type: str  # "Ticket" or "Return"
    status: str  # lower-cased
    completed: bool
    voided: bool
    customer_id: int | None
    station_id: int | None
    location_id: int | None  # source_location_id: the location credited with the sale
    sales_rep: str
    parent_id: int | None  # parent_transaction_id
    total_cents: int
    subtotal_cents: int | None  # present when requested with _include[]=subtotal
    tax_cents: int
    balance_cents: int
    completed_at: datetime | None
    updated_at: datetime
    local_completed_date: str | None  # store-local business date, YYYY-MM-DD
    custom: dict[str, str | None] = field(default_factory=dict)
    lines: tuple[Line, ...] = ()
    coupon: CouponReference | None = None  # from `coupon_id`: None when no coupon was used

    @property
    def is_voided(self) -> bool:
        """True when `voided?` is set or the status is "voided"."""
        return self.voided or self.status == "voided"

    @property
    def is_completed(self) -> bool:
        """True when `completed?` is set or the status is "complete".

        A ticket voided after completion may keep both, so check `is_voided` first.
        """
        return self.completed or self.status == "complete"


@immutable
class Customer:
    """A Heartland customer. `email` is trimmed and lower-cased, or None when unusable."""

    id: int
    public_id: str
    email: str | None
    first_name: str
    last_name: str
    custom: dict[str, str | None] = field(default_factory=dict)
    deleted: bool = False
    email_problem: str | None = None  # why a present e-mail was rejected, for the ledger


class Kind(enum.StrEnum):
    """What a ticket version is, and so what it should do to points."""

    SALE = "sale"  # earns: one Yotpo order
    RETURN = "return"  # takes back: a refund against the parent's order
    EXCHANGE = "exchange"  # both: a refund for the returned part, an order for the sold part
    VOID = "void"  # voided (after completion or before): earns nothing, undoes what was sent
    NOT_COMPLETED = "not_completed"
    NO_CUSTOMER = "no_customer"
    NO_EMAIL = "no_email"
    EXCLUDED = "excluded"  # an exclusion rule matched; `rule` names it
    BEFORE_GO_LIVE = "before_go_live"
    BLIND_RETURN = "blind_return"  # a return with no parent sale: nothing to take back
    PARENT_NOT_EARNED = "parent_not_earned"  # the parent sale earns nothing now
    INVALID = "invalid"  # the record could not be parsed; `reason` says why


# Kinds whose desired effect on points is zero.
NON_EARNING = frozenset(Kind) - {Kind.SALE, Kind.RETURN, Kind.EXCHANGE}


@immutable
class Decision:
    """What one ticket version should do to points, before looking at what was already sent.

    `earn_cents` is the points-eligible amount of the sold part (0 when nothing earns).
    `return_cents` is what the returned part takes back, positive and at most what the parent
    earned (0 when nothing is returned); the planner also caps it at what the parent's orders
    still hold after earlier returns.
    """

    ticket_id: int
    kind: Kind
    reason: str  # a short sentence a manager can read, e.g. "no customer on the ticket"
    rule: str | None = None  # the exclusion rule that matched, e.g. "location_id=201"
    customer_id: int | None = None
    email: str | None = None
    earn_cents: int = 0
    return_cents: int = 0
    parent_id: int | None = None


@immutable
class ParentInfo:
    """What the ledger knows about a return's parent sale, for deciding the return."""

    ticket_id: int
    kind: Kind
    rule: str | None
    customer_id: int | None
    email: str | None
    earn_cents: int  # eligible amount the parent earned (0 if it earned nothing)
    item_cents: int  # the parent's sold item amount before ticket-level discounts
    item_net_cents: int  # the same after ticket-level discounts
    # The item amount, before discounts, that the parent's returns completed before this one
    # returned (0 when there are none, or when one was decided before the ledger kept it).
    returned_before_cents: int = 0
