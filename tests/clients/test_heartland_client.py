"""HeartlandClient: the keyset walk over tickets, single tickets, lines and customers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from yotposync.clients.heartland import HeartlandClient, TicketPage
from yotposync.clients.http import RetryPolicy
from yotposync.errors import AuthError, FatalError, GuardError, RetriableError

if TYPE_CHECKING:
    from tests.clients.conftest import FakeClock

BASE_URL = "http://127.0.0.1:8799/api"
TICKETS = f"{BASE_URL}/sales/tickets"
START = datetime(2025, 4, 1, 12, 0, 0, tzinfo=UTC)
END = datetime(2025, 4, 2, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def client(clock: FakeClock) -> HeartlandClient:
    return HeartlandClient(
        BASE_URL,
        "hl-token-abcdef",
        requests_per_second=0,
        retry=RetryPolicy(max_tries=2, jitter=lambda wait: wait),
        sleep=clock.sleep,
    )


def ticket(ticket_id: int, updated_at: str) -> dict[str, Any]:
    return {"id": ticket_id, "updated_at": updated_at, "lines": []}


def page_body(tickets: list[dict[str, Any]], total: int | None = None) -> dict[str, Any]:
    """A list envelope; `total` defaults to the page's own count, as on a last page."""
    count = len(tickets) if total is None else total
    return {"results": tickets, "total": count, "pages": 1 if count else 0}


def query(call_index: int, mocked: responses.RequestsMock) -> dict[str, list[str]]:
    return parse_qs(urlsplit(mocked.calls[call_index].request.url).query)


def sent_filter(call_index: int, mocked: responses.RequestsMock) -> Any:
    return json.loads(query(call_index, mocked)["_filter"][0])


def walk(client: HeartlandClient, **options: Any) -> list[TicketPage]:
    arguments: dict[str, Any] = {"start": START, "end": END, "page_size": 2}
    arguments.update(options)
    return list(client.ticket_pages(**arguments))


def test_ticket_pages_first_page_query(
    mocked: responses.RequestsMock, client: HeartlandClient
) -> None:
    mocked.add(responses.GET, TICKETS, json=page_body([ticket(1, "2025-04-01T12:00:05+00:00")]))

    walk(client)

    sent = query(0, mocked)
    assert sent["sort[]"] == ["updated_at", "id"]
    assert sent["_include[]"] == ["lines", "subtotal", "tax_total"]
    assert sent["page"] == ["1"]
    assert sent["per_page"] == ["2"]
    assert sent_filter(0, mocked) == [
        {"updated_at": {"$gte": "2025-04-01T12:00:00+00:00"}},
        {"updated_at": {"$lte": "2025-04-02T12:00:00+00:00"}},
    ]


def test_ticket_pages_converts_to_utc_seconds(
    mocked: responses.RequestsMock, client: HeartlandClient
) -> None:
    mocked.add(responses.GET, TICKETS, json=page_body([]))
    chicago = timezone(timedelta(hours=-5))
    start = datetime(2025, 4, 1, 7, 0, 0, 123456, tzinfo=chicago)

    walk(client, start=start, end=None)

    assert sent_filter(0, mocked) == [{"updated_at": {"$gte": "2025-04-01T12:00:00+00:00"}}]


def test_ticket_pages_next_page_uses_keyset(
    mocked: responses.RequestsMock, client: HeartlandClient
) -> None:
    first = [ticket(7, "2025-04-01T13:00:00+00:00"), ticket(3, "2025-04-01T14:00:00+00:00")]
    second = [ticket(4, "2025-04-01T14:00:00+00:00")]
    mocked.add(responses.GET, TICKETS, json=page_body(first))
    mocked.add(responses.GET, TICKETS, json=page_body(second))

    pages = walk(client)

    assert [page.results for page in pages] == [first, second]
    assert sent_filter(1, mocked) == [
        {
            "$or": [
                {"updated_at": {"$gt": "2025-04-01T14:00:00+00:00"}},
                {"updated_at": "2025-04-01T14:00:00+00:00", "id": {"$gt": 3}},
            ]
        },
        {"updated_at": {"$lte": "2025-04-02T12:00:00+00:00"}},
    ]
    assert query(1, mocked)["page"] == ["1"]


