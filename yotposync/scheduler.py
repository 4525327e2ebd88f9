"""The daemon: APScheduler jobs for polling and delivery, signal handling, the ledger lock.

`OpsRuntime` (yotposync.ops.runtime) attaches the service side: systemd notifications and
watchdog, `/healthz` and `/metrics`, health-check pings and the webhook trigger.

Each job opens its own ledger connection, because SQLite transactions belong to a connection
and the jobs run in separate threads. SIGTERM and SIGINT stop the scheduler. The jobs notice
between pages or pushes, finish the transaction they are in, and return, so no committed
decision is lost and no half-written one is kept.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from types import FrameType
from typing import Any

import structlog
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.blocking import BlockingScheduler

from yotposync.app import heartland_client, stop_signals, utc_now, yotpo_client
from yotposync.config import Settings
from yotposync.customer_service import customers_job
from yotposync.errors import FatalError, LedgerFullError, YotposyncError
from yotposync.ledger import Ledger, LedgerLock
from yotposync.ledger.integrity import damaged_ledger_error, full_ledger_error
from yotposync.ledger.store import RUN_INTERRUPTED
from yotposync.offers_runtime import JOB_NAMES as OFFER_JOB_NAMES
from yotposync.offers_runtime import OffersRuntime
from yotposync.ops.runtime import OpsRuntime
from yotposync.sync.delivery import DeliveryJob
from yotposync.sync.refresh_job import RefreshJob
from yotposync.sync.transactions import TransactionsJob

log = structlog.get_logger("yotposync.scheduler")

# APScheduler 3.x logs every exception a job raises, with its traceback, on the logger of the
# executor that ran it. The daemon's jobs run on the default thread pool executor.
EXECUTOR_LOGGER = "apscheduler.executors.default"
# When APScheduler 3.x skips a start because the job's previous run is still going, it logs a
# warning with this message template on the scheduler's logger.
SCHEDULER_LOGGER = "apscheduler.scheduler"
SKIPPED_START_MESSAGE = (
    'Execution of job "%s" skipped: maximum number of running instances reached (%d)'
)

# A daemon run of the transactions, customers or delivery job ends between pages or batches
# once it has run for this share of ops.job_timeout_seconds, and the next scheduled run goes
# on from what it saved. The health check takes a run longer than the timeout for a hung job
# and withholds the systemd watchdog heartbeat. Yet at the default request rates (Heartland 5
# and Yotpo 10 per second) enrolling one customer takes about 0.4 s, an estimate. A first
# enrolment of a few thousand customers then outlasts the default 900 s, and so do a first
# poll from a go-live date months back and the outbox it fills. The other half is left for
# the page or batch under way and for the steps after the walk.
RUN_TIME_SHARE = 0.5


class Daemon:
    """The long-running process behind `yotposync run`."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = utc_now,
        force: bool = False,
    ) -> None:
        self.settings = settings
        self.clock = clock
        # Accept empty Heartland windows (see TransactionsJob.check_empty_window) until stopped.
        self.force = force
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
        self._job_locks |= {name: threading.Lock() for name in OFFER_JOB_NAMES}
        self.offers = OffersRuntime(settings, clock=clock, should_stop=self.stopping.is_set)
        self._job_locks.update(customers=threading.Lock(), refresh=threading.Lock())
        # The job functions that `_guarded` made, to tell their errors from other jobs' errors.
        self._guarded_functions: set[Callable[[], None]] = set()
        # systemd notifications, health, metrics, pings and the webhook trigger.
        self.ops = OpsRuntime(settings, self.scheduler, clock=clock)

    def run(self) -> int:
        """Run until stopped; return the process exit code."""
        executor_log = logging.getLogger(EXECUTOR_LOGGER)
        scheduler_log = logging.getLogger(SCHEDULER_LOGGER)
        executor_log.addFilter(self._filter_executor_record)
        scheduler_log.addFilter(self._filter_skipped_start_record)
        try:
            return self._run_locked()
        finally:
            executor_log.removeFilter(self._filter_executor_record)
            scheduler_log.removeFilter(self._filter_skipped_start_record)

    def _run_locked(self) -> int:
        with LedgerLock(self.settings.ledger.path):
            # Open once in the main thread so that a bad ledger stops the daemon before any job.
            Ledger.open_for_writing(self.settings.ledger.path).close()
            try:
                self._start_and_wait()
            finally:
                # Also after a start-up step failed: the offers receiver, started with the
                # jobs, must not outlive the ledger lock.
                self.ops.close()
                self.offers.close()
        if self.fatal is not None:
            log.error("daemon_stopped", error=str(self.fatal))
            return 1
        log.info("daemon_stopped")
        return 0

    def _start_and_wait(self) -> None:
        self._add_jobs()
        self.ops.install()
        self._install_signal_handlers()
        log.info(
            "daemon_started",
            ledger=str(self.settings.ledger.path),
            transactions_seconds=self.settings.schedule.transactions_seconds,
            delivery_seconds=self.settings.schedule.delivery_seconds,
        )
        if self.force:
            log.warning(
                "empty_window_guard_off",
                detail="started with --force: empty Heartland windows are accepted",
            )
        self.scheduler.start()
        # start() returns after shutdown(); wait for jobs still finishing their transaction.
        for lock in self._job_locks.values():
            with lock:
                pass

    def stop(self) -> None:
        if self.stopping.is_set():
            return
        self.stopping.set()
        self.ops.stopping()
        # A signal handler runs in the scheduler's own thread, possibly in the middle of its
        # loop over due jobs. Shutting down there would remove the jobs under that loop
        # (JobLookupError), so another thread does it once the loop releases its lock.
        threading.Thread(
            target=self.scheduler.shutdown, kwargs={"wait": False}, name="scheduler-stop"
        ).start()

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
        self._add_customer_jobs(now)
        self.scheduler.add_listener(self._on_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED)
        self.offers.install(self.scheduler, self._guarded, self._run_recorded)

    def _add_customer_jobs(self, now: datetime) -> None:
        """Add the customers job (enrolment) and the refresh job (cashier fields), if on."""
        options = self.settings.customers
        if options.enrol:
            self.scheduler.add_job(
                self._guarded("customers", self.run_customers),
                "interval",
                seconds=options.poll_seconds,
                id="customers",
                next_run_time=now,
            )
        if options.write_fields:
            self.scheduler.add_job(
                self._guarded("refresh", self.run_refresh),
                "interval",
                seconds=options.refresh_seconds,
                id="refresh",
                next_run_time=now,
            )

    def _guarded(self, name: str, job: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            if self.stopping.is_set():
                return
            # A job can wait here for another that shares its lock; the health check counts
            # the wait, so the job is not taken for one the scheduler failed to start.
            self.ops.tracker.waiting(name)
            with self._job_locks[name]:
                self.ops.tracker.acquired(name)
                job()

        # APScheduler names a job after its function in its own log lines ("Added job ...",
        # "Running job ..."), and every guarded job's function would be `_guarded.<locals>.run`.
        run.__name__ = run.__qualname__ = name
        self._guarded_functions.add(run)
        return run

    def run_transactions(self) -> None:
        self._run_recorded("transactions", self._transactions_once)

    def run_delivery(self) -> None:
        self._run_recorded("delivery", self._delivery_once)

    def _transactions_once(self, ledger: Ledger) -> dict[str, Any]:
        if self.offers.holds_back_tickets(ledger):
            log.info(
                "transactions_waiting_for_offers",
                detail="this ledger has no loyalty offers yet; tickets are read after the first "
                "offers run, so that their loyalty coupons are recognised",
            )
            return {"waiting_for_offers": True}
        job = TransactionsJob(
            self.settings, ledger, heartland_client(self.settings), clock=self.clock
        )
        summary = job.run(
            should_stop=self.stopping.is_set, force=self.force, time_limit=self._run_time_limit()
        )
        if (len(summary.planned) or summary.points_adjustments) and not self.stopping.is_set():
            self._deliver_soon()
        return summary.as_dict()

    def _deliver_soon(self) -> None:
        """Move the delivery job's next run to now, so new pushes leave without waiting.

        If a delivery run is still going, APScheduler skips this one as a second instance,
        and the next interval sends what that run did not.
        """
        try:
            self.scheduler.modify_job("delivery", next_run_time=utc_now())
        except JobLookupError:
            log.debug("delivery_not_scheduled", detail="the scheduler is shutting down")

    def _delivery_once(self, ledger: Ledger) -> dict[str, Any]:
        job = DeliveryJob(self.settings, ledger, yotpo_client(self.settings), clock=self.clock)
        summary = job.run(should_stop=self.stopping.is_set, time_limit=self._run_time_limit())
        return summary.as_dict()

    def run_customers(self) -> None:
        self._run_recorded("customers", self._customers_once)

    def run_refresh(self) -> None:
        self._run_recorded("refresh", self._refresh_once)

    def _customers_once(self, ledger: Ledger) -> dict[str, Any]:
        # Re-decisions hold the transactions job's lock, so no ticket is decided twice at once.
        job = customers_job(
            self.settings,
            ledger,
            heartland_client(self.settings),
            yotpo_client(self.settings),
            clock=self.clock,
            redecide_lock=self._job_locks["transactions"],
        )
        summary = job.run(should_stop=self.stopping.is_set, time_limit=self._run_time_limit())
        return summary.as_dict()

    def _run_time_limit(self) -> timedelta:
        """Return how long one run of a job that stops at a time limit may walk or send."""
        return timedelta(seconds=self.settings.ops.job_timeout_seconds * RUN_TIME_SHARE)

    def _refresh_once(self, ledger: Ledger) -> dict[str, Any]:
        job = RefreshJob(
            self.settings,
            ledger,
            heartland_client(self.settings),
            yotpo_client(self.settings),
            clock=self.clock,
        )
        return job.run(should_stop=self.stopping.is_set).as_dict()

    def _run_recorded(self, name: str, body: Callable[[Ledger], dict[str, Any]]) -> None:
        """Run one job body, record the run in the ledger and report it to the ops runtime."""
        self.ops.job_started(name)
        try:
            summary = self._run_in_ledger(name, body)
        except Exception as exc:
            # SQLite's "database or disk is full" becomes an error that names the ledger and
            # the fix, which `_on_event` logs.
            error = full_ledger_error(exc, self.settings.ledger.path) or exc
            self.ops.job_finished(name, {}, str(error))
            if error is exc:
                raise
            raise error from exc
        self.ops.job_finished(name, summary, None)

    def _run_in_ledger(self, name: str, body: Callable[[Ledger], dict[str, Any]]) -> dict[str, Any]:
        """Run one job body with its own ledger connection and record the run."""
        ledger = Ledger.open_existing(self.settings.ledger.path)
        run_id = ledger.start_run(name, self.clock())
        try:
            summary = body(ledger)
        except Exception as exc:
            ledger.finish_run(run_id, "error", {}, self.clock(), error=str(exc))
            raise
        else:
            # A stop request during the run may have ended it early: jobs stop after the page
            # or batch under way.
            outcome = RUN_INTERRUPTED if self.stopping.is_set() else "ok"
            ledger.finish_run(run_id, outcome, summary, self.clock())
        finally:
            ledger.close()
        return summary

    def _on_event(self, event: JobExecutionEvent) -> None:
        if event.code == EVENT_JOB_MISSED:
            log.warning("job_missed", job=event.job_id)
            return
        exc = event.exception
        fatal = self._fatal_error(exc)
        if fatal is not None:
            log.error("job_fatal", job=event.job_id, error=str(fatal))
            self.fatal = fatal
            self.stop()
        else:
            log.error("job_failed", job=event.job_id, error=str(exc), error_type=type(exc).__name__)

    def _fatal_error(self, exc: BaseException) -> FatalError | None:
        """Return the error as a FatalError if it stops the daemon, such as a damaged ledger.

        A full ledger does not stop it: the next run succeeds once space is freed.
        """
        exc = damaged_ledger_error(exc, self.settings.ledger.path) or exc
        if isinstance(exc, LedgerFullError):
            return None
        return exc if isinstance(exc, FatalError) else None

    def _filter_executor_record(self, record: logging.LogRecord) -> bool:
        """Demote APScheduler's traceback of yotposync's own errors in our jobs to debug.

        `_on_event` logs such an error as one `job_fatal` or `job_failed` line, so the record
        is dropped unless the executor's logger writes debug records. Otherwise an outage
        would write a traceback at every poll. Any other error (a bug), and any error of a
        job that `_guarded` did not wrap, keeps APScheduler's error record with its traceback.
        """
        error = record.exc_info[1] if record.exc_info else None
        job = record.args[0] if isinstance(record.args, tuple) and record.args else None
        if error is None or getattr(job, "func", None) not in self._guarded_functions:
            return True
        if self._fatal_error(error) is None and not isinstance(error, YotposyncError):
            return True
        return _demote_to_debug(record)

    def _filter_skipped_start_record(self, record: logging.LogRecord) -> bool:
        """Demote APScheduler's warning that it skipped a start of one of our jobs to debug.

        Each job runs one instance at a time (`max_instances` 1), so a start that falls while
        the job's previous run is still going is skipped by design. A long first enrolment or
        delivery would otherwise log this warning at every interval of its job. A run that
        takes too long shows in the health check instead. The skipped starts of a job that
        `_guarded` did not wrap, such as the watchdog heartbeat, and APScheduler's other
        warnings, such as a run missed by more than the misfire grace time, keep their level.
        """
        if record.msg != SKIPPED_START_MESSAGE:
            return True
        job = record.args[0] if isinstance(record.args, tuple) and record.args else None
        if getattr(job, "func", None) not in self._guarded_functions:
            return True
        return _demote_to_debug(record)

    def _install_signal_handlers(self) -> None:
        def handle(signum: int, _frame: FrameType | None) -> None:
            log.info("stop_requested", signal=signal.Signals(signum).name)
            # The handler runs in the main thread, possibly inside the scheduler's loop while
            # it holds its job store lock. Shutting down from there would empty the job store
            # under the loop, which then fails to update the job it just started. Another
            # thread waits for the lock instead.
            threading.Thread(target=self.stop, name="stop", daemon=True).start()

        # SIGHUP too: a daemon started from a terminal that closes stops as cleanly, unless
        # it was started with SIGHUP ignored, as `nohup` does.
        for signum in stop_signals():
            signal.signal(signum, handle)


def _demote_to_debug(record: logging.LogRecord) -> bool:
    """Turn a record into a debug record, or return False to drop it if its logger is quieter."""
    if not logging.getLogger(record.name).isEnabledFor(logging.DEBUG):
        return False
    record.levelno, record.levelname = logging.DEBUG, "DEBUG"
    return True
