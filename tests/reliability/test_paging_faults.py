"""Faults in Heartland's listings: pages that change, lag, come back empty or hold odd keys.

The transactions and delivery jobs run in-process, as the daemon runs them, against the
sandbox over HTTP. Every test ends with Yotpo holding exactly what the store should earn.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.support import (
    Harness,
    Register,
    accepted,
    assert_settled,
    harness,
)
from yotposync.sandbox import ManualClock, Store, StoreBuilder, generate_store
from yotposync.sandbox.faults import FaultPlan, FaultRule

ANCHOR = datetime(2026, 2, 1, 18, 0, tzinfo=UTC)
LISTING = "/api/sales/tickets"


def rule(name: str, kind: str, **options: Any) -> FaultRule:
    return FaultRule(name=name, service="heartland", kind=kind, method="GET", **options)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def store() -> Store:
    return generate_store(seed=21, tickets=70, anchor=ANCHOR)


def since(store: Store) -> datetime:
    return store.anchor - timedelta(days=366)


def sorted_ticket_ids(store: Store) -> list[int]:
    """Ticket ids in the order the listing returns them: by updated_at, then id."""
    return [t.id for t in sorted(store.tickets, key=lambda t: (t.updated_at, t.id))]


def without(store: Store, ticket_id: int) -> Store:
    """The store's ground truth when one ticket can never be read."""
    return dataclasses.replace(store, plans=[p for p in store.plans if p.id != ticket_id])


def test_tickets_edited_between_pages(tmp_path: Path, store: Store) -> None:
    plan = FaultPlan(
        seed=5,
        rules=(rule("edit", "edit_between_pages", path=LISTING, probability=0.5),),
    )
    with harness(tmp_path, store, faults=plan, heartland={"page_size": 10}) as h:
        h.transactions(since=since(store))
        edited = h.sandbox.faults.report()["injected"]["edit"]
        # A ticket edited after the walk's end moves out of its window; the next poll of the
        # daemon lists it.
        h.sandbox.faults.disable()
        h.transactions()
        h.delivery()

        assert edited > 3
        assert_settled(h)


def test_empty_page_mid_walk_is_asked_again(tmp_path: Path, store: Store) -> None:
    plan = FaultPlan(rules=(rule("empty", "empty_page", path=LISTING, after=2, times=1),))
    with harness(tmp_path, store, faults=plan, heartland={"page_size": 10}) as h:
        summary = h.transactions(since=since(store))
        h.delivery()

        assert h.sandbox.faults.report()["injected"] == {"empty": 1}
        assert summary.tickets == len(store.tickets)
        assert_settled(h)


def test_empty_page_in_past_window_is_asked_again(tmp_path: Path, store: Store) -> None:
    # A catch-up of a past window does not move the cursor, so a walk ended early by an
    # empty page would leave its last tickets unprocessed.
    plan = FaultPlan(rules=(rule("empty", "empty_page", path=LISTING, after=1, times=1),))
    with harness(tmp_path, store, faults=plan, heartland={"page_size": 10}) as h:
        summary = h.transactions(since=since(store), until=store.anchor + timedelta(days=1))
        h.delivery()

        assert h.sandbox.faults.report()["injected"] == {"empty": 1}
        assert summary.tickets == len(store.tickets)
        assert h.cursor() is None
        assert_settled(h)


def test_empty_pages_twice_end_walk_and_keep_cursor(tmp_path: Path, store: Store) -> None:
    # With a total of 0 the empty pages agree with themselves, so the walk ends there.
    plan = FaultPlan(
        rules=(rule("empty", "empty_page", path=LISTING, after=2, times=2, empty_total="zero"),)
    )
    with harness(tmp_path, store, faults=plan, heartland={"page_size": 10}) as h:
        first = h.transactions(since=since(store))
        cursor_after_gap = h.cursor()
        h.transactions()
        h.delivery()

        assert first.tickets == 20
        assert cursor_after_gap is not None
        assert cursor_after_gap[1] == sorted_ticket_ids(store)[19]
        assert_settled(h)


def test_empty_first_page_twice_on_new_ledger(tmp_path: Path, store: Store) -> None:
    # The empty pages still count the window's tickets, so the client requests them again.
    plan = FaultPlan(rules=(rule("empty", "empty_page", path=LISTING, times=2),))
    with harness(tmp_path, store, faults=plan, heartland={"page_size": 10}) as h:
        summary = h.transactions(since=since(store))
        h.delivery()

        assert h.sandbox.faults.report()["injected"] == {"empty": 2}
        assert summary.tickets == len(store.tickets)
        assert_settled(h)


