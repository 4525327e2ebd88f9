"""Health judgement: alive for the watchdog, healthy for /healthz."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from yotposync.ledger import Cursor
from yotposync.ops.health import (
    LATE,
    RUNNING,
    STALE,
    STUCK,
    WAITING,
    HealthLimits,
    HealthReport,
    assess_health,
)
from yotposync.ops.jobs import ERROR, OK, JobState
from yotposync.ops.ledger_facts import LedgerFacts

STARTED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LIMITS = HealthLimits(job_timeout=900, stale_after=3600, outbox_max_age=3600, misfire_grace=30)
INTERVALS = {"transactions": 60.0, "delivery": 15.0}


def at(seconds: float) -> datetime:
    return STARTED + timedelta(seconds=seconds)


def facts(
    last_success: dict[str, datetime] | None = None, oldest: datetime | None = None
) -> LedgerFacts:
    return LedgerFacts(
        last_success=last_success or {},
        pushes={("order", "pending"): 2, ("order", "confirmed"): 5, ("refund", "failed"): 1},
        oldest_unfinished_at=oldest,
        cursor=Cursor(at(0), 7),
        decisions={("sale", ""): 5},
        tickets=5,
        ticket_versions=6,
    )


def finished(name: str, seconds: float, outcome: str = OK) -> JobState:
    return JobState(name, last_finished_at=at(seconds), last_outcome=outcome)


def assess(now: datetime, jobs: dict[str, JobState], **overrides: Any) -> HealthReport:
    options: dict[str, Any] = {
        "scheduler_running": True,
        "started_at": STARTED,
        "intervals": INTERVALS,
        "jobs": jobs,
        "facts": facts({"transactions": at(100), "delivery": at(100)}),
        "ledger_error": None,
        "limits": LIMITS,
    }
    options.update(overrides)
    return assess_health(now, **options)


def test_fresh_runs_healthy() -> None:
    jobs = {"transactions": finished("transactions", 100), "delivery": finished("delivery", 110)}
    report = assess(at(120), jobs)
    assert report.healthy
    assert report.alive


def test_stopped_scheduler_not_alive() -> None:
    report = assess(at(10), {}, scheduler_running=False)
    assert not report.alive
    assert report.problems == ["the scheduler is not running"]


def test_long_run_is_stuck() -> None:
    jobs = {
        "transactions": JobState("transactions", running_since=at(0)),
        "delivery": finished("delivery", 950),
    }
    report = assess(at(1000), jobs)
    states = {job.name: job.state for job in report.jobs}
    assert states["transactions"] == STUCK
    assert not report.alive


def test_short_run_is_running() -> None:
    jobs = {
        "transactions": JobState("transactions", running_since=at(50)),
        "delivery": finished("delivery", 55),
    }
    report = assess(at(60), jobs)
    assert {job.name: job.state for job in report.jobs}["transactions"] == RUNNING
    assert report.healthy


def test_job_not_started_is_late() -> None:
    jobs = {"transactions": finished("transactions", 0), "delivery": finished("delivery", 190)}
    report = assess(at(200), jobs)  # 2 x 60 + 30 = 150 s allowed
    assert {job.name: job.state for job in report.jobs}["transactions"] == LATE
    assert not report.alive


def test_failing_job_stale_but_alive() -> None:
    jobs = {
        "transactions": JobState(
            "transactions",
            last_finished_at=at(3990),
            last_outcome=ERROR,
            last_error="heartland GET /sales/tickets failed: HTTP 503",
        ),
        "delivery": finished("delivery", 3995),
    }
    report = assess(at(4000), jobs, facts=facts({"delivery": at(3995)}))
    assert {job.name: job.state for job in report.jobs}["transactions"] == STALE
    assert report.alive
    assert not report.healthy
    assert "HTTP 503" in report.problems[0]


def test_success_from_ledger_counts() -> None:
    # This process has not finished a run yet, but the ledger has a recent success.
    report = assess(at(4000), {}, facts=facts({"transactions": at(3990), "delivery": at(3990)}))
    assert {job.name: job.last_success_at for job in report.jobs}["transactions"] == at(3990)


def test_old_outbox_unhealthy() -> None:
    jobs = {"transactions": finished("transactions", 4990), "delivery": finished("delivery", 4995)}
    ledger = facts({"transactions": at(4990), "delivery": at(4995)}, oldest=at(1000))
    report = assess(at(5000), jobs, facts=ledger)
    assert report.outbox_oldest_age_seconds == 4000
    assert report.alive
    assert not report.healthy


def test_unreadable_ledger_unhealthy() -> None:
    jobs = {"transactions": finished("transactions", 10), "delivery": finished("delivery", 10)}
    report = assess(at(20), jobs, facts=None, ledger_error="disk I/O error")
    assert report.problems == ["the ledger cannot be read: disk I/O error"]
    assert report.as_dict()["ledger"] == {"readable": False, "error": "disk I/O error"}


def test_report_dict_shape() -> None:
    jobs = {"transactions": finished("transactions", 100), "delivery": finished("delivery", 110)}
    data = assess(at(120), jobs, facts=facts({}, oldest=at(60))).as_dict()
    assert data["status"] == "ok"
    assert data["outbox"] == {"unfinished": 3, "failed": 1, "oldest_age_seconds": 60}
    assert set(data["jobs"]) == {"transactions", "delivery"}


def test_waiting_job_not_late() -> None:
    jobs = {
        "transactions": JobState("transactions", last_finished_at=at(0), waiting_since=at(100)),
        "delivery": finished("delivery", 290),
    }
    report = assess(at(300), jobs)  # idle 300 s would be late, but it waits for a lock
    assert {job.name: job.state for job in report.jobs}["transactions"] == WAITING
    assert report.alive


def test_long_wait_is_stuck() -> None:
    jobs = {
        "transactions": JobState("transactions", last_finished_at=at(0), waiting_since=at(10)),
        "delivery": finished("delivery", 990),
    }
    report = assess(at(1000), jobs)
    assert {job.name: job.state for job in report.jobs}["transactions"] == STUCK
    assert not report.alive
