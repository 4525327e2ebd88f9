"""Yotpo Loyalty emulator over real HTTP: auth, orders, refunds, points, customers, limits."""

from __future__ import annotations

import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
import requests
from sandbox_api import ANCHOR, TIMEOUT, Api

from yotposync.sandbox import ManualClock, Sandbox
from yotposync.sandbox.policies import order_points, reversed_points

Connect = Callable[[Sandbox], tuple[Api, Api]]


def _order(
    order_id: str, cents: int, email: str = "pat@example.com", **extra: Any
) -> dict[str, Any]:
    return {
        "customer_email": email,
        "order_id": order_id,
        "total_amount_cents": cents,
        "currency_code": "USD",
        "status": "paid",
        "ignore_ip_ua": True,
        **extra,
    }


def _customer(api: Api, email: str = "pat@example.com", **params: str) -> dict[str, Any]:
    response = api.get("/customers", {"customer_email": email, **params})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def _balance(api: Api, email: str = "pat@example.com") -> int:
    return int(_customer(api, email)["points_balance"])


# Points maths, shared with the ground truth.


def test_order_points_floor() -> None:
    assert order_points(4599, Decimal(1)) == 45
    assert order_points(4599, Decimal("1.5")) == 68
    assert order_points(0, Decimal(2)) == 0


def test_reversed_points_cumulative() -> None:
    assert reversed_points(100, 10000, 2550) == 25
    assert reversed_points(100, 10000, 5100) == 51
    assert reversed_points(100, 10000, 25000) == 100
    assert reversed_points(0, 10000, 5000) == 0


# Auth and headers.


def test_auth_missing_is_401(empty_sandbox: Sandbox) -> None:
    response = requests.get(empty_sandbox.yotpo_url + "/vip_tiers", timeout=TIMEOUT)
    assert response.status_code == 401
    assert "error" in response.json()
    assert "ratelimit-remaining" in response.headers


def test_auth_wrong_key_is_401(empty_sandbox: Sandbox) -> None:
    headers = {"x-guid": empty_sandbox.yotpo_guid, "x-api-key": "wrong"}
    response = requests.get(empty_sandbox.yotpo_url + "/vip_tiers", headers=headers, timeout=5)
    assert response.status_code == 401


def test_auth_upper_case_headers(empty_sandbox: Sandbox) -> None:
    headers = {"X-GUID": empty_sandbox.yotpo_guid, "X-API-KEY": empty_sandbox.yotpo_api_key}
    response = requests.get(empty_sandbox.yotpo_url + "/vip_tiers", headers=headers, timeout=5)
    assert response.status_code == 200


def test_auth_query_parameters(empty_sandbox: Sandbox) -> None:
    params = {"guid": empty_sandbox.yotpo_guid, "api_key": empty_sandbox.yotpo_api_key}
    response = requests.get(empty_sandbox.yotpo_url + "/vip_tiers", params=params, timeout=5)
    assert response.status_code == 200


def test_rate_headers_when_limit_off(yotpo: Api) -> None:
    response = yotpo.get("/redemption_options")
    assert response.headers["ratelimit-limit"] == "10"
    assert response.headers["ratelimit-remaining"] == "10"
    assert response.headers["ratelimit-reset"] == "1"


def test_lists_are_bare_arrays(yotpo: Api) -> None:
    assert yotpo.get("/vip_tiers").json() == []
    assert yotpo.get("/redemption_options").json() == []


# Orders.


def test_order_awards_points(yotpo: Api) -> None:
    response = yotpo.post("/orders", _order("hl-1", 4599, customer_id="C-9001"))
    customer = _customer(yotpo)
    assert response.status_code == 200
    assert response.json() == {}
    assert customer["points_balance"] == 45
    assert customer["points_earned"] == 45
    assert customer["total_spend_cents"] == 4599
    assert customer["total_purchases"] == 1
    assert customer["opt_in"] is True
    assert customer["third_party_id"] == "C-9001"
    assert customer["vip_tier_name"] is None
    assert "history_items" not in customer


def test_order_points_per_dollar_option(connect: Connect) -> None:
    with Sandbox(store=None, points_per_dollar=Decimal("1.5")) as sandbox:
        _, yotpo = connect(sandbox)
        yotpo.post("/orders", _order("hl-1", 4599))
        assert _balance(yotpo) == 68


