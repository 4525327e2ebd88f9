"""DeliveryJob with a real ledger file and the real YotpoClient, Yotpo mocked at the transport.

`responses` serves the requests unless a test needs Yotpo's own state. Then the sandbox's
Yotpo emulator serves them over loopback. Time is a fake clock handed to the job, and
the client waits on a recorder, so no test sleeps.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from responses import matchers

from yotposync.clients.http import RetryPolicy
from yotposync.clients.yotpo import YotpoClient
from yotposync.config import Settings, sandbox_settings
from yotposync.errors import AuthError
from yotposync.ledger import Ledger
from yotposync.sandbox import ManualClock, Sandbox
from yotposync.scheduler import Daemon
from yotposync.status import collect_status, format_status
from yotposync.sync.delivery import DeliveryJob
from yotposync.sync.plan import PlannedPush

# `responses` intercepts requests to this address, so nothing leaves the process.
YOTPO_URL = "http://127.0.0.1:8799/api/v2"
HEARTLAND_URL = "http://127.0.0.1:8798/api"
START = datetime(2025, 5, 1, 15, 0, tzinfo=UTC)
PAT = "pat@example.com"
SAM = "sam@example.com"


class FakeClock:
    """The job's clock, which moves only when a test advances it."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    ledger = Ledger.open(tmp_path / "state" / "ledger.sqlite3")
    yield ledger
    ledger.close()


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def settings(tmp_path: Path, delivery: dict[str, int]) -> Settings:
    """Build sandbox settings with the given keys in the `[delivery]` section."""
    return sandbox_settings(
        HEARTLAND_URL, YOTPO_URL, tmp_path / "state" / "ledger.sqlite3", delivery=delivery
    )


def yotpo_client(base_url: str = YOTPO_URL) -> YotpoClient:
    """A client that makes one attempt per call and never really sleeps."""
    waits: list[float] = []
    return YotpoClient(
        base_url,
        "sandbox-guid",
        "sandbox-api-key",
        requests_per_second=0,
        retry=RetryPolicy(max_tries=1),
        sleep=waits.append,
    )


def make_job(
    tmp_path: Path,
    ledger: Ledger,
    clock: FakeClock,
    client: YotpoClient | None = None,
    **delivery: int,
) -> DeliveryJob:
    return DeliveryJob(settings(tmp_path, delivery), ledger, client or yotpo_client(), clock=clock)


def queue_order(ledger: Ledger, ticket_id: int, email: str, cents: int, customer_id: int) -> str:
    push_id = f"hl-{ticket_id}"
    push = PlannedPush(push_id, "order", ticket_id, email, customer_id, None, cents)
    payload = {"order_id": push_id, "customer_email": email, "total_amount_cents": cents}
    with ledger.transaction():
        ledger.add_push(push, payload, START)
    return push_id


def queue_refund(
    ledger: Ledger, ticket_id: int, order_id: str, email: str, cents: int, customer_id: int
) -> str:
    push_id = f"hl-ret-{ticket_id}"
    push = PlannedPush(push_id, "return", ticket_id, email, customer_id, order_id, cents)
    payload = {"id": push_id, "order_id": order_id, "total_amount_cents": cents}
    with ledger.transaction():
        ledger.add_push(push, payload, START)
    return push_id


def push_row(ledger: Ledger, push_id: str) -> dict[str, Any]:
    rows = list(
        ledger.db.query(
            "SELECT state, attempts, next_attempt_at, last_status, last_error FROM pushes "
            "WHERE push_id = ?",
            [push_id],
        )
    )
    assert rows, f"push {push_id} is not in the ledger"
    row: dict[str, Any] = rows[0]
    return row


def order_with_id(push_id: str) -> Any:
    return matchers.json_params_matcher({"order_id": push_id}, strict_match=False)


def sent_paths(mock: responses.RequestsMock) -> list[str]:
    return [call.request.path_url for call in mock.calls]


