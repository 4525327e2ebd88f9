"""The Heartland webhook receiver over real HTTP: the secret path decides, the body never."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from structlog.testing import capture_logs

from yotposync.ops.http_server import BackgroundServer
from yotposync.ops.webhook import WebhookReceiver

SECRET = "receiver-test-secret-0123456789"


class Triggers:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def triggers() -> Triggers:
    return Triggers()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def base_url(triggers: Triggers, clock: Clock) -> Iterator[str]:
    server = BackgroundServer(
        "webhook", "127.0.0.1", 0, WebhookReceiver(SECRET, triggers, monotonic=clock)
    )
    server.start()
    yield f"http://127.0.0.1:{server.port}"
    server.stop()


def test_valid_call_triggers_poll(base_url: str, triggers: Triggers) -> None:
    response = requests.post(f"{base_url}/heartland/{SECRET}", json={"id": 5001}, timeout=5)
    assert response.status_code == 200
    assert triggers.count == 1


def test_trailing_slash_accepted(base_url: str, triggers: Triggers) -> None:
    response = requests.post(f"{base_url}/heartland/{SECRET}/", data=b"", timeout=5)
    assert response.status_code == 200
    assert triggers.count == 1


def test_wrong_secret_is_404(base_url: str, triggers: Triggers) -> None:
    response = requests.post(f"{base_url}/heartland/{SECRET[:-1]}x", json={}, timeout=5)
    assert response.status_code == 404
    assert triggers.count == 0


def test_secret_prefix_is_404(base_url: str, triggers: Triggers) -> None:
    response = requests.post(f"{base_url}/heartland/{SECRET}extra", json={}, timeout=5)
    assert response.status_code == 404
    assert triggers.count == 0


def test_secret_in_query_is_404(base_url: str, triggers: Triggers) -> None:
    response = requests.post(f"{base_url}/heartland/", params={"secret": SECRET}, timeout=5)
    assert response.status_code == 404
    assert triggers.count == 0


def test_get_is_405(base_url: str, triggers: Triggers) -> None:
    response = requests.get(f"{base_url}/heartland/{SECRET}", timeout=5)
    assert response.status_code == 405
    assert triggers.count == 0


def test_body_not_json_still_triggers(base_url: str, triggers: Triggers) -> None:
    response = requests.post(f"{base_url}/heartland/{SECRET}", data=b"\xff not json", timeout=5)
    assert response.status_code == 200
    assert triggers.count == 1


def test_rejected_calls_logged_once_per_minute(base_url: str, clock: Clock) -> None:
    with capture_logs() as logs:
        for _ in range(3):
            requests.post(f"{base_url}/heartland/guess", timeout=5)
        clock.now = 61.0
        requests.post(f"{base_url}/heartland/guess", timeout=5)
    rejected = [entry for entry in logs if entry["event"] == "webhook_rejected"]
    assert [entry["calls"] for entry in rejected] == [1, 3]


def test_secret_never_logged(base_url: str) -> None:
    with capture_logs() as logs:
        requests.post(f"{base_url}/heartland/{SECRET}", json={"id": 7}, timeout=5)
        requests.post(f"{base_url}/heartland/wrong", timeout=5)
    assert SECRET not in repr(logs)
    assert {"event": "webhook_received", "ticket_id": 7} in [
        {k: entry[k] for k in ("event", "ticket_id") if k in entry} for entry in logs
    ]