def test_order_email_match_ignores_case(yotpo: Api) -> None:
    yotpo.post("/orders", _order("hl-1", 1000, email="Pat@Example.com "))
    yotpo.post("/orders", _order("hl-2", 1000, email="pat@example.com"))
    assert _balance(yotpo, "PAT@example.com") == 20


def test_order_duplicate_awards_once(yotpo: Api, empty_sandbox: Sandbox) -> None:
    first = yotpo.post("/orders", _order("hl-1", 5000))
    second = yotpo.post("/orders", _order("hl-1", 5000))
    orders = yotpo.admin("GET", "/records").json()["orders"]
    assert first.status_code == 200
    assert second.status_code == 200
    assert _balance(yotpo) == 50
    assert [entry["duplicate"] for entry in orders] == [False, True]
    assert [entry["points"] for entry in orders] == [50, 0]


def test_order_status_pending_awards_later(yotpo: Api) -> None:
    yotpo.post("/orders", _order("hl-1", 5000, status="pending"))
    pending = _balance(yotpo)
    yotpo.post("/orders", _order("hl-1", 5000, status="PAID"))
    yotpo.post("/orders", _order("hl-1", 5000, status="paid"))
    assert pending == 0
    assert _balance(yotpo) == 50


def test_order_without_status_awards(yotpo: Api) -> None:
    body = _order("hl-1", 2000)
    del body["status"]
    yotpo.post("/orders", body)
    assert _balance(yotpo) == 20


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("customer_email", None),
        ("customer_email", "not-an-email"),
        ("order_id", None),
        ("total_amount_cents", None),
        ("total_amount_cents", 45.99),
        ("total_amount_cents", "45.99"),
        ("total_amount_cents", -1),
    ],
)
def test_order_invalid_field_is_422(yotpo: Api, field: str, value: Any) -> None:
    body = _order("hl-1", 1000)
    if value is None:
        del body[field]
    else:
        body[field] = value
    response = yotpo.post("/orders", body)
    assert response.status_code == 422
    assert field in response.json()["error"]


def test_order_amount_digit_text_accepted(yotpo: Api) -> None:
    response = yotpo.post("/orders", _order("hl-1", "4500"))  # type: ignore[arg-type]
    assert response.status_code == 200
    assert _balance(yotpo) == 45


def test_order_not_opted_in_earns_nothing(yotpo: Api) -> None:
    yotpo.post("/customers", {"email": "pat@example.com", "opted_in": False})
    yotpo.post("/orders", _order("hl-1", 5000))
    customer = _customer(yotpo)
    assert customer["points_balance"] == 0
    assert customer["total_purchases"] == 1


def test_invalid_json_is_400(yotpo: Api) -> None:
    response = yotpo.session.post(yotpo.base_url + "/orders", data=b"[1,", timeout=TIMEOUT)
    assert response.status_code == 400
    assert "error" in response.json()


# Refunds.


def test_refund_partial_points_cumulative(yotpo: Api) -> None:
    yotpo.post("/orders", _order("hl-1", 10000))
    yotpo.post("/refunds", {"id": "r-1", "order_id": "hl-1", "total_amount_cents": 2550})
    after_first = _balance(yotpo)
    yotpo.post("/refunds", {"id": "r-2", "order_id": "hl-1", "total_amount_cents": 2550})
    after_second = _balance(yotpo)
    yotpo.post("/refunds", {"id": "r-3", "order_id": "hl-1", "total_amount_cents": 9000})
    customer = _customer(yotpo)
    assert after_first == 75
    assert after_second == 49
    assert customer["points_balance"] == 0
    assert customer["points_earned"] == 0


def test_refund_replay_ignored(yotpo: Api) -> None:
    yotpo.post("/orders", _order("hl-1", 10000))
    refund = {"id": "r-1", "order_id": "hl-1", "total_amount_cents": 5000, "currency": "USD"}
    first = yotpo.post("/refunds", refund)
    second = yotpo.post("/refunds", refund)
    refunds = yotpo.admin("GET", "/records").json()["refunds"]
    assert first.status_code == 200
    assert second.status_code == 200
    assert _balance(yotpo) == 50
    assert [entry["duplicate"] for entry in refunds] == [False, True]


