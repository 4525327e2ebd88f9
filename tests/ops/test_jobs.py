"""The job tracker: run states and run requests that wait for a busy job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from yotposync.ops.jobs import ERROR, OK, JobTracker


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
        self.ticks = 0.0

    def __call__(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.ticks

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        self.ticks += seconds


def tracker_with_wakes() -> tuple[JobTracker, list[str], Clock]:
    clock = Clock()
    tracker = JobTracker(clock, monotonic=clock.monotonic)
    wakes: list[str] = []
    tracker.set_waker(wakes.append)
    return tracker, wakes, clock


def test_request_idle_job_wakes_now() -> None:
    tracker, wakes, _ = tracker_with_wakes()
    tracker.request_run("transactions")
    assert wakes == ["transactions"]


def test_request_running_job_waits() -> None:
    tracker, wakes, _ = tracker_with_wakes()
    tracker.started("transactions")
    tracker.request_run("transactions")
    assert wakes == []
    assert tracker.snapshot()["transactions"].run_requested


def test_request_during_run_wakes_after() -> None:
    tracker, wakes, _ = tracker_with_wakes()
    tracker.started("transactions")
    tracker.request_run("transactions")
    tracker.finished("transactions")
    assert wakes == ["transactions"]


def test_finish_without_request_no_wake() -> None:
    tracker, wakes, _ = tracker_with_wakes()
    tracker.started("delivery")
    tracker.finished("delivery")
    assert wakes == []


def test_finished_records_duration_and_outcome() -> None:
    tracker, _, clock = tracker_with_wakes()
    tracker.started("delivery")
    clock.advance(2.5)
    state = tracker.finished("delivery", error="yotpo POST /orders failed: HTTP 503")
    assert state.last_duration_seconds == 2.5
    assert state.last_outcome == ERROR
    assert state.running_since is None
    assert state.last_finished_at == clock.now


def test_success_clears_error() -> None:
    tracker, _, _ = tracker_with_wakes()
    tracker.started("delivery")
    tracker.finished("delivery", error="boom")
    tracker.started("delivery")
    state = tracker.finished("delivery")
    assert (state.last_outcome, state.last_error) == (OK, None)


def test_failed_wake_is_logged_not_raised() -> None:
    clock = Clock()
    tracker = JobTracker(clock)

    def broken(name: str) -> None:
        raise RuntimeError(f"no job {name}")

    tracker.set_waker(broken)
    tracker.request_run("transactions")  # must not raise
    assert tracker.snapshot() == {}


def test_waiting_cleared_when_acquired() -> None:
    tracker, _, _ = tracker_with_wakes()
    tracker.waiting("transactions")
    waiting = tracker.snapshot()["transactions"].waiting_since
    tracker.acquired("transactions")
    assert waiting is not None
    assert tracker.snapshot()["transactions"].waiting_since is None
