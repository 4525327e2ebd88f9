"""Seeded store generator: the same arguments always give the same store.

The mix imitates a small retailer over `days` days. Sales carry markdowns, "$X off"
discounts and tax, and some carry shipping or gift card lines or a failed card payment.
Returns are linked (full and partial) or blind, and exchanges mix both signs on one
ticket. Some sales are voided after completion, parked, made for walk-in or staff
customers or customers without e-mail, or marked as web orders. A few late tickets reach
the server only when `/_sandbox/release-late` is called. About 5 % of tickets share their
`updated_at` second with the ticket before them.
"""

from __future__ import annotations

import bisect
import random
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from yotposync.sandbox.builder import StoreBuilder
from yotposync.sandbox.records import CustomerRecord
from yotposync.sandbox.store import WALK_IN_PUBLIC_ID, SoldLine, Store, TicketPlan

CATALOGUE = [
    (4401, "Canvas Tote", 3000),
    (4402, "Ceramic Mug", 1450),
    (4403, "Café Blend Coffee 12oz", 1699),
    (4404, "Linen Napkins (4)", 2400),
    (4405, "Beeswax Candle", 1875),
    (4406, "Wool Throw", 8900),
    (4407, "Notebook A5", 799),
    (4408, "Fountain Pen", 4250),
    (4409, "Crème Hand Lotion", 1299),
    (4410, "Olive Wood Board", 3650),
    (4411, "Tea Sampler", 2199),
    (4412, "Enamel Pin", 650),
    (4413, "Desk Lamp", 6499),
    (4414, "Reusable Bottle", 2495),
    (4415, "Greeting Card", 499),
    (4416, "Scented Soap", 899),
]
FIRST_NAMES = [
    "Ana María",
    "Zoë",
    "José",
    "Łukasz",
    "Søren",
    "Chloé",
    "Pat",
    "Jordan",
    "Priya",
    "Mei",
    "Oluwaseun",
    "Ingrid",
    "Tomás",
    "Renée",
    "Sam",
    "Noor",
]
LAST_NAMES = [
    "Núñez",
    "Müller",
    "O'Brien",
    "Lee",
    "Kowalczyk",
    "Ødegaard",
    "García",
    "Nguyen",
    "Smith",
    "Dubois",
    "Okafor",
    "Björk",
    "Patel",
    "Rossi",
]
SALES_REPS = ["Sam", "Alex Kim", "Priya", "", "Unknown(Jordan)"]
EMAIL_DOMAINS = ["example.com", "example.org", "example.net"]
MARKDOWN_PERCENTS = [10, 15, 20, 25]
DISCOUNT_DOLLARS = [5, 10, 15]

# Relative weights of what each ticket slot becomes.
SLOT_WEIGHTS = {
    "sale": 70,
    "return": 9,
    "exchange": 3,
    "blind_return": 2,
    "open": 3,
    "void_after_completion": 3,
    "void_open": 1,
    "late": 2,
    "web_order": 4,
}
# A return comes at least an hour and at most two weeks after its sale.
MIN_RETURN_DELAY = timedelta(hours=1)
RETURN_WINDOW = timedelta(days=14)
PRE_GO_LIVE_SHARE = 0.06
SAME_SECOND_SHARE = 0.05


def generate_store(
    seed: int,
    tickets: int,
    customers: int | None = None,
    anchor: datetime | None = None,
    days: int = 30,
    go_live_days: int = 25,
) -> Store:
    """Generate a store of `tickets` tickets spread over `days` days before `anchor`.

    `anchor` defaults to now, rounded down to the second. Go-live is `go_live_days` before
    the anchor, and about 6 % of tickets fall before it when the window allows. `customers`
    defaults to a quarter of the tickets, at least 12, and counts the walk-in customer.
    """
    if tickets < 0:
        raise ValueError(f"tickets must not be negative, got {tickets}")
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    if customers is not None and customers < 1:
        raise ValueError(f"customers must be at least 1 (the walk-in customer), got {customers}")
    if anchor is None:
        anchor = datetime.now(UTC)
    if anchor.tzinfo is None:
        raise ValueError("anchor must be timezone-aware")
    anchor = anchor.astimezone(UTC).replace(microsecond=0)
    go_live = anchor - timedelta(days=go_live_days)
    builder = StoreBuilder(anchor, go_live)
    rng = random.Random(seed)
    people = _add_customers(
        builder, rng, customers if customers is not None else max(12, tickets // 4)
    )
    _TicketMaker(builder, rng, people, anchor - timedelta(days=days)).make(tickets)
    return builder.build()


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum())


