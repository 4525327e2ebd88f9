"""Whether the daemon is alive and healthy, from its job states and the ledger.

Two levels, because they call for different actions:
- alive: the scheduler runs and every job starts on time and finishes within
  `ops.job_timeout_seconds`, time spent waiting for another job's lock included. The
  systemd watchdog heartbeat is sent only while the daemon is alive, so systemd restarts a
  daemon whose scheduler or jobs hang.
- healthy: alive, and in addition every job succeeded within `ops.stale_after_seconds`, the
  oldest unsettled push is younger than `ops.outbox_max_age_seconds`, and the ledger can be
  read. `/healthz` returns 503 when the daemon is not healthy. A restart does not fix an API
  outage or rejected credentials, so those stop only this level.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from yotposync.config import Settings
from yotposync.ops.jobs import OK, JobState
from yotposync.ops.ledger_facts import LedgerFacts

# Job states in the report.
IDLE = "idle"
RUNNING = "running"
WAITING = "waiting"  # started by the scheduler, waiting for a job that holds its lock
STUCK = "stuck"  # running for longer than the job timeout
LATE = "late"  # idle for much longer than its interval: the scheduler does not start it
STALE = "stale"  # no successful run for longer than stale_after_seconds


@dataclass(frozen=True)
class HealthLimits:
    """Thresholds of the health checks, in seconds."""

    job_timeout: float
    stale_after: float
    outbox_max_age: float
    misfire_grace: float

    @classmethod
    def from_settings(cls, settings: Settings) -> HealthLimits:
        ops = settings.ops
        return cls(
            job_timeout=ops.job_timeout_seconds,
            stale_after=ops.stale_after_seconds,
            outbox_max_age=ops.outbox_max_age_seconds,
            misfire_grace=settings.schedule.misfire_grace_seconds,
        )


@dataclass(frozen=True)
class JobHealth:
    """The health check's view of one scheduled job."""

    name: str
    state: str
    interval_seconds: float
    waiting_since: datetime | None
    running_since: datetime | None
    last_finished_at: datetime | None
    last_outcome: str | None
    last_error: str | None
    last_success_at: datetime | None
    last_duration_seconds: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "interval_seconds": self.interval_seconds,
            "waiting_since": _iso(self.waiting_since),
            "running_since": _iso(self.running_since),
            "last_finished_at": _iso(self.last_finished_at),
            "last_outcome": self.last_outcome,
            "last_error": self.last_error,
            "last_success_at": _iso(self.last_success_at),
            "last_duration_seconds": (
                None if self.last_duration_seconds is None else round(self.last_duration_seconds, 3)
            ),
        }


@dataclass(frozen=True)
class HealthReport:
    """The outcome of one health check. `problems` is empty exactly when it is healthy."""

    checked_at: datetime
    scheduler_running: bool
    started_at: datetime
    jobs: list[JobHealth]
    alive: bool
    problems: list[str] = field(default_factory=list)
    outbox_unfinished: int | None = None
    outbox_failed: int | None = None
    outbox_oldest_age_seconds: float | None = None
    ledger_error: str | None = None

    @property
    def healthy(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.healthy else "unhealthy",
            "checked_at": _iso(self.checked_at),
            "scheduler": {"running": self.scheduler_running, "started_at": _iso(self.started_at)},
            "jobs": {job.name: job.as_dict() for job in self.jobs},
            "outbox": {
                "unfinished": self.outbox_unfinished,
                "failed": self.outbox_failed,
                "oldest_age_seconds": (
                    None
                    if self.outbox_oldest_age_seconds is None
                    else round(self.outbox_oldest_age_seconds)
                ),
            },
            "ledger": {"readable": self.ledger_error is None, "error": self.ledger_error},
            "problems": list(self.problems),
        }


