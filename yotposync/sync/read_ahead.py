"""Read the next pages of a walk while the current one is being decided.

A catch-up spends its time in two places that need not wait for each other: Heartland
preparing and sending a page, and the daemon parsing, deciding and committing the page
before it. `ReadAhead` runs the page iterator in a background thread, at most `depth` pages
ahead, so the next request is under way while the current page is decided.

Only the reading moves to the thread. The consumer still gets the pages in order, decides
and commits them in its own thread, and moves the cursor after each one exactly as before. An
error raised by the iterator reaches the consumer at the page where it happened.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Generic, TypeVar

T = TypeVar("T")

# How long a blocked hand-over waits before it checks whether the consumer has gone.
_POLL_SECONDS = 0.1

_ITEM, _END, _ERROR = "item", "end", "error"


class ReadAhead(Generic[T]):
    """Iterate over `source` in a background thread, at most `depth` items ahead.

    Use it as a context manager, so that a consumer leaving early (a stop request, an error
    in deciding a page) signals the thread to stop after its current item. The thread is a
    daemon thread: one waiting on a slow request does not hold up the process's exit.
    """

    def __init__(self, source: Iterable[T], *, depth: int = 1, name: str = "read-ahead") -> None:
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        self._queue: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=depth)
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._produce, args=(iter(source),), name=name, daemon=True
        )
        self._started = False

    def __iter__(self) -> Iterator[T]:
        if not self._started:
            self._started = True
            self._thread.start()
        while True:
            kind, value = self._queue.get()
            if kind == _ITEM:
                yield value  # type: ignore[misc]  # only the producer puts items, all of type T
            elif kind == _END:
                return
            else:
                assert isinstance(value, BaseException)
                raise value

    def close(self) -> None:
        """Tell the thread to stop; it does after the item it is reading now."""
        self._stopping.set()

    def __enter__(self) -> ReadAhead[T]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _produce(self, items: Iterator[T]) -> None:
        try:
            for item in items:
                if not self._hand_over(_ITEM, item):
                    return
        except BaseException as exc:  # every error belongs to the consumer
            self._hand_over(_ERROR, exc)
        else:
            self._hand_over(_END, None)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    def _hand_over(self, kind: str, value: object) -> bool:
        """Queue one entry, waiting for room; return False once the consumer has gone."""
        while not self._stopping.is_set():
            try:
                self._queue.put((kind, value), timeout=_POLL_SECONDS)
            except queue.Full:
                continue
            return True
        return False
