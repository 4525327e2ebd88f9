"""Scripted store scenarios: Heartland edited over HTTP, yotposync run, Yotpo checked each step.

Each test starts an empty sandbox and writes to it as a register would: customers, tickets
with lines, discounts and payments, then completes, edits or voids them with PUT. Between
steps it runs yotposync, mostly in-process through the daemon's own job functions (the
cursor path with its overlap window), and the real process where the process itself is
part of the check. After each step it reads Yotpo balances and the requests Yotpo received.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.conftest import (
    API_KEY,
    GUID,
    POINTS_PER_DOLLAR,
    TOKEN,
    DrainedPopen,
    cli_environment,
    write_config,
)
from yotposync.app import CatchUpResult, heartland_client, run_catch_up, utc_now, yotpo_client
from yotposync.config import load_settings
from yotposync.ledger import Ledger
from yotposync.logs import mask_email
from yotposync.ops.explain import Explanation, add_balance, explain_ticket, format_explanation
from yotposync.sandbox import ManualClock, Sandbox
from yotposync.sync.delivery import DeliveryJob
from yotposync.sync.transactions import TransactionsJob, TransactionsSummary

pytestmark = pytest.mark.e2e

ANCHOR = datetime(2025, 5, 1, 15, 0, tzinfo=UTC)
GO_LIVE = ANCHOR - timedelta(days=1)
SINCE = (GO_LIVE - timedelta(days=7)).date().isoformat()
TIMEOUT = 10

# Stations of the sandbox's standard locations: 301 and 302 are at location 201,
# 303 and 304 at location 202, 305 and 306 at location 203.
DOWNTOWN_STATION = 301
LAKESIDE_STATION = 303
MOUNTAIN_VIEW_STATION = 305


def item(price: float, qty: int = 1, name: str = "Canvas Tote", **extra: Any) -> dict[str, Any]:
    """Build an item line as the register sends it. A negative `qty` returns the item."""
    return {
        "type": "ItemLine",
        "item_id": 4400 + len(name),
        "description": name,
        "qty": qty,
        "unit_price": price,
        **extra,
    }


@dataclass(frozen=True)
class LedgerDecision:
    """A ticket's row in the ledger."""

    kind: str
    rule: str | None
    reason: str
    earn_cents: int
    return_cents: int


