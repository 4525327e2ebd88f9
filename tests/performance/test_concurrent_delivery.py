"""DeliveryJob with several workers: customers in parallel, each customer's pushes in order.

Yotpo is `responses` at the transport edge. Its callbacks can meet at a barrier, so a test
passes only when requests of different customers are in flight at the same moment. Nothing
sleeps.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import responses

from yotposync.clients.http import RetryPolicy
from yotposync.clients.yotpo import YotpoClient
from yotposync.config import sandbox_settings
from yotposync.ledger import Ledger
from yotposync.sync.delivery import DeliveryJob
from yotposync.sync.plan import PlannedPush

YOTPO_URL = "http://127.0.0.1:8799/api/v2"
HEARTLAND_URL = "http://127.0.0.1:8798/api"
START = datetime(2025, 5, 1, 15, 0, tzinfo=UTC)
CUSTOMERS = ("ana@example.com", "ben@example.com", "cy@example.com", "dee@example.com")
BARRIER_SECONDS = 10.0


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    ledger = Ledger.open(tmp_path / "state" / "ledger.sqlite3")
    yield ledger
    ledger.close()


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def make_job(tmp_path: Path, ledger: Ledger, workers: int) -> DeliveryJob:
    settings = sandbox_settings(
        HEARTLAND_URL,
        YOTPO_URL,
        tmp_path / "state" / "ledger.sqlite3",
        performance={"delivery_workers": workers},
        delivery={"retry_base_seconds": 60},
    )
    client = YotpoClient(
        YOTPO_URL,
        "sandbox-guid",
        "sandbox-api-key",
        requests_per_second=0,
        retry=RetryPolicy(max_tries=1),
        sleep=lambda _seconds: None,
    )
    return DeliveryJob(settings, ledger, client, clock=lambda: START)


def queue_history(ledger: Ledger, sales_per_customer: int) -> dict[str, list[str]]:
    """Queue, per customer, sales each followed by a return; return the ids in queue order."""
    queued: dict[str, list[str]] = {email: [] for email in CUSTOMERS}
    ticket_id = 1000
    with ledger.transaction():
        for round_number in range(sales_per_customer):
            for customer_id, email in enumerate(CUSTOMERS):
                ticket_id += 1
                order_id = f"hl-{ticket_id}"
                order = PlannedPush(order_id, "order", ticket_id, email, customer_id, None, 5000)
                body = {"order_id": order_id, "customer_email": email, "total_amount_cents": 5000}
                ledger.add_push(order, body, START)
                queued[email].append(order_id)
                if round_number % 2 == 0:
                    refund_id = f"hl-ret-{ticket_id}"
                    refund = PlannedPush(
                        refund_id, "return", ticket_id, email, customer_id, order_id, 1000
                    )
                    body = {"id": refund_id, "order_id": order_id, "total_amount_cents": 1000}
                    ledger.add_push(refund, body, START)
                    queued[email].append(refund_id)
    return queued


class YotpoRecorder:
    """Respond 200 to orders and refunds, noting each push id per customer in arrival order.

    After the first `skip` requests, the next `meet` requests wait at a barrier for each
    other, so they can only all be answered when they are in flight together.
    """

    def __init__(self, emails_by_order: dict[str, str], *, skip: int = 0, meet: int = 0) -> None:
        self.arrivals: dict[str, list[str]] = {}
        self.emails_by_order = emails_by_order
        self.barrier = threading.Barrier(meet) if meet > 1 else None
        self._skip = skip
        self._meet = meet
        self._count = 0
        self._lock = threading.Lock()

    def __call__(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        body: dict[str, Any] = json.loads(request.body or b"{}")
        push_id = str(body.get("order_id") if "customer_email" in body else body.get("id"))
        email = body.get("customer_email") or self.emails_by_order[str(body["order_id"])]
        with self._lock:
            self.arrivals.setdefault(email, []).append(push_id)
            self._count += 1
            must_meet = self._skip < self._count <= self._skip + self._meet
        if must_meet and self.barrier is not None:
            self.barrier.wait(timeout=BARRIER_SECONDS)
        return 200, {}, "{}"


def answer_with(mocked: responses.RequestsMock, recorder: YotpoRecorder) -> None:
    for path in ("/orders", "/refunds"):
        mocked.add_callback(responses.POST, f"{YOTPO_URL}{path}", callback=recorder)


def owners(queued: dict[str, list[str]]) -> dict[str, str]:
    return {push_id: email for email, ids in queued.items() for push_id in ids}


def test_workers_send_customers_concurrently(
    tmp_path: Path, ledger: Ledger, mocked: responses.RequestsMock
) -> None:
    queued = queue_history(ledger, sales_per_customer=1)
    # The run's first push goes alone; three of the next ones must be in flight together.
    recorder = YotpoRecorder(owners(queued), skip=1, meet=3)
    answer_with(mocked, recorder)

    summary = make_job(tmp_path, ledger, workers=4).run()

    assert summary.confirmed == sum(len(ids) for ids in queued.values())
    assert recorder.barrier is not None
    assert not recorder.barrier.broken


def test_customer_order_kept_under_concurrency(
    tmp_path: Path, ledger: Ledger, mocked: responses.RequestsMock
) -> None:
    queued = queue_history(ledger, sales_per_customer=6)
    recorder = YotpoRecorder(owners(queued))
    answer_with(mocked, recorder)

    summary = make_job(tmp_path, ledger, workers=4).run()

    assert summary.confirmed == sum(len(ids) for ids in queued.values())
    for email in CUSTOMERS:
        assert recorder.arrivals[email] == queued[email]


def test_retry_holds_only_that_customer(
    tmp_path: Path, ledger: Ledger, mocked: responses.RequestsMock
) -> None:
    queued = queue_history(ledger, sales_per_customer=2)
    unavailable_for = CUSTOMERS[1]
    recorder = YotpoRecorder(owners(queued))

    def fail_one_customer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        body = json.loads(request.body or b"{}")
        if body.get("customer_email") == unavailable_for:
            return 503, {}, json.dumps({"error": "unavailable"})
        return recorder(request)

    for path in ("/orders", "/refunds"):
        mocked.add_callback(responses.POST, f"{YOTPO_URL}{path}", callback=fail_one_customer)

    summary = make_job(tmp_path, ledger, workers=4).run()

    assert summary.retrying == 1
    assert unavailable_for not in recorder.arrivals
    for email in CUSTOMERS:
        if email != unavailable_for:
            assert recorder.arrivals[email] == queued[email]
    states = dict(ledger.db.execute("SELECT push_id, state FROM pushes").fetchall())
    waiting = queued[unavailable_for]
    assert [states[push_id] for push_id in waiting] == ["pending"] * len(waiting)
