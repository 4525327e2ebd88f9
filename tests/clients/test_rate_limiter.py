"""RateLimiter: spacing, server-reported pauses, sharing between threads."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
import responses

from yotposync.clients.http import HttpService, RateLimiter

if TYPE_CHECKING:
    from tests.clients.conftest import FakeClock

BASE_URL = "http://127.0.0.1:8799/api"  # the base URL of the conftest `make_service`


def test_limiter_spaces_requests(clock: FakeClock) -> None:
    limiter = RateLimiter(5.0, clock=clock, sleep=clock.sleep)

    for _ in range(3):
        limiter.acquire()

    assert clock.sleeps == pytest.approx([0.2, 0.2])


def test_limiter_first_request_not_delayed(clock: FakeClock) -> None:
    limiter = RateLimiter(5.0, clock=clock, sleep=clock.sleep)

    limiter.acquire()

    assert clock.sleeps == []


def test_limiter_idle_time_not_saved_up(clock: FakeClock) -> None:
    limiter = RateLimiter(5.0, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    clock.now += 10.0

    limiter.acquire()
    limiter.acquire()

    assert clock.sleeps == pytest.approx([0.2])


def test_limiter_zero_rate_never_waits(clock: FakeClock) -> None:
    limiter = RateLimiter(0, clock=clock, sleep=clock.sleep)

    for _ in range(50):
        limiter.acquire()

    assert clock.sleeps == []


def test_limiter_pauses_when_none_remaining(clock: FakeClock) -> None:
    limiter = RateLimiter(0, clock=clock, sleep=clock.sleep)

    limiter.note_response({"ratelimit-remaining": "0", "ratelimit-reset": "3"})
    limiter.acquire()
    limiter.acquire()

    assert clock.sleeps == [3.0]


def test_limiter_ignores_remaining_above_zero(clock: FakeClock) -> None:
    limiter = RateLimiter(0, clock=clock, sleep=clock.sleep)

    limiter.note_response({"ratelimit-remaining": "4", "ratelimit-reset": "3"})
    limiter.acquire()

    assert clock.sleeps == []


@pytest.mark.parametrize(
    "headers",
    [
        {"ratelimit-remaining": "0"},
        {"ratelimit-remaining": "none", "ratelimit-reset": "3"},
        {"ratelimit-remaining": "0", "ratelimit-reset": "later"},
        {"ratelimit-reset": "3"},
    ],
)
def test_limiter_ignores_unusable_headers(clock: FakeClock, headers: dict[str, str]) -> None:
    limiter = RateLimiter(0, clock=clock, sleep=clock.sleep)

    limiter.note_response(headers)
    limiter.acquire()

    assert clock.sleeps == []


def test_limiter_pause_capped(clock: FakeClock) -> None:
    limiter = RateLimiter(0, clock=clock, sleep=clock.sleep, max_pause_seconds=60.0)

    limiter.note_response({"ratelimit-remaining": "0", "ratelimit-reset": "86400"})
    limiter.acquire()

    assert clock.sleeps == [60.0]


def test_limiter_pause_then_spacing(clock: FakeClock) -> None:
    limiter = RateLimiter(10.0, clock=clock, sleep=clock.sleep)

    limiter.acquire()
    limiter.note_response({"ratelimit-remaining": "0", "ratelimit-reset": "1"})
    limiter.acquire()
    limiter.acquire()

    assert clock.sleeps == pytest.approx([1.0, 0.1])


def test_limiter_threads_get_distinct_slots() -> None:
    # The clock does not move, so each thread's wait is its slot's distance from now.
    waits: list[float] = []
    waits_lock = threading.Lock()

    def record(seconds: float) -> None:
        with waits_lock:
            waits.append(seconds)

    limiter = RateLimiter(10.0, clock=lambda: 0.0, sleep=record)
    threads = [threading.Thread(target=limiter.acquire) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(waits) == pytest.approx([0.1 * slot for slot in range(1, 10)])


@pytest.mark.parametrize("rate", [-1.0, float("nan"), float("inf")])
def test_limiter_rejects_invalid_rate(rate: float) -> None:
    with pytest.raises(ValueError, match="rate_per_second"):
        RateLimiter(rate)


def test_service_pauses_after_last_request_in_window(
    mocked: responses.RequestsMock, make_service: Callable[..., HttpService], clock: FakeClock
) -> None:
    headers = {"ratelimit-remaining": "0", "ratelimit-reset": "1"}
    mocked.add(responses.GET, f"{BASE_URL}/vip_tiers", json=[], headers=headers)
    mocked.add(responses.GET, f"{BASE_URL}/vip_tiers", json=[])
    service = make_service()

    service.get_json("/vip_tiers")
    service.get_json("/vip_tiers")

    assert clock.sleeps == [1.0]


def test_service_acquires_before_each_attempt(
    mocked: responses.RequestsMock, make_service: Callable[..., HttpService], clock: FakeClock
) -> None:
    mocked.add(responses.GET, f"{BASE_URL}/vip_tiers", status=503, headers={"Retry-After": "0"})
    mocked.add(responses.GET, f"{BASE_URL}/vip_tiers", json=[])
    service = make_service(limiter=RateLimiter(2.0, clock=clock, sleep=clock.sleep))

    service.get_json("/vip_tiers")

    # The retry waits 0 s, then the limiter delays the second attempt to its 0.5 s slot.
    assert clock.sleeps == [0.0, 0.5]