class Shop:
    """One empty sandbox, a config file and a ledger, with the steps a store and yotposync take."""

    def __init__(self, sandbox: Sandbox, clock: ManualClock, tmp: Path) -> None:
        self.sandbox = sandbox
        self.clock = clock
        self.ledger = tmp / "state" / "ledger.sqlite3"
        self.config = tmp / "yotposync.toml"
        write_config(self.config, sandbox, self.ledger, GO_LIVE)
        self.heartland = requests.Session()
        self.heartland.headers["Authorization"] = f"Bearer {TOKEN}"

    # Configuration

    def configure(self, section: str, **values: Any) -> None:
        """Add keys to a section of the config file, for every later run to read."""
        header = f"[{section}]\n"
        text = self.config.read_text()
        assert header in text, f"no [{section}] section in the config"
        added = "".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items())
        self.config.write_text(text.replace(header, header + added, 1))

    # Heartland, written as a register does

    def _send(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.heartland.request(
            method, f"{self.sandbox.heartland_url}{path}", json=body, timeout=TIMEOUT
        )
        assert response.status_code in (200, 201), f"{method} {path}: {response.text}"
        return response

    def _created_id(self, response: requests.Response) -> int:
        return int(response.headers["Location"].rsplit("/", 1)[1])

    def customer(
        self, email: str | None, public_id: str | None = None, **custom: str | None
    ) -> int:
        body: dict[str, Any] = {"first_name": "Pat", "last_name": "Lee", "email": email}
        if public_id is not None:
            body["public_id"] = public_id
        if custom:
            body["custom"] = custom
        return self._created_id(self._send("POST", "/customers", body))

    def ring_up(
        self,
        *lines: dict[str, Any],
        customer: int | None = None,
        station: int = DOWNTOWN_STATION,
        **fields: Any,
    ) -> int:
        """Open a ticket, pay its total and complete it as a cashier does, and return its id."""
        body = {"station_id": station, "customer_id": customer, "lines": list(lines), **fields}
        ticket_id = self._created_id(self._send("POST", "/sales/tickets", body))
        total = self.ticket(ticket_id)["total"]
        if total:
            self._send("POST", f"/sales/tickets/{ticket_id}/payments", {"amount": total})
        self.edit(ticket_id, status="complete")
        return ticket_id

    def import_completed(self, *lines: dict[str, Any], customer: int, completed_at: str) -> int:
        """Create a ticket that is already complete, as the vendor's history importer does."""
        body = {
            "station_id": DOWNTOWN_STATION,
            "customer_id": customer,
            "status": "complete",
            "completed_at": completed_at,
            "lines": list(lines),
        }
        return self._created_id(self._send("POST", "/sales/tickets", body))

    def ticket(self, ticket_id: int) -> dict[str, Any]:
        body: dict[str, Any] = self._send("GET", f"/sales/tickets/{ticket_id}").json()
        return body

    def edit(self, ticket_id: int, **fields: Any) -> None:
        self._send("PUT", f"/sales/tickets/{ticket_id}", fields)

    def add_line(self, ticket_id: int, line: dict[str, Any]) -> None:
        self._send("POST", f"/sales/tickets/{ticket_id}/lines", line)

    def advance_clock(self, seconds: float = 60) -> None:
        """Move the store's clock on, so the next change has a later `updated_at`."""
        self.clock.advance(seconds)

    # yotposync

    def sync(self) -> TransactionsSummary:
        """Run the transactions job from the stored cursor, then the delivery job, in-process.

        These are the two jobs the daemon runs on each interval, built from the same config.
        """
        settings = load_settings(self.config, environ={})
        with closing(Ledger.open(settings.ledger.path)) as ledger:
            heartland = heartland_client(settings)
            summary = TransactionsJob(settings, ledger, heartland, clock=utc_now).run()
            DeliveryJob(settings, ledger, yotpo_client(settings), clock=utc_now).run()
        return summary

    def catch_up(self) -> CatchUpResult:
        """Run the same catch-up as `yotposync catch-up --since SINCE`, in-process."""
        since = datetime.fromisoformat(SINCE).replace(tzinfo=UTC)
        return run_catch_up(load_settings(self.config, environ={}), since=since, until=None)

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "yotposync", "--config", str(self.config), *args],
            capture_output=True,
            text=True,
            timeout=120,
            env=cli_environment(),
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"yotposync {' '.join(args)} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return DrainedPopen(
            [sys.executable, "-m", "yotposync", "--config", str(self.config), *args]
        )

    def _query(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        """Read the ledger through a read-only connection of its own."""
        with closing(sqlite3.connect(f"file:{self.ledger}?mode=ro", uri=True)) as db:
            return db.execute(sql, params).fetchall()

    def decision(self, ticket_id: int) -> LedgerDecision:
        rows = self._query(
            "SELECT kind, rule, reason, earn_cents, return_cents FROM tickets WHERE id = ?",
            ticket_id,
        )
        assert rows, f"ticket {ticket_id} is not in the ledger"
        return LedgerDecision(*rows[0])

    def transactions_runs(self) -> list[dict[str, Any]]:
        """Summaries of the finished transactions runs, oldest first."""
        rows = self._query(
            "SELECT summary FROM runs WHERE job = 'transactions' AND outcome = 'ok' ORDER BY id"
        )
        return [json.loads(row[0]) for row in rows]

    # Yotpo

    def balance(self, email: str) -> int:
        response = requests.get(
            f"{self.sandbox.yotpo_url}/customers",
            params={"customer_email": email},
            headers={"x-guid": GUID, "x-api-key": API_KEY},
            timeout=TIMEOUT,
        )
        if response.status_code == 404:
            return 0
        response.raise_for_status()
        return int(response.json()["points_balance"])

    def records(self) -> dict[str, list[dict[str, Any]]]:
        response = requests.get(
            f"{self.sandbox.yotpo_admin_url}/records",
            headers={"x-guid": GUID, "x-api-key": API_KEY},
            timeout=TIMEOUT,
        )
        response.raise_for_status()
        body: dict[str, list[dict[str, Any]]] = response.json()
        return body

    def orders(self) -> list[tuple[str, str, int]]:
        """Orders Yotpo applied, as (order_id, customer_email, total_amount_cents)."""
        return [
            (body["order_id"], body["customer_email"], body["total_amount_cents"])
            for body in _applied(self.records()["orders"])
        ]

    def refunds(self) -> list[tuple[str, str, int]]:
        """Refunds Yotpo applied, as (id, order_id, total_amount_cents)."""
        return [
            (body["id"], body["order_id"], body["total_amount_cents"])
            for body in _applied(self.records()["refunds"])
        ]

    def requests_received(self) -> int:
        """Orders and refunds Yotpo received, repeats and rejected ones included."""
        records = self.records()
        return len(records["orders"]) + len(records["refunds"])

    def rejected(self) -> list[dict[str, Any]]:
        records = self.records()
        return [e for kind in ("orders", "refunds") for e in records[kind] if e["status"] != 200]


def _applied(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e["body"] for e in entries if e["status"] == 200 and not e["duplicate"]]


def points_for(cents: int) -> int:
    """Points the sandbox awards for an order of `cents`."""
    return int(cents * POINTS_PER_DOLLAR) // 100


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Shop]:
    clock = ManualClock(ANCHOR)
    with Sandbox(store=None, points_per_dollar=POINTS_PER_DOLLAR, clock=clock) as sandbox:
        yield Shop(sandbox, clock, tmp_path)


# Earning on sales


