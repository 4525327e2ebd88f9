"""The daemon: APScheduler jobs for polling and delivery, signal handling, the ledger lock.

Each job opens its own ledger connection, because SQLite transactions belong to a connection
and the jobs run in separate threads. SIGTERM and SIGINT stop the scheduler; the jobs notice
between pages or pushes, finish the transaction they are in, and return, so no committed
decision is lost and no half-written one is kept.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from datetime import datetime
from types import FrameType
from typing import Any

import structlog
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.blocking import BlockingScheduler

from yotposync.app import heartland_client, utc_now, yotpo_client
from yotposync.config import Settings
from yotposync.errors import FatalError
from yotposync.ledger import Ledger, LedgerLock
from yotposync.sync.delivery import DeliveryJob
from yotposync.sync.transactions import TransactionsJob

log = structlog.get_logger("yotposync.scheduler")


class Daemon:
    """The long-running process behind `yotposync run`."""

    def __init__(self, settings: Settings, *, clock: Callable[[], datetime] = utc_now) -> None:
        self.settings = settings
        self.clock = clock
        self.stopping = threading.Event()
        self.fatal: BaseException | None = None
        self.scheduler = BlockingScheduler(
            timezone="UTC",
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": settings.schedule.misfire_grace_seconds,
            },
        )
        self._job_locks = {"transactions": threading.Lock(), "delivery": threading.Lock()}

    def run(self) -> int:
        """Run until stopped; return the process exit code."""
        with LedgerLock(self.settings.ledger.path):
            # Open once in the main thread so that a bad ledger stops the daemon before any job.
            Ledger.open(self.settings.ledger.path).close()
            self._add_jobs()
            self._install_signal_handlers()
            log.info(
                "daemon_started",
                ledger=str(self.settings.ledger.path),
                transactions_seconds=self.settings.schedule.transactions_seconds,
                delivery_seconds=self.settings.schedule.delivery_seconds,
            )
            self.scheduler.start()
            # start() returns after shutdown(); wait for jobs still finishing their transaction.
            for lock in self._job_locks.values():
                with lock:
                    pass
        if self.fatal is not None:
            log.error("daemon_stopped", error=str(self.fatal))
            return 1
        log.info("daemon_stopped")
        return 0

    def stop(self) -> None:
        if self.stopping.is_set():
            return
        self.stopping.set()
        self.scheduler.shutdown(wait=False)

    def _add_jobs(self) -> None:
        now = self.clock()
        schedule = self.settings.schedule
        self.scheduler.add_job(
            self._guarded("transactions", self.run_transactions),
            "interval",
            seconds=schedule.transactions_seconds,
            id="transactions",
            next_run_time=now,
        )
        self.scheduler.add_job(
            self._guarded("delivery", self.run_delivery),
            "interval",
            seconds=schedule.delivery_seconds,
            id="delivery",
            next_run_time=now,
        )
        self.scheduler.add_listener(self._on_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED)

    def _guarded(self, name: str, job: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            if self.stopping.is_set():
                return
            with self._job_locks[name]:
                job()

        return run

    def run_transactions(self) -> None:
        self._run_recorded("transactions", self._transactions_once)

    def run_delivery(self) -> None:
        self._run_recorded("delivery", self._delivery_once)

    def _transactions_once(self, ledger: Ledger) -> dict[str, Any]:
        job = TransactionsJob(
            self.settings, ledger, heartland_client(self.settings), clock=self.clock
        )
        return job.run(should_stop=self.stopping.is_set).as_dict()

    def _delivery_once(self, ledger: Ledger) -> dict[str, Any]:
        job = DeliveryJob(self.settings, ledger, yotpo_client(self.settings), clock=self.clock)
        return job.run(should_stop=self.stopping.is_set).as_dict()

    def _run_recorded(self, name: str, body: Callable[[Ledger], dict[str, Any]]) -> None:
        """Run one job body with its own ledger connection and record the run."""
        ledger = Ledger.open(self.settings.ledger.path)
        run_id = ledger.start_run(name, self.clock())
        try:
            summary = body(ledger)
        except Exception as exc:
            ledger.finish_run(run_id, "error", {}, self.clock(), error=str(exc))
            raise
        else:
            ledger.finish_run(run_id, "ok", summary, self.clock())
        finally:
            ledger.close()

    def _on_event(self, event: JobExecutionEvent) -> None:
        if event.code == EVENT_JOB_MISSED:
            log.warning("job_missed", job=event.job_id)
            return
        exc = event.exception
        if isinstance(exc, FatalError):
            log.error("job_fatal", job=event.job_id, error=str(exc))
            self.fatal = exc
            self.stop()
        else:
            log.error("job_failed", job=event.job_id, error=str(exc), error_type=type(exc).__name__)

    def _install_signal_handlers(self) -> None:
        def handle(signum: int, _frame: FrameType | None) -> None:
            log.info("stop_requested", signal=signal.Signals(signum).name)
            self.stop()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)