def assess_health(
    now: datetime,
    *,
    scheduler_running: bool,
    started_at: datetime,
    intervals: dict[str, float],
    jobs: dict[str, JobState],
    facts: LedgerFacts | None,
    ledger_error: str | None,
    limits: HealthLimits,
) -> HealthReport:
    """Judge the daemon at `now`. `intervals` names the scheduled jobs and their intervals."""
    alive_problems: list[str] = []
    other_problems: list[str] = []
    if not scheduler_running:
        alive_problems.append("the scheduler is not running")

    judged: list[JobHealth] = []
    for name, interval in sorted(intervals.items()):
        state = jobs.get(name, JobState(name))
        last_success = _latest(
            facts.last_success.get(name) if facts is not None else None,
            state.last_finished_at if state.last_outcome == OK else None,
        )
        job, problem, stops_alive = _judge_job(
            now, name, interval, state, last_success, started_at, limits
        )
        judged.append(job)
        if problem is not None:
            (alive_problems if stops_alive else other_problems).append(problem)

    oldest_age = None
    if ledger_error is not None:
        other_problems.append(f"the ledger cannot be read: {ledger_error}")
    elif facts is not None and facts.oldest_unfinished_at is not None:
        oldest_age = (now - facts.oldest_unfinished_at).total_seconds()
        if oldest_age > limits.outbox_max_age:
            other_problems.append(
                f"the oldest unsettled push was queued {round(oldest_age)} s ago, more than "
                f"ops.outbox_max_age_seconds = {limits.outbox_max_age:g}; see `yotposync status`"
            )

    return HealthReport(
        checked_at=now,
        scheduler_running=scheduler_running,
        started_at=started_at,
        jobs=judged,
        alive=not alive_problems,
        problems=alive_problems + other_problems,
        outbox_unfinished=facts.unfinished_pushes if facts is not None else None,
        outbox_failed=facts.pushes_in_state("failed") if facts is not None else None,
        outbox_oldest_age_seconds=oldest_age,
        ledger_error=ledger_error,
    )


def _judge_job(
    now: datetime,
    name: str,
    interval: float,
    state: JobState,
    last_success: datetime | None,
    started_at: datetime,
    limits: HealthLimits,
) -> tuple[JobHealth, str | None, bool]:
    """Return the job's health, its problem if any, and whether the problem stops `alive`."""
    problem: str | None = None
    stops_alive = False
    if state.waiting_since is not None and state.running_since is None:
        waiting = (now - state.waiting_since).total_seconds()
        status = WAITING
        if waiting > limits.job_timeout:
            status, stops_alive = STUCK, True
            problem = (
                f"job {name} has waited {round(waiting)} s for another job to release its "
                f"lock, more than ops.job_timeout_seconds = {limits.job_timeout:g}"
            )
    elif state.running_since is not None:
        running = (now - state.running_since).total_seconds()
        status = RUNNING
        if running > limits.job_timeout:
            status, stops_alive = STUCK, True
            problem = (
                f"job {name} has been running for {round(running)} s, more than "
                f"ops.job_timeout_seconds = {limits.job_timeout:g}"
            )
    else:
        status = IDLE
        idle_since = state.last_finished_at or started_at
        idle = (now - idle_since).total_seconds()
        # After a run the scheduler starts the next one within one interval, or skips it
        # when it is more than the misfire grace time late and starts the one after.
        if idle > 2 * interval + limits.misfire_grace:
            status, stops_alive = LATE, True
            problem = (
                f"job {name} has not started for {round(idle)} s although it runs every "
                f"{interval:g} s"
            )

    if problem is None:
        since_success = (now - (last_success or started_at)).total_seconds()
        if since_success > limits.stale_after:
            status = STALE
            problem = (
                f"job {name} has had no successful run for {round(since_success)} s, more "
                f"than ops.stale_after_seconds = {limits.stale_after:g}"
            )
            if state.last_error:
                problem += f"; last error: {state.last_error}"

    job = JobHealth(
        name=name,
        state=status,
        interval_seconds=interval,
        waiting_since=state.waiting_since,
        running_since=state.running_since,
        last_finished_at=state.last_finished_at,
        last_outcome=state.last_outcome,
        last_error=state.last_error,
        last_success_at=last_success,
        last_duration_seconds=state.last_duration_seconds,
    )
    return job, problem, stops_alive


def _latest(*moments: datetime | None) -> datetime | None:
    present = [moment for moment in moments if moment is not None]
    return max(present) if present else None


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
