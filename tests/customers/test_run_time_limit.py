"""The customers job's time limit: a daemon run ends between pages and the next goes on.

The job's clock moves the shop's clock on by a minute at every reading, so any run that reads
it after its start is past a 30 s limit. Such a run stops after the first page that moves the
cursor, whatever the number of readings, and no test depends on real time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.customers.support import Jobs, Shop, make_jobs
from yotposync.customer_service import customers_job, run_customer_sync
from yotposync.ledger import Ledger
from yotposync.scheduler import Daemon
from yotposync.status import collect_status, format_status
from yotposync.sync.customer_job import CURSOR_NAME, CustomersSummary

LIMIT = timedelta(seconds=30)
# Two customers a page, so that five customers take three pages. The daemon and `customers
# sync` build their clients from the settings, and those clients pace requests in real time,
# so the rates are high.
SMALL_PAGES = {"page_size": 2, "requests_per_second": 1000}
FAST_YOTPO = {"requests_per_second": 1000}


class SteppingClock:
    """The job's clock: each reading first moves the shop's clock on by `step_seconds`."""

    def __init__(self, shop: Shop, step_seconds: float = 60) -> None:
        self.shop = shop
        self.step_seconds = step_seconds

    def __call__(self) -> datetime:
        self.shop.tick(self.step_seconds)
        assert self.shop.clock is not None
        return self.shop.clock.now()


@pytest.fixture
def jobs(shop: Shop, tmp_path: Path) -> Iterator[Jobs]:
    """The conftest.py jobs, with two customers a page and a 60 s job timeout."""
    jobs = make_jobs(
        shop,
        tmp_path / "ledger.sqlite3",
        heartland=SMALL_PAGES,
        yotpo=FAST_YOTPO,
        ops={"job_timeout_seconds": 60},
    )
    try:
        yield jobs
    finally:
        jobs.close()


def five_customers(shop: Shop) -> list[str]:
    """Create five opted-in customers, all in the same second, and return their e-mails."""
    emails = [f"guest{number}@example.com" for number in range(1, 6)]
    for email in emails:
        shop.customer(email)
    return emails


def limited_run(jobs: Jobs, clock: SteppingClock) -> CustomersSummary:
    job = customers_job(jobs.settings, jobs.ledger, jobs.heartland, jobs.yotpo, clock=clock)
    return job.run(time_limit=LIMIT)


def enrolled(shop: Shop, emails: list[str]) -> list[str]:
    return [email for email in emails if shop.loyalty(customer_email=email) is not None]


def test_limited_run_stops_after_page(shop: Shop, jobs: Jobs) -> None:
    emails = five_customers(shop)

    summary = limited_run(jobs, SteppingClock(shop))

    assert summary.time_limit_reached is True
    assert summary.pages == 1
    assert summary.sent == 2
    assert enrolled(shop, emails) == emails[:2]
    assert jobs.ledger.get_cursor(CURSOR_NAME) == summary.cursor
    assert summary.as_dict()["time_limit_reached"] is True


def test_next_run_goes_on_from_cursor(shop: Shop, jobs: Jobs) -> None:
    emails = five_customers(shop)
    clock = SteppingClock(shop)

    first = limited_run(jobs, clock)
    second = limited_run(jobs, clock)
    third = limited_run(jobs, clock)

    # All five customers share one updated_at, so the overlap window makes each run read from
    # the first page again. A run stops only past the cursor it began at, so each one still
    # enrols two new customers, and no customer is sent twice.
    assert [first.sent, second.sent, third.sent] == [2, 2, 1]
    assert second.unchanged == 2
    assert second.time_limit_reached is True
    assert third.time_limit_reached is False
    assert enrolled(shop, emails) == emails
    assert [len(shop.customer_writes(email)) for email in emails] == [1, 1, 1, 1, 1]


def test_stop_request_ends_walk_mid_page(shop: Shop, jobs: Jobs) -> None:
    emails = five_customers(shop)
    job = customers_job(jobs.settings, jobs.ledger, jobs.heartland, jobs.yotpo, clock=jobs.now)
    # The stop request arrives while the first customer is settled.
    stop_answers = iter([False, True])

    stopped = job.run(should_stop=lambda: next(stop_answers, True))

    assert stopped.sent == 1
    assert enrolled(shop, emails) == emails[:1]
    assert jobs.ledger.get_cursor(CURSOR_NAME) is None

    after = job.run()

    assert after.sent == 4
    assert after.unchanged == 1
    assert [len(shop.customer_writes(email)) for email in emails] == [1, 1, 1, 1, 1]


def test_run_without_limit_walks_to_end(shop: Shop, jobs: Jobs) -> None:
    emails = five_customers(shop)
    clock = SteppingClock(shop)
    job = customers_job(jobs.settings, jobs.ledger, jobs.heartland, jobs.yotpo, clock=clock)

    summary = job.run()

    assert summary.time_limit_reached is False
    assert summary.pages == 3
    assert enrolled(shop, emails) == emails


def test_customers_sync_walks_to_end(shop: Shop, jobs: Jobs) -> None:
    emails = five_customers(shop)

    result = run_customer_sync(jobs.settings, clock=SteppingClock(shop))

    assert result.customers is not None
    assert result.customers.time_limit_reached is False
    assert result.customers.sent == 5
    assert enrolled(shop, emails) == emails


def test_daemon_run_stops_at_limit(shop: Shop, jobs: Jobs) -> None:
    emails = five_customers(shop)
    daemon = Daemon(jobs.settings, clock=SteppingClock(shop))

    daemon.run_customers()

    ledger = Ledger.open_for_reading(jobs.settings.ledger.path)
    try:
        runs = {run["job"]: run for run in ledger.last_runs()}
        status = format_status(collect_status(ledger, jobs.now()))
    finally:
        ledger.close()
    summary = json.loads(runs["customers"]["summary"])
    assert runs["customers"]["outcome"] == "ok"
    assert summary["time_limit_reached"] is True
    assert summary["pages"] == 1
    assert enrolled(shop, emails) == emails[:2]
    assert (
        "Last customers run: ok (stopped at its time limit after reading customers updated "
        f"up to {summary['cursor']}; the next run goes on from there)"
    ) in status
