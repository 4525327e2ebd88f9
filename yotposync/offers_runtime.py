"""The daemon's offer side: the offers and online codes jobs, and the redemption webhook.

`Daemon` calls `install()` once before the scheduler starts and `close()` after it stops.
A code recorded by the webhook moves the online codes job's next run to now, so its coupon
is usually ready at the register within seconds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

import structlog
from apscheduler.schedulers.base import BaseScheduler

from yotposync.app import heartland_client, yotpo_client
from yotposync.clients.heartland import HeartlandClient
from yotposync.clients.heartland_coupons import HeartlandCoupons
from yotposync.clients.yotpo import YotpoClient
from yotposync.config import Settings
from yotposync.ledger import Ledger
from yotposync.ledger.offers import OfferLedger
from yotposync.ops.address import parse_listen_address
from yotposync.ops.http_server import BackgroundServer, listen_failure
from yotposync.sync.offers_job import OffersJob
from yotposync.sync.online_codes import OnlineCodesJob
from yotposync.webhooks.yotpo import RedemptionWebhook

log = structlog.get_logger("yotposync.offers")

OFFERS_JOB = "offers"
CODES_JOB = "online_codes"
# The scheduler's id of the transactions job, which waits for a new ledger's first offers run.
TRANSACTIONS_JOB = "transactions"
JOB_NAMES = (OFFERS_JOB, CODES_JOB)

Guard = Callable[[str, Callable[[], None]], Callable[[], None]]
Recorder = Callable[[str, Callable[[Ledger], dict[str, Any]]], None]


def run_offers(
    settings: Settings,
    ledger: Ledger,
    clock: Callable[[], datetime],
    should_stop: Callable[[], bool] = lambda: False,
) -> dict[str, Any]:
    """Run the offers job once with fresh clients; return its summary."""
    heartland = heartland_client(settings)
    yotpo = yotpo_client(settings)
    try:
        job = offers_job(settings, ledger, heartland, yotpo, clock)
        return job.run(should_stop=should_stop).as_dict()
    finally:
        heartland.close()
        yotpo.close()


def offers_job(
    settings: Settings,
    ledger: Ledger,
    heartland: HeartlandClient,
    yotpo: YotpoClient,
    clock: Callable[[], datetime],
) -> OffersJob:
    """Build the offers job from the settings, over clients the caller closes."""
    return OffersJob(
        ledger,
        yotpo,
        HeartlandCoupons(heartland),
        clock=clock,
        max_discount_cents=settings.offers.max_discount_cents,
        refresh_active_days=(
            settings.customers.refresh_active_days if settings.customers.write_fields else 0
        ),
    )


def run_online_codes(
    settings: Settings,
    ledger: Ledger,
    clock: Callable[[], datetime],
    should_stop: Callable[[], bool] = lambda: False,
) -> dict[str, Any]:
    """Run the online codes job once with fresh clients; return its summary."""
    heartland = heartland_client(settings)
    yotpo = yotpo_client(settings)
    try:
        job = OnlineCodesJob(
            ledger,
            yotpo,
            HeartlandCoupons(heartland),
            clock=clock,
            history_days=settings.offers.history_days,
            history_max_customers=settings.offers.history_max_customers,
            max_discount_cents=settings.offers.max_discount_cents,
        )
        return job.run(should_stop=should_stop).as_dict()
    finally:
        heartland.close()
        yotpo.close()


class OffersRuntime:
    """Scheduler jobs and the optional webhook receiver for offers."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], datetime],
        should_stop: Callable[[], bool],
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.should_stop = should_stop
        self.server: BackgroundServer | None = None
        self._scheduler: BaseScheduler | None = None
        # Set once the offers job has run in this process, whatever its outcome.
        self.first_run_done = threading.Event()
        self._tickets_held = False

    def holds_back_tickets(self, ledger: Ledger) -> bool:
        """Tell whether the transactions job should wait for this process's first offers run.

        A ledger without offers would take the loyalty coupons already in Heartland (a ledger
        moved aside and started again) for ordinary ones, and those sales would deduct
        nothing. The offers job records them first. It runs once at start, so the wait lasts
        one transactions interval at most.
        """
        if not self.settings.offers.enabled or self.first_run_done.is_set():
            return False
        if OfferLedger(ledger).offer_mappings():
            return False
        self._tickets_held = True
        return True

    def install(self, scheduler: BaseScheduler, guarded: Guard, record: Recorder) -> None:
        """Add both jobs to the scheduler and start the webhook receiver when configured."""
        self._scheduler = scheduler
        offers = self.settings.offers
        if not offers.enabled:
            log.info("offers_disabled", detail="offers.enabled is false: no offer jobs run")
            return
        now = self.clock()

        def offers_once() -> None:
            try:
                record(
                    OFFERS_JOB,
                    lambda ledger: run_offers(self.settings, ledger, self.clock, self.should_stop),
                )
            finally:
                self.first_run_done.set()
                if self._tickets_held:
                    self._tickets_held = False
                    self._run_soon(TRANSACTIONS_JOB)

        def codes_once() -> None:
            record(
                CODES_JOB,
                lambda ledger: run_online_codes(
                    self.settings, ledger, self.clock, self.should_stop
                ),
            )

        scheduler.add_job(
            guarded(OFFERS_JOB, offers_once),
            "interval",
            seconds=offers.sync_seconds,
            id=OFFERS_JOB,
            next_run_time=now,
        )
        scheduler.add_job(
            guarded(CODES_JOB, codes_once),
            "interval",
            seconds=offers.codes_seconds,
            id=CODES_JOB,
            next_run_time=now,
        )
        secret = self.settings.offers_webhook_secret()
        if offers.webhook_listen is not None and secret is not None:
            host, port = parse_listen_address(offers.webhook_listen)
            app = RedemptionWebhook(
                self.settings.ledger.path, secret, clock=self.clock, on_recorded=self.wake_codes
            )
            server = BackgroundServer("offers-webhook", host, port, app)
            try:
                server.start()
            except OSError as exc:
                raise listen_failure("offers.webhook_listen", offers.webhook_listen, exc) from exc
            self.server = server

    def wake_codes(self) -> None:
        """Move the online codes job's next run to now."""
        self._run_soon(CODES_JOB)

    def _run_soon(self, job_id: str) -> None:
        """Move a scheduled job's next run to now; nothing when it is not scheduled."""
        if self._scheduler is None:
            return
        job = self._scheduler.get_job(job_id)
        if job is not None:
            job.modify(next_run_time=self.clock())

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
