"""Points adjustments whose answer was lost: sent once, never twice, checked in the history.

Yotpo cannot recognise a repeated `POST /points/adjust`, so a client that simply retries a
lost answer doubles the adjustment. The sandbox loses answers on purpose here, after
applying the request or before, and the checks read what Yotpo applied.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.support import API_KEY, FIGURES, GUID, Waits
from yotposync.clients.http import RetryPolicy
from yotposync.clients.yotpo import AdjustOutcome, YotpoClient
from yotposync.config import sandbox_settings
from yotposync.errors import RejectedError, RetriableError
from yotposync.ledger import Ledger
from yotposync.ledger.offers import REDEEM_ROLE, OfferLedger
from yotposync.sandbox import Sandbox
from yotposync.sandbox.faults import FaultPlan, FaultRule
from yotposync.sync.delivery import DeliveryJob

EMAIL = "pat@example.com"
ADJUST = "/api/v2/points/adjust"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def payload(marker: str = "[hl-red-5012]", points: int = -20) -> dict[str, Any]:
    return {
        "customer_email": EMAIL,
        "point_adjustment_amount": points,
        "apply_adjustment_to_points_earned": False,
        "history_title": f"Redeemed at the register {marker}",
    }


def fault(kind: str, **options: Any) -> FaultPlan:
    rule = FaultRule(name="adjust", service="yotpo", kind=kind, path=ADJUST, **options)  # type: ignore[arg-type]
    return FaultPlan(rules=(rule,))


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(store=None, points_per_dollar=Decimal(1)) as running:
        running.yotpo.create_order(
            {"customer_email": EMAIL, "order_id": "hl-1", "total_amount_cents": 5000}
        )
        yield running
        FIGURES["faults injected"] += running.faults.report()["total_injected"]


@pytest.fixture
def waits() -> Waits:
    return Waits()


@pytest.fixture
def yotpo(sandbox: Sandbox, waits: Waits) -> YotpoClient:
    return YotpoClient(
        sandbox.yotpo_url,
        GUID,
        API_KEY,
        read_timeout=0.5,
        requests_per_second=0,
        retry=RetryPolicy(max_tries=3, jitter=lambda wait: wait),
        sleep=waits,
    )


def applied(sandbox: Sandbox) -> list[dict[str, Any]]:
    return [e for e in sandbox.yotpo.records()["adjustments"] if e["status"] == 200]


def balance(sandbox: Sandbox) -> int:
    return sandbox.yotpo.balances()[EMAIL]


def test_lost_answer_confirmed_by_history(sandbox: Sandbox, yotpo: YotpoClient) -> None:
    sandbox.faults.set_plan(fault("lost_response", times=1))

    outcome = yotpo.adjust_points_once(payload(), marker="[hl-red-5012]")

    assert outcome is AdjustOutcome.CONFIRMED_BY_HISTORY
    assert len(applied(sandbox)) == 1
    assert balance(sandbox) == 30


def test_answer_past_timeout_confirmed_by_history(sandbox: Sandbox, yotpo: YotpoClient) -> None:
    sandbox.faults.set_plan(fault("lost_response", times=1, delay_seconds=1.5))

    outcome = yotpo.adjust_points_once(payload(), marker="[hl-red-5012]")

    assert outcome is AdjustOutcome.CONFIRMED_BY_HISTORY
    assert len(applied(sandbox)) == 1
    assert balance(sandbox) == 30


@pytest.mark.parametrize("kind", ["reset", "server_error"])
def test_unapplied_send_goes_again_once(sandbox: Sandbox, yotpo: YotpoClient, kind: str) -> None:
    sandbox.faults.set_plan(fault(kind, times=1, status=502))

    outcome = yotpo.adjust_points_once(payload(), marker="[hl-red-5012]")

    assert outcome is AdjustOutcome.SENT
    assert len(applied(sandbox)) == 1
    assert balance(sandbox) == 30


def test_repeat_call_sends_nothing(sandbox: Sandbox, yotpo: YotpoClient) -> None:
    first = yotpo.adjust_points_once(payload(), marker="[hl-red-5012]")
    second = yotpo.adjust_points_once(payload(), marker="[hl-red-5012]")

    assert first is AdjustOutcome.SENT
    assert second is AdjustOutcome.ALREADY_APPLIED
    assert len(sandbox.yotpo.records()["adjustments"]) == 1


def test_similar_marker_does_not_match(sandbox: Sandbox, yotpo: YotpoClient) -> None:
    yotpo.adjust_points_once(payload("[hl-red-50120]"), marker="[hl-red-50120]")

    outcome = yotpo.adjust_points_once(payload("[hl-red-5012]"), marker="[hl-red-5012]")

    assert outcome is AdjustOutcome.SENT
    assert balance(sandbox) == 10


def test_outage_raises_without_applying(sandbox: Sandbox, yotpo: YotpoClient) -> None:
    sandbox.faults.set_plan(fault("reset"))

    with pytest.raises(RetriableError) as caught:
        yotpo.adjust_points_once(payload(), marker="[hl-red-5012]", max_sends=3)

    assert caught.value.maybe_applied is True
    assert applied(sandbox) == []
    assert sandbox.faults.report()["injected"] == {"adjust": 3}


def test_overdraw_rejected_once(sandbox: Sandbox, yotpo: YotpoClient) -> None:
    with pytest.raises(RejectedError) as caught:
        yotpo.adjust_points_once(payload(points=-500), marker="[hl-red-5012]")

    assert caught.value.status == 422
    assert len(sandbox.yotpo.records()["adjustments"]) == 1


def test_marker_must_be_in_title(yotpo: YotpoClient) -> None:
    with pytest.raises(ValueError, match="must contain the marker"):
        yotpo.adjust_points_once(payload("[hl-red-1]"), marker="[hl-red-2]")


def test_blind_retry_doubles_adjustment(sandbox: Sandbox, yotpo: YotpoClient) -> None:
    # What the history check prevents: sending again after a lost answer applies twice.
    sandbox.faults.set_plan(fault("lost_response", times=1))

    try:
        yotpo.adjust_points(payload())
    except RetriableError:
        yotpo.adjust_points(payload())

    assert len(applied(sandbox)) == 2
    assert balance(sandbox) == 10


# The daemon's delivery of a queued register deduction.


def queue_deduction(ledger_path: Path, sandbox: Sandbox) -> None:
    ledger = Ledger.open(ledger_path)
    try:
        with ledger.transaction():
            OfferLedger(ledger).add_points_push(
                push_id="hl-red-5012",
                role=REDEEM_ROLE,
                ticket_id=5012,
                customer_id=9001,
                email=EMAIL,
                points=-20,
                payload={
                    "customer_email": EMAIL,
                    "apply_adjustment_to_points_earned": False,
                    "history_title": "Redeemed at the register [hl-red-5012]",
                },
                now=NOW,
            )
    finally:
        ledger.close()


def test_delivery_settles_lost_deduction_once(
    tmp_path: Path, sandbox: Sandbox, yotpo: YotpoClient
) -> None:
    path = tmp_path / "state" / "ledger.sqlite3"
    settings = sandbox_settings(
        sandbox.heartland_url, sandbox.yotpo_url, path, delivery={"retry_base_seconds": 1}
    )
    queue_deduction(path, sandbox)
    sandbox.faults.set_plan(fault("lost_response", times=1))

    ledger = Ledger.open(path)
    try:
        first = DeliveryJob(settings, ledger, yotpo, clock=lambda: NOW).run()
        later = NOW + timedelta(minutes=5)
        second = DeliveryJob(settings, ledger, yotpo, clock=lambda: later).run()
        state = ledger.db.execute("SELECT state FROM pushes WHERE push_id = 'hl-red-5012'")
        final = state.fetchone()[0]
    finally:
        ledger.close()

    assert first.retrying == 1
    assert second.confirmed == 1
    assert final == "confirmed"
    assert len(sandbox.yotpo.records()["adjustments"]) == 1
    assert balance(sandbox) == 30
