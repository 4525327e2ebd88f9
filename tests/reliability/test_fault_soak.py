"""A seeded mix of every fault at once, on every endpoint, while the daemon's jobs run.

The transactions and delivery jobs run in-process, round after round as the daemon would.
Meanwhile both emulators fail at random with every fault kind: 429s with every style of
reset header, 5xx, slow and lost responses, resets, malformed and truncated JSON, empty
pages, tickets edited between pages, and commits whose timestamps lag. A round that fails
as a whole is retried by the next one, as the scheduler retries a failed job. With the
faults still on, Yotpo must end up with exactly what the store earns.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.reliability.support import FIGURES, Harness, Waits, assert_settled, harness
from yotposync.clients.http import DEFAULT_RETRY
from yotposync.errors import FatalError, RetriableError
from yotposync.sandbox import Store, generate_store
from yotposync.sandbox.faults import FaultKind, FaultPlan, FaultRule

ANCHOR = datetime(2026, 8, 5, 16, 0, tzinfo=UTC)
READ_TIMEOUT = 0.3
MAX_ROUNDS = 40


def mixed_faults(seed: int, rate: float) -> FaultPlan:
    """Every kind of fault on its endpoints; about `rate` of all requests get one.

    Each rule of a service gets an equal share of `rate`, so the chance that a request
    is hit does not grow with the number of rules.
    """
    shares = {"heartland": 13, "yotpo": 7}

    def rule(name: str, service: str, kind: FaultKind, path: str, **options: object) -> FaultRule:
        return FaultRule(
            name=name,
            service=service,
            kind=kind,
            path=path,
            probability=rate / shares[service],
            **options,  # type: ignore[arg-type]
        )

    listing = "/api/sales/tickets"
    rules = [
        rule("hl-429-seconds", "heartland", FaultKind.RATE_LIMIT, "/api/*", reset_seconds=2),
        rule("hl-429-date", "heartland", FaultKind.RATE_LIMIT, "/api/*", reset="http-date"),
        rule("hl-429-missing", "heartland", FaultKind.RATE_LIMIT, "/api/*", reset="missing"),
        rule("hl-429-huge", "heartland", FaultKind.RATE_LIMIT, "/api/*", reset="huge"),
        rule("hl-500", "heartland", FaultKind.SERVER_ERROR, "/api/*", status=500),
        rule("hl-502", "heartland", FaultKind.SERVER_ERROR, "/api/*", status=502),
        rule("hl-slow", "heartland", FaultKind.SLOW, "/api/*", delay_seconds=0.5),
        rule("hl-reset", "heartland", FaultKind.RESET, "/api/*"),
        rule("hl-malformed", "heartland", FaultKind.MALFORMED_JSON, "/api/*"),
        rule("hl-truncated", "heartland", FaultKind.TRUNCATED_JSON, "/api/*"),
        rule("hl-empty", "heartland", FaultKind.EMPTY_PAGE, listing, method="GET"),
        rule("hl-empty-customers", "heartland", FaultKind.EMPTY_PAGE, "/api/customers"),
        rule("hl-edit", "heartland", FaultKind.EDIT_BETWEEN_PAGES, listing, method="GET"),
        rule("yotpo-429", "yotpo", FaultKind.RATE_LIMIT, "/api/v2/*", reset_seconds=1),
        rule("yotpo-429-huge", "yotpo", FaultKind.RATE_LIMIT, "/api/v2/*", reset="huge"),
        rule("yotpo-503", "yotpo", FaultKind.SERVER_ERROR, "/api/v2/*", status=503),
        rule("yotpo-slow", "yotpo", FaultKind.SLOW, "/api/v2/*", delay_seconds=0.5),
        rule("yotpo-lost", "yotpo", FaultKind.LOST_RESPONSE, "/api/v2/*"),
        rule("yotpo-reset", "yotpo", FaultKind.RESET, "/api/v2/*"),
        rule("yotpo-malformed", "yotpo", FaultKind.MALFORMED_JSON, "/api/v2/*"),
    ]
    assert [r.service for r in rules].count("heartland") == shares["heartland"]
    return FaultPlan(seed=seed, heartland_clock_skew_seconds=3, rules=tuple(rules))


def pushes_waiting(h: Harness) -> int:
    rows = h.ledger_rows("SELECT count(*) FROM pushes WHERE state IN ('pending', 'sent', 'failed')")
    return int(rows[0][0])


def soak(tmp: Path, store: Store, seed: int, rate: float) -> None:
    expected = len(store.expected_effects(store.go_live, include_late=False))
    waits = Waits()
    plan = mixed_faults(seed, rate)
    with harness(tmp, store, faults=plan, delivery={"max_attempts": 1000}) as h:
        moment = datetime.now(UTC)
        since: datetime | None = store.anchor - timedelta(days=366)
        failed_rounds = 0
        for _ in range(MAX_ROUNDS):
            moment += timedelta(minutes=10)
            now = moment
            try:
                h.transactions(
                    since=since, clock=lambda now=now: now, waits=waits, read_timeout=READ_TIMEOUT
                )
                since = None
                h.delivery(clock=lambda now=now: now, waits=waits, read_timeout=READ_TIMEOUT)
            except (RetriableError, FatalError):
                # The scheduler logs a failed job and runs it again at the next interval.
                failed_rounds += 1
                continue
            confirmed = h.ledger_rows("SELECT count(*) FROM pushes WHERE state = 'confirmed'")
            if confirmed[0][0] == expected and pushes_waiting(h) == 0:
                break
        report = h.sandbox.faults.report()
        FIGURES["fault soak rounds failed and retried"] += failed_rounds

        # The faults hit about `rate` of the requests; a third of that rules out a quiet run.
        assert report["total_injected"] >= rate / 3 * sum(report["requests_seen"].values())
        assert len(report["injected_by_kind"]) >= 4
        assert waits.seconds == [] or max(waits.seconds) <= DEFAULT_RETRY.max_wait_seconds
        assert pushes_waiting(h) == 0
        assert_settled(h)


@pytest.fixture(scope="module")
def store() -> Store:
    return generate_store(seed=81, tickets=70, anchor=ANCHOR)


def test_fault_soak(tmp_path: Path, store: Store) -> None:
    soak(tmp_path, store, seed=1, rate=0.3)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(2, 22))
def test_fault_soak_campaign(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    store = generate_store(seed=seed, tickets=150, anchor=ANCHOR)
    soak(tmp_path, store, seed=seed, rate=rng.choice([0.2, 0.3, 0.4]))
