"""What the daemon's jobs are doing now, and requests to run a job before its interval ends.

The ledger's `runs` table keeps the history of runs. This tracker keeps what only the running
process has: which job is running since when, how long the last run took, and whether a
run was requested while the job was busy.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import structlog

log = structlog.get_logger("yotposync.jobs")

OK = "ok"
ERROR = "error"


@dataclass(frozen=True)
class JobState:
    """One job as this process has seen it run."""

    name: str
    waiting_since: datetime | None = None  # started by the scheduler, waiting for a lock
    running_since: datetime | None = None
    last_finished_at: datetime | None = None
    last_outcome: str | None = None  # OK or ERROR
    last_error: str | None = None
    last_duration_seconds: float | None = None
    run_requested: bool = False


class JobTracker:
    """Thread-safe record of job runs, fed by the scheduler's job wrapper.

    `wake(name)` makes the scheduler run a job now. `request_run()` calls it at once when
    the job is idle. When the job is running, the request is kept and `wake` is called as
    the run finishes. A run that has already read Heartland may have missed what the request
    is about, and APScheduler skips a start while one instance still runs.
    """

    def __init__(
        self,
        clock: Callable[[], datetime],
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._jobs: dict[str, JobState] = {}
        self._started: dict[str, float] = {}
        self._wake: Callable[[str], None] | None = None

    def set_waker(self, wake: Callable[[str], None]) -> None:
        self._wake = wake

    def waiting(self, name: str) -> None:
        """Record that the scheduler started the job and it waits for its lock."""
        with self._lock:
            state = self._jobs.get(name, JobState(name))
            self._jobs[name] = dataclasses.replace(state, waiting_since=self._clock())

    def acquired(self, name: str) -> None:
        """Record that the job got its lock, so it no longer waits."""
        with self._lock:
            state = self._jobs.get(name, JobState(name))
            self._jobs[name] = dataclasses.replace(state, waiting_since=None)

    def started(self, name: str) -> None:
        with self._lock:
            state = self._jobs.get(name, JobState(name))
            self._jobs[name] = dataclasses.replace(
                state, waiting_since=None, running_since=self._clock(), run_requested=False
            )
            self._started[name] = self._monotonic()

    def finished(self, name: str, *, error: str | None = None) -> JobState:
        """Record the end of a run and return the job's new state.

        A run requested while this one was in progress starts now.
        """
        with self._lock:
            previous = self._jobs.get(name, JobState(name))
            started = self._started.pop(name, None)
            duration = None if started is None else self._monotonic() - started
            state = dataclasses.replace(
                previous,
                running_since=None,
                last_finished_at=self._clock(),
                last_outcome=OK if error is None else ERROR,
                last_error=error,
                last_duration_seconds=duration,
                run_requested=False,
            )
            self._jobs[name] = state
        if previous.run_requested:
            self._call_wake(name)
        return state

    def request_run(self, name: str) -> None:
        """Run the job as soon as possible: now when idle, else right after the current run."""
        with self._lock:
            state = self._jobs.get(name, JobState(name))
            if state.running_since is not None:
                self._jobs[name] = dataclasses.replace(state, run_requested=True)
                return
        self._call_wake(name)

    def snapshot(self) -> dict[str, JobState]:
        with self._lock:
            return dict(self._jobs)

    def _call_wake(self, name: str) -> None:
        if self._wake is None:
            return
        try:
            self._wake(name)
        except Exception as exc:  # a failed wake only delays the run to its next interval
            log.warning("job_wake_failed", job=name, error=str(exc))