# Order of a customer's pushes


def test_refund_waits_for_order_confirmation(
    tmp_path: Path, ledger: Ledger, clock: FakeClock, mocked: responses.RequestsMock
) -> None:
    order = queue_order(ledger, 1, PAT, 6000, customer_id=7)
    refund = queue_refund(ledger, 2, order, PAT, 3000, customer_id=7)
    mocked.add(responses.POST, f"{YOTPO_URL}/orders", status=503)
    job = make_job(tmp_path, ledger, clock)

    job.run()

    assert sent_paths(mocked) == ["/api/v2/orders"]
    assert push_row(ledger, refund)["state"] == "pending"
    assert push_row(ledger, refund)["attempts"] == 0

    clock.advance(3600)
    mocked.add(responses.POST, f"{YOTPO_URL}/orders", json={})
    mocked.add(responses.POST, f"{YOTPO_URL}/refunds", json={})

    job.run()

    assert sent_paths(mocked) == ["/api/v2/orders", "/api/v2/orders", "/api/v2/refunds"]
    assert push_row(ledger, order)["state"] == "confirmed"
    assert push_row(ledger, refund)["state"] == "confirmed"


def test_retry_of_one_customer_spares_another(
    tmp_path: Path, ledger: Ledger, clock: FakeClock, mocked: responses.RequestsMock
) -> None:
    waiting = queue_order(ledger, 1, PAT, 6000, customer_id=7)
    other = queue_order(ledger, 2, SAM, 2500, customer_id=8)
    mocked.add(responses.POST, f"{YOTPO_URL}/orders", status=503, match=[order_with_id(waiting)])
    mocked.add(responses.POST, f"{YOTPO_URL}/orders", json={}, match=[order_with_id(other)])

    summary = make_job(tmp_path, ledger, clock).run()

    assert push_row(ledger, waiting)["state"] == "pending"
    assert push_row(ledger, other)["state"] == "confirmed"
    assert summary.confirmed == 1
    assert summary.retrying == 1


def test_held_back_backlog_spares_others(tmp_path: Path, ledger: Ledger, clock: FakeClock) -> None:
    stuck = queue_order(ledger, 1, PAT, 6000, customer_id=7)
    queue_refund(ledger, 2, stuck, PAT, 1000, customer_id=7)
    queue_refund(ledger, 3, stuck, PAT, 1000, customer_id=7)
    other = queue_order(ledger, 4, SAM, 2500, customer_id=8)
    job = make_job(tmp_path, ledger, clock, batch_size=2, max_attempts=1)

    # A mock of its own, so that the request never sent fails this test and not a teardown.
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mocked:
        mocked.add(responses.POST, f"{YOTPO_URL}/orders", status=503, match=[order_with_id(stuck)])
        mocked.add(responses.POST, f"{YOTPO_URL}/orders", json={}, match=[order_with_id(other)])

        job.run()
        # The stuck order has failed, and both refunds behind it wait for `retry-failed`.
        clock.advance(60)
        job.run()

        assert push_row(ledger, stuck)["state"] == "failed"
        assert push_row(ledger, other)["state"] == "confirmed"


# Retries and their limits


def test_429_retry_waits_for_reset(
    tmp_path: Path, ledger: Ledger, clock: FakeClock, mocked: responses.RequestsMock
) -> None:
    order = queue_order(ledger, 1, PAT, 6000, customer_id=7)
    mocked.add(
        responses.POST,
        f"{YOTPO_URL}/orders",
        status=429,
        headers={"ratelimit-remaining": "0", "ratelimit-reset": "120"},
        json={"error": "rate limit exceeded"},
    )
    job = make_job(tmp_path, ledger, clock, retry_base_seconds=1)

    job.run()

    row = push_row(ledger, order)
    assert row["state"] == "pending"
    assert row["last_status"] == 429
    assert datetime.fromisoformat(row["next_attempt_at"]) >= START + timedelta(seconds=120)

    clock.advance(119)
    job.run()

    assert len(mocked.calls) == 1

    clock.advance(1)
    mocked.add(responses.POST, f"{YOTPO_URL}/orders", json={})
    job.run()

    assert push_row(ledger, order)["state"] == "confirmed"