def test_empty_later_page_twice_is_retried(tmp_path: Path, store: Store) -> None:
    plan = FaultPlan(rules=(rule("empty", "empty_page", path=LISTING, after=2, times=2),))
    with harness(tmp_path, store, faults=plan, heartland={"page_size": 10}) as h:
        summary = h.transactions(since=since(store))
        h.delivery()

        assert h.sandbox.faults.report()["injected"] == {"empty": 2}
        assert summary.tickets == len(store.tickets)
        assert h.cursor() == (
            max(t.updated_at for t in store.tickets).isoformat(),
            sorted_ticket_ids(store)[-1],
        )
        assert_settled(h)


def test_empty_customer_page_costs_no_points(tmp_path: Path, store: Store) -> None:
    plan = FaultPlan(
        rules=(
            FaultRule(
                name="no-customers",
                service="heartland",
                kind="empty_page",
                method="GET",
                path="/api/customers",
                times=1,
            ),
        )
    )
    with harness(tmp_path, store, faults=plan, heartland={"page_size": 25}) as h:
        h.transactions(since=since(store))
        h.delivery()

        assert h.sandbox.faults.report()["injected"] == {"no-customers": 1}
        assert_settled(h)


@pytest.mark.parametrize(
    "change",
    [
        {"remove": ["updated_at"]},
        {"set": {"updated_at": None}},
        {"set": {"updated_at": "yesterday"}},
        {"set": {"id": "x-17"}},
    ],
)
def test_unusable_key_at_page_end_is_skipped(
    tmp_path: Path, store: Store, change: dict[str, Any]
) -> None:
    last_of_first_page = sorted_ticket_ids(store)[9]
    patches = {str(last_of_first_page): change}
    plan = FaultPlan(rules=(rule("odd", "patch_records", path="/api/sales/*", patches=patches),))
    with harness(tmp_path, store, faults=plan, heartland={"page_size": 10}) as h:
        summary = h.transactions(since=since(store))
        h.delivery()
        h.store = without(store, last_of_first_page)

        assert summary.invalid != []
        assert_settled(h)


# Clock skew and same-second ties, on an empty store that a register fills as the daemon polls.


@pytest.fixture
def empty_store() -> Store:
    return StoreBuilder(ANCHOR, go_live=ANCHOR - timedelta(days=1)).build()


def ring_and_poll(h: Harness, clock: ManualClock, rounds: int) -> Register:
    """Ring up four sales per round in one second, then poll, as the daemon would."""
    register = Register(h)
    customers = [
        (register.customer(f"skew{n}@example.com"), f"skew{n}@example.com") for n in range(5)
    ]
    for round_number in range(rounds):
        for offset in range(4):
            customer_id, email = customers[(round_number + offset) % len(customers)]
            register.sale(customer_id, email, 10 + round_number + offset)
        clock.advance(1)
        h.transactions(clock=clock.now)
    clock.advance(600)
    h.transactions(clock=clock.now)
    h.delivery()
    return register


def test_skewed_commits_and_ties_all_earn(tmp_path: Path, empty_store: Store) -> None:
    clock = ManualClock(ANCHOR)
    plan = FaultPlan(seed=8, heartland_clock_skew_seconds=4)
    with harness(tmp_path, empty_store, faults=plan, clock=clock, heartland={"page_size": 3}) as h:
        register = ring_and_poll(h, clock, rounds=8)
        orders = accepted(h.records(), "orders")

        assert sorted(o["order_id"] for o in orders) == sorted(f"hl-{t}" for t in register.sales)
        assert {o["order_id"]: o["total_amount_cents"] for o in orders} == {
            f"hl-{ticket_id}": cents for ticket_id, (_, cents) in register.sales.items()
        }


def test_skewed_commits_need_the_overlap(tmp_path: Path, empty_store: Store) -> None:
    # The same run without an overlap window misses tickets: the fault is real, and the
    # overlap is what catches it.
    clock = ManualClock(ANCHOR)
    plan = FaultPlan(seed=8, heartland_clock_skew_seconds=4)
    with harness(
        tmp_path,
        empty_store,
        faults=plan,
        clock=clock,
        heartland={"page_size": 3},
        sync={"overlap_seconds": 0},
    ) as h:
        register = ring_and_poll(h, clock, rounds=8)
        orders = accepted(h.records(), "orders")

        assert len(orders) < len(register.sales)
