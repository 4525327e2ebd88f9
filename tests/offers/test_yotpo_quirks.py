"""Quirks of real Yotpo payloads, replayed through the sandbox and the receiver on loopback.

The servers listen on 127.0.0.1, on ports the system picks.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from tests.offers.helpers import FIVE_OFF, LoyaltyStore
from yotposync.ledger import Ledger
from yotposync.ops.http_server import BackgroundServer
from yotposync.sandbox.faults import FaultPlan, FaultRule
from yotposync.webhooks.yotpo import PATH, RedemptionWebhook

pytestmark = pytest.mark.e2e

EMAIL = "pat@example.com"
SECRET = "quirks-webhook-secret-0123456789-abcdef"


def post_to_receiver(store: LoyaltyStore, event: dict[str, Any]) -> requests.Response:
    """Deliver one redemption-created event to the receiver, which writes to the ledger."""
    Ledger.open(store.ledger).close()
    app = RedemptionWebhook(store.ledger, SECRET, clock=lambda: datetime.now(UTC))
    server = BackgroundServer("quirks-webhook", "127.0.0.1", 0, app)
    server.start()
    try:
        return requests.post(
            f"http://127.0.0.1:{server.port}{PATH}",
            json=event,
            headers={"X-Api-Secret": SECRET},
            timeout=10,
        )
    finally:
        server.stop()


def code_row(store: LoyaltyStore, code: str) -> tuple[Any, ...]:
    with closing(sqlite3.connect(f"file:{store.ledger}?mode=ro", uri=True)) as db:
        row = db.execute(
            "SELECT option_id, points_cost, state FROM online_codes WHERE code = ?", [code]
        ).fetchone()
    assert row is not None, f"code {code} is not in the ledger"
    return tuple(row)


# A redemption option's `amount` is a number in real responses and text in Yotpo's docs.


def test_webhook_amount_text_restores_on_return(store: LoyaltyStore) -> None:
    store.set_options(FIVE_OFF)
    store.member(EMAIL, 1000)
    customer = store.customer(EMAIL)
    code = store.redeem(EMAIL, 3101)
    event = {
        "topic": "swell/redemption/created",
        "redemption": {"id": 77001, "reward_text": code},
        # The webhook's option is reduced: no discount_type, and here the cost as text.
        "redemption_option": {"id": 3101, "name": "$5 Off", "amount": "500"},
        "customer": {"email": EMAIL, "points_balance": 500},
    }
    assert post_to_receiver(store, event).status_code == 200
    store.cli("offers", "codes")

    restores = store.restores_after_return(customer, code, returned=1)

    # The code cost 500 points and half of the sale's items came back (proportional policy).
    assert [a["point_adjustment_amount"] for a in restores] == [250]
    assert code_row(store, code)[:2] == (3101, 500)


def test_stated_cost_replaced_by_option_cost(store: LoyaltyStore) -> None:
    # A webhook that states another cost than its option has (forged, or malformed) must not
    # let a return give back more than the option costs.
    store.set_options(FIVE_OFF)
    store.member(EMAIL, 1000)
    customer = store.customer(EMAIL)
    code = store.redeem(EMAIL, 3101)
    event = {
        "redemption": {"id": 77003, "reward_text": code},
        "redemption_option": {"id": 3101, "name": "$5 Off", "amount": 500000},
        "customer": {"email": EMAIL},
    }
    assert post_to_receiver(store, event).status_code == 200
    store.cli("offers", "codes")

    restores = store.restores_after_return(customer, code, returned=2)

    assert [a["point_adjustment_amount"] for a in restores] == [500]
    assert code_row(store, code)[:2] == (3101, 500)


def test_webhook_without_customer_rejected(store: LoyaltyStore) -> None:
    store.set_options(FIVE_OFF)
    event = {
        "redemption": {"id": 77004, "reward_text": "FORGED100"},
        "redemption_option": {"id": 3101, "name": "$5 Off", "amount": 500},
    }

    response = post_to_receiver(store, event)

    assert response.status_code == 400
    assert response.json() == {"status": "missing or invalid customer.email"}
    with closing(sqlite3.connect(f"file:{store.ledger}?mode=ro", uri=True)) as db:
        assert db.execute("SELECT count(*) FROM online_codes").fetchone()[0] == 0


# A customer who is not enrolled may come back as 404, or as 400 with an error text.


def test_history_read_400_does_not_stop_codes(store: LoyaltyStore) -> None:
    store.set_options(FIVE_OFF)
    store.member(EMAIL, 1000)
    customer = store.customer(EMAIL)
    store.ticket(customer_id=customer, coupon_code=None, items=[(1, 10.0)])
    store.catch_up()
    code = store.redeem(EMAIL, 3101)
    event = {
        "redemption": {"id": 77002, "reward_text": code},
        "redemption_option": {"id": 3101, "name": "$5 Off", "amount": 500},
        "customer": {"email": EMAIL},
    }
    assert post_to_receiver(store, event).status_code == 200
    not_enrolled = FaultRule(
        name="customer-lookup-400",
        service="yotpo",
        kind="client_error",
        status=400,
        method="GET",
        path="/api/v2/customers",
        message="Customer not found",
    )
    store.sandbox.faults.set_plan(FaultPlan(rules=(not_enrolled,)))

    result = store.cli("offers", "codes")

    assert result.returncode == 0, result.stderr
    assert code_row(store, code)[2] == "active"
    assert store.coupon_id(code) > 0
    assert "online_code_history_unreadable" in result.stderr