def _add_customers(builder: StoreBuilder, rng: random.Random, count: int) -> list[CustomerRecord]:
    """Add the walk-in customer and `count - 1` others with a realistic mix of quirks."""
    since = builder.anchor - timedelta(days=400)
    people = [
        builder.add_customer(
            "Cash",
            "Customer",
            "frontdesk@example.com",
            public_id=WALK_IN_PUBLIC_ID,
            created_at=since,
        )
    ]
    for index in range(1, count):
        first = rng.choice(FIRST_NAMES)
        last = rng.choice(LAST_NAMES)
        if index == 2 or rng.random() < 0.03:
            first, last = "?", rng.choice(["?", last])
        email: str | None = None
        if index != 3 and rng.random() >= 0.15:
            local = f"{_ascii(first) or 'customer'}.{_ascii(last) or 'guest'}.{index}"
            email = f"{local}@{rng.choice(EMAIL_DOMAINS)}"
            quirk = rng.random()
            if quirk < 0.05:
                email = email.capitalize()
            elif quirk < 0.07:
                email = email + " "
        people.append(
            builder.add_customer(
                first,
                last,
                email,
                staff=index == 1 or rng.random() < 0.04,
                loyalty_opt_in=rng.random() < 0.6,
                created_at=since + timedelta(seconds=rng.randrange(300 * 86400)),
                phone=_phone(index),
            )
        )
    return people


# Phone spellings seen on real accounts; `555-{n}` lacks an area code, so it cannot be made
# E.164. Chosen by customer index, not by the seeded random numbers, so adding phones left
# every other generated value as it was.
_PHONE_STYLES = ("512-555-{n}", "(512) 555 {n}", "+1 512.555.{n}", "555-{n}", None)


def _phone(index: int) -> str | None:
    style = _PHONE_STYLES[index % len(_PHONE_STYLES)]
    return None if style is None else style.format(n=f"{index % 10000:04d}")


@dataclass
class _Slot:
    completed_at: datetime
    kind: str


