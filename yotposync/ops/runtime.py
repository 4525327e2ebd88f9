"""The service side of the daemon, attached to its scheduler.

- systemd: `READY=1` once the scheduler runs, `WATCHDOG=1` from a scheduler job every half
  `$WATCHDOG_USEC` while the daemon is alive (see `health`), `STOPPING=1` on shutdown, and a
  `STATUS=` line after each transactions run.
- `[ops] listen`: `/healthz` and `/metrics`.
- `[ops] ping_url`: pings around each transactions run.
- `[ops] webhook_listen`: Heartland webhooks that start a transactions run now.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import structlog
from apscheduler.events import EVENT_SCHEDULER_STARTED, SchedulerEvent
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.interval import IntervalTrigger

from yotposync.config import Settings
from yotposync.errors import LedgerError
from yotposync.ops.address import parse_listen_address
from yotposync.ops.endpoint import OpsEndpoint
from yotposync.ops.health import HealthLimits, HealthReport, assess_health
from yotposync.ops.http_server import BackgroundServer, listen_failure
from yotposync.ops.jobs import JobTracker
from yotposync.ops.ledger_facts import LedgerFacts, read_ledger_facts
from yotposync.ops.metrics import OpsMetrics, Snapshot
from yotposync.ops.ping import Pinger
from yotposync.ops.sdnotify import Notifier
from yotposync.ops.webhook import WebhookReceiver

log = structlog.get_logger("yotposync.ops")

WATCHDOG_JOB = "watchdog"
TRANSACTIONS_JOB = "transactions"


class OpsRuntime:
    """Notifications, health, metrics, pings and the webhook trigger of one daemon.

    The daemon calls `install()` after adding its jobs, `job_started()` and
    `job_finished()` around each run, `stopping()` when asked to stop, and `close()` at the
    end. Its job wrapper reports waits for a job lock to `tracker`.
    """

    def __init__(
        self,
        settings: Settings,
        scheduler: BaseScheduler,
        *,
        clock: Callable[[], datetime],
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.scheduler = scheduler
        self.clock = clock
        self.started_at = clock()
        self.limits = HealthLimits.from_settings(settings)
        self.tracker = JobTracker(clock)
        self.tracker.set_waker(self._wake)
        self.notifier = Notifier.from_environment(os.environ if environ is None else environ)
        self.metrics: OpsMetrics | None = None
        self.pinger: Pinger | None = None
        if settings.ops.ping_url is not None:
            self.pinger = Pinger(settings.ops.ping_url, settings.ops.ping_timeout_seconds)
        self.servers: dict[str, BackgroundServer] = {}
        self._heartbeat_withheld = False

    # Set-up and tear-down

    def install(self) -> None:
        """Add the listener and watchdog job to the scheduler and start the HTTP servers.

        Raises FatalError when a configured address cannot be bound.
        """
        self.scheduler.add_listener(self._on_scheduler_started, EVENT_SCHEDULER_STARTED)
        interval = self.notifier.watchdog_interval_seconds
        if interval is not None:
            self.scheduler.add_job(
                self.send_heartbeat,
                "interval",
                seconds=interval,
                id=WATCHDOG_JOB,
                next_run_time=self.clock(),
            )
            log.info("watchdog_enabled", heartbeat_seconds=interval)

        ops = self.settings.ops
        if ops.listen is not None:
            self.metrics = OpsMetrics(self.snapshot)
            endpoint = OpsEndpoint(self.health, self.metrics.registry)
            self._serve("ops", "ops.listen", ops.listen, endpoint)
        if ops.webhook_listen is not None:
            secret = self.settings.webhook_secret()
            if secret is not None:
                receiver = WebhookReceiver(secret, self.trigger_transactions)
                self._serve("webhook", "ops.webhook_listen", ops.webhook_listen, receiver)

    def close(self) -> None:
        for server in self.servers.values():
            server.stop()
        self.servers = {}
        if self.metrics is not None:
            self.metrics.close()
        if self.pinger is not None:
            self.pinger.close()
        self.notifier.close()

    def _serve(self, name: str, key: str, address: str, app: Any) -> None:
        host, port = parse_listen_address(address)
        server = BackgroundServer(name, host, port, app)
        try:
            server.start()
        except OSError as exc:
            self.close()
            raise listen_failure(key, address, exc) from exc
        self.servers[name] = server

    # Hooks called by the daemon

    def job_started(self, name: str) -> None:
        self.tracker.started(name)
        if name == TRANSACTIONS_JOB and self.pinger is not None:
            self.pinger.start()

    def job_finished(self, name: str, summary: Mapping[str, Any], error: str | None) -> None:
        state = self.tracker.finished(name, error=error)
        if self.metrics is not None:
            self.metrics.observe_run(name, state.last_duration_seconds, error is None, summary)
        if name != TRANSACTIONS_JOB:
            return
        if self.pinger is not None:
            if error is None:
                self.pinger.success()
            else:
                self.pinger.fail()
        pushes = summary.get("pushes_planned")
        when = self.clock().strftime("%H:%M:%S UTC")
        if error is None:
            self.notifier.status(
                f"Last poll {when}: {summary.get('tickets', 0)} ticket version(s) read, "
                f"{pushes or 0} push(es) queued"
            )
        else:
            self.notifier.status(f"Last poll {when} failed: {error}")

    def stopping(self) -> None:
        self.notifier.stopping("Stopping: finishing the current page or push")

    def trigger_transactions(self) -> None:
        """Start a transactions run now, or right after the one in progress."""
        self.tracker.request_run(TRANSACTIONS_JOB)

    # Health

    def snapshot(self) -> Snapshot:
        """Read the ledger once and judge the daemon's health from it."""
        now = self.clock()
        facts: LedgerFacts | None = None
        error: str | None = None
        try:
            facts = read_ledger_facts(self.settings.ledger.path)
        except (LedgerError, sqlite3.Error) as exc:
            error = str(exc)
            log.warning("health_ledger_unreadable", error=error)
        return Snapshot(now, facts, error, self._assess(now, facts, error))

    def health(self) -> HealthReport:
        return self.snapshot().health

    def send_heartbeat(self) -> None:
        """Send `WATCHDOG=1` when the daemon is alive; log when it starts or stops being so."""
        report = self._assess(self.clock(), None, None)
        if report.alive:
            if self._heartbeat_withheld:
                log.info("watchdog_heartbeat_resumed")
            self._heartbeat_withheld = False
            self.notifier.watchdog()
            return
        if not self._heartbeat_withheld:
            log.error(
                "watchdog_heartbeat_withheld",
                problems=report.problems,
                detail="systemd restarts the service when WatchdogSec passes without one",
            )
        self._heartbeat_withheld = True

    def _assess(self, now: datetime, facts: LedgerFacts | None, error: str | None) -> HealthReport:
        return assess_health(
            now,
            scheduler_running=bool(self.scheduler.running),
            started_at=self.started_at,
            intervals=self._intervals(),
            jobs=self.tracker.snapshot(),
            facts=facts,
            ledger_error=error,
            limits=self.limits,
        )

    def _intervals(self) -> dict[str, float]:
        """Return the scheduled jobs and their intervals in seconds, without the watchdog job."""
        intervals: dict[str, float] = {}
        for job in self.scheduler.get_jobs():
            if job.id != WATCHDOG_JOB and isinstance(job.trigger, IntervalTrigger):
                intervals[job.id] = job.trigger.interval.total_seconds()
        return intervals

    def _on_scheduler_started(self, event: SchedulerEvent) -> None:
        schedule = self.settings.schedule
        self.notifier.ready(
            f"Polling Heartland every {schedule.transactions_seconds} s, "
            f"delivering every {schedule.delivery_seconds} s"
        )
        log.info("service_ready", notify_socket=self.notifier.enabled)

    def _wake(self, name: str) -> None:
        try:
            self.scheduler.modify_job(name, next_run_time=self.clock())
        except JobLookupError:
            log.debug("job_not_scheduled", job=name, detail="the scheduler is shutting down")
