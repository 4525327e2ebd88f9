"""A sandbox store: Heartland records to serve, and the ground truth of what should earn.

Each ticket has a `TicketPlan` holding the amounts it was built from. The ground truth
(`Store.expected_effects`, `Store.expected_balances`) is computed from those plans, never by
reading the rendered records back, so it checks the daemon against an independent account.

Business rules the ground truth follows (the daemon is configured the same way in tests):

- A sale earns when it is completed, not voided, completed at or after go-live, not a web
  order (custom field `web_order_no` set), and its customer has an e-mail and is neither the
  walk-in customer (`public_id` "CASH") nor staff (custom field `staff` = "yes"). The
  eligible amount is its sold item value after markdowns minus ticket-level discounts.
- A completed, not voided return (or the returned part of an exchange) whose parent earned
  takes back the parent's eligible share of the items returned so far, less that of the items
  its earlier returns returned, each share rounded down: floor(R x eligible / items) with R
  the parent's item value returned through this return, in completion order. The total
  taken back from one parent never exceeds what that parent earned. Blind returns and
  returns of parents that earned nothing take back nothing.
- The sold part of an exchange earns like a sale, under the same checks for its own customer.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from yotposync.sandbox.policies import format_utc, normalize_email, order_points, reversed_points
from yotposync.sandbox.records import (
    GROUP_CUSTOMER,
    GROUP_TICKET,
    CustomerRecord,
    CustomFieldRecord,
    LocationRecord,
    StationRecord,
    TicketRecord,
    render_custom_field,
    render_customer,
    render_location,
    render_ticket,
)

WALK_IN_PUBLIC_ID = "CASH"
STAFF_FIELD = "staff"
STAFF_VALUE = "yes"
WEB_ORDER_FIELD = "web_order_no"
LOYALTY_OPT_IN_FIELD = "loyalty_opt_in"


def standard_locations() -> list[LocationRecord]:
    """Return the three sandbox locations, each with two stations."""
    specs = [
        (201, "DT", "Downtown", "America/Chicago"),
        (202, "LS", "Lakeside", "America/New_York"),
        (203, "MV", "Mountain View", "America/Denver"),
    ]
    locations = []
    for index, (location_id, public_id, name, zone) in enumerate(specs):
        first_station = 301 + 2 * index
        stations = [
            StationRecord(id=first_station + offset, location_id=location_id, name=f"Register {n}")
            for offset, n in ((0, 1), (1, 2))
        ]
        locations.append(LocationRecord(location_id, public_id, name, zone, stations))
    return locations


def standard_custom_fields() -> list[CustomFieldRecord]:
    """Return the custom field definitions every sandbox account starts with."""
    return [
        CustomFieldRecord(1, GROUP_CUSTOMER, STAFF_FIELD, "Staff"),
        CustomFieldRecord(2, GROUP_CUSTOMER, LOYALTY_OPT_IN_FIELD, "Loyalty Opt-In"),
        CustomFieldRecord(3, GROUP_CUSTOMER, "loyalty_points", "Loyalty Points"),
        CustomFieldRecord(4, GROUP_CUSTOMER, "loyalty_tier", "Loyalty Tier"),
        CustomFieldRecord(5, GROUP_CUSTOMER, "loyalty_offers", "Loyalty Offers"),
        CustomFieldRecord(6, GROUP_TICKET, WEB_ORDER_FIELD, "Web Order No"),
    ]


class PlanKind(enum.StrEnum):
    """Intended kind of a generated ticket."""

    SALE = "sale"
    RETURN = "return"  # linked to a parent sale
    EXCHANGE = "exchange"  # returned lines of a parent plus newly sold lines
    BLIND_RETURN = "blind_return"  # no parent


@dataclass(frozen=True)
class SoldLine:
    """An item line as intended. `qty` is positive here, also for returned lines."""

    item_id: int
    description: str
    qty: int
    list_cents: int  # original unit price
    paid_cents: int  # unit price after the line markdown

    @property
    def value_cents(self) -> int:
        return self.qty * self.paid_cents


@dataclass(frozen=True)
class TicketPlan:
    """The intended content of one ticket, from which its record and the ground truth derive."""

    id: int
    public_id: str
    kind: PlanKind
    customer_id: int | None
    station_id: int
    location_id: int
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None  # None while the ticket is open
    sold: tuple[SoldLine, ...] = ()
    returned: tuple[SoldLine, ...] = ()
    discount_cents: int = 0  # ticket-level "$X off the entire order"
    shipping_cents: int = 0
    gift_card_cents: int = 0
    voided: bool = False
    web_order_no: str | None = None
    parent_id: int | None = None
    late: bool = False  # held back until the sandbox releases late tickets
    failed_payment: bool = False
    voided_line: SoldLine | None = None  # scanned, then voided: not counted anywhere
    sales_rep: str = ""

    @property
    def sold_cents(self) -> int:
        return sum(line.value_cents for line in self.sold)

    @property
    def returned_cents(self) -> int:
        return sum(line.value_cents for line in self.returned)

    @property
    def eligible_cents(self) -> int:
        return self.sold_cents - self.discount_cents


class ExpectedPush(NamedTuple):
    """One push the daemon should have made to Yotpo, as a final net effect."""

    kind: str  # "order" or "refund"
    email: str  # normalized: trimmed and lower-cased
    ticket_id: int
    parent_ticket_id: int | None  # the sale a refund takes back from; None for orders
    amount_cents: int


@dataclass(frozen=True)
class _Earned:
    email: str
    eligible_cents: int
    item_cents: int


@dataclass
class Store:
    """Generated Heartland data plus the plans it was built from."""

    anchor: datetime
    go_live: datetime
    locations: list[LocationRecord]
    custom_fields: list[CustomFieldRecord]
    customers: list[CustomerRecord]
    tickets: list[TicketRecord]
    late_tickets: list[TicketRecord]
    plans: list[TicketPlan] = field(default_factory=list)

    def customer(self, customer_id: int) -> CustomerRecord:
        for customer in self.customers:
            if customer.id == customer_id:
                return customer
        raise KeyError(f"customer {customer_id} is not in this store")

    def expected_effects(self, go_live: datetime, include_late: bool) -> list[ExpectedPush]:
        """Return the pushes the daemon should make, in completion order.

        `include_late` counts the held-back late tickets, as after `/_sandbox/release-late`.
        """
        earned: dict[int, _Earned] = {}
        taken_back: dict[int, int] = {}
        items_returned: dict[int, int] = {}  # parent id -> item value its returns returned
        pushes: list[ExpectedPush] = []
        counted = [
            plan
            for plan in self.plans
            if plan.completed_at is not None and not plan.voided and (include_late or not plan.late)
        ]
        counted.sort(key=lambda plan: (plan.completed_at, plan.id))
        for plan in counted:
            parent_id = plan.parent_id
            parent = None if parent_id is None else earned.get(parent_id)
            if plan.returned and parent_id is not None and parent is not None:
                before = items_returned.get(parent_id, 0)
                through = before + plan.returned_cents
                items_returned[parent_id] = through
                share = parent.eligible_cents, parent.item_cents
                amount = through * share[0] // share[1] - before * share[0] // share[1]
                already = taken_back.get(parent_id, 0)
                amount = min(amount, parent.eligible_cents - already)
                if amount > 0:
                    taken_back[parent_id] = already + amount
                    pushes.append(ExpectedPush("refund", parent.email, plan.id, parent_id, amount))

            email = self._earning_email(plan, go_live)
            if email is not None and plan.sold and plan.eligible_cents > 0:
                earned[plan.id] = _Earned(email, plan.eligible_cents, plan.sold_cents)
                pushes.append(ExpectedPush("order", email, plan.id, None, plan.eligible_cents))
        return pushes

    def expected_balances(
        self, points_per_dollar: Decimal, go_live: datetime, include_late: bool
    ) -> dict[str, int]:
        """Return the Yotpo points balance per e-mail after the expected pushes.

        The points maths is the Yotpo emulator's own (`order_points`, `reversed_points`).
        Only e-mails with at least one order appear.
        """
        balances: dict[str, int] = {}
        orders: dict[int, list[int]] = {}  # ticket id -> [amount, points, refunded, reversed]
        for push in self.expected_effects(go_live, include_late):
            if push.kind == "order":
                points = order_points(push.amount_cents, points_per_dollar)
                orders[push.ticket_id] = [push.amount_cents, points, 0, 0]
                balances[push.email] = balances.get(push.email, 0) + points
                continue
            order = orders[push.parent_ticket_id or 0]
            order[2] += push.amount_cents
            now_reversed = reversed_points(order[1], order[0], order[2])
            removed = now_reversed - order[3]
            order[3] = now_reversed
            balances[push.email] = max(0, balances[push.email] - removed)
        return balances

    def _earning_email(self, plan: TicketPlan, go_live: datetime) -> str | None:
        if plan.kind == PlanKind.BLIND_RETURN or plan.customer_id is None:
            return None
        if plan.completed_at is None or plan.completed_at < go_live:
            return None
        if plan.web_order_no is not None:
            return None
        customer = self.customer(plan.customer_id)
        if customer.email is None or not customer.email.strip():
            return None
        if customer.public_id == WALK_IN_PUBLIC_ID:
            return None
        if customer.custom.get(STAFF_FIELD) == STAFF_VALUE:
            return None
        return normalize_email(customer.email)

    def to_json(self) -> str:
        """Render the whole store as the API would show it, for comparing two generations."""
        ticket_keys = [f.key for f in self.custom_fields if f.group_id == GROUP_TICKET]
        customer_keys = [f.key for f in self.custom_fields if f.group_id == GROUP_CUSTOMER]
        names = {customer.id: customer.display_name for customer in self.customers}

        def ticket_json(ticket: TicketRecord) -> dict[str, Any]:
            name = None if ticket.customer_id is None else names.get(ticket.customer_id)
            return render_ticket(ticket, name, ticket_keys)

        document = {
            "anchor": format_utc(self.anchor),
            "go_live": format_utc(self.go_live),
            "locations": [render_location(location) for location in self.locations],
            "custom_fields": [render_custom_field(f) for f in self.custom_fields],
            "customers": [render_customer(c, customer_keys) for c in self.customers],
            "tickets": [ticket_json(ticket) for ticket in self.tickets],
            "late_tickets": [ticket_json(ticket) for ticket in self.late_tickets],
        }
        return json.dumps(document, ensure_ascii=False, indent=1)
