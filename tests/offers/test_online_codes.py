"""Codes redeemed online become single-use Heartland coupons, and their use reaches Yotpo."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.offers.conftest import make_store
from tests.offers.helpers import FIVE_OFF, TEN_PERCENT, LoyaltyStore
from yotposync.ledger import Ledger
from yotposync.ledger.offers import OfferLedger
from yotposync.ops.http_server import BackgroundServer
from yotposync.webhooks.yotpo import RedemptionWebhook

pytestmark = pytest.mark.e2e

EMAIL = "pat@example.com"
SECRET = "offers-webhook-secret-for-tests-0123456789"


def _recent_customer(store: LoyaltyStore) -> int:
    """A Heartland customer with one plain sale, so the history reading looks at them."""
    customer = store.customer(EMAIL)
    store.ticket(customer_id=customer, coupon_code=None, items=[(1, 10.0)])
    store.catch_up()
    return customer


def _orders(store: LoyaltyStore) -> list[dict[str, Any]]:
    return [e["body"] for e in store.records()["orders"] if e["status"] == 200]


def test_history_code_becomes_single_use_coupon(store: LoyaltyStore) -> None:
    store.set_options(FIVE_OFF, TEN_PERCENT)
    store.member(EMAIL, 1000)
    _recent_customer(store)
    code = store.redeem(EMAIL, 3103)
    result = store.cli("offers", "codes")
    coupons = {c["code"]: c for c in store.coupons()}
    assert "1 found in customer history, 1 coupons created" in result.stdout
    assert coupons[code]["max_uses"] == 1
    assert coupons[code]["percent"] == 10
    assert coupons[code]["name"] == f"10% Off: online reward {code}"


def test_offer_shaped_code_skipped(store: LoyaltyStore) -> None:
    store.set_options(FIVE_OFF)
    store.cli("offers", "sync")
    shared = next(c for c in store.coupons() if c["code"] == "LOYALTY3101")
    ledger = Ledger.open(store.ledger)
    try:
        with ledger.transaction():
            OfferLedger(ledger).record_online_code(
                code="loyalty3101",
                redemption_id="9",
                option_id=3101,
                option_name="$5 Off",
                email=EMAIL,
                points_cost=500,
                source="webhook",
                now=datetime.now(UTC),
            )
    finally:
        ledger.close()

    store.cli("offers", "codes")

    after = next(c for c in store.coupons() if c["code"] == "LOYALTY3101")
    assert after == shared
    assert "online code loyalty3101 skipped: the code has the form of the register" in (
        store.cli("status").stdout
    )


def test_code_use_is_sent_with_order(store: LoyaltyStore) -> None:
    store.set_options(FIVE_OFF)
    store.member(EMAIL, 1000)
    customer = _recent_customer(store)
    code = store.redeem(EMAIL, 3101)
    store.cli("offers", "codes")
    ticket = store.ticket(customer_id=customer, coupon_code=code, items=[(1, 30.0)])
    store.catch_up()
    store.cli("offers", "codes")
    order = next(o for o in _orders(store) if o["order_id"] == f"hl-{ticket}")
    coupon = next(c for c in store.coupons() if c["code"] == code)
    assert order["coupon_code"] == code
    assert coupon["active"] is False
    assert store.adjustments("hl-redeem-") == []


def test_used_code_is_not_honoured_twice(store: LoyaltyStore) -> None:
    store.set_options(FIVE_OFF)
    store.member(EMAIL, 1000)
    customer = _recent_customer(store)
    code = store.redeem(EMAIL, 3101)
    store.cli("offers", "codes")
    store.ticket(customer_id=customer, coupon_code=code, items=[(1, 30.0)])
    store.catch_up()
    store.cli("offers", "codes")
    body = {"station_id": 301, "customer_id": customer, "coupon_id": store.coupon_id(code)}
    response = store.heartland("POST", "/sales/tickets", body)
    assert response.status_code == 422


def test_delayed_deduction_completes_with_order(store: LoyaltyStore) -> None:
    store.set_options(FIVE_OFF)
    store.member(EMAIL, 1000)
    customer = _recent_customer(store)
    before = store.balance(EMAIL)
    code = store.redeem(EMAIL, 3101, delay=True)
    store.cli("offers", "codes")
    assert store.balance(EMAIL) == before
    store.ticket(customer_id=customer, coupon_code=code, items=[(1, 30.0)])
    store.catch_up()
    # 500 taken by the delayed deduction, 25 earned on the $25 paid.
    assert store.balance(EMAIL) == before - 500 + 25


def test_webhook_records_code(store: LoyaltyStore) -> None:
    store.set_options(FIVE_OFF)
    store.member(EMAIL, 1000)
    Ledger.open(store.ledger).close()
    app = RedemptionWebhook(store.ledger, SECRET, clock=lambda: datetime.now(UTC))
    server = BackgroundServer("test-webhook", "127.0.0.1", 0, app)
    server.start()
    try:
        url = f"http://127.0.0.1:{server.port}/yotpo/redemption-created"
        store.admin("PUT", "/webhook", {"url": url, "secret": SECRET})
        code = store.redeem(EMAIL, 3101)
    finally:
        server.stop()
    store.cli("offers", "codes")
    ledger = Ledger.open(store.ledger)
    try:
        rows = OfferLedger(ledger).codes_in_state("active")
    finally:
        ledger.close()
    assert [(r["code"], r["source"], r["option_id"]) for r in rows] == [(code, "webhook", 3101)]
    assert store.coupon_id(code) > 0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def daemon_store(tmp_path: Path) -> Iterator[LoyaltyStore]:
    port = _free_port()
    extra = (
        f'[offers]\nwebhook_listen = "127.0.0.1:{port}"\nwebhook_secret = "{SECRET}"\n'
        "codes_seconds = 1\nsync_seconds = 1\n\n[schedule]\ntransactions_seconds = 1\n"
        "delivery_seconds = 1\n"
    )
    for store in make_store(tmp_path, extra):
        store.in_process = False
        yield store


def _wait_for(check: Any, description: str, seconds: float = 30) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {description}")


def test_daemon_turns_webhook_code_into_order_coupon(daemon_store: LoyaltyStore) -> None:
    store = daemon_store
    store.set_options(FIVE_OFF)
    store.member(EMAIL, 1000)
    customer = store.customer(EMAIL)
    port = store.config.read_text().split('webhook_listen = "127.0.0.1:', 1)[1].split('"')[0]
    url = f"http://127.0.0.1:{port}/yotpo/redemption-created/{SECRET}"
    daemon = store.popen_daemon()
    try:
        _wait_for(lambda: _listening(int(port)), "the webhook receiver")
        store.admin("PUT", "/webhook", {"url": url, "secret": ""})
        code = store.redeem(EMAIL, 3101)
        _wait_for(lambda: any(c["code"] == code for c in store.coupons()), "the code's coupon")
        ticket = store.ticket(customer_id=customer, coupon_code=code, items=[(1, 30.0)])
        order = _wait_for(
            lambda: next((o for o in _orders(store) if o["order_id"] == f"hl-{ticket}"), None),
            "the ticket's order",
        )
    finally:
        daemon.terminate()
        output, errors = daemon.communicate(timeout=30)
    assert order["coupon_code"] == code
    assert daemon.returncode == 0, errors
    events = [json.loads(line)["event"] for line in output.splitlines() if line.startswith("{")]
    assert "online_code_received" in events


def _listening(port: int) -> bool:
    try:
        requests.get(f"http://127.0.0.1:{port}/", timeout=1)
    except requests.ConnectionError:
        return False
    return True


@pytest.mark.parametrize("rung_up_for", ["another customer", "no customer"])
def test_return_restores_code_points_to_redeemer(store: LoyaltyStore, rung_up_for: str) -> None:
    # The points of a code redeemed online were spent by the customer who redeemed it, so a
    # return gives them back to that customer, also when the sale was rung up for another.
    store.set_options(FIVE_OFF)
    store.member(EMAIL, 1000)
    _recent_customer(store)
    code = store.redeem(EMAIL, 3101)
    store.cli("offers", "codes")
    buyer = store.customer("dan@example.com") if rung_up_for == "another customer" else None

    restores = store.restores_after_return(buyer, code, returned=2)

    assert [(a["customer_email"], a["point_adjustment_amount"]) for a in restores] == [(EMAIL, 500)]


def test_history_code_restores_what_yotpo_took(store: LoyaltyStore) -> None:
    # Found in the customer's history: the points the history shows were taken count, not the
    # option's price when the codes job runs, which may have changed since.
    store.set_options(FIVE_OFF)
    store.member(EMAIL, 1000)
    customer = _recent_customer(store)
    code = store.redeem(EMAIL, 3101)
    store.set_options({**FIVE_OFF, "amount": 2000, "cost_text": "2000 Points"})
    store.cli("offers", "codes")

    restores = store.restores_after_return(customer, code, returned=2)

    assert [a["point_adjustment_amount"] for a in restores] == [500]


def test_skipped_code_gets_coupon_when_option_listed_again(store: LoyaltyStore) -> None:
    # The customer paid for the code; an option missing from Yotpo's list for a while must
    # not leave it unusable in the store for good.
    store.set_options(FIVE_OFF)
    store.member(EMAIL, 1000)
    _recent_customer(store)
    code = store.redeem(EMAIL, 3101)
    store.set_options()
    store.cli("offers", "codes")
    assert code not in [coupon["code"] for coupon in store.coupons()]

    store.set_options(FIVE_OFF)
    store.cli("offers", "codes")

    assert store.coupon_id(code) > 0


def test_return_restores_points_of_online_code(store: LoyaltyStore) -> None:
    store.set_options(FIVE_OFF)
    store.member(EMAIL, 1000)
    customer = _recent_customer(store)
    code = store.redeem(EMAIL, 3101)
    store.cli("offers", "codes")
    restores = store.restores_after_return(customer, code, returned=1)
    # The code cost 500 points; half of the sale's items came back (proportional policy).
    assert [a["point_adjustment_amount"] for a in restores] == [250]


def test_code_above_discount_ceiling_waits_for_setting(store: LoyaltyStore) -> None:
    huge = {**FIVE_OFF, "name": "Big reward", "discount_amount_cents": 5_000_000}
    store.set_options(huge)
    store.member(EMAIL, 1000)
    _recent_customer(store)
    code = store.redeem(EMAIL, 3101)

    store.cli("offers", "codes")
    status = store.cli("status").stdout

    assert code not in [coupon["code"] for coupon in store.coupons()]
    assert "offers.max_discount_cents" in status

    # Once the setting allows the amount, the code gets its coupon, named by its discount.
    store.config.write_text(store.config.read_text() + "[offers]\nmax_discount_cents = 5000000\n")
    store.cli("offers", "codes")

    coupon = next(c for c in store.coupons() if c["code"] == code)
    assert coupon["name"] == f"Loyalty: 50000.00 off, online reward {code}"