def test_ticket_pages_keyset_keeps_raw_timestamp(
    mocked: responses.RequestsMock, client: HeartlandClient
) -> None:
    first = [ticket(1, "2025-04-01T12:30:00Z"), ticket(2, "2025-04-01T07:45:00-05:00")]
    mocked.add(responses.GET, TICKETS, json=page_body(first))
    mocked.add(responses.GET, TICKETS, json=page_body([]))

    walk(client, end=None)

    keyset = sent_filter(1, mocked)[0]["$or"]
    assert keyset[0] == {"updated_at": {"$gt": "2025-04-01T07:45:00-05:00"}}


def test_ticket_pages_stops_after_short_page(
    mocked: responses.RequestsMock, client: HeartlandClient
) -> None:
    mocked.add(responses.GET, TICKETS, json=page_body([ticket(1, "2025-04-01T13:00:00+00:00")]))

    pages = walk(client)

    assert len(pages) == 1
    assert len(mocked.calls) == 1


def test_ticket_pages_stops_on_empty_page(
    mocked: responses.RequestsMock, client: HeartlandClient
) -> None:
    full = [ticket(1, "2025-04-01T13:00:00+00:00"), ticket(2, "2025-04-01T13:00:00+00:00")]
    mocked.add(responses.GET, TICKETS, json=page_body(full))
    mocked.add(responses.GET, TICKETS, json=page_body([]))

    pages = walk(client)

    assert [len(page.results) for page in pages] == [2, 0]


def patient_client(clock: FakeClock) -> HeartlandClient:
    """A client that tries each call three times, so two bad pages in a row are survived."""
    return HeartlandClient(
        BASE_URL,
        "hl-token-abcdef",
        requests_per_second=0,
        retry=RetryPolicy(max_tries=3, jitter=lambda wait: wait),
        sleep=clock.sleep,
    )


def test_ticket_pages_retries_empty_page_with_total(
    mocked: responses.RequestsMock, clock: FakeClock
) -> None:
    # Two empty responses in a row would otherwise end the walk before its first ticket.
    listed = [ticket(1, "2025-04-01T13:00:00+00:00")]
    mocked.add(responses.GET, TICKETS, json=page_body([], total=1))
    mocked.add(responses.GET, TICKETS, json=page_body([], total=1))
    mocked.add(responses.GET, TICKETS, json=page_body(listed))

    pages = walk(patient_client(clock))

    assert [page.results for page in pages] == [listed]
    assert len(clock.sleeps) == 2


def test_ticket_pages_empty_page_with_total_fails(
    mocked: responses.RequestsMock, client: HeartlandClient
) -> None:
    # The client retries twice (max_tries=2), then gives up instead of ending the walk.
    mocked.add(responses.GET, TICKETS, json=page_body([], total=40))
    mocked.add(responses.GET, TICKETS, json=page_body([], total=40))

    with pytest.raises(RetriableError) as caught:
        walk(client)

    assert "empty results list, but total is 40" in str(caught.value)


def test_ticket_pages_retries_empty_later_page(
    mocked: responses.RequestsMock, clock: FakeClock
) -> None:
    first = [ticket(1, "2025-04-01T13:00:00+00:00"), ticket(2, "2025-04-01T13:00:01+00:00")]
    last = [ticket(3, "2025-04-01T13:00:02+00:00")]
    mocked.add(responses.GET, TICKETS, json=page_body(first, total=3))
    mocked.add(responses.GET, TICKETS, json=page_body([], total=1))
    mocked.add(responses.GET, TICKETS, json=page_body([], total=1))
    mocked.add(responses.GET, TICKETS, json=page_body(last))

    pages = walk(patient_client(clock))

    assert [page.results for page in pages] == [first, last]