def test_4xx_rejects_push_without_retry(
    tmp_path: Path, ledger: Ledger, clock: FakeClock, mocked: responses.RequestsMock
) -> None:
    order = queue_order(ledger, 1, PAT, 6000, customer_id=7)
    mocked.add(
        responses.POST,
        f"{YOTPO_URL}/orders",
        status=422,
        json={"error": "total_amount_cents must be a non-negative integer"},
    )
    job = make_job(tmp_path, ledger, clock)

    summary = job.run()

    row = push_row(ledger, order)
    assert row["state"] == "rejected"
    assert row["last_status"] == 422
    assert "total_amount_cents" in row["last_error"]
    assert summary.rejected_ids == [order]

    clock.advance(86400)
    job.run()

    assert len(mocked.calls) == 1


def test_push_failed_after_max_attempts(
    tmp_path: Path, ledger: Ledger, clock: FakeClock, mocked: responses.RequestsMock
) -> None:
    order = queue_order(ledger, 1, PAT, 6000, customer_id=7)
    refund = queue_refund(ledger, 2, order, PAT, 3000, customer_id=7)
    mocked.add(responses.POST, f"{YOTPO_URL}/orders", status=500)
    job = make_job(tmp_path, ledger, clock, max_attempts=3, retry_ceiling_seconds=60)

    summaries = []
    for _ in range(3):
        summaries.append(job.run())
        clock.advance(3600)

    assert [s.failed for s in summaries] == [0, 0, 1]
    assert push_row(ledger, order)["state"] == "failed"
    assert push_row(ledger, order)["attempts"] == 3

    job.run()

    assert len(mocked.calls) == 3
    assert push_row(ledger, refund)["state"] == "pending"


@pytest.mark.parametrize(
    ("stored", "problem"),
    [
        (b"{}", "is bytes, not JSON text"),
        ('{"order_id": "hl-1", "customer_email"', "is not valid JSON"),
        ('["hl-1"]', "is a JSON array, not an object"),
        ("null", "is a JSON null, not an object"),
        ('{"order_id": "hl-9999"}', "has order_id 'hl-9999' where the ledger row has 'hl-1'"),
        (
            '{"order_id": "hl-1", "customer_email": "sam@example.com", "total_amount_cents": 6000}',
            "has customer_email 'sam@example.com' where the ledger row has 'pat@example.com'",
        ),
        (
            '{"order_id": "hl-1", "customer_email": "pat@example.com", "total_amount_cents": 600}',
            "has total_amount_cents 600 where the ledger row has 6000",
        ),
    ],
)
def test_damaged_payload_fails_without_sending(
    tmp_path: Path,
    ledger: Ledger,
    clock: FakeClock,
    mocked: responses.RequestsMock,
    stored: str | bytes,
    problem: str,
) -> None:
    order = queue_order(ledger, 1, PAT, 6000, customer_id=7)
    refund = queue_refund(ledger, 2, order, PAT, 3000, customer_id=7)
    other = queue_order(ledger, 3, SAM, 2500, customer_id=8)
    with ledger.transaction():
        ledger.db.execute("UPDATE pushes SET payload = ? WHERE push_id = ?", [stored, order])
    mocked.add(responses.POST, f"{YOTPO_URL}/orders", json={}, match=[order_with_id(other)])
    job = make_job(tmp_path, ledger, clock)

    summary = job.run()

    assert sent_paths(mocked) == ["/api/v2/orders"]
    assert push_row(ledger, other)["state"] == "confirmed"
    row = push_row(ledger, order)
    assert row["state"] == "failed"
    assert row["last_status"] is None
    assert f"push {order}: the payload stored in the ledger {problem}" in row["last_error"]
    assert push_row(ledger, refund)["state"] == "pending"
    assert summary.failed == 1
    assert summary.confirmed == 1


