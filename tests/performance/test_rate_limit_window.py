"""RateLimiter: pauses end with the server's window, and move slots already reserved."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from yotposync.clients.http import RateLimiter


class StepClock:
    """A monotonic clock that moves only when the limiter sleeps on it."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []
        self.during_sleep: Callable[[], None] | None = None

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        hook, self.during_sleep = self.during_sleep, None
        if hook is not None:
            hook()
        self.now += seconds


def window_headers(remaining: int, reset: int = 1) -> dict[str, str]:
    return {
        "ratelimit-limit": "10",
        "ratelimit-remaining": str(remaining),
        "ratelimit-reset": str(reset),
    }


def test_pause_ends_with_window_start() -> None:
    clock = StepClock()
    limiter = RateLimiter(0, clock=clock, sleep=clock.sleep)
    limiter.note_response(window_headers(remaining=9))  # the window's first request
    clock.now += 0.9

    limiter.note_response(window_headers(remaining=0))
    limiter.acquire()

    assert clock.sleeps == pytest.approx([0.1])


def test_pause_without_window_start_uses_reset() -> None:
    clock = StepClock()
    limiter = RateLimiter(0, clock=clock, sleep=clock.sleep)

    limiter.note_response(window_headers(remaining=0, reset=2))
    limiter.acquire()

    assert clock.sleeps == [2.0]


def test_stale_window_start_ignored() -> None:
    clock = StepClock()
    limiter = RateLimiter(0, clock=clock, sleep=clock.sleep)
    limiter.note_response(window_headers(remaining=9))
    clock.now += 5.0

    limiter.note_response(window_headers(remaining=0))
    limiter.acquire()

    assert clock.sleeps == [1.0]


def test_pause_moves_reserved_slot() -> None:
    clock = StepClock()
    limiter = RateLimiter(10.0, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    # While the second caller sleeps toward its slot, a response reports the window spent.
    clock.during_sleep = lambda: limiter.note_response(window_headers(remaining=0))

    limiter.acquire()

    assert clock.sleeps == pytest.approx([0.1, 0.9])


def test_spacing_kept_after_moved_slot() -> None:
    clock = StepClock()
    limiter = RateLimiter(10.0, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    clock.during_sleep = lambda: limiter.note_response(window_headers(remaining=0))
    limiter.acquire()

    limiter.acquire()

    assert clock.sleeps[-1] == pytest.approx(0.1)