def test_sale_earns_once_across_catch_ups(shop: Shop) -> None:
    pat = shop.customer("pat@example.com")
    sale = shop.ring_up(item(30, qty=2), customer=pat)

    first = shop.cli("catch-up", "--since", SINCE)

    assert "Delivered: 1 confirmed" in first.stdout
    assert shop.orders() == [(f"hl-{sale}", "pat@example.com", 6000)]
    assert shop.balance("pat@example.com") == points_for(6000)

    second = shop.catch_up()

    assert len(second.transactions.planned) == 0
    assert shop.requests_received() == 1
    assert shop.balance("pat@example.com") == points_for(6000)


def test_overlap_rewalk_earns_nothing(shop: Shop) -> None:
    pat = shop.customer("pat@example.com")
    sam = shop.customer("sam@example.com")
    first = shop.ring_up(item(30), customer=pat)
    shop.sync()
    assert shop.orders() == [(f"hl-{first}", "pat@example.com", 3000)]

    shop.advance_clock(60)
    second = shop.ring_up(item(20), customer=sam)
    summary = shop.sync()

    # The cursor stood at the first sale, so the overlap window walked it again.
    assert summary.tickets == 2
    assert shop.orders() == [
        (f"hl-{first}", "pat@example.com", 3000),
        (f"hl-{second}", "sam@example.com", 2000),
    ]
    assert shop.requests_received() == 2
    assert shop.balance("pat@example.com") == points_for(3000)


def test_customer_attached_after_completion_earns(shop: Shop) -> None:
    pat = shop.customer("pat@example.com")
    sale = shop.ring_up(item(45))
    shop.sync()
    assert shop.decision(sale).kind == "no_customer"
    assert shop.orders() == []

    shop.advance_clock()
    shop.edit(sale, customer_id=pat)
    shop.sync()

    assert shop.decision(sale).kind == "sale"
    assert shop.orders() == [(f"hl-{sale}", "pat@example.com", 4500)]
    assert shop.balance("pat@example.com") == points_for(4500)


def test_amount_edits_send_only_difference(shop: Shop) -> None:
    pat = shop.customer("pat@example.com")
    sale = shop.ring_up(item(50), customer=pat)
    shop.sync()
    assert shop.orders() == [(f"hl-{sale}", "pat@example.com", 5000)]

    shop.advance_clock()
    shop.add_line(sale, item(20, name="Ceramic Mug"))
    shop.sync()

    assert shop.orders() == [
        (f"hl-{sale}", "pat@example.com", 5000),
        (f"hl-{sale}-2", "pat@example.com", 2000),
    ]
    assert shop.refunds() == []
    assert shop.balance("pat@example.com") == points_for(5000) + points_for(2000)

    # A correction line brings the sale down to 10.00, so 6000 cents come back, oldest first.
    shop.advance_clock()
    shop.add_line(sale, item(-60, name="Price correction"))
    shop.sync()

    assert shop.refunds() == [
        (f"hl-adj-{sale}-1", f"hl-{sale}", 5000),
        (f"hl-adj-{sale}-2", f"hl-{sale}-2", 1000),
    ]
    assert shop.balance("pat@example.com") == points_for(1000)

    shop.advance_clock()
    shop.add_line(sale, item(5, name="Gift Wrap"))
    shop.sync()

    assert shop.orders()[-1] == (f"hl-{sale}-3", "pat@example.com", 500)
    assert shop.balance("pat@example.com") == points_for(1500)
    assert shop.rejected() == []


def test_sale_voided_after_completion_refunds_in_full(shop: Shop) -> None:
    pat = shop.customer("pat@example.com")
    sale = shop.ring_up(item(30, qty=2), customer=pat, discounts=[{"amount": 5}])
    shop.sync()
    assert shop.orders() == [(f"hl-{sale}", "pat@example.com", 5500)]

    shop.advance_clock()
    shop.edit(sale, **{"voided?": True})
    shop.sync()

    assert shop.decision(sale).kind == "void"
    assert shop.refunds() == [(f"hl-adj-{sale}-1", f"hl-{sale}", 5500)]
    assert shop.balance("pat@example.com") == 0


def test_discounted_sale_earns_net_amount(shop: Shop) -> None:
    pat = shop.customer("pat@example.com")
    tote = {
        "type": "ItemLine",
        "item_id": 4401,
        "description": "Canvas Tote",
        "qty": 2,
        "original_unit_price": 30,
        "price_adjustments": [{"delta_price": -3}],
    }
    mug = item(14.5, name="Ceramic Mug")
    sale = shop.ring_up(tote, mug, customer=pat, discounts=[{"amount": 5}])
    shop.sync()

    # 2 x 27.00 after the markdown, plus 14.50, minus 5.00 off the ticket.
    assert shop.orders() == [(f"hl-{sale}", "pat@example.com", 6350)]
    assert shop.records()["orders"][0]["body"]["discount_amount_cents"] == 500
    assert shop.balance("pat@example.com") == points_for(6350)


