"""Clocks for the sandbox: real UTC time in whole seconds, or a manual clock for tests."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Source of timestamps for records and of elapsed time for rate limits."""

    def now(self) -> datetime:
        """Return the current UTC time, truncated to whole seconds."""
        ...

    def monotonic(self) -> float:
        """Return seconds from an arbitrary fixed point, never going back."""
        ...


class SystemClock:
    """The real clock. Timestamps keep whole seconds, so same-second ties happen as in a store."""

    def now(self) -> datetime:
        return datetime.now(UTC).replace(microsecond=0)

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that moves only when `advance` is called; safe to share between threads."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start time")
        self._start = start.astimezone(UTC).replace(microsecond=0)
        self._elapsed = 0.0
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            moment = self._start + timedelta(seconds=self._elapsed)
        return moment.replace(microsecond=0)

    def monotonic(self) -> float:
        with self._lock:
            return self._elapsed

    def advance(self, seconds: float) -> None:
        """Move the clock forward by `seconds` (not negative)."""
        if seconds < 0:
            raise ValueError(f"cannot move a clock back by {seconds} seconds")
        with self._lock:
            self._elapsed += seconds
