"""How the daemon logs a start that APScheduler skips because the job's previous run still goes.

Every job runs one instance at a time, so such a skip is expected while a long run goes on.
For the daemon's own jobs, APScheduler's warning about it is demoted to debug. A job that the
daemon did not add, such as the watchdog heartbeat, keeps the warning. Each test stops the
daemon at the first skip that APScheduler reports, so none waits for a fixed time.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobSubmissionEvent

from tests.reliability.support import Harness, harness
from yotposync.sandbox import Store, generate_store
from yotposync.sandbox.faults import FaultPlan, FaultRule
from yotposync.scheduler import SCHEDULER_LOGGER, SKIPPED_START_MESSAGE, Daemon

ANCHOR = datetime(2026, 5, 11, 15, 0, tzinfo=UTC)
# Each customer page takes longer than the customers job's one-second interval, so a start
# falls while a run is still going.
SLOW_CUSTOMERS = FaultPlan(
    rules=(
        FaultRule(
            name="slow-customers",
            service="heartland",
            kind="slow",
            method="GET",
            path="/api/customers",
            delay_seconds=2,
        ),
    )
)


@pytest.fixture(scope="module")
def store() -> Store:
    return generate_store(seed=41, tickets=20, anchor=ANCHOR)


@pytest.fixture
def h(tmp_path: Path, store: Store) -> Iterator[Harness]:
    with harness(tmp_path, store, faults=SLOW_CUSTOMERS) as made:
        made.configure(customers={"poll_seconds": 1})
        yield made


def run_until_skipped(daemon: Daemon, job_id: str) -> threading.Event:
    """Run the daemon until APScheduler skips a start of `job_id`; return the skip's event."""
    skipped = threading.Event()

    def on_skip(event: JobSubmissionEvent) -> None:
        if event.job_id == job_id and not skipped.is_set():
            skipped.set()
            daemon.stop()

    daemon.scheduler.add_listener(on_skip, EVENT_JOB_MAX_INSTANCES)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    # A daemon without a skip is stopped after a minute, and the test then fails on `skipped`.
    backstop = threading.Timer(60, daemon.stop)
    backstop.start()
    try:
        daemon.run()
    finally:
        backstop.cancel()
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    return skipped


def skip_records(caplog: pytest.LogCaptureFixture, job_id: str) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.name == SCHEDULER_LOGGER
        and record.msg == SKIPPED_START_MESSAGE
        and isinstance(record.args, tuple)
        and getattr(record.args[0], "id", None) == job_id
    ]


def test_skipped_start_of_own_job_at_debug(h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    daemon = Daemon(h.settings())

    with caplog.at_level(logging.DEBUG, logger=SCHEDULER_LOGGER):
        skipped = run_until_skipped(daemon, "customers")

    records = skip_records(caplog, "customers")
    assert skipped.is_set()
    assert len(records) >= 1
    assert [record.levelname for record in records] == ["DEBUG"] * len(records)


def test_skipped_start_of_other_job_warns(h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    h.configure(customers={"enrol": False})
    daemon = Daemon(h.settings())
    released = threading.Event()

    def not_ours() -> None:
        # Runs until its second start has been skipped.
        released.wait(timeout=60)

    daemon.scheduler.add_job(
        not_ours, "interval", seconds=1, id="not-ours", next_run_time=datetime.now(UTC)
    )

    def release(event: JobSubmissionEvent) -> None:
        # Only the skip of this job ends it: the daemon's own jobs may be skipped too, as when
        # the first offers run moves the transactions job's next run to now.
        if event.job_id == "not-ours":
            released.set()

    daemon.scheduler.add_listener(release, EVENT_JOB_MAX_INSTANCES)

    with caplog.at_level(logging.INFO, logger=SCHEDULER_LOGGER):
        skipped = run_until_skipped(daemon, "not-ours")

    records = skip_records(caplog, "not-ours")
    assert skipped.is_set()
    assert len(records) >= 1
    assert records[0].levelname == "WARNING"