@pytest.mark.parametrize(
    ("setting", "expected_cents"),
    [
        (None, 4000),
        ("include_tax", 4330),
        ("include_shipping", 4750),
        ("include_gift_cards", 6500),
    ],
)
def test_extra_lines_count_only_when_included(
    shop: Shop, setting: str | None, expected_cents: int
) -> None:
    if setting is not None:
        shop.configure("sync", **{setting: True})
    pat = shop.customer("pat@example.com")
    sale = shop.ring_up(
        item(40),
        {"type": "TaxLine", "description": "Sales Tax", "value": 3.3},
        {"type": "ShippingLine", "description": "Delivery", "value": 7.5},
        {"type": "GiftCardLine", "description": "Gift card", "qty": 1, "unit_price": 25},
        customer=pat,
    )
    shop.sync()

    assert shop.orders() == [(f"hl-{sale}", "pat@example.com", expected_cents)]
    assert shop.balance("pat@example.com") == points_for(expected_cents)


# Tickets and customers that must not earn


def test_customer_without_email_earns_nothing(shop: Shop) -> None:
    walk_up = shop.customer(None)
    sale = shop.ring_up(item(30), customer=walk_up)
    shop.sync()

    assert shop.decision(sale).kind == "no_email"
    assert shop.orders() == []
    assert shop.records()["orders"] == []


def test_walk_in_and_staff_customers_earn_nothing(shop: Shop) -> None:
    cash = shop.customer("frontdesk@example.com", public_id="CASH")
    staff = shop.customer("dana@example.com", staff="yes")
    pat = shop.customer("pat@example.com")
    cash_sale = shop.ring_up(item(30), customer=cash)
    staff_sale = shop.ring_up(item(30), customer=staff)
    sale = shop.ring_up(item(30), customer=pat)
    shop.sync()

    assert shop.decision(cash_sale).rule == "customer_public_id=CASH"
    assert shop.decision(staff_sale).rule == "customer_custom:staff=yes"
    assert shop.orders() == [(f"hl-{sale}", "pat@example.com", 3000)]
    assert shop.balance("frontdesk@example.com") == 0
    assert shop.balance("dana@example.com") == 0


def test_minimum_amount_rule(shop: Shop) -> None:
    shop.configure("rules", minimum_amount_cents=1000)
    pat = shop.customer("pat@example.com")
    small = shop.ring_up(item(9.99), customer=pat)
    enough = shop.ring_up(item(10), customer=pat)
    shop.sync()

    assert shop.decision(small).rule == "minimum_amount_cents=1000"
    assert shop.orders() == [(f"hl-{enough}", "pat@example.com", 1000)]
    assert shop.balance("pat@example.com") == points_for(1000)


def test_location_and_station_rules(shop: Shop) -> None:
    shop.configure("rules", exclude_location_ids=[202], exclude_station_ids=[305])
    pat = shop.customer("pat@example.com")
    lakeside = shop.ring_up(item(30), customer=pat, station=LAKESIDE_STATION)
    mountain = shop.ring_up(item(30), customer=pat, station=MOUNTAIN_VIEW_STATION)
    # Rung up downtown, but the sale is credited to the excluded location.
    credited = shop.ring_up(item(30), customer=pat, source_location_id=202)
    downtown = shop.ring_up(item(30), customer=pat)
    shop.sync()

    assert shop.decision(lakeside).rule == "location_id=202"
    assert shop.decision(mountain).rule == "station_id=305"
    assert shop.decision(credited).rule == "location_id=202"
    assert shop.orders() == [(f"hl-{downtown}", "pat@example.com", 3000)]

    shop.advance_clock()
    returned = shop.ring_up(
        item(30, qty=-1), customer=pat, type="Return", parent_transaction_id=lakeside
    )
    shop.sync()

    assert shop.decision(returned).kind == "excluded"
    assert shop.refunds() == []
    assert shop.balance("pat@example.com") == points_for(3000)


def test_late_ticket_before_go_live_earns_nothing(shop: Shop) -> None:
    pat = shop.customer("pat@example.com")
    shop.ring_up(item(20), customer=pat)
    shop.sync()

    # Imported after the cursor moved on, with a completion time before go-live.
    shop.advance_clock()
    completed = (GO_LIVE - timedelta(hours=2)).isoformat()
    late = shop.import_completed(item(80), customer=pat, completed_at=completed)
    shop.sync()

    assert shop.decision(late).kind == "before_go_live"
    assert len(shop.orders()) == 1
    assert shop.balance("pat@example.com") == points_for(2000)


# Returns, voids and exchanges


