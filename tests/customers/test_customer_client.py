"""HeartlandClient's customer calls at the transport edge, with `responses`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from yotposync.clients.heartland import HeartlandClient
from yotposync.clients.http import RetryPolicy
from yotposync.errors import GuardError, NotFoundError, RetriableError

# `responses` serves requests to this address inside the process.
BASE_URL = "http://127.0.0.1:8799/api"
CUSTOMERS = f"{BASE_URL}/customers"
START = datetime(2025, 4, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def client() -> HeartlandClient:
    return HeartlandClient(
        BASE_URL,
        "hl-token-abcdef",
        requests_per_second=0,
        retry=RetryPolicy(max_tries=1),
        sleep=lambda seconds: None,
    )


def customer(customer_id: int, updated_at: str) -> dict[str, Any]:
    return {"id": customer_id, "updated_at": updated_at, "email": None}


def sent_query(mocked: responses.RequestsMock, index: int) -> dict[str, list[str]]:
    return parse_qs(urlsplit(mocked.calls[index].request.url).query)


def test_customer_pages_keyset(mocked: responses.RequestsMock, client: HeartlandClient) -> None:
    first = [customer(1, "2025-04-01T12:00:05+00:00"), customer(2, "2025-04-01T12:00:05+00:00")]
    mocked.add(responses.GET, CUSTOMERS, json={"results": first, "total": 3, "pages": 2})
    second = [customer(3, "2025-04-01T12:01:00+00:00")]
    mocked.add(responses.GET, CUSTOMERS, json={"results": second, "total": 1, "pages": 1})

    pages = list(client.customer_pages(start=START, end=None, page_size=2))

    assert [[row["id"] for row in page.results] for page in pages] == [[1, 2], [3]]
    assert pages[0].total == 3
    assert sent_query(mocked, 0)["sort[]"] == ["updated_at", "id"]
    assert "_include[]" not in sent_query(mocked, 0)
    assert json.loads(sent_query(mocked, 1)["_filter"][0]) == [
        {
            "$or": [
                {"updated_at": {"$gt": "2025-04-01T12:00:05+00:00"}},
                {"updated_at": "2025-04-01T12:00:05+00:00", "id": {"$gt": 2}},
            ]
        }
    ]


def test_customer_pages_guard_names_customers(
    mocked: responses.RequestsMock, client: HeartlandClient
) -> None:
    same = [customer(1, "2025-04-01T12:00:05+00:00"), customer(2, "2025-04-01T12:00:05+00:00")]
    mocked.add(responses.GET, CUSTOMERS, json={"results": same, "total": 4})
    mocked.add(responses.GET, CUSTOMERS, json={"results": same, "total": 4})

    with pytest.raises(GuardError, match="customer page"):
        list(client.customer_pages(start=START, end=None, page_size=2))


def test_get_customer_unknown(mocked: responses.RequestsMock, client: HeartlandClient) -> None:
    mocked.add(responses.GET, f"{CUSTOMERS}/9", status=404, json={"error": "not_found"})

    assert client.get_customer(9) is None


def test_addresses_listed(mocked: responses.RequestsMock, client: HeartlandClient) -> None:
    address = {"id": 1200, "phone": "555-0100", "country": "US"}
    mocked.add(
        responses.GET, f"{CUSTOMERS}/9100/addresses", json={"results": [address], "total": 1}
    )

    assert client.customer_addresses(9100) == [address]
    assert sent_query(mocked, 0)["per_page"] == ["all"]


def test_addresses_of_unknown_customer(
    mocked: responses.RequestsMock, client: HeartlandClient
) -> None:
    mocked.add(responses.GET, f"{CUSTOMERS}/9/addresses", status=404, json={})

    assert client.customer_addresses(9) is None


def test_custom_fields_listed(mocked: responses.RequestsMock, client: HeartlandClient) -> None:
    fields = [{"id": 1, "group_id": "customer", "key": "staff", "name": "Staff"}]
    mocked.add(responses.GET, f"{BASE_URL}/custom_fields", json={"results": fields})

    assert client.custom_fields() == fields


def test_create_custom_field_follows_location(
    mocked: responses.RequestsMock, client: HeartlandClient
) -> None:
    mocked.add(
        responses.POST,
        f"{BASE_URL}/custom_fields",
        status=201,
        body=b"",
        headers={"Location": "/api/custom_fields/7"},
    )
    stored = {"id": 7, "group_id": "customer", "key": "loyalty_points", "name": "Loyalty Points"}
    mocked.add(responses.GET, f"{BASE_URL}/custom_fields/7", json=stored)

    created = client.create_custom_field({"group_id": "customer", "name": "Loyalty Points"})

    assert created == stored
    assert json.loads(mocked.calls[0].request.body or b"") == {
        "group_id": "customer",
        "name": "Loyalty Points",
    }


def test_create_custom_field_absolute_location(
    mocked: responses.RequestsMock, client: HeartlandClient
) -> None:
    location = "http://127.0.0.1:8799/api/custom_fields/8"
    mocked.add(
        responses.POST, f"{BASE_URL}/custom_fields", status=201, headers={"Location": location}
    )
    mocked.add(responses.GET, f"{BASE_URL}/custom_fields/8", json={"id": 8, "key": "k"})

    assert client.create_custom_field({"name": "K"})["key"] == "k"


def test_create_custom_field_foreign_location(
    mocked: responses.RequestsMock, client: HeartlandClient
) -> None:
    mocked.add(
        responses.POST,
        f"{BASE_URL}/custom_fields",
        status=201,
        headers={"Location": "/other/custom_fields/8"},
    )

    with pytest.raises(GuardError, match="/other/custom_fields/8"):
        client.create_custom_field({"name": "K"})


def test_create_custom_field_not_repeated(
    mocked: responses.RequestsMock, client: HeartlandClient
) -> None:
    mocked.add(responses.POST, f"{BASE_URL}/custom_fields", status=503, json={})
    retrying = HeartlandClient(
        BASE_URL,
        "hl-token-abcdef",
        requests_per_second=0,
        retry=RetryPolicy(max_tries=3, jitter=lambda wait: 0),
        sleep=lambda seconds: None,
    )

    with pytest.raises(RetriableError, match="503"):
        retrying.create_custom_field({"name": "K"})

    assert len(mocked.calls) == 1


def test_update_customer_sends_custom_members(
    mocked: responses.RequestsMock, client: HeartlandClient
) -> None:
    mocked.add(responses.PUT, f"{CUSTOMERS}/9100", json={"id": 9100})

    client.update_customer(9100, custom={"loyalty_points": "730", "loyalty_tier": None})

    assert json.loads(mocked.calls[0].request.body or b"") == {
        "custom@loyalty_points": "730",
        "custom@loyalty_tier": None,
    }


def test_update_deleted_customer(mocked: responses.RequestsMock, client: HeartlandClient) -> None:
    mocked.add(responses.PUT, f"{CUSTOMERS}/9100", status=404, json={"error": "not_found"})

    with pytest.raises(NotFoundError):
        client.update_customer(9100, custom={"loyalty_points": "1"})
