"""/metrics and /healthz over real HTTP, with ledger values from the scripted store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from apscheduler.schedulers.background import BackgroundScheduler
from prometheus_client.parser import text_string_to_metric_families

from tests.ops.recorder import Recorder
from tests.ops.scenario import Scenario
from yotposync.app import utc_now
from yotposync.clients import http
from yotposync.clients.heartland import HeartlandClient
from yotposync.clients.http import RetryPolicy
from yotposync.config import sandbox_settings
from yotposync.errors import FatalError, RetriableError
from yotposync.ops.runtime import OpsRuntime

INSTANT_RETRY = RetryPolicy(max_tries=3, base_wait_seconds=0, jitter=lambda wait: 0)


def idle() -> None:
    """A job body for the test scheduler; the test reports runs to the runtime itself."""


@dataclass
class Endpoint:
    runtime: OpsRuntime
    scheduler: BackgroundScheduler
    url: str

    def get(self, path: str) -> requests.Response:
        return requests.get(f"{self.url}{path}", timeout=5)


@contextmanager
def serving(scenario: Scenario) -> Iterator[Endpoint]:
    """An OpsRuntime on a running scheduler with two idle jobs, serving on a free port."""
    sandbox = scenario.sandbox
    settings = sandbox_settings(
        sandbox.heartland_url,
        sandbox.yotpo_url,
        scenario.ledger,
        ops={"listen": "127.0.0.1:0"},
    )
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_job(idle, "interval", seconds=60, id="transactions")
    scheduler.add_job(idle, "interval", seconds=15, id="delivery")
    runtime = OpsRuntime(settings, scheduler, clock=utc_now, environ={})
    runtime.install()
    scheduler.start()
    try:
        yield Endpoint(runtime, scheduler, f"http://127.0.0.1:{runtime.servers['ops'].port}")
    finally:
        if scheduler.running:
            scheduler.shutdown(wait=False)
        runtime.close()


@pytest.fixture(scope="module")
def endpoint(scenario: Scenario) -> Iterator[Endpoint]:
    with serving(scenario) as running:
        runtime = running.runtime
        runtime.job_started("transactions")
        runtime.job_finished("transactions", {"tickets": 8, "pushes_planned": 0}, None)
        runtime.job_started("delivery")
        runtime.job_finished("delivery", {"confirmed": 2, "rejected": 1}, None)
        with Recorder(status=503) as failing:
            client = HeartlandClient(
                failing.url, "token", retry=INSTANT_RETRY, sleep=lambda s: None
            )
            with pytest.raises(RetriableError):
                client.check()
            client.close()
        yield running


@pytest.fixture(scope="module")
def samples(endpoint: Endpoint) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = endpoint.get("/metrics")
    assert response.status_code == 200
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(samples: dict[Any, float], name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def test_decisions_by_kind_and_rule(samples: dict[Any, float]) -> None:
    name = "yotposync_ticket_decisions"
    assert value(samples, name, kind="excluded", rule="customer_custom:staff=yes") == 1
    assert value(samples, name, kind="sale", rule="") == 2
    assert value(samples, name, kind="no_email", rule="") == 1


def test_tickets_seen_from_ledger(samples: dict[Any, float]) -> None:
    assert value(samples, "yotposync_tickets_seen_total") == 8
    assert value(samples, "yotposync_ticket_versions_seen_total") == 8


def test_pushes_by_state(samples: dict[Any, float]) -> None:
    assert value(samples, "yotposync_pushes", kind="order", state="confirmed") == 2
    assert value(samples, "yotposync_pushes", kind="refund", state="rejected") == 1
    assert value(samples, "yotposync_outbox_depth") == 0
    assert value(samples, "yotposync_outbox_oldest_age_seconds") == 0


def test_push_results_counted(samples: dict[Any, float]) -> None:
    assert value(samples, "yotposync_push_results_total", result="confirmed") == 2
    assert value(samples, "yotposync_push_results_total", result="rejected") == 1
    assert value(samples, "yotposync_push_results_total", result="failed") == 0


def test_retries_counted(samples: dict[Any, float]) -> None:
    assert value(samples, "yotposync_http_retries_total", service="heartland", status="503") == 2


def test_job_duration_observed(samples: dict[Any, float]) -> None:
    assert value(samples, "yotposync_job_duration_seconds_count", job="transactions") == 1
    assert value(samples, "yotposync_job_runs_total", job="delivery", outcome="ok") == 1


def test_tickets_read_counted(samples: dict[Any, float]) -> None:
    assert value(samples, "yotposync_heartland_tickets_read_total") == 8


def test_cursor_lag_positive(samples: dict[Any, float]) -> None:
    lag = value(samples, "yotposync_cursor_lag_seconds")
    assert lag is not None
    assert lag > 0


def test_catch_up_success_time(samples: dict[Any, float]) -> None:
    stamp = value(samples, "yotposync_job_last_success_timestamp_seconds", job="catch-up")
    assert stamp is not None
    assert stamp > 1.7e9


def test_health_gauges(samples: dict[Any, float]) -> None:
    assert value(samples, "yotposync_scheduler_running") == 1
    assert value(samples, "yotposync_healthy") == 1
    assert value(samples, "yotposync_ledger_readable") == 1


def test_no_created_series(samples: dict[Any, float]) -> None:
    assert [name for name, _ in samples if name.endswith("_created")] == []


def test_healthz_ok(endpoint: Endpoint) -> None:
    response = endpoint.get("/healthz")
    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "ok"
    assert body["jobs"]["transactions"]["last_outcome"] == "ok"
    assert body["outbox"]["unfinished"] == 0


def test_unknown_path_404(endpoint: Endpoint) -> None:
    assert endpoint.get("/").status_code == 404


def test_post_metrics_405(endpoint: Endpoint) -> None:
    assert requests.post(f"{endpoint.url}/metrics", timeout=5).status_code == 405


def test_retry_listener_removed_on_close(scenario: Scenario) -> None:
    settings = sandbox_settings(
        scenario.sandbox.heartland_url,
        scenario.sandbox.yotpo_url,
        scenario.ledger,
        ops={"listen": "127.0.0.1:0"},
    )
    before = len(http.retry_listeners)
    runtime = OpsRuntime(settings, BackgroundScheduler(timezone="UTC"), clock=utc_now, environ={})
    runtime.install()
    during = len(http.retry_listeners)
    runtime.close()
    assert (during, len(http.retry_listeners)) == (before + 1, before)


def test_healthz_503_when_scheduler_stops(scenario: Scenario) -> None:
    with serving(scenario) as running:
        running.scheduler.shutdown(wait=False)
        response = running.get("/healthz")
    assert response.status_code == 503
    assert "the scheduler is not running" in response.json()["problems"]


def test_listen_address_not_on_machine(scenario: Scenario) -> None:
    # 192.0.2.1 is a documentation address that no interface here has, so binding fails at
    # once and nothing is sent anywhere.
    settings = sandbox_settings(
        scenario.sandbox.heartland_url,
        scenario.sandbox.yotpo_url,
        scenario.ledger,
        ops={"listen": "192.0.2.1:9310"},
    )
    runtime = OpsRuntime(settings, BackgroundScheduler(timezone="UTC"), clock=utc_now, environ={})
    with pytest.raises(FatalError, match="use an address of this machine"):
        runtime.install()