def test_refund_to_other_order_held(
    tmp_path: Path, ledger: Ledger, clock: FakeClock, mocked: responses.RequestsMock
) -> None:
    order = queue_order(ledger, 1, PAT, 6000, customer_id=7)
    refund = queue_refund(ledger, 2, order, PAT, 3000, customer_id=7)
    edited = '{"id": "hl-ret-2", "order_id": "hl-3", "total_amount_cents": 3000}'
    with ledger.transaction():
        ledger.db.execute("UPDATE pushes SET payload = ? WHERE push_id = ?", [edited, refund])
    mocked.add(responses.POST, f"{YOTPO_URL}/orders", json={})
    job = make_job(tmp_path, ledger, clock)

    job.run()

    assert sent_paths(mocked) == ["/api/v2/orders"]
    row = push_row(ledger, refund)
    assert row["state"] == "failed"
    assert "has order_id 'hl-3' where the ledger row has 'hl-1'" in row["last_error"]


def test_damaged_push_stays_failed(
    tmp_path: Path, ledger: Ledger, clock: FakeClock, mocked: responses.RequestsMock
) -> None:
    order = queue_order(ledger, 1, PAT, 6000, customer_id=7)
    refund = queue_refund(ledger, 2, order, PAT, 3000, customer_id=7)
    with ledger.transaction():
        ledger.db.execute("UPDATE pushes SET payload = 'oops' WHERE push_id = ?", [order])
    job = make_job(tmp_path, ledger, clock)
    job.run()
    clock.advance(86400)

    job.run()

    assert len(mocked.calls) == 0
    assert push_row(ledger, order)["state"] == "failed"
    assert push_row(ledger, refund)["state"] == "pending"


def test_auth_error_keeps_push_pending(
    tmp_path: Path, ledger: Ledger, clock: FakeClock, mocked: responses.RequestsMock
) -> None:
    first = queue_order(ledger, 1, PAT, 6000, customer_id=7)
    queue_order(ledger, 2, SAM, 2500, customer_id=8)
    mocked.add(responses.POST, f"{YOTPO_URL}/orders", status=401, json={"error": "bad key"})

    with pytest.raises(AuthError):
        make_job(tmp_path, ledger, clock).run()

    row = push_row(ledger, first)
    assert row["state"] == "pending"
    assert row["attempts"] == 0
    assert len(mocked.calls) == 1


# Pushes interrupted by a crash


def test_push_left_sent_is_sent_again(tmp_path: Path, ledger: Ledger, clock: FakeClock) -> None:
    order = queue_order(ledger, 1, PAT, 6000, customer_id=7)
    with Sandbox(store=None, clock=ManualClock(START), points_per_dollar=Decimal(1)) as sandbox:
        # The crashed run sent the order and died before it recorded Yotpo's response.
        with ledger.transaction():
            ledger.mark_sent(push_seq(ledger, order), START)
        yotpo = yotpo_client(sandbox.yotpo_url)
        yotpo.create_order(ledger.due_pushes(START, 10)[0].payload)

        summary = make_job(tmp_path, ledger, clock, yotpo).run()

        records = requests.get(
            f"{sandbox.yotpo_admin_url}/records",
            headers={"x-guid": "sandbox-guid", "x-api-key": "sandbox-api-key"},
            timeout=5,
        ).json()
        balances = sandbox.yotpo.balances()

    assert summary.confirmed == 1
    assert push_row(ledger, order)["state"] == "confirmed"
    assert push_row(ledger, order)["attempts"] == 2
    assert [entry["body"]["order_id"] for entry in records["orders"]] == [order, order]
    assert [entry["duplicate"] for entry in records["orders"]] == [False, True]
    assert balances == {PAT: 60}


