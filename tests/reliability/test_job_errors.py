"""How the daemon logs a job error: one clean line, and APScheduler's traceback only at debug.

The empty-window guard makes the transactions job raise a fatal error in a real `yotposync
run`. A job that the daemon did not add keeps APScheduler's own error record.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.reliability.support import Harness, harness
from tests.reliability.test_guard import EMPTY_LISTING
from yotposync.errors import FatalError
from yotposync.sandbox import Store, generate_store
from yotposync.sandbox.faults import FaultPlan, FaultRule
from yotposync.scheduler import EXECUTOR_LOGGER, Daemon

ANCHOR = datetime(2026, 5, 11, 15, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def store() -> Store:
    return generate_store(seed=37, tickets=20, anchor=ANCHOR)


@pytest.fixture
def h(tmp_path: Path, store: Store) -> Iterator[Harness]:
    with harness(tmp_path, store, faults=EMPTY_LISTING) as made:
        made.transactions(since=store.anchor - timedelta(days=366))
        made.sandbox.faults.enable("empty")
        yield made


def log_events(output: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_fatal_job_error_logs_one_line(h: Harness) -> None:
    result = h.invoke("run")

    events = log_events(result.stdout)
    fatal = [event for event in events if event["event"] == "job_fatal"]
    executor = [event for event in events if event["logger"] == EXECUTOR_LOGGER]
    assert result.exit_code == 1
    assert len(fatal) == 1
    assert fatal[0]["job"] == "transactions"
    assert "--force" in str(fatal[0]["error"])
    assert executor == []
    assert [event for event in events if "exception" in event] == []


def test_fatal_job_traceback_at_debug(h: Harness) -> None:
    h.configure(logging={"format": "json", "level": "debug"})

    result = h.invoke("run")

    events = log_events(result.stdout)
    raised = [
        event
        for event in events
        if event["logger"] == EXECUTOR_LOGGER and "raised an exception" in str(event["event"])
    ]
    assert result.exit_code == 1
    assert len(raised) == 1
    assert raised[0]["level"] == "debug"
    assert "GuardError" in str(raised[0]["exception"])
    assert len([event for event in events if event["event"] == "job_fatal"]) == 1


def test_retried_job_error_has_no_traceback(
    tmp_path: Path, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    down = FaultPlan(
        rules=(FaultRule(name="down", service="heartland", kind="server_error", status=500),)
    )
    with harness(tmp_path, store, faults=down) as made:
        made.configure(schedule={"transactions_seconds": 1}, delivery={"max_tries_per_call": 1})
        daemon = Daemon(made.settings())
        handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
        stopper = threading.Timer(2.5, daemon.stop)
        stopper.start()
        try:
            with caplog.at_level(logging.INFO, logger=EXECUTOR_LOGGER):
                exit_code = daemon.run()
        finally:
            stopper.cancel()
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
        failed_polls = made.sandbox.faults.report()["injected"]["down"]

    # Heartland returning 500 is retried at the next poll, and `job_failed` logs it in one line.
    executor_errors = [
        record
        for record in caplog.records
        if record.name == EXECUTOR_LOGGER and record.levelno >= logging.WARNING
    ]
    assert exit_code == 0
    assert failed_polls >= 2
    assert executor_errors == []


def test_other_job_keeps_apscheduler_error(h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    h.sandbox.faults.disable("empty")
    daemon = Daemon(h.settings())

    def not_ours() -> None:
        raise FatalError("a job the daemon did not add failed")

    # An interval job, as every job of the daemon is. A one-shot job that fails at once races
    # APScheduler's own loop: the loop removes it after it ran, and once the stop has begun
    # the scheduler no longer finds it (JobLookupError).
    daemon.scheduler.add_job(
        not_ours, "interval", hours=1, id="not-ours", next_run_time=datetime.now(UTC)
    )
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        with caplog.at_level(logging.INFO, logger=EXECUTOR_LOGGER):
            exit_code = daemon.run()
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)

    records = [
        record
        for record in caplog.records
        if record.name == EXECUTOR_LOGGER and record.levelno == logging.ERROR
    ]
    assert exit_code == 1
    assert len(records) == 1
    assert records[0].exc_info is not None
    assert isinstance(records[0].exc_info[1], FatalError)
    assert "not_ours" in records[0].getMessage()


def test_scheduler_log_names_each_job(h: Harness) -> None:
    result = h.invoke("run")

    added = [
        str(event["event"])
        for event in log_events(result.stdout)
        if str(event["event"]).startswith("Added job")
    ]
    assert 'Added job "transactions" to job store "default"' in added
    assert 'Added job "delivery" to job store "default"' in added
    assert not [line for line in added if "<locals>" in line]
