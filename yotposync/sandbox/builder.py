"""Build a sandbox store from ticket plans: by hand in tests, or from the seeded generator.

The builder records each ticket's intent as a `TicketPlan` and turns the plans into
Heartland records at `build()`. Returns repeat the parent's lines at the price actually
paid, markdown included, and a parent line cannot be returned more often than it was sold.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from yotposync.sandbox.addresses import AddressRecord
from yotposync.sandbox.policies import (
    PAYMENT_COMPLETE,
    PAYMENT_VOIDED,
    STATUS_COMPLETE,
    STATUS_INCOMPLETE,
    STATUS_VOIDED,
)
from yotposync.sandbox.records import (
    GIFT_CARD_LINE,
    ITEM_LINE,
    SHIPPING_LINE,
    TAX_LINE,
    TICKET_TYPE_RETURN,
    TICKET_TYPE_SALE,
    CustomerRecord,
    DiscountRecord,
    LineRecord,
    LocationRecord,
    PaymentRecord,
    PriceAdjustment,
    TicketRecord,
    ticket_totals,
)
from yotposync.sandbox.store import (
    LOYALTY_OPT_IN_FIELD,
    STAFF_FIELD,
    STAFF_VALUE,
    WEB_ORDER_FIELD,
    PlanKind,
    SoldLine,
    Store,
    TicketPlan,
    standard_custom_fields,
    standard_locations,
)

# Sales tax rate per location id; tax is rounded half-up once per ticket.
TAX_RATES = {201: Decimal("0.0825"), 202: Decimal("0.06625"), 203: Decimal("0.029")}

FIRST_TICKET_ID = 5001
FIRST_CUSTOMER_ID = 9001
FIRST_LINE_ID = 77001
FIRST_PAYMENT_ID = 60001

PAYMENT_TYPE_CASH = 1
PAYMENT_TYPE_CARD = 2


class StoreBuilder:
    """Collects customers and ticket plans, then builds a `Store`."""

    def __init__(self, anchor: datetime, go_live: datetime | None = None) -> None:
        if anchor.tzinfo is None:
            raise ValueError("anchor must be timezone-aware")
        self.anchor = anchor
        self.go_live = anchor if go_live is None else go_live
        self.locations = standard_locations()
        self._station_locations = {
            station.id: location for location in self.locations for station in location.stations
        }
        self._customers: list[CustomerRecord] = []
        self._plans: list[TicketPlan] = []
        self._ticket_ids = itertools.count(FIRST_TICKET_ID)
        self._customer_ids = itertools.count(FIRST_CUSTOMER_ID)
        # Quantity of each sold line of a parent that has not been returned yet.
        self._returnable: dict[int, list[int]] = {}

    @property
    def plans(self) -> list[TicketPlan]:
        return list(self._plans)

    def station_ids(self) -> list[int]:
        return sorted(self._station_locations)

    def add_customer(
        self,
        first_name: str,
        last_name: str,
        email: str | None,
        *,
        public_id: str | None = None,
        staff: bool = False,
        loyalty_opt_in: bool = False,
        created_at: datetime | None = None,
        phone: str | None = None,
    ) -> CustomerRecord:
        customer_id = next(self._customer_ids)
        created = created_at or self.anchor - timedelta(days=365)
        custom: dict[str, str | None] = {}
        if staff:
            custom[STAFF_FIELD] = STAFF_VALUE
        if loyalty_opt_in:
            custom[LOYALTY_OPT_IN_FIELD] = "yes"
        customer = CustomerRecord(
            id=customer_id,
            public_id=public_id or f"C-{customer_id}",
            first_name=first_name,
            last_name=last_name,
            email=email,
            created_at=created,
            updated_at=created,
            custom=custom,
        )
        if phone is not None:
            # Heartland keeps phones on addresses; the address id follows the customer id.
            customer.addresses.append(
                AddressRecord(
                    id=customer_id,
                    customer_id=customer_id,
                    created_at=created,
                    updated_at=created,
                    first_name=first_name,
                    last_name=last_name,
                    country="US",
                    phone=phone,
                )
            )
        self._customers.append(customer)
        return customer

    def add_sale(
        self,
        *,
        customer: CustomerRecord | None,
        station_id: int,
        lines: Sequence[SoldLine],
        completed_at: datetime | None,
        created_at: datetime | None = None,
        updated_at: datetime | None = None,
        discount_cents: int = 0,
        shipping_cents: int = 0,
        gift_card_cents: int = 0,
        voided: bool = False,
        web_order_no: str | None = None,
        late: bool = False,
        failed_payment: bool = False,
        voided_line: SoldLine | None = None,
        sales_rep: str = "",
    ) -> TicketPlan:
        """Add a sale; `completed_at=None` leaves it open (parked)."""
        if discount_cents > sum(line.value_cents for line in lines):
            raise ValueError("a ticket-level discount cannot exceed the sold item value")
        plan = self._add_plan(
            kind=PlanKind.SALE,
            customer=customer,
            station_id=station_id,
            completed_at=completed_at,
            created_at=created_at,
            updated_at=updated_at,
            sold=tuple(lines),
            discount_cents=discount_cents,
            shipping_cents=shipping_cents,
            gift_card_cents=gift_card_cents,
            voided=voided,
            web_order_no=web_order_no,
            late=late,
            failed_payment=failed_payment,
            voided_line=voided_line,
            sales_rep=sales_rep,
        )
        self._returnable[plan.id] = [line.qty for line in plan.sold]
        return plan

    def add_return(
        self,
        parent: TicketPlan,
        *,
        completed_at: datetime | None,
        returned: Sequence[tuple[int, int]] | None = None,
        sold: Sequence[SoldLine] = (),
        station_id: int | None = None,
        created_at: datetime | None = None,
        updated_at: datetime | None = None,
        voided: bool = False,
        sales_rep: str = "",
    ) -> TicketPlan:
        """Add a return linked to `parent`, or an exchange when `sold` is not empty.

        `returned` lists (parent line index, qty); None returns everything still returnable.
        """
        remaining = self._returnable.get(parent.id)
        if remaining is None:
            raise ValueError(f"ticket {parent.id} is not a sale of this builder")
        if returned is None:
            returned = [(index, qty) for index, qty in enumerate(remaining) if qty > 0]
        returned_lines = []
        for index, qty in returned:
            if not 0 < qty <= remaining[index]:
                raise ValueError(f"line {index} of ticket {parent.id} has {remaining[index]} left")
            returned_lines.append(replace(parent.sold[index], qty=qty))
        if not returned_lines:
            raise ValueError(f"ticket {parent.id} has nothing left to return")
        for index, qty in returned:
            remaining[index] -= qty
        customer = None if parent.customer_id is None else self._customer(parent.customer_id)
        return self._add_plan(
            kind=PlanKind.EXCHANGE if sold else PlanKind.RETURN,
            customer=customer,
            station_id=station_id or parent.station_id,
            completed_at=completed_at,
            created_at=created_at,
            updated_at=updated_at,
            sold=tuple(sold),
            returned=tuple(returned_lines),
            voided=voided,
            parent_id=parent.id,
            sales_rep=sales_rep,
        )

    def add_blind_return(
        self,
        *,
        customer: CustomerRecord | None,
        station_id: int,
        lines: Sequence[SoldLine],
        completed_at: datetime,
        sales_rep: str = "",
    ) -> TicketPlan:
        """Add a return with no parent sale."""
        return self._add_plan(
            kind=PlanKind.BLIND_RETURN,
            customer=customer,
            station_id=station_id,
            completed_at=completed_at,
            created_at=None,
            updated_at=None,
            returned=tuple(lines),
            sales_rep=sales_rep,
        )

    def build(self) -> Store:
        """Turn the plans into records; ticket, line and payment ids follow plan order."""
        line_ids = itertools.count(FIRST_LINE_ID)
        payment_ids = itertools.count(FIRST_PAYMENT_ID)
        tickets: list[TicketRecord] = []
        late: list[TicketRecord] = []
        for plan in self._plans:
            record = self._ticket_record(plan, line_ids, payment_ids)
            (late if plan.late else tickets).append(record)
        return Store(
            anchor=self.anchor,
            go_live=self.go_live,
            locations=standard_locations(),
            custom_fields=standard_custom_fields(),
            customers=list(self._customers),
            tickets=tickets,
            late_tickets=late,
            plans=list(self._plans),
        )

    def _customer(self, customer_id: int) -> CustomerRecord:
        for customer in self._customers:
            if customer.id == customer_id:
                return customer
        raise ValueError(f"customer {customer_id} is not in this builder")

    def _add_plan(
        self,
        *,
        kind: PlanKind,
        customer: CustomerRecord | None,
        station_id: int,
        completed_at: datetime | None,
        created_at: datetime | None,
        updated_at: datetime | None,
        sold: tuple[SoldLine, ...] = (),
        returned: tuple[SoldLine, ...] = (),
        discount_cents: int = 0,
        shipping_cents: int = 0,
        gift_card_cents: int = 0,
        voided: bool = False,
        web_order_no: str | None = None,
        parent_id: int | None = None,
        late: bool = False,
        failed_payment: bool = False,
        voided_line: SoldLine | None = None,
        sales_rep: str = "",
    ) -> TicketPlan:
        location = self._station_locations.get(station_id)
        if location is None:
            raise ValueError(
                f"station {station_id} does not exist; use one of {self.station_ids()}"
            )
        if created_at is None:
            if completed_at is None:
                raise ValueError("an open ticket needs created_at")
            created_at = completed_at - timedelta(minutes=4)
        if updated_at is None:
            updated_at = completed_at or created_at
        ticket_id = next(self._ticket_ids)
        plan = TicketPlan(
            id=ticket_id,
            public_id=str(ticket_id),
            kind=kind,
            customer_id=None if customer is None else customer.id,
            station_id=station_id,
            location_id=location.id,
            created_at=created_at,
            updated_at=updated_at,
            completed_at=completed_at,
            sold=sold,
            returned=returned,
            discount_cents=discount_cents,
            shipping_cents=shipping_cents,
            gift_card_cents=gift_card_cents,
            voided=voided,
            web_order_no=web_order_no,
            parent_id=parent_id,
            late=late,
            failed_payment=failed_payment,
            voided_line=voided_line,
            sales_rep=sales_rep,
        )
        self._plans.append(plan)
        return plan

    def _ticket_record(
        self,
        plan: TicketPlan,
        line_ids: itertools.count[int],
        payment_ids: itertools.count[int],
    ) -> TicketRecord:
        location = self._station_locations[plan.station_id]
        stamp = plan.created_at
        lines = [_item_line(line, 1, stamp, line_ids) for line in plan.sold]
        lines += [_item_line(line, -1, stamp, line_ids) for line in plan.returned]
        if plan.voided_line is not None:
            voided_line = _item_line(plan.voided_line, 1, stamp, line_ids)
            voided_line.voided = True
            lines.insert(0, voided_line)
        taxable = plan.sold_cents - plan.discount_cents - plan.returned_cents
        tax = _round_tax(taxable, TAX_RATES[location.id])
        if tax:
            lines.append(_amount_line(TAX_LINE, "Sales Tax", 0, tax, stamp, line_ids))
        if plan.shipping_cents:
            lines.append(
                _amount_line(SHIPPING_LINE, "Shipping", 1, plan.shipping_cents, stamp, line_ids)
            )
        if plan.gift_card_cents:
            gift = _amount_line(
                GIFT_CARD_LINE, "Gift Card", 1, plan.gift_card_cents, stamp, line_ids
            )
            gift.unit_cents = gift.original_unit_cents = plan.gift_card_cents
            lines.append(gift)
        discounts = []
        if plan.discount_cents:
            dollars = Decimal(plan.discount_cents) / 100
            discounts.append(DiscountRecord(f"${dollars:.2f} off", plan.discount_cents))

        if plan.completed_at is not None:
            status = STATUS_COMPLETE
        elif plan.voided:
            status = STATUS_VOIDED
        else:
            status = STATUS_INCOMPLETE
        ticket = TicketRecord(
            id=plan.id,
            public_id=plan.public_id,
            type=TICKET_TYPE_SALE if plan.kind == PlanKind.SALE else TICKET_TYPE_RETURN,
            status=status,
            station_id=plan.station_id,
            source_location_id=location.id,
            created_at=plan.created_at,
            updated_at=plan.updated_at,
            completed=plan.completed_at is not None,
            voided=plan.voided,
            customer_id=plan.customer_id,
            sales_rep=plan.sales_rep,
            parent_id=plan.parent_id,
            completed_at=plan.completed_at,
            local_completed_at=_wall_clock(plan.completed_at, location),
            custom={WEB_ORDER_FIELD: plan.web_order_no} if plan.web_order_no else {},
            lines=lines,
            discounts=discounts,
        )
        if plan.completed_at is not None:
            ticket.payments = _payments(plan, ticket_totals(ticket).total, payment_ids)
        return ticket


def _item_line(
    line: SoldLine, sign: int, stamp: datetime, line_ids: itertools.count[int]
) -> LineRecord:
    record = LineRecord(
        id=next(line_ids),
        type=ITEM_LINE,
        qty=sign * line.qty,
        value_cents=sign * line.value_cents,
        created_at=stamp,
        updated_at=stamp,
        item_id=line.item_id,
        description=line.description,
        original_unit_cents=line.list_cents,
        unit_cents=line.paid_cents,
    )
    if line.paid_cents != line.list_cents:
        delta = line.paid_cents - line.list_cents
        record.adjustments = [PriceAdjustment(id=next(line_ids), delta_cents=delta)]
    return record


def _amount_line(
    line_type: str,
    description: str,
    qty: int,
    value_cents: int,
    stamp: datetime,
    line_ids: itertools.count[int],
) -> LineRecord:
    return LineRecord(
        id=next(line_ids),
        type=line_type,
        qty=qty,
        value_cents=value_cents,
        created_at=stamp,
        updated_at=stamp,
        description=description,
    )


def _round_tax(taxable_cents: int, rate: Decimal) -> int:
    """Round tax half-up away from zero, so a return's tax mirrors its sale's."""
    amount = (Decimal(abs(taxable_cents)) * rate).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return int(amount) if taxable_cents >= 0 else -int(amount)


def _wall_clock(moment: datetime | None, location: LocationRecord) -> datetime | None:
    if moment is None:
        return None
    return moment.astimezone(ZoneInfo(location.time_zone)).replace(tzinfo=None)


def _payments(
    plan: TicketPlan, total_cents: int, payment_ids: itertools.count[int]
) -> list[PaymentRecord]:
    if total_cents == 0:
        return []
    stamp = plan.completed_at or plan.created_at
    payments = []
    if plan.failed_payment:
        payments.append(
            PaymentRecord(
                id=next(payment_ids),
                amount_cents=total_cents,
                created_at=stamp - timedelta(seconds=40),
                updated_at=stamp - timedelta(seconds=30),
                completed_at=None,
                status=PAYMENT_VOIDED,
                payment_type_id=PAYMENT_TYPE_CARD,
                description="Credit Card",
            )
        )
    card = plan.id % 3 != 0
    payments.append(
        PaymentRecord(
            id=next(payment_ids),
            amount_cents=total_cents,
            created_at=stamp,
            updated_at=stamp,
            completed_at=stamp,
            status=PAYMENT_COMPLETE,
            payment_type_id=PAYMENT_TYPE_CARD if card else PAYMENT_TYPE_CASH,
            description="Credit Card" if card else "Cash",
        )
    )
    return payments
