"""The sandbox's loyalty parts: Heartland coupons on tickets, Yotpo redemptions and locks."""

from __future__ import annotations

import requests

from tests.e2e.conftest import API_KEY, GUID
from tests.offers.helpers import FIVE_OFF, POINTS_FOR_CASH, TEN_PERCENT, LoyaltyStore

EMAIL = "pat@example.com"


def _coupon(store: LoyaltyStore, **fields: object) -> int:
    body = {"code": "TEST1", "name": "Test", "action": "amount_off_order", "amount": 5, **fields}
    response = store.heartland("POST", "/coupons", body)
    assert response.status_code == 201, response.text
    return int(response.headers["Location"].rsplit("/", 1)[1])


def test_fixed_coupon_discounts_ticket(store: LoyaltyStore) -> None:
    _coupon(store)
    ticket_id = store.ticket(customer_id=None, coupon_code="TEST1", items=[(2, 20.0)])
    ticket = store.heartland("GET", f"/sales/tickets/{ticket_id}").json()
    assert ticket["total"] == 35
    assert ticket["coupon_id"] == store.coupon_id("TEST1")
    assert ticket["balance"] == 0


def test_percent_coupon_discounts_ticket(store: LoyaltyStore) -> None:
    _coupon(store, action="percent_off_order", amount=None, percent=10)
    ticket_id = store.ticket(customer_id=None, coupon_code="TEST1", items=[(1, 33.35)])
    ticket = store.heartland("GET", f"/sales/tickets/{ticket_id}").json()
    assert ticket["total"] == 30.01


def test_single_use_coupon_refused_after_use(store: LoyaltyStore) -> None:
    coupon_id = _coupon(store, max_uses=1)
    store.ticket(customer_id=None, coupon_code="TEST1", items=[(1, 10.0)])
    response = store.heartland(
        "POST", "/sales/tickets", {"station_id": 301, "coupon_id": coupon_id}
    )
    assert response.status_code == 422
    assert store.heartland("GET", f"/coupons/{coupon_id}").json()["uses"] == 1


def test_open_ticket_does_not_use_coupon(store: LoyaltyStore) -> None:
    coupon_id = _coupon(store, max_uses=1)
    store.ticket(customer_id=None, coupon_code="TEST1", items=[(1, 10.0)], complete=False)
    store.ticket(customer_id=None, coupon_code="TEST1", items=[(1, 10.0)])
    assert store.heartland("GET", f"/coupons/{coupon_id}").json()["uses"] == 1


def test_inactive_coupon_refused(store: LoyaltyStore) -> None:
    coupon_id = _coupon(store)
    store.heartland("PUT", f"/coupons/{coupon_id}", {"active": False})
    response = store.heartland(
        "POST", "/sales/tickets", {"station_id": 301, "coupon_id": coupon_id}
    )
    assert response.status_code == 422


def test_duplicate_coupon_code_refused(store: LoyaltyStore) -> None:
    _coupon(store)
    body = {"code": "test1", "name": "Again", "action": "amount_off_order", "amount": 1}
    assert store.heartland("POST", "/coupons", body).status_code == 422


def test_coupons_filter_by_code(store: LoyaltyStore) -> None:
    _coupon(store)
    _coupon(store, code="TEST2")
    response = store.heartland("GET", "/coupons", _filter='{"code": "TEST2"}')
    assert [c["code"] for c in response.json()["results"]] == ["TEST2"]


def test_redemption_takes_points_and_logs_code(store: LoyaltyStore) -> None:
    store.set_options(FIVE_OFF)
    store.member(EMAIL, 700)
    body = {"customer_email": EMAIL, "redemption_option_id": 3101}
    code = store.yotpo("POST", "/redemptions", body).json()["reward_text"]
    history = store.yotpo("GET", "/customers", customer_email=EMAIL, with_history="true").json()
    assert store.balance(EMAIL) == 200
    assert history["history_items"][0]["status"] == code
    assert history["history_items"][0]["points"] == -500


def test_redemption_overdraw_is_422(store: LoyaltyStore) -> None:
    store.set_options(TEN_PERCENT)
    store.member(EMAIL, 100)
    body = {"customer_email": EMAIL, "redemption_option_id": 3103}
    assert store.yotpo("POST", "/redemptions", body).status_code == 422
    assert store.balance(EMAIL) == 100


def test_variable_redemption_needs_points(store: LoyaltyStore) -> None:
    store.set_options(POINTS_FOR_CASH)
    store.member(EMAIL, 100)
    body = {"customer_email": EMAIL, "redemption_option_id": 3102}
    assert store.yotpo("POST", "/redemptions", body).status_code == 422
    body["points_to_redeem"] = 40
    assert store.yotpo("POST", "/redemptions", body).status_code == 200
    assert store.balance(EMAIL) == 60


def test_locked_customer_is_423(store: LoyaltyStore) -> None:
    store.member(EMAIL, 100)
    store.admin("POST", "/locks", {"customer_email": EMAIL, "locked": True})
    body = {"customer_email": EMAIL, "point_adjustment_amount": -10}
    locked = store.yotpo("POST", "/points/adjust", body)
    store.admin("POST", "/locks", {"customer_email": EMAIL, "locked": False})
    unlocked = store.yotpo("POST", "/points/adjust", body)
    assert locked.status_code == 423
    assert unlocked.status_code == 200
    assert store.balance(EMAIL) == 90


def test_adjustment_overdraw_is_422(store: LoyaltyStore) -> None:
    store.member(EMAIL, 100)
    body = {"customer_email": EMAIL, "point_adjustment_amount": -101}
    assert store.yotpo("POST", "/points/adjust", body).status_code == 422


def test_webhook_url_must_be_loopback(store: LoyaltyStore) -> None:
    response = requests.put(
        f"{store.sandbox.yotpo_admin_url}/webhook",
        json={"url": "http://192.0.2.1/hook", "secret": "x"},
        headers={"x-guid": GUID, "x-api-key": API_KEY},
        timeout=10,
    )
    assert response.status_code == 422