def test_partial_returns_never_exceed_earned(shop: Shop) -> None:
    pat = shop.customer("pat@example.com")
    # 3 x 20.00 less 6.00 off the ticket: 54.00 earned, so each returned item is worth 18.00.
    sale = shop.ring_up(item(20, qty=3), customer=pat, discounts=[{"amount": 6}])
    shop.sync()
    assert shop.orders() == [(f"hl-{sale}", "pat@example.com", 5400)]

    shop.advance_clock()
    first = shop.ring_up(item(20, qty=-1), customer=pat, type="Return", parent_transaction_id=sale)
    shop.sync()

    assert shop.refunds() == [(f"hl-ret-{first}", f"hl-{sale}", 1800)]
    assert shop.balance("pat@example.com") == points_for(5400) - points_for(1800)

    # Three more returned, though only two were left: the refund stops at what is left.
    shop.advance_clock()
    second = shop.ring_up(item(20, qty=-3), customer=pat, type="Return", parent_transaction_id=sale)
    shop.sync()

    assert shop.refunds()[1:] == [(f"hl-ret-{second}", f"hl-{sale}", 3600)]
    assert shop.balance("pat@example.com") == 0

    shop.advance_clock()
    third = shop.ring_up(item(20, qty=-1), customer=pat, type="Return", parent_transaction_id=sale)
    shop.sync()

    assert [r for r in shop.refunds() if r[0] == f"hl-ret-{third}"] == []
    assert sum(r[2] for r in shop.refunds()) == 5400
    assert shop.rejected() == []


def test_discounted_sale_returned_item_by_item(shop: Shop) -> None:
    pat = shop.customer("pat@example.com")
    # 3 x 10.00 less 5.00 off the ticket: 25.00 earned, 8.33 1/3 per item.
    sale = shop.ring_up(item(10, qty=3), customer=pat, discounts=[{"amount": 5}])
    shop.sync()
    returns = []
    for _ in range(3):
        shop.advance_clock()
        returns.append(
            shop.ring_up(item(10, qty=-1), customer=pat, type="Return", parent_transaction_id=sale)
        )
        shop.sync()

    # Each return is within a cent of its share, and together they take back all 25.00.
    assert shop.refunds() == [
        (f"hl-ret-{returns[0]}", f"hl-{sale}", 833),
        (f"hl-ret-{returns[1]}", f"hl-{sale}", 833),
        (f"hl-ret-{returns[2]}", f"hl-{sale}", 834),
    ]
    assert shop.balance("pat@example.com") == 0


def test_returns_read_together_round_in_completion_order(shop: Shop) -> None:
    pat = shop.customer("pat@example.com")
    sale = shop.ring_up(item(10, qty=3), customer=pat, discounts=[{"amount": 5}])
    shop.sync()
    shop.advance_clock()
    two = shop.ring_up(item(10, qty=-2), customer=pat, type="Return", parent_transaction_id=sale)
    shop.advance_clock()
    one = shop.ring_up(item(10, qty=-1), customer=pat, type="Return", parent_transaction_id=sale)
    shop.sync()
    # Read again in the overlap window: the same decisions, nothing new to send.
    shop.advance_clock()
    shop.sync()

    assert shop.refunds() == [
        (f"hl-ret-{two}", f"hl-{sale}", 1666),
        (f"hl-ret-{one}", f"hl-{sale}", 834),
    ]
    assert shop.decision(two).return_cents == 1666
    assert shop.decision(one).return_cents == 834
    assert shop.balance("pat@example.com") == 0


def test_sale_moved_after_return_credits_only_rest(shop: Shop) -> None:
    pat = shop.customer("pat@example.com")
    sam = shop.customer("sam@example.com")
    sale = shop.ring_up(item(60), item(40, name="Mug"), customer=pat)
    shop.sync()
    shop.advance_clock()
    shop.ring_up(
        item(40, qty=-1, name="Mug"), customer=pat, type="Return", parent_transaction_id=sale
    )
    shop.sync()
    assert shop.balance("pat@example.com") == points_for(6000)

    # The sale is moved to another customer: only the 60.00 not returned moves with it.
    shop.advance_clock()
    shop.edit(sale, customer_id=sam)
    shop.sync()

    assert shop.balance("pat@example.com") == 0
    assert shop.balance("sam@example.com") == points_for(6000)
    assert [o for o in shop.orders() if o[1] == "sam@example.com"] == [
        (f"hl-{sale}-2", "sam@example.com", 6000)
    ]
    assert shop.rejected() == []


def test_fully_returned_sale_moved_credits_nothing(shop: Shop) -> None:
    pat = shop.customer("pat@example.com")
    sam = shop.customer("sam@example.com")
    sale = shop.ring_up(item(50), customer=pat)
    shop.sync()
    shop.advance_clock()
    shop.ring_up(item(50, qty=-1), customer=pat, type="Return", parent_transaction_id=sale)
    shop.sync()

    shop.advance_clock()
    shop.edit(sale, customer_id=sam)
    shop.sync()

    assert shop.balance("pat@example.com") == 0
    assert shop.balance("sam@example.com") == 0
    assert [o for o in shop.orders() if o[1] == "sam@example.com"] == []


