"""Prometheus metrics of the daemon, served at `/metrics`.

The values have two sources. This process updates counters and histograms as jobs run: job
durations, HTTP retries, push results, tickets read. Values that live in the ledger
(decisions, pushes by state, outbox depth and age, cursor lag) are read by a custom collector
at each scrape through `snapshot()`, so they are right even after a restart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from yotposync.clients import http
from yotposync.ops.health import HealthReport
from yotposync.ops.ledger_facts import LedgerFacts

PREFIX = "yotposync"

# Job runs range from well under a second to a catch-up of many pages.
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, float("inf"))

# The results that a delivery run counts, as named in its summary.
PUSH_RESULTS = ("confirmed", "rejected", "retrying", "failed")


@dataclass(frozen=True)
class Snapshot:
    """One consistent read for a scrape: the ledger facts (or why they are missing) and the
    health judged from them."""

    now: datetime
    facts: LedgerFacts | None
    ledger_error: str | None
    health: HealthReport


class OpsMetrics:
    """The daemon's metrics registry.

    `snapshot()` is called once per scrape. Call `close()` when the daemon stops, because
    the HTTP retry counter is hooked into the shared HTTP layer.
    """

    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        # The `_created` series double every counter's lines and tell nothing a restart
        # counter would not. The setting is process-wide in prometheus-client.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=True)

        self.job_duration = Histogram(
            f"{PREFIX}_job_duration_seconds",
            "Duration of job runs, successful or not",
            ["job"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.job_runs = Counter(
            f"{PREFIX}_job_runs",
            "Job runs by outcome (ok or error)",
            ["job", "outcome"],
            registry=self.registry,
        )
        self.http_retries = Counter(
            f"{PREFIX}_http_retries",
            "HTTP requests retried after a 429, a 5xx, a timeout or a connection error",
            ["service", "status"],
            registry=self.registry,
        )
        self.push_results = Counter(
            f"{PREFIX}_push_results",
            "Push attempts by result: confirmed, rejected, retrying (a retry is scheduled) "
            "or failed (out of attempts)",
            ["result"],
            registry=self.registry,
        )
        self.tickets_read = Counter(
            f"{PREFIX}_heartland_tickets_read",
            "Ticket versions read from Heartland, repeats in the overlap window included",
            registry=self.registry,
        )

        for result in PUSH_RESULTS:
            self.push_results.labels(result=result)
        self.registry.register(_LedgerCollector(snapshot))
        http.retry_listeners.append(self.count_retry)

    def close(self) -> None:
        if self.count_retry in http.retry_listeners:
            http.retry_listeners.remove(self.count_retry)

    def count_retry(self, service: str, status: int | None) -> None:
        self.http_retries.labels(
            service=service, status="none" if status is None else str(status)
        ).inc()

    def observe_run(
        self, job: str, seconds: float | None, ok: bool, summary: Mapping[str, Any]
    ) -> None:
        """Count one finished job run and what its summary reports."""
        self.job_runs.labels(job=job, outcome="ok" if ok else "error").inc()
        if seconds is not None:
            self.job_duration.labels(job=job).observe(seconds)
        tickets = summary.get("tickets")
        if job == "transactions" and isinstance(tickets, int):
            self.tickets_read.inc(tickets)
        if job == "delivery":
            for result in PUSH_RESULTS:
                count = summary.get(result)
                if isinstance(count, int) and count > 0:
                    self.push_results.labels(result=result).inc(count)


class _LedgerCollector(Collector):
    """Metrics computed at scrape time from the ledger and the health check."""

    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self._snapshot = snapshot

    def describe(self) -> Iterator[Metric]:
        # Describing without reading the ledger keeps registration cheap and side-effect free.
        return iter(())

    def collect(self) -> Iterator[Metric]:
        snapshot = self._snapshot()
        health = snapshot.health
        yield _gauge("scheduler_running", "1 while the scheduler runs", health.scheduler_running)
        yield _gauge("alive", "1 while the scheduler and every job run on time", health.alive)
        yield _gauge("healthy", "1 when /healthz returns 200", health.healthy)
        yield _gauge(
            "ledger_readable", "1 when the ledger could be read", snapshot.ledger_error is None
        )
        facts = snapshot.facts
        if facts is None:
            return
        yield from _ledger_metrics(facts, snapshot.now)


def _ledger_metrics(facts: LedgerFacts, now: datetime) -> Iterator[Metric]:
    seen = CounterMetricFamily(
        f"{PREFIX}_tickets_seen", "Tickets in the ledger: every ticket seen at least once"
    )
    seen.add_metric([], facts.tickets)
    yield seen

    versions = CounterMetricFamily(
        f"{PREFIX}_ticket_versions_seen",
        "Ticket versions in the ledger: a ticket counts again when it changed",
    )
    versions.add_metric([], facts.ticket_versions)
    yield versions

    decisions = GaugeMetricFamily(
        f"{PREFIX}_ticket_decisions",
        "Tickets by their latest decision; rule names the exclusion rule that matched, if any",
        labels=["kind", "rule"],
    )
    for (kind, rule), count in sorted(facts.decisions.items()):
        decisions.add_metric([kind, rule], count)
    yield decisions

    pushes = GaugeMetricFamily(
        f"{PREFIX}_pushes",
        "Pushes in the ledger by kind (order, refund) and state "
        "(pending, sent, confirmed, rejected, failed)",
        labels=["kind", "state"],
    )
    for (kind, state), count in sorted(facts.pushes.items()):
        pushes.add_metric([kind, state], count)
    yield pushes

    depth = GaugeMetricFamily(
        f"{PREFIX}_outbox_depth", "Pushes neither confirmed nor rejected: pending, sent or failed"
    )
    depth.add_metric([], facts.unfinished_pushes)
    yield depth

    oldest = GaugeMetricFamily(
        f"{PREFIX}_outbox_oldest_age_seconds",
        "Seconds since the oldest unsettled push was queued; 0 when the outbox is empty",
    )
    age = 0.0
    if facts.oldest_unfinished_at is not None:
        age = max(0.0, (now - facts.oldest_unfinished_at).total_seconds())
    oldest.add_metric([], age)
    yield oldest

    if facts.cursor is not None:
        lag = GaugeMetricFamily(
            f"{PREFIX}_cursor_lag_seconds",
            "Seconds between now and the updated_at of the last ticket the cursor covers",
        )
        lag.add_metric([], max(0.0, (now - facts.cursor.updated_at).total_seconds()))
        yield lag

    last_success = GaugeMetricFamily(
        f"{PREFIX}_job_last_success_timestamp_seconds",
        "Unix time at which each job's latest successful run ended",
        labels=["job"],
    )
    for job, finished in sorted(facts.last_success.items()):
        last_success.add_metric([job], finished.timestamp())
    yield last_success


def _gauge(name: str, documentation: str, value: bool) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(f"{PREFIX}_{name}", documentation)
    gauge.add_metric([], 1 if value else 0)
    return gauge