def test_ticket_pages_total_on_first_page_only(
    mocked: responses.RequestsMock, client: HeartlandClient
) -> None:
    full = [ticket(1, "2025-04-01T13:00:00+00:00"), ticket(2, "2025-04-01T13:00:01+00:00")]
    mocked.add(responses.GET, TICKETS, json=page_body(full, total=3))
    mocked.add(responses.GET, TICKETS, json=page_body([ticket(3, "2025-04-01T13:00:02+00:00")]))

    pages = walk(client)

    assert [page.total for page in pages] == [3, None]


def test_ticket_pages_after_replaces_start(
    mocked: responses.RequestsMock, client: HeartlandClient
) -> None:
    mocked.add(responses.GET, TICKETS, json=page_body([ticket(9, "2025-04-01T15:00:00+00:00")]))

    walk(client, after=("2025-04-01T14:00:00+00:00", 8), end=None)

    assert sent_filter(0, mocked) == [
        {
            "$or": [
                {"updated_at": {"$gt": "2025-04-01T14:00:00+00:00"}},
                {"updated_at": "2025-04-01T14:00:00+00:00", "id": {"$gt": 8}},
            ]
        }
    ]


def test_ticket_pages_repeated_page_raises(
    mocked: responses.RequestsMock, client: HeartlandClient
) -> None:
    full = [ticket(1, "2025-04-01T13:00:00+00:00"), ticket(2, "2025-04-01T13:00:00+00:00")]
    mocked.add(responses.GET, TICKETS, json=page_body(full))
    mocked.add(responses.GET, TICKETS, json=page_body(full))

    pages = client.ticket_pages(start=START, end=END, page_size=2)
    next(pages)

    with pytest.raises(GuardError) as caught:
        next(pages)

    assert "(updated_at=2025-04-01T13:00:00+00:00, id=2)" in str(caught.value)
    assert isinstance(caught.value, FatalError)


def test_ticket_pages_earlier_page_raises(
    mocked: responses.RequestsMock, client: HeartlandClient
) -> None:
    first = [ticket(1, "2025-04-01T13:00:00+00:00"), ticket(2, "2025-04-01T13:00:00+00:00")]
    # The same instant written with another offset still counts as earlier.
    second = [ticket(5, "2025-04-01T12:59:59+00:00"), ticket(6, "2025-04-01T07:59:59-05:00")]
    mocked.add(responses.GET, TICKETS, json=page_body(first))
    mocked.add(responses.GET, TICKETS, json=page_body(second))

    with pytest.raises(GuardError):
        walk(client)


def test_ticket_pages_page_before_after_key_raises(
    mocked: responses.RequestsMock, client: HeartlandClient
) -> None:
    mocked.add(responses.GET, TICKETS, json=page_body([ticket(3, "2025-04-01T14:00:00+00:00")]))

    with pytest.raises(GuardError):
        walk(client, after=("2025-04-01T14:00:00+00:00", 8))


def test_ticket_pages_same_time_greater_id_continues(
    mocked: responses.RequestsMock, client: HeartlandClient
) -> None:
    first = [ticket(1, "2025-04-01T13:00:00+00:00"), ticket(2, "2025-04-01T13:00:00+00:00")]
    second = [ticket(3, "2025-04-01T13:00:00+00:00")]
    mocked.add(responses.GET, TICKETS, json=page_body(first))
    mocked.add(responses.GET, TICKETS, json=page_body(second))

    pages = walk(client)

    assert len(pages) == 2


UNUSABLE_KEYS = [
    {"id": 2},
    {"id": "2", "updated_at": "2025-04-01T13:00:00+00:00"},
    {"id": 2, "updated_at": "yesterday"},
    {"id": 2, "updated_at": "2025-04-01T13:00:00"},
]