def test_void_after_partial_return_nets_zero(shop: Shop) -> None:
    pat = shop.customer("pat@example.com")
    sale = shop.ring_up(item(20, qty=2), customer=pat)
    shop.sync()

    shop.advance_clock()
    returned = shop.ring_up(
        item(20, qty=-1), customer=pat, type="Return", parent_transaction_id=sale
    )
    shop.sync()
    assert shop.refunds() == [(f"hl-ret-{returned}", f"hl-{sale}", 2000)]

    shop.advance_clock()
    shop.edit(sale, **{"voided?": True})
    shop.sync()

    assert shop.refunds()[1:] == [(f"hl-adj-{sale}-1", f"hl-{sale}", 2000)]
    assert shop.balance("pat@example.com") == 0
    assert shop.orders() == [(f"hl-{sale}", "pat@example.com", 4000)]


def return_one(shop: Shop, sale: int, customer: int, price: float) -> int:
    """Ring up a return of one item of `sale` and sync it."""
    shop.advance_clock()
    returned = shop.ring_up(
        item(price, qty=-1), customer=customer, type="Return", parent_transaction_id=sale
    )
    shop.sync()
    return returned


def void(shop: Shop, ticket_id: int) -> None:
    shop.advance_clock()
    shop.edit(ticket_id, **{"voided?": True})
    shop.sync()


def test_return_voided_after_sale_voided_restores_nothing(shop: Shop) -> None:
    pat = shop.customer("pat@example.com")
    sale = shop.ring_up(item(20, qty=3), customer=pat)
    shop.sync()
    returned = return_one(shop, sale, pat, 20)
    void(shop, sale)
    assert shop.balance("pat@example.com") == 0

    void(shop, returned)

    assert shop.balance("pat@example.com") == 0
    assert [o for o in shop.orders() if o[0].startswith("hl-rst-")] == []


def test_sale_voided_after_return_voided_takes_all(shop: Shop) -> None:
    pat = shop.customer("pat@example.com")
    sale = shop.ring_up(item(10, qty=3), customer=pat)
    shop.sync()
    returned = return_one(shop, sale, pat, 10)
    void(shop, returned)
    assert shop.balance("pat@example.com") == points_for(3000)

    void(shop, sale)

    assert shop.balance("pat@example.com") == 0


def test_sale_moved_after_return_voided_moves_all(shop: Shop) -> None:
    pat = shop.customer("pat@example.com")
    sam = shop.customer("sam@example.com")
    sale = shop.ring_up(item(10, qty=3), customer=pat)
    shop.sync()
    returned = return_one(shop, sale, pat, 10)
    void(shop, returned)

    shop.advance_clock()
    shop.edit(sale, customer_id=sam)
    shop.sync()

    assert shop.balance("pat@example.com") == 0
    assert shop.balance("sam@example.com") == points_for(3000)


def test_return_voided_after_move_restores_to_new_customer(shop: Shop) -> None:
    pat = shop.customer("pat@example.com")
    sam = shop.customer("sam@example.com")
    kim = shop.customer("kim@example.com")
    sale = shop.ring_up(item(25, qty=4), customer=pat)
    shop.sync()
    returned = return_one(shop, sale, pat, 25)
    shop.advance_clock()
    shop.edit(sale, customer_id=sam)
    shop.sync()
    assert shop.balance("sam@example.com") == points_for(7500)

    void(shop, returned)

    assert shop.balance("pat@example.com") == 0
    assert shop.balance("sam@example.com") == points_for(10000)

    # A later move takes the restored part along.
    shop.advance_clock()
    shop.edit(sale, customer_id=kim)
    shop.sync()

    assert shop.balance("sam@example.com") == 0
    assert shop.balance("kim@example.com") == points_for(10000)
    assert shop.rejected() == []


def test_voided_return_restores_when_sale_earns_again(shop: Shop) -> None:
    pat = shop.customer("pat@example.com")
    sale = shop.ring_up(item(20, qty=3), customer=pat)
    shop.sync()
    returned = return_one(shop, sale, pat, 20)
    shop.advance_clock()
    shop.edit(sale, customer_id=None)
    shop.sync()
    assert shop.balance("pat@example.com") == 0

    # Voided while the sale credits no customer: there is no one to give the refund back to.
    void(shop, returned)
    assert shop.balance("pat@example.com") == 0
    # Other sales move the cursor on, so the next walk no longer reads the voided return.
    shop.advance_clock(3600)
    shop.ring_up(item(5), customer=shop.customer("sam@example.com"))
    shop.sync()

    # The customer is put back on the sale: it earns in full, the return no longer counts.
    shop.advance_clock()
    shop.edit(sale, customer_id=pat)
    shop.sync()

    assert shop.balance("pat@example.com") == points_for(6000)
    assert shop.rejected() == []


