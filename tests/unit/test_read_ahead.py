"""ReadAhead: pages read in a background thread, handed over in order, errors in place."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from yotposync.sync.read_ahead import ReadAhead


class Source:
    """An iterator that records how far it was read, and can fail at one position."""

    def __init__(self, count: int, fail_at: int | None = None) -> None:
        self.count = count
        self.fail_at = fail_at
        self.read = 0
        self.closed = threading.Event()
        self.threads: set[str] = set()

    def __iter__(self) -> Iterator[int]:
        try:
            for index in range(self.count):
                self.threads.add(threading.current_thread().name)
                if index == self.fail_at:
                    raise RuntimeError(f"page {index} failed")
                self.read = index + 1
                yield index
        finally:
            self.closed.set()


def _wait_until(condition: object, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.01)


def test_items_arrive_in_order_from_another_thread() -> None:
    source = Source(50)
    with ReadAhead(source, name="pages") as ahead:
        assert list(ahead) == list(range(50))
    assert source.threads == {"pages"}


def test_error_arrives_after_earlier_items() -> None:
    seen: list[int] = []
    with ReadAhead(Source(10, fail_at=4)) as ahead, pytest.raises(RuntimeError, match="page 4"):
        for item in ahead:
            seen.append(item)
    assert seen == [0, 1, 2, 3]


def test_reads_at_most_depth_plus_one_ahead() -> None:
    source = Source(100)
    with ReadAhead(source, depth=2) as ahead:
        iterator = iter(ahead)
        assert next(iterator) == 0
        time.sleep(0.3)  # let the thread read as far as it may
        # One item handed over, two waiting in the queue, one read and waiting for room.
        assert source.read <= 4


def test_leaving_early_stops_the_reading() -> None:
    source = Source(1000)
    with ReadAhead(source) as ahead:
        for item in ahead:
            if item == 3:
                break
    _wait_until(source.closed.is_set)
    assert source.closed.is_set()
    assert source.read <= 6


def test_empty_source_ends_at_once() -> None:
    with ReadAhead(Source(0)) as ahead:
        assert list(ahead) == []


def test_depth_must_be_positive() -> None:
    with pytest.raises(ValueError, match="depth"):
        ReadAhead(Source(1), depth=0)