def push_seq(ledger: Ledger, push_id: str) -> int:
    row = ledger.db.execute("SELECT seq FROM pushes WHERE push_id = ?", [push_id]).fetchone()
    return int(row[0])


def test_unreachable_yotpo_pauses_the_run(
    tmp_path: Path, ledger: Ledger, clock: FakeClock, mocked: responses.RequestsMock
) -> None:
    first = queue_order(ledger, 1, PAT, 6000, customer_id=7)
    second = queue_order(ledger, 2, SAM, 2000, customer_id=8)
    mocked.add(
        responses.POST, f"{YOTPO_URL}/orders", body=requests.ConnectionError("connection refused")
    )
    job = make_job(tmp_path, ledger, clock)

    summary = job.run()

    assert sent_paths(mocked) == ["/api/v2/orders"]
    assert summary.retrying == 1
    assert push_row(ledger, first)["state"] == "pending"
    assert push_row(ledger, second)["attempts"] == 0


# Time limit


class SteppingClock(FakeClock):
    """A job clock on which each reading comes a minute after the one before."""

    def __call__(self) -> datetime:
        self.advance(60)
        return self.now


def queue_guests(ledger: Ledger, count: int) -> list[str]:
    """Queue one order for each of `count` customers, so that no push waits for another."""
    return [
        queue_order(ledger, number, f"guest{number}@example.com", 1000, customer_id=number)
        for number in range(1, count + 1)
    ]


def test_time_limit_ends_run_after_batch(
    tmp_path: Path, ledger: Ledger, mocked: responses.RequestsMock
) -> None:
    pushes = queue_guests(ledger, 5)
    mocked.add(responses.POST, f"{YOTPO_URL}/orders", json={})
    job = make_job(tmp_path, ledger, SteppingClock(), batch_size=2)
    limit = timedelta(seconds=30)

    runs = [job.run(time_limit=limit) for _ in range(3)]

    assert [run.confirmed for run in runs] == [2, 2, 1]
    assert [run.waiting for run in runs] == [3, 1, 0]
    assert [run.time_limit_reached for run in runs] == [True, True, False]
    assert runs[0].as_dict()["time_limit_reached"] is True
    assert len(mocked.calls) == 5
    assert [push_row(ledger, push)["state"] for push in pushes] == ["confirmed"] * 5


def test_run_without_limit_sends_all(
    tmp_path: Path, ledger: Ledger, mocked: responses.RequestsMock
) -> None:
    queue_guests(ledger, 5)
    mocked.add(responses.POST, f"{YOTPO_URL}/orders", json={})
    job = make_job(tmp_path, ledger, SteppingClock(), batch_size=2)

    summary = job.run()

    assert summary.confirmed == 5
    assert summary.waiting == 0
    assert summary.time_limit_reached is False


def test_daemon_delivery_stops_at_limit(
    tmp_path: Path, ledger: Ledger, mocked: responses.RequestsMock
) -> None:
    queue_guests(ledger, 5)
    mocked.add(responses.POST, f"{YOTPO_URL}/orders", json={})
    daemon_settings = sandbox_settings(
        HEARTLAND_URL,
        YOTPO_URL,
        tmp_path / "state" / "ledger.sqlite3",
        delivery={"batch_size": 2},
        yotpo={"requests_per_second": 1000},
        ops={"job_timeout_seconds": 60},
    )

    Daemon(daemon_settings, clock=SteppingClock()).run_delivery()

    run = {row["job"]: row for row in ledger.last_runs()}["delivery"]
    summary = json.loads(run["summary"])
    status = format_status(collect_status(ledger, START))
    assert run["outcome"] == "ok"
    assert summary["time_limit_reached"] is True
    assert summary["confirmed"] == 2
    assert summary["waiting"] == 3
    assert (
        "Last delivery run: ok (stopped at its time limit; the next run goes on from there)"
        in status
    )
