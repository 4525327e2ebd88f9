"""Quirks of real Heartland payloads, replayed through the sandbox on loopback.

Each test rings up tickets in an empty sandbox, then changes how the sandbox serves them the
way a real account may (a key left out, a value of another type), and
checks what a catch-up does to points and to the ledger. The servers listen on 127.0.0.1 in
the port range of `tests.ports`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from decimal import Decimal
from pathlib import Path

import pytest

from tests.offers.helpers import FIVE_OFF, LoyaltyStore, restored_logging, write_offer_config
from tests.ports import free_ports
from yotposync.sandbox import Sandbox
from yotposync.sandbox.faults import FaultPlan, FaultRule, RecordPatch

pytestmark = pytest.mark.e2e

EMAIL = "pat@example.com"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LoyaltyStore]:
    heartland_port, yotpo_port = free_ports(2)
    with (
        restored_logging(),
        Sandbox(
            store=None,
            points_per_dollar=Decimal(1),
            heartland_port=heartland_port,
            yotpo_port=yotpo_port,
        ) as sandbox,
    ):
        ledger = tmp_path / "state" / "ledger.sqlite3"
        config = tmp_path / "yotposync.toml"
        write_offer_config(config, sandbox, ledger)
        yield LoyaltyStore(sandbox, config, ledger)


def serve_ticket_with(store: LoyaltyStore, ticket_id: int, patch: RecordPatch) -> None:
    """Make the sandbox serve one ticket with `patch` applied, in lists and on its own."""
    rule = FaultRule(
        name=f"ticket-{ticket_id}",
        service="heartland",
        kind="patch_records",
        method="GET",
        path="/api/sales/tickets*",
        patches={str(ticket_id): patch},
    )
    store.sandbox.faults.set_plan(FaultPlan(rules=(rule,)))


def decision(store: LoyaltyStore, ticket_id: int) -> tuple[str, str]:
    """Return the ledger's (kind, reason) for one ticket."""
    with closing(sqlite3.connect(f"file:{store.ledger}?mode=ro", uri=True)) as db:
        row = db.execute("SELECT kind, reason FROM tickets WHERE id = ?", [ticket_id]).fetchone()
    assert row is not None, f"ticket {ticket_id} is not in the ledger"
    return str(row[0]), str(row[1])


def order_ids(store: LoyaltyStore) -> list[str]:
    return [
        entry["body"]["order_id"]
        for entry in store.records()["orders"]
        if entry["status"] == 200 and not entry["duplicate"]
    ]


# `status`, `completed?` and `voided?` are separate facts.


def test_completed_by_status_only_deducts(store: LoyaltyStore) -> None:
    store.set_options(FIVE_OFF)
    store.member(EMAIL, 1000)
    store.cli("offers", "sync")
    customer = store.customer(EMAIL)
    sale = store.ticket(customer_id=customer, coupon_code="LOYALTY3101", items=[(2, 20.0)])
    serve_ticket_with(store, sale, RecordPatch(remove=("completed?",)))

    store.catch_up()

    deductions = store.adjustments(f"hl-redeem-{sale}")
    assert decision(store, sale)[0] == "sale"
    assert order_ids(store) == [f"hl-{sale}"]
    assert [d["point_adjustment_amount"] for d in deductions] == [-500]
    # 1000 - 500 spent + 35 earned on the $35 paid after the $5 discount.
    assert store.balance(EMAIL) == 535


def test_voided_by_status_only_records_void(store: LoyaltyStore) -> None:
    store.set_options(FIVE_OFF)
    store.member(EMAIL, 1000)
    store.cli("offers", "sync")
    customer = store.customer(EMAIL)
    sale = store.ticket(
        customer_id=customer, coupon_code="LOYALTY3101", items=[(1, 30.0)], complete=False
    )
    serve_ticket_with(store, sale, RecordPatch(set={"status": "voided"}))

    store.catch_up()

    assert decision(store, sale)[0] == "void"
    assert store.adjustments("hl-redeem-") == []
    assert store.balance(EMAIL) == 1000
    with closing(sqlite3.connect(f"file:{store.ledger}?mode=ro", uri=True)) as db:
        state = db.execute("SELECT state FROM redemptions WHERE ticket_id = ?", [sale]).fetchone()
    assert state == ("voided",)
