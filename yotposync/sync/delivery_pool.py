"""Worker threads that send pushes for the delivery job, several at a time.

The delivery job decides what to send and records every outcome in its own ledger connection;
workers only send. A sender that reads the ledger (a points adjustment checks the deduction it
gives back) gets a connection of its worker's own, because a SQLite connection and its
transaction belong to one thread.

With one worker, or a ledger that has no file (an in-memory copy), pushes are sent in the
calling thread, one at a time, exactly as submitted.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType

from yotposync.immutable import immutable
from yotposync.ledger import Ledger, Push

Sender = Callable[[Ledger, Push], None]


@immutable
class Outcome:
    """How sending one push ended: `error` is None when the API accepted it."""

    push: Push
    error: BaseException | None


class SendPool:
    """Send pushes on `workers` threads; at most `capacity` are submitted and unfinished."""

    def __init__(self, workers: int, ledger: Ledger, send: Sender) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self._send = send
        self._ledger = ledger
        self._threaded = workers > 1 and ledger.path is not None
        self.workers = workers if self._threaded else 1
        # One push at a time in the calling thread keeps the queue's order exactly. Threaded,
        # the job refills once half of this is free, marking the new pushes `sent` in one
        # commit: eight per worker makes each commit (an fsync) cover four pushes per worker,
        # and leaves the workers a queue to send from while the job's thread writes the ledger.
        # Every push marked `sent` whose response has not arrived is sent again after a crash,
        # so this also bounds those repeats.
        self.capacity = 8 * self.workers if self._threaded else 1
        self._executor: ThreadPoolExecutor | None = None
        # Submitted pushes not yet collected, by seq. Workers append each outcome to
        # `_results`, and wake the collecting thread once `_wake_at` outcomes are there.
        self._pending: dict[int, Future[None]] = {}
        self._results: list[Outcome] = []
        self._results_ready = threading.Condition(threading.Lock())
        self._wake_at = 1
        self._done: list[Outcome] = []
        self._submitted: dict[int, Push] = {}
        self._local = threading.local()
        self._opened: list[Ledger] = []
        self._opened_lock = threading.Lock()

    @property
    def in_flight(self) -> int:
        """Pushes submitted whose outcome has not been collected yet."""
        return len(self._pending) + len(self._done)

    def submit(self, push: Push) -> None:
        """Start sending one push; its outcome comes back from `collect()`."""
        if not self._threaded:
            self._done.append(self._send_once(self._ledger, push))
            return
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="delivery")
        self._pending[push.seq] = self._executor.submit(self._send_in_worker, push)
        self._submitted[push.seq] = push

    def collect(self, count: int = 1, patience: float = 0.05) -> list[Outcome]:
        """Wait for outcomes of submitted pushes, and return every one ready.

        Returns once `count` outcomes are ready, or at least one is and `patience` seconds
        have passed. Waiting for several at once wakes the caller once per group rather than
        once per push.
        """
        outcomes, self._done = self._done, []
        if outcomes or not self._pending:
            return outcomes
        count = max(1, min(count, len(self._pending)))
        with self._results_ready:
            self._wake_at = count
            if not self._results_ready.wait_for(lambda: len(self._results) >= count, patience):
                self._wake_at = 1
                self._results_ready.wait_for(lambda: bool(self._results))
            outcomes, self._results = self._results, []
            self._wake_at = 1
        for outcome in outcomes:
            del self._pending[outcome.push.seq]
            del self._submitted[outcome.push.seq]
        return outcomes

    def cancel_queued(self) -> list[Push]:
        """Withdraw the submitted pushes that no worker has started; return them."""
        withdrawn = [self._submitted[seq] for seq, f in self._pending.items() if f.cancel()]
        for push in withdrawn:
            del self._pending[push.seq]
            del self._submitted[push.seq]
        return withdrawn

    def close(self) -> None:
        """Wait for the workers to finish and close their ledger connections."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        with self._opened_lock:
            for ledger in self._opened:
                ledger.close()
            self._opened = []

    def __enter__(self) -> SendPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _send_once(self, ledger: Ledger, push: Push) -> Outcome:
        try:
            self._send(ledger, push)
        except Exception as exc:  # every error is the job's to sort, in its own thread
            return Outcome(push, exc)
        return Outcome(push, None)

    def _send_in_worker(self, push: Push) -> None:
        try:
            self._send(self._worker_ledger(), push)
        except BaseException as exc:  # every error is the job's to sort, in its own thread
            self._put(Outcome(push, exc))
        else:
            self._put(Outcome(push, None))

    def _put(self, outcome: Outcome) -> None:
        with self._results_ready:
            self._results.append(outcome)
            if len(self._results) >= self._wake_at:
                self._results_ready.notify()

    def _worker_ledger(self) -> Ledger:
        ledger: Ledger | None = getattr(self._local, "ledger", None)
        if ledger is None:
            path: Path | None = self._ledger.path
            assert path is not None  # threaded mode needs a ledger file
            ledger = Ledger.open_existing(path)
            self._local.ledger = ledger
            with self._opened_lock:
                self._opened.append(ledger)
        return ledger
