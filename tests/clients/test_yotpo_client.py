"""YotpoClient: what each call sends, and the results and errors it returns."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from structlog.testing import capture_logs

from yotposync.clients.http import RetryPolicy
from yotposync.clients.yotpo import YotpoClient
from yotposync.errors import AuthError, RejectedError, RetriableError

if TYPE_CHECKING:
    from tests.clients.conftest import FakeClock

BASE_URL = "http://127.0.0.1:8799/api/v2"
GUID = "guid-4f1c2a9e"
API_KEY = "key-9b8e7d6c5a"


@pytest.fixture
def client(clock: FakeClock) -> YotpoClient:
    return YotpoClient(
        BASE_URL,
        GUID,
        API_KEY,
        requests_per_second=0,
        retry=RetryPolicy(max_tries=3, jitter=lambda wait: wait),
        sleep=clock.sleep,
    )


def query(call_index: int, mocked: responses.RequestsMock) -> dict[str, list[str]]:
    return parse_qs(urlsplit(mocked.calls[call_index].request.url).query)


def sent_json(call_index: int, mocked: responses.RequestsMock) -> Any:
    body = mocked.calls[call_index].request.body
    assert body is not None
    return json.loads(body)


ORDER = {"order_id": "hl-5001", "customer_email": "pat@example.com", "total_amount_cents": 5400}


def test_create_order_posts_payload(mocked: responses.RequestsMock, client: YotpoClient) -> None:
    mocked.add(responses.POST, f"{BASE_URL}/orders", json={})

    client.create_order(ORDER)

    assert sent_json(0, mocked) == ORDER


def test_credentials_sent_as_headers(mocked: responses.RequestsMock, client: YotpoClient) -> None:
    mocked.add(responses.POST, f"{BASE_URL}/orders", json={})

    client.create_order(ORDER)

    headers = mocked.calls[0].request.headers
    assert headers["x-guid"] == GUID
    assert headers["x-api-key"] == API_KEY
    assert urlsplit(mocked.calls[0].request.url).query == ""


def test_create_order_retried_after_timeout(
    mocked: responses.RequestsMock, client: YotpoClient
) -> None:
    mocked.add(responses.POST, f"{BASE_URL}/orders", body=requests.ReadTimeout())
    mocked.add(responses.POST, f"{BASE_URL}/orders", json={})

    client.create_order(ORDER)

    assert len(mocked.calls) == 2


def test_create_refund_posts_payload(mocked: responses.RequestsMock, client: YotpoClient) -> None:
    refund = {"id": "hl-ret-5010", "order_id": "hl-5001", "total_amount_cents": 2700}
    mocked.add(responses.POST, f"{BASE_URL}/refunds", body=requests.ReadTimeout())
    mocked.add(responses.POST, f"{BASE_URL}/refunds", json={})

    client.create_refund(refund)

    assert sent_json(1, mocked) == refund


def test_order_text_sent_unchanged(mocked: responses.RequestsMock, client: YotpoClient) -> None:
    text = json.dumps(ORDER, sort_keys=True)
    mocked.add(responses.POST, f"{BASE_URL}/orders", body=requests.ReadTimeout())
    mocked.add(responses.POST, f"{BASE_URL}/orders", json={})

    client.create_order(text)

    for call in mocked.calls:
        assert call.request.body == text.encode("utf-8")
        assert call.request.headers["Content-Type"] == "application/json"
        assert call.request.headers["x-api-key"] == API_KEY


def test_refund_text_sent_unchanged(mocked: responses.RequestsMock, client: YotpoClient) -> None:
    text = '{"id": "hl-ret-5010", "order_id": "hl-5001", "total_amount_cents": 2700}'
    mocked.add(responses.POST, f"{BASE_URL}/refunds", json={})

    client.create_refund(text)

    assert mocked.calls[0].request.body == text.encode("utf-8")


def test_request_json_and_text_rejected(client: YotpoClient) -> None:
    with pytest.raises(ValueError, match="json or json_text"):
        client.http.request("POST", "/orders", json=ORDER, json_text="{}")


def test_upsert_customer_posts_payload(mocked: responses.RequestsMock, client: YotpoClient) -> None:
    customer = {"email": "pat@example.com", "id": "9100", "opted_in": True}
    mocked.add(responses.POST, f"{BASE_URL}/customers", json={})

    client.upsert_customer(customer)

    assert sent_json(0, mocked) == customer


def test_create_order_rejected_with_reason(
    mocked: responses.RequestsMock, client: YotpoClient
) -> None:
    mocked.add(
        responses.POST, f"{BASE_URL}/orders", status=400, json={"error": "order_id is missing"}
    )

    with pytest.raises(RejectedError) as caught:
        client.create_order({})

    assert caught.value.reason == "order_id is missing"


def test_get_customer_by_email(mocked: responses.RequestsMock, client: YotpoClient) -> None:
    details = {"email": "pat@example.com", "points_balance": 730}
    mocked.add(responses.GET, f"{BASE_URL}/customers", json=details)

    found = client.get_customer(email="pat@example.com")

    assert found == details
    assert query(0, mocked) == {"customer_email": ["pat@example.com"]}


def test_get_customer_with_history(mocked: responses.RequestsMock, client: YotpoClient) -> None:
    mocked.add(responses.GET, f"{BASE_URL}/customers", json={"history_items": []})

    client.get_customer(customer_id="9100", with_history=True)

    assert query(0, mocked) == {"customer_id": ["9100"], "with_history": ["true"]}


@pytest.mark.parametrize(
    ("identifier", "parameter"),
    [("pos_account_id", "pos_account_id"), ("phone_number", "phone_number")],
)
def test_get_customer_other_identifiers(
    mocked: responses.RequestsMock, client: YotpoClient, identifier: str, parameter: str
) -> None:
    mocked.add(responses.GET, f"{BASE_URL}/customers", json={})

    client.get_customer(**{identifier: "+15550100123"})

    assert query(0, mocked) == {parameter: ["+15550100123"]}


def test_get_customer_not_found_is_none(
    mocked: responses.RequestsMock, client: YotpoClient
) -> None:
    mocked.add(responses.GET, f"{BASE_URL}/customers", status=404, json={"error": "not found"})

    assert client.get_customer(email="nobody@example.com") is None


@pytest.mark.parametrize(
    "identifiers",
    [{}, {"email": "pat@example.com", "customer_id": "9100"}],
)
def test_get_customer_needs_one_identifier(
    client: YotpoClient, identifiers: dict[str, str]
) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        client.get_customer(**identifiers)


def test_adjust_points_not_retried_after_timeout(
    mocked: responses.RequestsMock, client: YotpoClient
) -> None:
    mocked.add(responses.POST, f"{BASE_URL}/points/adjust", body=requests.ReadTimeout())

    with pytest.raises(RetriableError) as caught:
        client.adjust_points({"customer_email": "pat@example.com", "point_adjustment_amount": 5})

    assert caught.value.maybe_applied is True
    assert len(mocked.calls) == 1


def test_adjust_points_423_retried(
    mocked: responses.RequestsMock, client: YotpoClient, clock: FakeClock
) -> None:
    mocked.add(responses.POST, f"{BASE_URL}/points/adjust", status=423)
    mocked.add(responses.POST, f"{BASE_URL}/points/adjust", json={})

    client.adjust_points({"customer_email": "pat@example.com", "point_adjustment_amount": -5})

    assert len(mocked.calls) == 2
    assert clock.sleeps == [0.5]


def test_adjust_points_423_exhausted_is_retriable(
    mocked: responses.RequestsMock, client: YotpoClient
) -> None:
    for _ in range(3):
        mocked.add(responses.POST, f"{BASE_URL}/points/adjust", status=423)

    with pytest.raises(RetriableError) as caught:
        client.adjust_points({"customer_email": "pat@example.com", "point_adjustment_amount": -5})

    assert caught.value.status == 423
    assert caught.value.maybe_applied is False


def test_adjust_points_422_rejected(mocked: responses.RequestsMock, client: YotpoClient) -> None:
    mocked.add(
        responses.POST,
        f"{BASE_URL}/points/adjust",
        status=422,
        json={"error": "Customer does not have enough points"},
    )

    with pytest.raises(RejectedError) as caught:
        client.adjust_points({"customer_email": "pat@example.com", "point_adjustment_amount": -9})

    assert caught.value.reason == "Customer does not have enough points"
    assert len(mocked.calls) == 1


def test_vip_tiers_returns_list(mocked: responses.RequestsMock, client: YotpoClient) -> None:
    tiers = [{"id": 1, "name": "Gold"}]
    mocked.add(responses.GET, f"{BASE_URL}/vip_tiers", json=tiers)

    assert client.vip_tiers() == tiers


def test_vip_tiers_object_is_unexpected(
    mocked: responses.RequestsMock, client: YotpoClient
) -> None:
    for _ in range(3):
        mocked.add(responses.GET, f"{BASE_URL}/vip_tiers", json={"vip_tiers": []})

    with pytest.raises(RetriableError) as caught:
        client.vip_tiers()

    assert caught.value.reason == "unexpected response: not a JSON array"


def test_redemption_options_filters(mocked: responses.RequestsMock, client: YotpoClient) -> None:
    options = [{"id": 3101, "name": "$5 Off", "amount": 500}]
    mocked.add(responses.GET, f"{BASE_URL}/redemption_options", json=options)

    found = client.redemption_options(customer_email="pat@example.com", is_offline=True)

    assert found == options
    assert query(0, mocked) == {"customer_email": ["pat@example.com"], "is_offline": ["true"]}


def test_check_bad_credentials_raises_auth_error(
    mocked: responses.RequestsMock, client: YotpoClient
) -> None:
    mocked.add(responses.GET, f"{BASE_URL}/vip_tiers", status=401, json={"error": API_KEY})

    with pytest.raises(AuthError) as caught:
        client.check()

    message = str(caught.value)
    assert "yotpo.api_key" in message
    assert API_KEY not in message
    assert len(mocked.calls) == 1


def test_retry_log_has_no_credentials(mocked: responses.RequestsMock, client: YotpoClient) -> None:
    mocked.add(
        responses.GET,
        f"{BASE_URL}/customers",
        status=429,
        headers={"ratelimit-remaining": "0", "ratelimit-reset": "1"},
        json={"error": f"slow down {GUID}"},
    )
    mocked.add(responses.GET, f"{BASE_URL}/customers", json={})

    with capture_logs() as logs:
        client.get_customer(email="pat@example.com")

    logged = repr(logs)
    assert len(logs) == 1
    assert GUID not in logged
    assert API_KEY not in logged
    assert "pat@example.com" not in logged
