"""Quirks of real Heartland payloads, replayed through the sandbox on loopback.

Each test rings up tickets in an empty sandbox. Then the sandbox serves them as a real
account may (a key left out, a value of another type, a smaller page size), and the test
checks what a catch-up does to points and to the ledger. The servers listen on 127.0.0.1, on
ports the system picks.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
import requests
from requests.adapters import HTTPAdapter

from tests.offers.conftest import make_store
from tests.offers.helpers import FIVE_OFF, LoyaltyStore
from yotposync.clients.heartland import HeartlandClient
from yotposync.config import sandbox_settings
from yotposync.ledger import Ledger
from yotposync.sandbox import ManualClock, Sandbox
from yotposync.sandbox.faults import FaultPlan, FaultRule, RecordPatch
from yotposync.sync.transactions import CURSOR_NAME, TransactionsJob

pytestmark = pytest.mark.e2e

EMAIL = "pat@example.com"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LoyaltyStore]:
    yield from make_store(tmp_path)


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


# What `coupon_id` holds when a coupon is used is not settled by any source. An id, digits,
# a code and an object with both are read; anything else leaves the sale earning as usual.


@pytest.mark.parametrize(
    "coupon_id",
    ["LOYALTY3101", {"id": 61, "code": "LOYALTY3101"}, 6.1, ["LOYALTY3101"]],
    ids=["code", "object", "number", "array"],
)
def test_coupon_id_of_other_shape_still_earns(store: LoyaltyStore, coupon_id: object) -> None:
    customer = store.customer(EMAIL)
    sale = store.ticket(customer_id=customer, coupon_code=None, items=[(1, 40.0)])
    serve_ticket_with(store, sale, RecordPatch(set={"coupon_id": coupon_id}))

    store.catch_up()

    kind, reason = decision(store, sale)
    assert kind == "sale", reason
    assert order_ids(store) == [f"hl-{sale}"]


@pytest.mark.parametrize(
    "shape",
    ["code", "lower-case code", "object"],
)
def test_loyalty_coupon_named_by_code_deducts(store: LoyaltyStore, shape: str) -> None:
    store.set_options(FIVE_OFF)
    store.member(EMAIL, 1000)
    store.cli("offers", "sync")
    customer = store.customer(EMAIL)
    sale = store.ticket(customer_id=customer, coupon_code="LOYALTY3101", items=[(2, 20.0)])
    served = {
        "code": "LOYALTY3101",
        "lower-case code": "loyalty3101",
        "object": {"code": "LOYALTY3101"},
    }[shape]
    serve_ticket_with(store, sale, RecordPatch(set={"coupon_id": served}))

    store.catch_up()

    deductions = store.adjustments(f"hl-redeem-{sale}")
    assert [d["point_adjustment_amount"] for d in deductions] == [-500]
    assert order_ids(store) == [f"hl-{sale}"]


def test_coupon_id_digit_text_earns(store: LoyaltyStore) -> None:
    customer = store.customer(EMAIL)
    sale = store.ticket(customer_id=customer, coupon_code=None, items=[(1, 40.0)])
    serve_ticket_with(store, sale, RecordPatch(set={"coupon_id": "61"}))

    store.catch_up()

    assert decision(store, sale)[0] == "sale"
    assert order_ids(store) == [f"hl-{sale}"]


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


# Heartland's maximum page size is not documented.


class PageCap(HTTPAdapter):
    """A transport that lowers `per_page` to `cap`, as a server with a smaller maximum does."""

    def __init__(self, cap: int) -> None:
        super().__init__()
        self.cap = cap

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        parts = urlsplit(request.url or "")
        query = []
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key == "per_page" and value.isdigit():
                value = str(min(int(value), self.cap))
            query.append((key, value))
        request.url = urlunsplit(parts._replace(query=urlencode(query)))
        return super().send(request, **kwargs)


ANCHOR = datetime(2025, 5, 1, 15, 0, tzinfo=UTC)


@pytest.fixture
def clocked_sandbox() -> Iterator[tuple[Sandbox, ManualClock]]:
    clock = ManualClock(ANCHOR)
    with Sandbox(store=None, clock=clock) as sandbox:
        yield sandbox, clock


def test_smaller_server_page_reads_every_ticket(
    clocked_sandbox: tuple[Sandbox, ManualClock], tmp_path: Path
) -> None:
    sandbox, clock = clocked_sandbox
    register = requests.Session()
    register.headers["Authorization"] = f"Bearer {sandbox.heartland_token}"
    response = register.post(
        f"{sandbox.heartland_url}/customers",
        json={"first_name": "Pat", "last_name": "Lee", "email": EMAIL},
        timeout=10,
    )
    customer = int(response.headers["Location"].rsplit("/", 1)[1])
    sales = []
    for _ in range(8):
        clock.advance(10)
        body = {
            "station_id": 301,
            "customer_id": customer,
            "status": "complete",
            "lines": [{"type": "ItemLine", "qty": 1, "unit_price": 30}],
        }
        response = register.post(f"{sandbox.heartland_url}/sales/tickets", json=body, timeout=10)
        assert response.status_code == 201, response.text
        sales.append(int(response.headers["Location"].rsplit("/", 1)[1]))

    ledger_path = tmp_path / "state" / "ledger.sqlite3"
    settings = sandbox_settings(
        sandbox.heartland_url,
        sandbox.yotpo_url,
        ledger_path,
        heartland={"page_size": 5},
        sync={"overlap_seconds": 300, "go_live": ANCHOR - timedelta(days=1)},
    )
    # The server returns at most 3 tickets a page, whatever page size is asked for.
    session = requests.Session()
    session.mount("http://", PageCap(3))
    client = HeartlandClient(
        sandbox.heartland_url, sandbox.heartland_token, requests_per_second=0, session=session
    )
    now = ANCHOR + timedelta(hours=1)
    with closing(Ledger.open(ledger_path)) as ledger:
        job = TransactionsJob(settings, ledger, client, clock=lambda: now)
        job.run()
        job.run()

        seen = {int(row[0]) for row in ledger.db.execute("SELECT id FROM tickets")}
        orders = [
            str(row[0]) for row in ledger.db.execute("SELECT push_id FROM pushes ORDER BY seq")
        ]
        cursor = ledger.get_cursor(CURSOR_NAME)
    client.close()

    assert seen == set(sales)
    assert orders == [f"hl-{sale}" for sale in sales]
    assert cursor is not None
    assert cursor.last_id == sales[-1]