def test_capped_return_tops_up_after_earlier_void(shop: Shop) -> None:
    pat = shop.customer("pat@example.com")
    sale = shop.ring_up(item(20, qty=3), customer=pat)
    shop.sync()
    shop.advance_clock()
    first = shop.ring_up(item(20, qty=-2), customer=pat, type="Return", parent_transaction_id=sale)
    shop.sync()
    shop.advance_clock()
    second = shop.ring_up(item(20, qty=-2), customer=pat, type="Return", parent_transaction_id=sale)
    shop.sync()
    # The second return is capped at the 20.00 the sale still held.
    assert shop.balance("pat@example.com") == 0
    capped = format_explanation(explained(shop, second))
    assert "eligible amount: 40.00 taken back\n  refunds so far: 20.00, capped at" in capped

    void(shop, first)

    # In the same run, the second return takes its whole 40.00 from what the void gave back.
    assert shop.balance("pat@example.com") == points_for(2000)
    assert shop.rejected() == []

    # `explain` on the sale lists the restore and the refund taken from it.
    ledger = Ledger.open_read_only(shop.ledger)
    try:
        explanation = explain_ticket(ledger, sale)
    finally:
        ledger.close()
    restore = f"hl-rst-{first}-1"
    assert [(p.push_id, p.amount_cents) for p in explanation.restores_from_returns] == [
        (restore, 4000)
    ]
    refunds = explanation.refunds_from_returns
    assert [(p.target_order_id, p.amount_cents) for p in refunds][-1] == (restore, 2000)
    text = format_explanation(explanation)
    assert f"Given back to this sale by voided returns (1):\n  order {restore} (restore)" in text
    assert f", customer {pat}: sale" in text


def test_over_return_explains_nothing_taken(shop: Shop) -> None:
    pat = shop.customer("pat@example.com")
    mugs = item(17.5, qty=2, name="Mug")
    sale = shop.ring_up(mugs, customer=pat)
    shop.sync()
    returned = {**mugs, "qty": -2}
    shop.advance_clock()
    first = shop.ring_up(returned, customer=pat, type="Return", parent_transaction_id=sale)
    shop.sync()
    shop.advance_clock()
    second = shop.ring_up(returned, customer=pat, type="Return", parent_transaction_id=sale)
    shop.sync()

    text = format_explanation(explained(shop, second))
    assert "eligible amount: 35.00 taken back\n" in text
    assert (
        "  took back nothing: the return was decided at 35.00, but sale "
        f"{sale} had nothing left to take back."
    ) in text
    assert "Pushes: none" in text
    assert "refunds so far" not in text

    # After the first return is voided, the second takes back all of its 35.00.
    void(shop, first)
    topped_up = format_explanation(explained(shop, second))
    assert "took back nothing" not in topped_up
    assert "refunds so far" not in topped_up


def explained(shop: Shop, ticket_id: int) -> Explanation:
    """Explain a ticket from the shop's ledger, with the balances Yotpo reports."""
    ledger = Ledger.open_read_only(shop.ledger)
    try:
        explanation = explain_ticket(ledger, ticket_id)
    finally:
        ledger.close()
    yotpo = yotpo_client(load_settings(shop.config))
    try:
        add_balance(explanation, yotpo)
    finally:
        yotpo.close()
    return explanation


def test_explain_return_own_refund_figures(shop: Shop) -> None:
    pat = shop.customer("pat@example.com")
    sam = shop.customer("sam@example.com")
    sale = shop.ring_up(item(25, qty=4), customer=pat)
    shop.sync()
    first = return_one(shop, sale, pat, 25)
    shop.advance_clock()
    # Rung up for another customer by mistake: the refund still goes to the sale's customer.
    second = shop.ring_up(item(25, qty=-2), customer=sam, type="Return", parent_transaction_id=sale)
    shop.sync()
    shop.advance_clock()
    third = shop.ring_up(item(25, qty=-2), customer=pat, type="Return", parent_transaction_id=sale)
    shop.sync()
    void(shop, second)
    assert shop.balance("pat@example.com") == points_for(2500)

    after_first = points_for(7500)
    after_second = after_first - points_for(5000)
    figures = {
        first: [(f"hl-ret-{first}", -points_for(2500), after_first)],
        second: [(f"hl-ret-{second}", -points_for(5000), after_second)],
        # Capped at the 25.00 left, then topped up from what the void of the second gave back.
        third: [
            (f"hl-ret-{third}", -points_for(2500), 0),
            (f"hl-ret-{third}-2", -points_for(2500), points_for(2500)),
        ],
    }
    for ticket_id, expected in figures.items():
        explanation = explained(shop, ticket_id)
        pushes_figures = [(p.push_id, p.points, p.balance_after) for p in explanation.pushes]
        assert pushes_figures[: len(expected)] == expected, ticket_id
        assert explanation.balance_customer == mask_email("pat@example.com"), ticket_id

    # The text names the customer a push went to when it is not the ticket's own.
    text = format_explanation(explained(shop, second))
    assert f"hl-ret-{second} (return) against hl-{sale} to {mask_email('pat@example.com')}:" in text


