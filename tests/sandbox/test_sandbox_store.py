"""Store generator and ground truth: determinism, the data mix, and a hand-checked tiny store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sandbox_api import ANCHOR, Api

from yotposync.sandbox import (
    ExpectedPush,
    PlanKind,
    Sandbox,
    SoldLine,
    Store,
    StoreBuilder,
    TicketPlan,
    generate_store,
)
from yotposync.sandbox.records import CustomerRecord

Connect = Callable[[Sandbox], tuple[Api, Api]]
GO_LIVE = datetime(2025, 4, 10, tzinfo=UTC)


def _day(day: int, hour: int = 15) -> datetime:
    return datetime(2025, 4, day, hour, tzinfo=UTC)


def _hand_store() -> tuple[Store, dict[str, TicketPlan]]:
    """A tiny store with one ticket per rule; amounts are worked out by hand in the tests."""
    builder = StoreBuilder(ANCHOR, go_live=GO_LIVE)
    alice = builder.add_customer("Alice", "Ng", "Alice@Example.com ")
    bob = builder.add_customer("Bob", "?", None)
    sam = builder.add_customer("Sam", "Staff", "sam@example.com", staff=True)
    cash = builder.add_customer("Cash", "Customer", "front@example.com", public_id="CASH")
    tote = SoldLine(4401, "Tote", 2, 3000, 2700)
    mug = SoldLine(4402, "Mug", 1, 1450, 1450)
    lamp = SoldLine(4403, "Lamp", 1, 2500, 2000)
    coffee = SoldLine(4404, "Coffee", 1, 1699, 1699)
    board = SoldLine(4405, "Board", 1, 3000, 3000)
    pen = SoldLine(4406, "Pen", 1, 1000, 1000)

    def sale(
        customer: CustomerRecord | None, lines: list[SoldLine], when: datetime, **extra: Any
    ) -> TicketPlan:
        return builder.add_sale(
            customer=customer, station_id=301, lines=lines, completed_at=when, **extra
        )

    plans: dict[str, TicketPlan] = {}
    plans["early"] = sale(alice, [mug], _day(5))
    plans["s1"] = sale(alice, [tote, mug], _day(12), discount_cents=500)
    plans["r1"] = builder.add_return(plans["s1"], returned=[(0, 1)], completed_at=_day(13))
    plans["r2"] = builder.add_return(plans["s1"], completed_at=_day(14))
    plans["early_return"] = builder.add_return(plans["early"], completed_at=_day(14, 16))
    plans["no_email"] = sale(bob, [mug], _day(15))
    plans["staff"] = sale(sam, [mug], _day(15, 16))
    plans["cash"] = sale(cash, [mug], _day(15, 17))
    plans["web"] = sale(alice, [mug], _day(16), web_order_no="W-1")
    plans["voided"] = sale(alice, [mug], _day(16, 16), voided=True, updated_at=_day(16, 18))
    plans["open"] = builder.add_sale(
        customer=alice, station_id=301, lines=[mug], completed_at=None, created_at=_day(16, 17)
    )
    plans["no_customer"] = sale(None, [mug], _day(17))
    plans["blind"] = builder.add_blind_return(
        customer=alice, station_id=301, lines=[mug], completed_at=_day(17, 16)
    )
    plans["s10"] = sale(alice, [lamp], _day(18))
    plans["e1"] = builder.add_return(plans["s10"], sold=[coffee], completed_at=_day(19))
    plans["s11"] = sale(alice, [board], _day(20))
    plans["voided_return"] = builder.add_return(
        plans["s11"], completed_at=_day(21), voided=True, updated_at=_day(21, 17)
    )
    plans["late"] = sale(alice, [pen], _day(22), late=True)
    return builder.build(), plans


# Ground truth on the hand store.


def test_truth_hand_store_effects() -> None:
    store, plans = _hand_store()
    alice = "alice@example.com"
    expected = [
        # 2 totes at 27 + a mug at 14.50 = 68.50, minus $5 off.
        ExpectedPush("order", alice, plans["s1"].id, None, 6350),
        # One tote back: floor(2700 x 6350 / 6850).
        ExpectedPush("refund", alice, plans["r1"].id, plans["s1"].id, 2502),
        # The rest (tote + mug = 41.50) takes what the first left: 6350 - 2502, where
        # rounding it on its own, floor(4150 x 6350 / 6850), would leave alice 1 cent.
        ExpectedPush("refund", alice, plans["r2"].id, plans["s1"].id, 3848),
        ExpectedPush("order", alice, plans["s10"].id, None, 2000),
        # The exchange returns the lamp at the 20.00 paid, then sells coffee.
        ExpectedPush("refund", alice, plans["e1"].id, plans["s10"].id, 2000),
        ExpectedPush("order", alice, plans["e1"].id, None, 1699),
        ExpectedPush("order", alice, plans["s11"].id, None, 3000),
    ]
    assert store.expected_effects(GO_LIVE, include_late=False) == expected


def test_truth_hand_store_late_included() -> None:
    store, plans = _hand_store()
    effects = store.expected_effects(GO_LIVE, include_late=True)
    assert effects[-1] == ExpectedPush("order", "alice@example.com", plans["late"].id, None, 1000)
    assert len(effects) == 8


def test_truth_earlier_go_live_counts_early_sale() -> None:
    store, plans = _hand_store()
    effects = store.expected_effects(_day(1), include_late=False)
    early = [
        push for push in effects if plans["early"].id in (push.ticket_id, push.parent_ticket_id)
    ]
    assert [(push.kind, push.amount_cents) for push in early] == [("order", 1450), ("refund", 1450)]


def test_truth_hand_store_balances() -> None:
    store, _ = _hand_store()
    # s1: 63 points, all reversed; s10: 20, all reversed; e1: 16; s11: 30.
    assert store.expected_balances(Decimal(1), GO_LIVE, False) == {"alice@example.com": 46}
    assert store.expected_balances(Decimal(1), GO_LIVE, True) == {"alice@example.com": 56}
    # s1: 95 points, all reversed; e1: floor(25.485); s11: 45.
    assert store.expected_balances(Decimal("1.5"), GO_LIVE, False) == {"alice@example.com": 70}


# What the hand store serves.


def test_hand_store_sale_amounts(connect: Connect) -> None:
    store, plans = _hand_store()
    with Sandbox(store=store) as sandbox:
        heartland, _ = connect(sandbox)
        params = [("_include[]", "subtotal"), ("_include[]", "lines")]
        ticket = heartland.get(f"/sales/tickets/{plans['s1'].id}", params).json()
    assert ticket["original_subtotal"] == 74.5
    assert ticket["subtotal"] == 63.5
    assert ticket["total_discounts"] == 11
    # Downtown tax is 8.25 %, rounded once: 63.50 x 0.0825 = 5.23875.
    assert ticket["total_tax"] == 5.24
    assert ticket["total"] == 68.74
    assert ticket["balance"] == 0
    assert ticket["customer_name"] == "Alice Ng"
    assert ticket["lines"][0]["adjusted_unit_price"] == 27


def test_hand_store_return_amounts(connect: Connect) -> None:
    store, plans = _hand_store()
    with Sandbox(store=store) as sandbox:
        heartland, _ = connect(sandbox)
        ticket = heartland.get(f"/sales/tickets/{plans['r1'].id}", {"_include[]": "lines"}).json()
    item = ticket["lines"][0]
    assert ticket["type"] == "Return"
    assert ticket["parent_transaction_id"] == plans["s1"].id
    assert item["qty"] == -1
    assert item["value"] == -27
    assert item["adjusted_unit_price"] == 27
    assert ticket["total_tax"] == -2.23
    assert ticket["total"] == -29.23


def test_hand_store_exchange_amounts(connect: Connect) -> None:
    store, plans = _hand_store()
    with Sandbox(store=store) as sandbox:
        heartland, _ = connect(sandbox)
        ticket = heartland.get(f"/sales/tickets/{plans['e1'].id}", {"_include[]": "lines"}).json()
    items = [line for line in ticket["lines"] if line["type"] == "ItemLine"]
    assert ticket["type"] == "Return"
    assert [line["qty"] for line in items] == [1, -1]
    assert ticket["total_item_qty"] == 0
    assert ticket["total_tax"] == -0.25
    assert ticket["total"] == -3.26


def test_hand_store_open_and_voided(connect: Connect) -> None:
    store, plans = _hand_store()
    with Sandbox(store=store) as sandbox:
        heartland, _ = connect(sandbox)
        open_ticket = heartland.get(f"/sales/tickets/{plans['open'].id}").json()
        voided = heartland.get(f"/sales/tickets/{plans['voided'].id}").json()
        late = heartland.get(f"/sales/tickets/{plans['late'].id}")
    assert open_ticket["status"] == "incomplete"
    assert open_ticket["completed_at"] is None
    assert open_ticket["balance"] == open_ticket["total"]
    assert voided["status"] == "complete"
    assert voided["voided?"] is True
    assert late.status_code == 404


def test_builder_rejects_over_return() -> None:
    builder = StoreBuilder(ANCHOR)
    sale = builder.add_sale(
        customer=None,
        station_id=301,
        lines=[SoldLine(1, "Mug", 1, 1000, 1000)],
        completed_at=_day(12),
    )
    builder.add_return(sale, completed_at=_day(13))
    with pytest.raises(ValueError, match="nothing left"):
        builder.add_return(sale, completed_at=_day(14))


# The generator.


def test_generator_same_seed_same_json() -> None:
    first = generate_store(seed=5, tickets=120, anchor=ANCHOR)
    second = generate_store(seed=5, tickets=120, anchor=ANCHOR)
    assert first.to_json() == second.to_json()


def test_generator_other_seed_other_json() -> None:
    first = generate_store(seed=5, tickets=120, anchor=ANCHOR)
    second = generate_store(seed=6, tickets=120, anchor=ANCHOR)
    assert first.to_json() != second.to_json()


def test_generator_same_seed_same_served_json(connect: Connect) -> None:
    bodies = []
    for _ in range(2):
        with Sandbox(store=generate_store(seed=5, tickets=40, anchor=ANCHOR)) as sandbox:
            heartland, _ = connect(sandbox)
            params = {"per_page": "all", "_include[]": ["lines", "payments"]}
            bodies.append(heartland.get("/sales/tickets", params).content)
    assert bodies[0] == bodies[1]


def test_generator_default_anchor_whole_seconds() -> None:
    store = generate_store(seed=1, tickets=5)
    assert store.anchor.microsecond == 0
    assert abs(datetime.now(UTC) - store.anchor) < timedelta(minutes=1)


def test_generator_rejects_naive_anchor() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        generate_store(seed=1, tickets=5, anchor=datetime(2025, 5, 1))


def test_generator_zero_tickets() -> None:
    store = generate_store(seed=1, tickets=0, anchor=ANCHOR)
    assert store.tickets == []
    assert store.expected_effects(store.go_live, include_late=True) == []


@pytest.fixture(scope="module")
def big_store() -> Store:
    return generate_store(seed=11, tickets=500, anchor=ANCHOR)


def test_generator_customer_mix(big_store: Store) -> None:
    customers = big_store.customers
    without_email = [c for c in customers if c.email is None]
    assert len(customers) == 125
    assert [c.public_id for c in customers].count("CASH") == 1
    assert 0.05 < len(without_email) / len(customers) < 0.3
    assert any(c.custom.get("staff") == "yes" for c in customers)
    assert any("?" in (c.first_name, c.last_name) for c in customers)
    assert any(not c.display_name.isascii() for c in customers)


def test_generator_ticket_mix(big_store: Store) -> None:
    plans = big_store.plans
    kinds = {plan.kind for plan in plans}
    assert kinds == set(PlanKind)
    assert any(p.voided and p.completed_at is not None for p in plans)
    assert any(p.completed_at is None for p in plans)
    assert any(p.customer_id is None for p in plans)
    assert any(p.web_order_no for p in plans)
    assert any(p.discount_cents for p in plans)
    assert any(line.paid_cents < line.list_cents for p in plans for line in p.sold)
    assert any(p.completed_at is not None and p.completed_at < big_store.go_live for p in plans)
    assert any(p.failed_payment for p in plans)
    assert any(p.shipping_cents for p in plans)
    assert any(p.gift_card_cents for p in plans)
    assert 0.005 < len(big_store.late_tickets) / len(plans) < 0.05


def test_generator_timestamps_ordered(big_store: Store) -> None:
    start = ANCHOR - timedelta(days=30)
    for ticket in big_store.tickets + big_store.late_tickets:
        assert start <= ticket.created_at <= ANCHOR, ticket.id
        assert ticket.updated_at <= ANCHOR, ticket.id
        if ticket.completed_at is not None:
            assert ticket.created_at <= ticket.completed_at <= ticket.updated_at, ticket.id


def test_generator_returns_follow_parents(big_store: Store) -> None:
    by_id = {plan.id: plan for plan in big_store.plans}
    linked = [p for p in big_store.plans if p.parent_id is not None]
    assert linked
    for plan in linked:
        parent = by_id[plan.parent_id or 0]
        paid = {(line.item_id, line.paid_cents) for line in parent.sold}
        assert parent.completed_at is not None
        assert plan.created_at > parent.completed_at, plan.id
        assert plan.customer_id == parent.customer_id, plan.id
        assert all((line.item_id, line.paid_cents) in paid for line in plan.returned), plan.id


def test_generator_exchange_lines_both_signs(big_store: Store) -> None:
    exchange_ids = {plan.id for plan in big_store.plans if plan.kind == PlanKind.EXCHANGE}
    exchanges = [ticket for ticket in big_store.tickets if ticket.id in exchange_ids]
    assert exchanges
    for ticket in exchanges:
        quantities = [line.qty for line in ticket.lines if line.type == "ItemLine"]
        assert ticket.type == "Return"
        assert min(quantities) < 0 < max(quantities), ticket.id


def test_generator_same_second_updates(big_store: Store) -> None:
    stamps = [ticket.updated_at for ticket in big_store.tickets]
    assert len(stamps) - len(set(stamps)) >= 5


# Ground truth against the Yotpo emulator.


def test_truth_matches_emulator_balances(connect: Connect, big_store: Store) -> None:
    points_per_dollar = Decimal("1.25")
    effects = big_store.expected_effects(big_store.go_live, include_late=True)
    expected = big_store.expected_balances(points_per_dollar, big_store.go_live, True)
    assert any(push.kind == "refund" for push in effects)
    with Sandbox(store=None, points_per_dollar=points_per_dollar) as sandbox:
        _, yotpo = connect(sandbox)
        for push in effects:
            if push.kind == "order":
                body = {
                    "customer_email": push.email,
                    "order_id": f"hl-{push.ticket_id}",
                    "total_amount_cents": push.amount_cents,
                }
                response = yotpo.post("/orders", body)
            else:
                body = {
                    "id": f"hl-ret-{push.ticket_id}",
                    "order_id": f"hl-{push.parent_ticket_id}",
                    "total_amount_cents": push.amount_cents,
                }
                response = yotpo.post("/refunds", body)
            assert response.status_code == 200, response.text
        actual = {
            email: yotpo.get("/customers", {"customer_email": email}).json()["points_balance"]
            for email in expected
        }
    assert actual == expected
