"""HttpService: the status-to-error map, error reasons, JSON bodies, timeouts and TLS."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import responses

from yotposync import __version__
from yotposync.clients.http import HttpService, RateLimiter, RetryPolicy, is_loopback_url
from yotposync.errors import (
    AuthError,
    ConfigError,
    FatalError,
    NotFoundError,
    RejectedError,
    RetriableError,
)
from yotposync.logs import register_secret

BASE_URL = "http://127.0.0.1:8799/api"  # the base URL of the conftest `make_service`
ONE_TRY = RetryPolicy(max_tries=1)
TICKETS = f"{BASE_URL}/sales/tickets"

ServiceFactory = Callable[..., HttpService]


@pytest.mark.parametrize("status", [200, 201, 204])
def test_request_2xx_returns_response(
    mocked: responses.RequestsMock, make_service: ServiceFactory, status: int
) -> None:
    mocked.add(responses.POST, TICKETS, status=status)

    response = make_service().request("POST", "/sales/tickets", json={"a": 1})

    assert response.status_code == status


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (401, AuthError),
        (403, AuthError),
        (404, NotFoundError),
        (400, RejectedError),
        (409, RejectedError),
        (422, RejectedError),
        (429, RetriableError),
        (500, RetriableError),
        (502, RetriableError),
        (503, RetriableError),
    ],
)
def test_status_map_error_class(
    mocked: responses.RequestsMock,
    make_service: ServiceFactory,
    status: int,
    error_type: type[Exception],
) -> None:
    mocked.add(responses.GET, TICKETS, status=status, json={"error": "boom"})

    with pytest.raises(error_type) as caught:
        make_service(retry=ONE_TRY).get_json("/sales/tickets")

    assert type(caught.value) is error_type
    assert caught.value.status == status  # type: ignore[attr-defined]


def test_status_422_is_not_not_found(
    mocked: responses.RequestsMock, make_service: ServiceFactory
) -> None:
    mocked.add(responses.GET, TICKETS, status=422)

    with pytest.raises(RejectedError) as caught:
        make_service().get_json("/sales/tickets")

    assert not isinstance(caught.value, NotFoundError)


def test_auth_error_is_fatal_with_hint(
    mocked: responses.RequestsMock, make_service: ServiceFactory
) -> None:
    mocked.add(responses.GET, TICKETS, status=401, json={"error": "unauthorized"})
    service = make_service(auth_hint="check heartland.token")

    with pytest.raises(AuthError) as caught:
        service.get_json("/sales/tickets")

    assert caught.value.reason == "unauthorized; check heartland.token"


def test_reason_joins_error_and_message(
    mocked: responses.RequestsMock, make_service: ServiceFactory
) -> None:
    body = {"error": "validation_error", "message": "Qty must be\nnon-zero", "details": {"x": 1}}
    mocked.add(responses.POST, TICKETS, status=422, json=body)

    with pytest.raises(RejectedError) as caught:
        make_service().request("POST", "/sales/tickets", json={})

    assert caught.value.reason == "validation_error: Qty must be non-zero"


def test_reason_adds_text_details_by_field(
    mocked: responses.RequestsMock, make_service: ServiceFactory
) -> None:
    body = {
        "error": "validation_error",
        "message": "invalid webhook",
        "details": {"url": "must be\nhttps", "events": ["unknown event", 3], "count": 2},
    }
    mocked.add(responses.POST, TICKETS, status=422, json=body)

    with pytest.raises(RejectedError) as caught:
        make_service().request("POST", "/sales/tickets", json={})

    assert caught.value.reason == (
        "validation_error: invalid webhook: url: must be https; events: unknown event"
    )


def test_reason_truncated_to_200_chars(
    mocked: responses.RequestsMock, make_service: ServiceFactory
) -> None:
    mocked.add(responses.POST, TICKETS, status=400, json={"error": "x" * 5000})

    with pytest.raises(RejectedError) as caught:
        make_service().request("POST", "/sales/tickets", json={})

    assert len(caught.value.reason) == 200
    assert caught.value.reason.endswith("...")


def test_reason_without_json_is_status_phrase(
    mocked: responses.RequestsMock, make_service: ServiceFactory
) -> None:
    mocked.add(responses.POST, TICKETS, status=409, body="<html>a long page</html>")

    with pytest.raises(RejectedError) as caught:
        make_service().request("POST", "/sales/tickets", json={})

    assert caught.value.reason == "Conflict"


def test_reason_redacts_credentials(
    mocked: responses.RequestsMock, make_service: ServiceFactory
) -> None:
    echoed = {"error": "token test-token-0123456789 is not valid"}
    mocked.add(responses.GET, TICKETS, status=400, json=echoed)

    with pytest.raises(RejectedError) as caught:
        make_service().get_json("/sales/tickets")

    assert "test-token-0123456789" not in str(caught.value)


def test_reason_redacts_registered_secrets(
    mocked: responses.RequestsMock, make_service: ServiceFactory
) -> None:
    register_secret("other-service-key-5d1e")
    echoed = {"error": "boom echo other-service-key-5d1e"}
    mocked.add(responses.GET, TICKETS, status=500, json=echoed)

    with pytest.raises(RetriableError) as caught:
        make_service(retry=RetryPolicy(max_tries=1)).get_json("/sales/tickets")

    assert "other-service-key-5d1e" not in str(caught.value)
    assert "boom echo [redacted]" in str(caught.value)


def test_error_message_has_no_query_string(
    mocked: responses.RequestsMock, make_service: ServiceFactory
) -> None:
    mocked.add(responses.GET, TICKETS, status=422, json={"error": "bad filter"})

    with pytest.raises(RejectedError) as caught:
        make_service().get_json("/sales/tickets?x=1", {"customer_email": "pat@example.com"})

    assert str(caught.value) == "heartland GET /sales/tickets failed: HTTP 422: bad filter"


def test_redirect_rejected_not_followed(
    mocked: responses.RequestsMock, make_service: ServiceFactory
) -> None:
    mocked.add(
        responses.GET,
        TICKETS,
        status=302,
        headers={"Location": "http://127.0.0.1:8798/elsewhere?key=1"},
    )

    with pytest.raises(RejectedError) as caught:
        make_service().get_json("/sales/tickets")

    assert caught.value.reason == "unexpected redirect; check the base URL"


def test_invalid_json_is_retriable(
    mocked: responses.RequestsMock, make_service: ServiceFactory
) -> None:
    mocked.add(responses.GET, TICKETS, status=200, body='{"results": [')

    with pytest.raises(RetriableError) as caught:
        make_service(retry=ONE_TRY).get_json("/sales/tickets")

    assert caught.value.reason == "invalid JSON in response"


def test_invalid_json_retried_then_parsed(
    mocked: responses.RequestsMock, make_service: ServiceFactory
) -> None:
    mocked.add(responses.GET, TICKETS, status=200, body="not json")
    mocked.add(responses.GET, TICKETS, status=200, json={"results": []})

    body = make_service().get_json("/sales/tickets")

    assert body == {"results": []}


def test_check_problem_is_retriable(
    mocked: responses.RequestsMock, make_service: ServiceFactory
) -> None:
    mocked.add(responses.GET, TICKETS, status=200, json=[1, 2])

    with pytest.raises(RetriableError) as caught:
        make_service(retry=ONE_TRY).get_json("/sales/tickets", check=lambda body: "not an object")

    assert caught.value.reason == "unexpected response: not an object"


def test_every_call_has_timeout(
    mocked: responses.RequestsMock, make_service: ServiceFactory
) -> None:
    mocked.add(responses.GET, TICKETS, json={})
    mocked.add(responses.POST, TICKETS, json={})
    service = make_service(connect_timeout=1.5, read_timeout=9.0)

    service.get_json("/sales/tickets")
    service.request("POST", "/sales/tickets", json={})

    timeouts = [call.request.req_kwargs["timeout"] for call in mocked.calls]  # type: ignore[attr-defined]
    assert timeouts == [(1.5, 9.0), (1.5, 9.0)]


def test_headers_sent(mocked: responses.RequestsMock, make_service: ServiceFactory) -> None:
    mocked.add(responses.GET, TICKETS, json={})

    make_service().get_json("/sales/tickets")

    sent = mocked.calls[0].request.headers
    assert sent["Authorization"] == "Bearer test-token-0123456789"
    assert sent["User-Agent"] == f"yotposync/{__version__}"
    assert sent["Accept"] == "application/json"


def test_params_and_json_sent(mocked: responses.RequestsMock, make_service: ServiceFactory) -> None:
    mocked.add(responses.POST, TICKETS, json={})

    make_service().request("POST", "sales/tickets", params={"a[]": ["x", "y"]}, json={"b": 2})

    request = mocked.calls[0].request
    assert request.url == f"{TICKETS}?a%5B%5D=x&a%5B%5D=y"
    assert request.body == b'{"b": 2}'


@pytest.mark.parametrize("value", [0, -1.0, float("inf")])
def test_timeout_must_be_positive(make_service: ServiceFactory, value: float) -> None:
    with pytest.raises(ValueError, match="read_timeout"):
        make_service(read_timeout=value)


def test_tls_verify_off_rejected_for_remote_host() -> None:
    with pytest.raises(ConfigError) as caught:
        HttpService(
            "yotpo",
            "https://loyalty.yotpo.com/api/v2",
            headers={},
            connect_timeout=1.0,
            read_timeout=1.0,
            limiter=RateLimiter(0),
            retry=ONE_TRY,
            verify_tls=False,
        )

    assert "127.0.0.1, localhost or ::1" in caught.value.problems[0]


def test_tls_verify_on_by_default(
    mocked: responses.RequestsMock, make_service: ServiceFactory
) -> None:
    mocked.add(responses.GET, TICKETS, json={})

    make_service().get_json("/sales/tickets")

    # requests may replace True with a CA bundle path from the environment; both verify.
    assert mocked.calls[0].request.req_kwargs["verify"] is not False  # type: ignore[attr-defined]


def test_tls_verify_off_allowed_on_loopback(
    mocked: responses.RequestsMock, make_service: ServiceFactory
) -> None:
    mocked.add(responses.GET, TICKETS, json={})

    make_service(verify_tls=False).get_json("/sales/tickets")

    assert mocked.calls[0].request.req_kwargs["verify"] is False  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8701/api", True),
        ("http://127.5.0.1/api", True),
        ("http://localhost:8702/api/v2", True),
        ("http://LOCALHOST/api", True),
        ("http://[::1]:8701/api", True),
        ("https://mystore.retail.heartland.us/api", False),
        ("https://127.0.0.1.example.com/api", False),
        ("http://10.0.0.1/api", False),
        ("not a url", False),
        ("http://[::1/api", False),
    ],
)
def test_is_loopback_url(url: str, expected: bool) -> None:
    assert is_loopback_url(url) is expected


@pytest.mark.parametrize(
    "base_url",
    [
        "http://127.0.0.1:99999/api",
        "127.0.0.1:8701/api",
        "ftp://127.0.0.1/api",
        "https:///api",
        "http://[::1/api",
        "https://user:secret@mystore.retail.heartland.us/api",
        "ftp://127.0.0.1/api?token=secret",
        "ftp://127.0.0.1/api#secret",
    ],
)
def test_invalid_base_url_rejected(base_url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        HttpService(
            "heartland",
            base_url,
            headers={},
            connect_timeout=1.0,
            read_timeout=1.0,
            limiter=RateLimiter(0),
            retry=ONE_TRY,
        )

    assert caught.value.problems[0].startswith("heartland.base_url ")
    assert "secret" not in str(caught.value)


def test_unsendable_request_is_fatal(mocked: responses.RequestsMock) -> None:
    service = HttpService(
        "heartland",
        BASE_URL,
        headers={"Authorization": "Bearer token-with-line-break\n"},
        connect_timeout=1.0,
        read_timeout=1.0,
        limiter=RateLimiter(0),
        retry=RetryPolicy(),
    )

    with pytest.raises(FatalError) as caught:
        service.get_json("/locations")

    assert str(caught.value) == (
        "heartland GET /locations: the request could not be sent (InvalidHeader); check "
        "heartland.base_url and the credentials for invalid characters"
    )
