"""HttpService retries: reset headers, backoff, limits, maybe-applied errors and retry logs.

Waits go to the fake clock of the conftest, so no test really sleeps.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import TYPE_CHECKING

import pytest
import requests
import responses
from structlog.testing import capture_logs
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from yotposync.clients.http import HttpService, RetryPolicy, parse_retry_after
from yotposync.errors import AuthError, RejectedError, RetriableError

if TYPE_CHECKING:
    from tests.clients.conftest import FakeClock

BASE_URL = "http://127.0.0.1:8799/api"  # the base URL of the conftest `make_service`
TICKETS = f"{BASE_URL}/sales/tickets"

ServiceFactory = Callable[..., HttpService]


def refused_connection() -> requests.ConnectionError:
    """Build the error requests raises when nothing listens on the port."""
    refused = NewConnectionError(None, "[Errno 111] Connection refused")  # type: ignore[arg-type]
    return requests.ConnectionError(MaxRetryError(None, "/sales/tickets", refused))  # type: ignore[arg-type]


def dropped_connection() -> requests.ConnectionError:
    """Build the error requests raises when the server closes the socket without responding."""
    return requests.ConnectionError(ProtocolError("Connection aborted.", ConnectionResetError()))


def test_429_waits_retry_after_seconds(
    mocked: responses.RequestsMock, make_service: ServiceFactory, clock: FakeClock
) -> None:
    mocked.add(responses.GET, TICKETS, status=429, headers={"Retry-After": "7"})
    mocked.add(responses.GET, TICKETS, json={"ok": True})

    body = make_service().get_json("/sales/tickets")

    assert body == {"ok": True}
    assert clock.sleeps == [7.0]


def test_429_waits_retry_after_http_date(
    mocked: responses.RequestsMock, make_service: ServiceFactory, clock: FakeClock
) -> None:
    reset_at = datetime.now(UTC) + timedelta(seconds=30)
    mocked.add(
        responses.GET,
        TICKETS,
        status=429,
        headers={"Retry-After": format_datetime(reset_at, usegmt=True)},
    )
    mocked.add(responses.GET, TICKETS, json={})

    make_service().get_json("/sales/tickets")

    assert len(clock.sleeps) == 1
    assert 25.0 <= clock.sleeps[0] <= 30.0


def test_429_waits_ratelimit_reset(
    mocked: responses.RequestsMock, make_service: ServiceFactory, clock: FakeClock
) -> None:
    headers = {"ratelimit-remaining": "0", "ratelimit-reset": "2"}
    mocked.add(responses.GET, TICKETS, status=429, headers=headers)
    mocked.add(responses.GET, TICKETS, json={})

    make_service().get_json("/sales/tickets")

    # The retry waits 2 s; the limiter then finds its pause already over.
    assert clock.sleeps == [2.0]


def test_429_without_header_backs_off_exponentially(
    mocked: responses.RequestsMock, make_service: ServiceFactory, clock: FakeClock
) -> None:
    for _ in range(3):
        mocked.add(responses.GET, TICKETS, status=429)
    mocked.add(responses.GET, TICKETS, json={})

    make_service().get_json("/sales/tickets")

    assert clock.sleeps == [0.5, 1.0, 2.0]


def test_absurd_retry_after_capped(
    mocked: responses.RequestsMock, make_service: ServiceFactory, clock: FakeClock
) -> None:
    mocked.add(responses.GET, TICKETS, status=429, headers={"Retry-After": "86400"})
    mocked.add(responses.GET, TICKETS, json={})
    service = make_service(retry=RetryPolicy(max_wait_seconds=60.0, max_seconds=1000.0))

    service.get_json("/sales/tickets")

    assert clock.sleeps == [60.0]


def test_429_error_carries_retry_after(
    mocked: responses.RequestsMock, make_service: ServiceFactory
) -> None:
    mocked.add(responses.GET, TICKETS, status=429, headers={"Retry-After": "12"})

    with pytest.raises(RetriableError) as caught:
        make_service(retry=RetryPolicy(max_tries=1)).get_json("/sales/tickets")

    assert caught.value.retry_after == 12.0
    assert caught.value.maybe_applied is False


def test_default_jitter_stays_within_exponential_step(
    mocked: responses.RequestsMock, make_service: ServiceFactory, clock: FakeClock
) -> None:
    for _ in range(3):
        mocked.add(responses.GET, TICKETS, status=503)
    mocked.add(responses.GET, TICKETS, json={})

    make_service(retry=RetryPolicy()).get_json("/sales/tickets")

    steps = [0.5, 1.0, 2.0]
    assert all(0.0 <= wait <= step for wait, step in zip(clock.sleeps, steps, strict=True))


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_retried_then_succeeds(
    mocked: responses.RequestsMock, make_service: ServiceFactory, status: int
) -> None:
    mocked.add(responses.GET, TICKETS, status=status)
    mocked.add(responses.GET, TICKETS, json={"results": []})

    body = make_service().get_json("/sales/tickets")

    assert body == {"results": []}


def test_retries_exhausted_raises_last_error(
    mocked: responses.RequestsMock, make_service: ServiceFactory, clock: FakeClock
) -> None:
    for status in (500, 502, 503):
        mocked.add(responses.GET, TICKETS, status=status)

    with pytest.raises(RetriableError) as caught:
        make_service(retry=RetryPolicy(max_tries=3, jitter=lambda wait: wait)).get_json(
            "/sales/tickets"
        )

    assert caught.value.status == 503
    assert len(mocked.calls) == 3
    assert clock.sleeps == [0.5, 1.0]


def test_time_budget_stops_retries(
    mocked: responses.RequestsMock, make_service: ServiceFactory, clock: FakeClock
) -> None:
    mocked.add(responses.GET, TICKETS, status=429, headers={"Retry-After": "6"})
    mocked.add(responses.GET, TICKETS, status=429, headers={"Retry-After": "6"})
    service = make_service(retry=RetryPolicy(max_seconds=10.0))

    with pytest.raises(RetriableError):
        service.get_json("/sales/tickets")

    # A second 6 s wait would end at 12 s, past the 10 s budget, so it is not started.
    assert clock.sleeps == [6.0]


@pytest.mark.parametrize("status", [400, 409, 422])
def test_other_4xx_not_retried(
    mocked: responses.RequestsMock, make_service: ServiceFactory, status: int
) -> None:
    mocked.add(responses.POST, TICKETS, status=status)

    with pytest.raises(RejectedError):
        make_service().request("POST", "/sales/tickets", json={})

    assert len(mocked.calls) == 1


@pytest.mark.parametrize("status", [401, 403])
def test_auth_error_not_retried(
    mocked: responses.RequestsMock, make_service: ServiceFactory, status: int
) -> None:
    mocked.add(responses.GET, TICKETS, status=status)

    with pytest.raises(AuthError):
        make_service().get_json("/sales/tickets")

    assert len(mocked.calls) == 1


@pytest.mark.parametrize(
    ("error", "maybe_applied"),
    [
        (requests.ConnectTimeout(), False),
        (requests.ReadTimeout(), True),
        (refused_connection(), False),
        (dropped_connection(), True),
        (requests.exceptions.ChunkedEncodingError(), True),
        (requests.exceptions.SSLError(), False),
    ],
)
def test_transport_error_maybe_applied(
    mocked: responses.RequestsMock,
    make_service: ServiceFactory,
    error: Exception,
    maybe_applied: bool,
) -> None:
    mocked.add(responses.GET, TICKETS, body=error)

    with pytest.raises(RetriableError) as caught:
        make_service(retry=RetryPolicy(max_tries=1)).get_json("/sales/tickets")

    assert caught.value.status is None
    assert caught.value.maybe_applied is maybe_applied


@pytest.mark.parametrize(
    "error", [requests.ConnectTimeout(), requests.ReadTimeout(), refused_connection()]
)
def test_transport_error_retried_on_get(
    mocked: responses.RequestsMock, make_service: ServiceFactory, error: Exception
) -> None:
    mocked.add(responses.GET, TICKETS, body=error)
    mocked.add(responses.GET, TICKETS, json={"results": []})

    body = make_service().get_json("/sales/tickets")

    assert body == {"results": []}


def test_transport_error_hides_url(
    mocked: responses.RequestsMock, make_service: ServiceFactory
) -> None:
    mocked.add(responses.GET, TICKETS, body=requests.ReadTimeout(f"{TICKETS}?q=secret"))

    with pytest.raises(RetriableError) as caught:
        make_service(retry=RetryPolicy(max_tries=1)).get_json("/sales/tickets", {"q": "secret"})

    assert str(caught.value) == (
        "heartland GET /sales/tickets failed: no response: read timed out after 7.0 s (ReadTimeout)"
    )
    assert caught.value.__cause__ is None


@pytest.mark.parametrize("error", [requests.ReadTimeout(), dropped_connection()])
def test_non_idempotent_maybe_applied_not_retried(
    mocked: responses.RequestsMock, make_service: ServiceFactory, error: Exception
) -> None:
    mocked.add(responses.POST, f"{BASE_URL}/points/adjust", body=error)

    with pytest.raises(RetriableError) as caught:
        make_service().request("POST", "/points/adjust", json={}, idempotent=False)

    assert caught.value.maybe_applied is True
    assert len(mocked.calls) == 1


def test_non_idempotent_5xx_not_retried(
    mocked: responses.RequestsMock, make_service: ServiceFactory
) -> None:
    mocked.add(responses.POST, f"{BASE_URL}/points/adjust", status=500)

    with pytest.raises(RetriableError) as caught:
        make_service().request("POST", "/points/adjust", json={})

    assert caught.value.maybe_applied is True
    assert len(mocked.calls) == 1


@pytest.mark.parametrize("error", [requests.ConnectTimeout(), refused_connection()])
def test_non_idempotent_not_sent_is_retried(
    mocked: responses.RequestsMock, make_service: ServiceFactory, error: Exception
) -> None:
    mocked.add(responses.POST, f"{BASE_URL}/points/adjust", body=error)
    mocked.add(responses.POST, f"{BASE_URL}/points/adjust", json={})

    make_service().request("POST", "/points/adjust", json={})

    assert len(mocked.calls) == 2


def test_non_idempotent_429_retried(
    mocked: responses.RequestsMock, make_service: ServiceFactory
) -> None:
    mocked.add(responses.POST, f"{BASE_URL}/points/adjust", status=429)
    mocked.add(responses.POST, f"{BASE_URL}/points/adjust", json={})

    make_service().request("POST", "/points/adjust", json={})

    assert len(mocked.calls) == 2


def test_idempotent_post_retried_after_timeout(
    mocked: responses.RequestsMock, make_service: ServiceFactory
) -> None:
    mocked.add(responses.POST, f"{BASE_URL}/orders", body=requests.ReadTimeout())
    mocked.add(responses.POST, f"{BASE_URL}/orders", json={})

    make_service().request("POST", "/orders", json={}, idempotent=True)

    assert len(mocked.calls) == 2


def test_extra_retriable_status(
    mocked: responses.RequestsMock, make_service: ServiceFactory
) -> None:
    mocked.add(responses.POST, f"{BASE_URL}/points/adjust", status=423)
    mocked.add(responses.POST, f"{BASE_URL}/points/adjust", json={})

    make_service(retriable_statuses=frozenset({423})).request(
        "POST", "/points/adjust", json={}, idempotent=False
    )

    assert len(mocked.calls) == 2


def test_retry_log_names_request(
    mocked: responses.RequestsMock, make_service: ServiceFactory
) -> None:
    mocked.add(responses.GET, TICKETS, status=503)
    mocked.add(responses.GET, TICKETS, json={})

    with capture_logs() as logs:
        make_service().get_json("/sales/tickets", {"_filter": '{"id": 5}'})

    assert logs == [
        {
            "event": "http_retry",
            "log_level": "warning",
            "service": "heartland",
            "method": "GET",
            "path": "/sales/tickets",
            "status": 503,
            "attempt": 1,
            "wait": 0.5,
        }
    ]


def test_retry_log_has_no_secret_or_query(
    mocked: responses.RequestsMock, make_service: ServiceFactory
) -> None:
    mocked.add(responses.GET, TICKETS, body=requests.ReadTimeout(f"{TICKETS}?email=pat"))
    mocked.add(responses.GET, TICKETS, status=502, body="test-token-0123456789")
    mocked.add(responses.GET, TICKETS, json={})

    with capture_logs() as logs:
        make_service().get_json("/sales/tickets?email=pat", {"customer_email": "pat@example.com"})

    logged = repr(logs)
    assert len(logs) == 2
    assert "test-token-0123456789" not in logged
    assert "email" not in logged
    assert "?" not in logged


def test_retry_log_gives_transport_reason(
    mocked: responses.RequestsMock, make_service: ServiceFactory
) -> None:
    mocked.add(responses.GET, TICKETS, body=requests.ConnectTimeout())
    mocked.add(responses.GET, TICKETS, json={})

    with capture_logs() as logs:
        make_service().get_json("/sales/tickets")

    assert logs[0]["reason"] == "connection timed out (ConnectTimeout)"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "3"}, 3.0),
        ({"Retry-After": "1.5"}, 1.5),
        ({"Retry-After": "-4"}, 0.0),
        ({"Retry-After": "Wed, 01 Jan 2025 00:00:20 GMT"}, 20.0),
        ({"Retry-After": "Tue, 31 Dec 2024 23:59:00 GMT"}, 0.0),
        ({"Retry-After": "soon", "ratelimit-reset": "4"}, 4.0),
        ({"ratelimit-reset": "9"}, 9.0),
        ({"Retry-After": "nan"}, None),
        ({}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)

    assert parse_retry_after(headers, now=lambda: now) == expected


@pytest.mark.parametrize(
    "options",
    [{"max_tries": 0}, {"max_seconds": -1.0}, {"base_wait_seconds": float("nan")}],
)
def test_retry_policy_rejects_invalid_limits(options: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        RetryPolicy(**options)  # type: ignore[arg-type]