@pytest.mark.parametrize("last", UNUSABLE_KEYS)
def test_ticket_pages_continue_after_last_usable_key(
    mocked: responses.RequestsMock, client: HeartlandClient, last: dict[str, Any]
) -> None:
    mocked.add(
        responses.GET,
        TICKETS,
        json=page_body([ticket(1, "2025-04-01T13:00:00+00:00"), last], total=3),
    )
    mocked.add(responses.GET, TICKETS, json=page_body([last]))

    pages = walk(client)

    assert [len(page.results) for page in pages] == [2, 1]
    # The next page starts after ticket 1, so the unusable record is listed again there.
    assert sent_filter(1, mocked)[0] == {
        "$or": [
            {"updated_at": {"$gt": "2025-04-01T13:00:00+00:00"}},
            {"updated_at": "2025-04-01T13:00:00+00:00", "id": {"$gt": 1}},
        ]
    }


@pytest.mark.parametrize("last", UNUSABLE_KEYS)
def test_ticket_pages_full_page_without_usable_key_raises(
    mocked: responses.RequestsMock, client: HeartlandClient, last: dict[str, Any]
) -> None:
    mocked.add(responses.GET, TICKETS, json=page_body([{"id": None}, last], total=5))

    with pytest.raises(GuardError, match="no record has a usable updated_at and id"):
        walk(client)

    assert len(mocked.calls) == 1


def test_ticket_pages_naive_start_rejected(client: HeartlandClient) -> None:
    with pytest.raises(ValueError, match="no UTC offset"):
        walk(client, start=datetime(2025, 4, 1, 12, 0, 0))


def test_ticket_pages_envelope_without_results(
    mocked: responses.RequestsMock, client: HeartlandClient
) -> None:
    mocked.add(responses.GET, TICKETS, json={"error": "maintenance"})
    mocked.add(responses.GET, TICKETS, json={"results": "none"})

    with pytest.raises(RetriableError) as caught:
        walk(client)

    assert caught.value.reason == "unexpected response: no results list"


def test_get_ticket_includes_related(
    mocked: responses.RequestsMock, client: HeartlandClient
) -> None:
    mocked.add(responses.GET, f"{TICKETS}/5001", json={"id": 5001, "lines": []})

    found = client.get_ticket(5001)

    assert found == {"id": 5001, "lines": []}
    assert query(0, mocked)["_include[]"] == ["lines", "subtotal", "tax_total"]


def test_get_ticket_not_found_is_none(
    mocked: responses.RequestsMock, client: HeartlandClient
) -> None:
    mocked.add(responses.GET, f"{TICKETS}/404", status=404, json={"error": "not_found"})

    assert client.get_ticket(404) is None


def test_get_customer_retries_list_envelope(
    mocked: responses.RequestsMock, client: HeartlandClient
) -> None:
    # A list envelope is not the customer: taken as one, it would read as a customer
    # without an id, and the tickets naming it would lose their points.
    url = f"{BASE_URL}/customers/9053"
    mocked.add(responses.GET, url, json={"results": [], "total": 0, "pages": 0})
    mocked.add(responses.GET, url, json={"id": 9053, "email": "pat@example.com"})

    assert client.get_customer(9053) == {"id": 9053, "email": "pat@example.com"}
    assert len(mocked.calls) == 2


def test_get_customer_passes_odd_record_on(
    mocked: responses.RequestsMock, client: HeartlandClient
) -> None:
    # A record with an odd id is data to report, not a wrong response to retry.
    url = f"{BASE_URL}/customers/9053"
    mocked.add(responses.GET, url, json={"id": "C-x", "email": "pat@example.com"})

    assert client.get_customer(9053) == {"id": "C-x", "email": "pat@example.com"}
    assert len(mocked.calls) == 1