class _TicketMaker:
    """Fills the ticket slots in time order, so returns always follow their parents."""

    def __init__(
        self,
        builder: StoreBuilder,
        rng: random.Random,
        people: list[CustomerRecord],
        start: datetime,
    ) -> None:
        self.builder = builder
        self.rng = rng
        self.walk_in = people[0]
        self.regulars = people[1:]
        self.start = start
        # Completed, not voided, not late sales in completion order, with their times for
        # bisecting, and the ids of those with nothing left to return.
        self.parents: list[TicketPlan] = []
        self.parent_times: list[datetime] = []
        self.exhausted: set[int] = set()
        self.returnable: dict[int, list[int]] = {}
        self.late: list[tuple[datetime, CustomerRecord]] = []
        self.web_orders = 0

    def make(self, count: int) -> None:
        for slot in self._slots(count):
            self._fill(slot)
        for completed_at, customer in self.late:
            self.builder.add_sale(
                customer=customer,
                station_id=self._station(),
                lines=self._sold_lines(),
                completed_at=completed_at,
                late=True,
                sales_rep=self.rng.choice(SALES_REPS),
            )

    def _slots(self, count: int) -> list[_Slot]:
        anchor = self.builder.anchor
        go_live = max(self.builder.go_live, self.start)
        times = []
        for _ in range(count):
            before = go_live > self.start and self.rng.random() < PRE_GO_LIVE_SHARE
            low, high = (self.start, go_live) if before else (go_live, anchor)
            span = max(int((high - low).total_seconds()) - 60, 1)
            times.append(low + timedelta(seconds=self.rng.randrange(span)))
        times.sort()
        for index in range(1, len(times)):
            if self.rng.random() < SAME_SECOND_SHARE:
                times[index] = times[index - 1]
        kinds = list(SLOT_WEIGHTS)
        weights = list(SLOT_WEIGHTS.values())
        return [_Slot(t, self.rng.choices(kinds, weights)[0]) for t in times]

    def _fill(self, slot: _Slot) -> None:
        kind = slot.kind
        if kind in ("return", "exchange"):
            parent = self._pick_parent(slot.completed_at, needs_customer=kind == "exchange")
            if parent is not None:
                self._add_return(parent, slot.completed_at, exchange=kind == "exchange")
                return
            kind = "sale"
        if kind == "blind_return":
            self.builder.add_blind_return(
                customer=self._customer(),
                station_id=self._station(),
                lines=self._sold_lines(markdowns=False)[:2],
                completed_at=slot.completed_at,
                sales_rep=self.rng.choice(SALES_REPS),
            )
        elif kind in ("open", "void_open"):
            self.builder.add_sale(
                customer=self._customer(),
                station_id=self._station(),
                lines=self._sold_lines(),
                completed_at=None,
                created_at=slot.completed_at,
                voided=kind == "void_open",
                sales_rep=self.rng.choice(SALES_REPS),
            )
        elif kind == "late" and self._late_customer() is not None:
            customer = self._late_customer()
            assert customer is not None
            self.late.append((slot.completed_at, customer))
        else:
            self._add_sale(slot.completed_at, kind)

    def _add_sale(self, completed_at: datetime, kind: str) -> None:
        lines = self._sold_lines()
        sold_cents = sum(line.value_cents for line in lines)
        discount = 0
        if self.rng.random() < 0.12:
            dollars = self.rng.choice(DISCOUNT_DOLLARS)
            if dollars * 100 < sold_cents:
                discount = dollars * 100

        web_order_no = None
        shipping = 0
        if kind == "web_order":
            self.web_orders += 1
            web_order_no = f"W{100000 + self.web_orders}"
            shipping = 795
        elif self.rng.random() < 0.03:
            shipping = 1250

        voided = kind == "void_after_completion"
        updated_at = completed_at
        if voided:
            later = completed_at + timedelta(minutes=self.rng.randrange(5, 240))
            updated_at = min(later, self.builder.anchor)

        plan = self.builder.add_sale(
            customer=self._customer(),
            station_id=self._station(),
            lines=lines,
            completed_at=completed_at,
            updated_at=updated_at,
            discount_cents=discount,
            shipping_cents=shipping,
            gift_card_cents=self.rng.choice([2500, 5000]) if self.rng.random() < 0.03 else 0,
            voided=voided,
            web_order_no=web_order_no,
            failed_payment=self.rng.random() < 0.04,
            voided_line=self._sold_lines()[0] if self.rng.random() < 0.04 else None,
            sales_rep=self.rng.choice(SALES_REPS),
        )
        if not voided:
            self.parents.append(plan)
            self.parent_times.append(completed_at)
            self.returnable[plan.id] = [line.qty for line in plan.sold]

    def _add_return(self, parent: TicketPlan, completed_at: datetime, exchange: bool) -> None:
        remaining = self.returnable[parent.id]
        open_lines = [index for index, qty in enumerate(remaining) if qty > 0]
        if exchange or self.rng.random() < 0.5:
            index = self.rng.choice(open_lines)
            returned: list[tuple[int, int]] = [(index, self.rng.randint(1, remaining[index]))]
        else:
            returned = [(index, remaining[index]) for index in open_lines]
        for index, qty in returned:
            remaining[index] -= qty
        if not any(remaining):
            self.exhausted.add(parent.id)
        roll = self.rng.random()
        voided = roll < 0.05
        completed: datetime | None = completed_at if roll >= 0.1 or voided else None
        self.builder.add_return(
            parent,
            completed_at=completed,
            created_at=completed_at - timedelta(minutes=3),
            updated_at=completed_at + timedelta(minutes=20) if voided else completed_at,
            returned=returned,
            sold=self._sold_lines(markdowns=False)[:2] if exchange else (),
            voided=voided,
            sales_rep=self.rng.choice(SALES_REPS),
        )

    def _pick_parent(self, before: datetime, needs_customer: bool) -> TicketPlan | None:
        low = bisect.bisect_left(self.parent_times, before - RETURN_WINDOW)
        high = bisect.bisect_right(self.parent_times, before - MIN_RETURN_DELAY)
        candidates = [
            plan
            for plan in self.parents[low:high]
            if plan.id not in self.exhausted
            and (plan.customer_id is not None or not needs_customer)
        ]
        return self.rng.choice(candidates) if candidates else None

    def _customer(self) -> CustomerRecord | None:
        roll = self.rng.random()
        if roll < 0.10:
            return None
        if roll < 0.18 or not self.regulars:
            return self.walk_in
        return self.rng.choice(self.regulars)

    def _late_customer(self) -> CustomerRecord | None:
        with_email = [person for person in self.regulars if person.email]
        return with_email[len(self.late) % len(with_email)] if with_email else None

    def _station(self) -> int:
        return self.rng.choice(self.builder.station_ids())

    def _sold_lines(self, markdowns: bool = True) -> list[SoldLine]:
        lines = []
        for item_id, description, price in self.rng.sample(CATALOGUE, self.rng.randint(1, 4)):
            paid = price
            if markdowns and self.rng.random() < 0.2:
                percent = Decimal(100 - self.rng.choice(MARKDOWN_PERCENTS)) / 100
                paid = int((Decimal(price) * percent).quantize(Decimal(1), rounding=ROUND_HALF_UP))
            qty = self.rng.choice([1, 1, 1, 2, 3])
            lines.append(SoldLine(item_id, description, qty, price, paid))
        return lines