def test_explain_moved_sale_shows_both_customers(shop: Shop) -> None:
    pat = shop.customer("pat@example.com")
    sam = shop.customer("sam@example.com")
    sale = shop.ring_up(item(30), customer=pat)
    shop.sync()
    shop.advance_clock()
    shop.edit(sale, customer_id=sam)
    shop.sync()

    explanation = explained(shop, sale)

    figures = {p.push_id: (p.points, p.balance_after) for p in explanation.pushes}
    assert figures == {
        f"hl-{sale}": (points_for(3000), points_for(3000)),
        f"hl-adj-{sale}-1": (-points_for(3000), 0),
        f"hl-{sale}-2": (points_for(3000), points_for(3000)),
    }
    assert explanation.balance_customer == mask_email("sam@example.com")


def test_return_of_web_order_takes_nothing(shop: Shop) -> None:
    pat = shop.customer("pat@example.com")
    web = shop.ring_up(item(40), customer=pat, custom={"web_order_no": "W-1001"})
    shop.sync()
    assert shop.decision(web).rule == "ticket_custom:web_order_no present"
    assert shop.orders() == []

    shop.advance_clock()
    returned = shop.ring_up(
        item(40, qty=-1), customer=pat, type="Return", parent_transaction_id=web
    )
    shop.sync()

    decided = shop.decision(returned)
    assert decided.kind == "excluded"
    assert decided.rule == "ticket_custom:web_order_no present"
    assert shop.refunds() == []


def test_blind_return_takes_nothing(shop: Shop) -> None:
    pat = shop.customer("pat@example.com")
    shop.ring_up(item(40), customer=pat)
    shop.sync()

    shop.advance_clock()
    blind = shop.ring_up(item(40, qty=-1), customer=pat, type="Return")
    shop.sync()

    assert shop.decision(blind).kind == "blind_return"
    assert shop.refunds() == []
    assert shop.balance("pat@example.com") == points_for(4000)


def test_exchange_refunds_returned_and_orders_new(shop: Shop) -> None:
    pat = shop.customer("pat@example.com")
    sale = shop.ring_up(item(30, qty=2), customer=pat)
    shop.sync()

    shop.advance_clock()
    exchange = shop.ring_up(
        item(30, qty=-1),
        item(14.5, name="Ceramic Mug"),
        customer=pat,
        type="Return",
        parent_transaction_id=sale,
    )
    shop.sync()

    assert shop.decision(exchange).kind == "exchange"
    assert shop.orders()[1:] == [(f"hl-{exchange}", "pat@example.com", 1450)]
    assert shop.refunds() == [(f"hl-ret-{exchange}", f"hl-{sale}", 3000)]
    expected = points_for(6000) - points_for(3000) + points_for(1450)
    assert shop.balance("pat@example.com") == expected


# Records that cannot be read


def test_invalid_ticket_recorded_and_others_earn(shop: Shop) -> None:
    pat = shop.customer("pat@example.com")
    before = shop.ring_up(item(25), customer=pat)
    # The sandbox accepts the line, but yotposync rejects quantities above one million.
    broken = shop.ring_up(item(0.01, qty=2_000_000, name="Bulk Pins"), customer=pat)
    after = shop.ring_up(item(35), customer=pat)

    catch_up = shop.cli("catch-up", "--since", SINCE)

    assert "invalid qty 2000000" in catch_up.stdout
    assert shop.orders() == [
        (f"hl-{before}", "pat@example.com", 2500),
        (f"hl-{after}", "pat@example.com", 3500),
    ]
    decided = shop.decision(broken)
    assert decided.kind == "invalid"
    assert "invalid qty 2000000" in decided.reason

    status = shop.cli("status").stdout

    assert f"ticket {broken}" in status
    assert "invalid qty 2000000" in status
    assert "invalid 1" in status


# The daemon


def wait_for(condition: Callable[[], bool], seconds: float = 30) -> bool:
    """Poll `condition()` until it is true or `seconds` pass, and return its last value."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return bool(condition())


def test_daemon_earns_then_refunds_void(shop: Shop) -> None:
    pat = shop.customer("pat@example.com")
    daemon = shop.popen("run")
    try:
        sale = shop.ring_up(item(30, qty=2), customer=pat)
        assert wait_for(lambda: shop.balance("pat@example.com") == points_for(6000))

        shop.advance_clock()
        shop.edit(sale, **{"voided?": True})
        assert wait_for(lambda: shop.refunds() != [])

        # Two more polls walk the voided sale again in the overlap window.
        seen = len(shop.transactions_runs())
        assert wait_for(lambda: len(shop.transactions_runs()) >= seen + 2)
        assert shop.transactions_runs()[-1]["tickets"] == 1
        assert shop.requests_received() == 2
    finally:
        daemon.send_signal(signal.SIGTERM)
        out, err = daemon.communicate(timeout=30)

    assert daemon.returncode == 0, err
    assert "daemon_stopped" in out
    assert shop.orders() == [(f"hl-{sale}", "pat@example.com", 6000)]
    assert shop.refunds() == [(f"hl-adj-{sale}-1", f"hl-{sale}", 6000)]
    assert shop.balance("pat@example.com") == 0