def test_ticket_lines_all_in_one_page(
    mocked: responses.RequestsMock, client: HeartlandClient
) -> None:
    lines = [{"id": 77001, "type": "ItemLine"}, {"id": 77002, "type": "TaxLine"}]
    mocked.add(responses.GET, f"{TICKETS}/5001/lines", json={"results": lines, "total": 2})

    found = client.ticket_lines(5001)

    assert found == lines
    assert query(0, mocked)["per_page"] == ["all"]


def test_customers_by_id_chunks_of_100(
    mocked: responses.RequestsMock, client: HeartlandClient
) -> None:
    ids = list(range(1, 251))
    for offset in range(0, 250, 100):
        chunk = ids[offset : offset + 100]
        mocked.add(
            responses.GET,
            f"{BASE_URL}/customers",
            json={"results": [{"id": customer_id} for customer_id in chunk]},
        )

    found = client.customers_by_id([*ids, 5, 5])

    assert sorted(found) == ids
    assert [query(index, mocked)["per_page"] for index in range(3)] == [["100"], ["100"], ["50"]]
    assert json.loads(query(2, mocked)["_filter"][0]) == {"id": {"$in": ids[200:]}}


def test_customers_by_id_leaves_out_unknown(
    mocked: responses.RequestsMock, client: HeartlandClient
) -> None:
    mocked.add(
        responses.GET,
        f"{BASE_URL}/customers",
        json={"results": [{"id": 9100, "email": "a@example.com"}]},
    )

    found = client.customers_by_id([9100, 9101])

    assert found == {9100: {"id": 9100, "email": "a@example.com"}}


def test_customers_by_id_empty_sends_nothing(
    mocked: responses.RequestsMock, client: HeartlandClient
) -> None:
    assert client.customers_by_id([]) == {}


def test_check_reads_one_location(mocked: responses.RequestsMock, client: HeartlandClient) -> None:
    mocked.add(responses.GET, f"{BASE_URL}/locations", json={"results": [], "total": 0})

    client.check()

    assert query(0, mocked)["per_page"] == ["1"]
    assert mocked.calls[0].request.headers["Authorization"] == "Bearer hl-token-abcdef"


def test_check_bad_token_raises_auth_error(
    mocked: responses.RequestsMock, client: HeartlandClient
) -> None:
    mocked.add(responses.GET, f"{BASE_URL}/locations", status=401)

    with pytest.raises(AuthError) as caught:
        client.check()

    assert "heartland.token" in str(caught.value)
    assert "hl-token-abcdef" not in str(caught.value)


def test_client_retries_through_sleep(
    mocked: responses.RequestsMock, client: HeartlandClient, clock: FakeClock
) -> None:
    mocked.add(responses.GET, f"{BASE_URL}/locations", body=requests.ConnectTimeout())
    mocked.add(responses.GET, f"{BASE_URL}/locations", json={"results": []})

    client.check()

    assert clock.sleeps == [0.5]


@responses.activate
def test_page_past_window_end_asked_by_number(client: HeartlandClient) -> None:
    future = "2030-01-01T00:00:00+00:00"
    responses.get(TICKETS, json=page_body([ticket(1, future), ticket(2, future)], total=3))
    responses.get(TICKETS, json=page_body([ticket(3, "2025-04-01T13:00:00+00:00")]))

    pages = walk(client)

    assert [[row["id"] for row in page.results] for page in pages] == [[1, 2], [3]]
    assert query(1, responses.mock)["page"] == ["2"]
    assert sent_filter(1, responses.mock) == sent_filter(0, responses.mock)


@responses.activate
def test_same_page_past_window_end_stops_walk(client: HeartlandClient) -> None:
    # A server that ignores the page number would return this page forever.
    future = "2030-01-01T00:00:00+00:00"
    responses.get(TICKETS, json=page_body([ticket(1, future), ticket(2, future)], total=2))

    with pytest.raises(GuardError, match="returned the same full ticket page for page 1 and"):
        walk(client)