def test_refund_unknown_order_is_404(yotpo: Api) -> None:
    response = yotpo.post("/refunds", {"order_id": "hl-9", "total_amount_cents": 100})
    assert response.status_code == 404
    assert "hl-9" in response.json()["error"]


def test_refund_currency_mismatch_is_422(yotpo: Api) -> None:
    yotpo.post("/orders", _order("hl-1", 10000))
    body = {"order_id": "hl-1", "total_amount_cents": 100, "currency": "EUR"}
    response = yotpo.post("/refunds", body)
    assert response.status_code == 422
    assert _balance(yotpo) == 100


def test_refund_missing_amount_is_422(yotpo: Api) -> None:
    yotpo.post("/orders", _order("hl-1", 10000))
    response = yotpo.post("/refunds", {"order_id": "hl-1"})
    assert response.status_code == 422


def test_refund_never_overdraws_balance(yotpo: Api) -> None:
    yotpo.post("/orders", _order("hl-1", 10000))
    yotpo.post(
        "/points/adjust", {"customer_email": "pat@example.com", "point_adjustment_amount": -90}
    )
    yotpo.post("/refunds", {"id": "r-1", "order_id": "hl-1", "total_amount_cents": 10000})
    assert _balance(yotpo) == 0


# Point adjustments.


def test_adjust_adds_points_with_title(yotpo: Api) -> None:
    yotpo.post("/orders", _order("hl-1", 1000))
    body = {
        "customer_email": "pat@example.com",
        "point_adjustment_amount": 25,
        "apply_adjustment_to_points_earned": False,
        "history_title": "Return RET-45",
    }
    response = yotpo.post("/points/adjust", body)
    customer = _customer(yotpo, with_history="true")
    newest = customer["history_items"][0]
    assert response.status_code == 200
    assert customer["points_balance"] == 35
    assert customer["points_earned"] == 10
    assert newest["action"] == "Return RET-45"
    assert newest["points"] == 25
    assert set(newest) >= {"created_at", "date", "action", "points", "status"}


def test_adjust_applies_to_earned(yotpo: Api) -> None:
    yotpo.post("/orders", _order("hl-1", 5000))
    body = {
        "customer_email": "pat@example.com",
        "point_adjustment_amount": -20,
        "apply_adjustment_to_points_earned": True,
    }
    yotpo.post("/points/adjust", body)
    customer = _customer(yotpo)
    assert customer["points_balance"] == 30
    assert customer["points_earned"] == 30


def test_adjust_overdraw_is_422(yotpo: Api) -> None:
    yotpo.post("/orders", _order("hl-1", 1000))
    body = {"customer_email": "pat@example.com", "point_adjustment_amount": -11}
    response = yotpo.post("/points/adjust", body)
    adjustments = yotpo.admin("GET", "/records").json()["adjustments"]
    assert response.status_code == 422
    assert _balance(yotpo) == 10
    assert adjustments[0]["status"] == 422


def test_adjust_unknown_customer_is_404(yotpo: Api) -> None:
    body = {"customer_email": "nobody@example.com", "point_adjustment_amount": 5}
    assert yotpo.post("/points/adjust", body).status_code == 404


def test_adjust_amount_must_be_integer(yotpo: Api) -> None:
    yotpo.post("/orders", _order("hl-1", 1000))
    body = {"customer_email": "pat@example.com", "point_adjustment_amount": "5"}
    assert yotpo.post("/points/adjust", body).status_code == 422


# Customers.


def test_customer_create_then_find_by_each_key(yotpo: Api) -> None:
    body = {
        "email": "pat@example.com",
        "id": "C-1001",
        "first_name": "Pat",
        "last_name": "Lee",
        "phone_number": "+15550100123",
        "pos_account_id": "POS-88",
        "opted_in": True,
    }
    assert yotpo.post("/customers", body).status_code == 200
    for key, value in (
        ("customer_id", "C-1001"),
        ("pos_account_id", "POS-88"),
        ("phone_number", "+15550100123"),
    ):
        found = yotpo.get("/customers", {key: value})
        assert found.status_code == 200, key
        assert found.json()["email"] == "pat@example.com", key


def test_customer_email_change_by_id(yotpo: Api) -> None:
    yotpo.post("/customers", {"email": "pat@example.com", "id": "C-1"})
    yotpo.post("/customers", {"email": "pat.lee@example.com", "id": "C-1", "first_name": "Pat"})
    moved = yotpo.get("/customers", {"customer_id": "C-1"}).json()
    old = yotpo.get("/customers", {"customer_email": "pat@example.com"})
    assert moved["email"] == "pat.lee@example.com"
    assert moved["first_name"] == "Pat"
    assert old.status_code == 404


