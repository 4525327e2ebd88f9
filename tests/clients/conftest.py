"""Fixtures for the client tests: a strict `responses` mock and a fake clock for waits."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import responses

from yotposync.clients.http import HttpService, RateLimiter, RetryPolicy

# `responses` serves the requests to this address, so they never leave the process.
BASE_URL = "http://127.0.0.1:8799/api"


class FakeClock:
    """A monotonic clock that moves only when a test sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_service(clock: FakeClock) -> Callable[..., HttpService]:
    """Build an HttpService on BASE_URL that waits on the fake clock; keywords override."""

    def build(**overrides: Any) -> HttpService:
        options: dict[str, Any] = {
            "headers": {"Authorization": "Bearer test-token-0123456789"},
            "connect_timeout": 2.0,
            "read_timeout": 7.0,
            "limiter": RateLimiter(0, clock=clock, sleep=clock.sleep),
            "retry": RetryPolicy(jitter=lambda wait: wait),
            "sleep": clock.sleep,
            "clock": clock,
        }
        options.update(overrides)
        return HttpService("heartland", BASE_URL, **options)

    return build