def test_customer_id_change_by_email(yotpo: Api) -> None:
    yotpo.post("/customers", {"email": "pat@example.com", "id": "C-1"})
    yotpo.post("/customers", {"email": "pat@example.com", "id": "C-2"})
    assert yotpo.get("/customers", {"customer_id": "C-2"}).json()["email"] == "pat@example.com"
    assert yotpo.get("/customers", {"customer_id": "C-1"}).status_code == 404


def test_order_names_customer_by_id(yotpo: Api) -> None:
    # An order's customer_id finds the customer whatever e-mail the order carries.
    yotpo.post("/customers", {"email": "pat@example.com", "id": "C-7"})
    order = _order("hl-1", 4599, customer_id="C-7") | {"customer_email": "other@example.com"}
    assert yotpo.post("/orders", order).status_code == 200
    found = yotpo.get("/customers", {"customer_id": "C-7"}).json()
    assert found["email"] == "pat@example.com"
    assert found["points_balance"] > 0


def test_customer_unknown_is_404(yotpo: Api) -> None:
    response = yotpo.get("/customers", {"customer_email": "nobody@example.com"})
    assert response.status_code == 404
    assert "error" in response.json()


def test_customer_query_without_key_is_400(yotpo: Api) -> None:
    assert yotpo.get("/customers").status_code == 400


def test_customer_missing_email_is_422(yotpo: Api) -> None:
    assert yotpo.post("/customers", {"id": "C-1"}).status_code == 422


def test_history_newest_first(yotpo: Api, clock: ManualClock) -> None:
    yotpo.post("/orders", _order("hl-1", 1000))
    clock.advance(60)
    yotpo.post("/refunds", {"id": "r-1", "order_id": "hl-1", "total_amount_cents": 1000})
    history = _customer(yotpo, with_history="true")["history_items"]
    assert [item["points"] for item in history] == [-10, 10]
    assert history[1]["created_at"] == "2025-05-01T12:00:00.000Z"
    assert history[1]["date"] == "2025-05-01"
    assert history[1]["order_ids"] == ["hl-1"]


# Rate limit and concurrency.


def test_rate_limit_429_then_reset(connect: Connect) -> None:
    clock = ManualClock(ANCHOR)
    with Sandbox(store=None, yotpo_rate_limit=2, clock=clock) as sandbox:
        _, yotpo = connect(sandbox)
        first = yotpo.get("/vip_tiers")
        second = yotpo.get("/vip_tiers")
        third = yotpo.get("/vip_tiers")
        clock.advance(1)
        fourth = yotpo.get("/vip_tiers")
        records = yotpo.admin("GET", "/records")
    assert [first.status_code, second.status_code, third.status_code] == [200, 200, 429]
    assert first.headers["ratelimit-limit"] == "2"
    assert first.headers["ratelimit-remaining"] == "1"
    assert third.headers["ratelimit-remaining"] == "0"
    assert third.headers["ratelimit-reset"] == "1"
    assert "error" in third.json()
    assert fourth.status_code == 200
    assert records.status_code == 200


def test_rate_limit_below_one_per_second(connect: Connect) -> None:
    clock = ManualClock(ANCHOR)
    with Sandbox(store=None, yotpo_rate_limit=0.25, clock=clock) as sandbox:
        _, yotpo = connect(sandbox)
        first = yotpo.get("/vip_tiers")
        clock.advance(1)
        second = yotpo.get("/vip_tiers")
        clock.advance(3)
        third = yotpo.get("/vip_tiers")
    assert first.status_code == 200
    assert second.status_code == 429
    assert second.headers["ratelimit-reset"] == "3"
    assert third.status_code == 200


def test_concurrent_orders_all_counted(yotpo: Api) -> None:
    def send(start: int) -> None:
        for number in range(start, start + 10):
            yotpo.post("/orders", _order(f"hl-{number}", 1000))

    threads = [threading.Thread(target=send, args=(n * 10,)) for n in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _balance(yotpo) == 500
    assert len(yotpo.admin("GET", "/records").json()["orders"]) == 50
