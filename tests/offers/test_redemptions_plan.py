"""Deductions at the register and restores on returns, decided over plain data."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from yotposync.sync.model import CouponReference, Customer, Ticket
from yotposync.sync.redemptions import (
    OFFER,
    ONLINE_CODE,
    DeductionState,
    LoyaltyCoupon,
    RestorePolicy,
    SpentPoints,
    decide_deduction,
    restore_points,
)

NOW = datetime(2026, 3, 1, 15, tzinfo=UTC)
SALE = Ticket(
    id=5001,
    public_id="5001",
    type="Ticket",
    status="complete",
    completed=True,
    voided=False,
    customer_id=9100,
    station_id=301,
    location_id=201,
    sales_rep="Sam",
    parent_id=None,
    total_cents=3500,
    subtotal_cents=3500,
    tax_cents=0,
    balance_cents=0,
    completed_at=NOW,
    updated_at=NOW,
    local_completed_date="2026-03-01",
    coupon=CouponReference(coupon_id=61),
)
PAT = Customer(
    id=9100, public_id="C-9100", email="pat@example.com", first_name="Pat", last_name="Lee"
)
OFFER_COUPON = LoyaltyCoupon(61, OFFER, "LOYALTY3101", "$5 Off", 3101, 500)
CODE_COUPON = LoyaltyCoupon(62, ONLINE_CODE, "SBXABC123", "$5 Off", 3101, 500)


def _decide(
    ticket: Ticket = SALE, customer: Customer | None = PAT, coupon: LoyaltyCoupon = OFFER_COUPON
) -> DeductionState:
    return decide_deduction(ticket, customer, coupon, go_live=None).state


def test_paid_sale_deducts_offer_cost() -> None:
    decision = decide_deduction(SALE, PAT, OFFER_COUPON, None)
    assert decision.state is DeductionState.DEDUCT
    assert decision.points == 500


@pytest.mark.parametrize(
    ("change", "state"),
    [
        ({"completed": False, "status": "incomplete"}, DeductionState.WAITING),
        ({"completed": False, "status": "parked"}, DeductionState.WAITING),
        ({"balance_cents": 1200}, DeductionState.WAITING),
        ({"voided": True}, DeductionState.VOIDED),
        ({"customer_id": None}, DeductionState.NO_CUSTOMER),
    ],
)
def test_unfinished_tickets_deduct_nothing(
    change: dict[str, object], state: DeductionState
) -> None:
    ticket = dataclasses.replace(SALE, **change)  # type: ignore[arg-type]
    customer = None if change.get("customer_id", 1) is None else PAT
    assert _decide(ticket, customer) is state


def test_change_due_still_deducts() -> None:
    # Heartland shows a negative balance while change is due to the customer.
    assert _decide(dataclasses.replace(SALE, balance_cents=-150)) is DeductionState.DEDUCT


def test_completed_by_status_only_deducts() -> None:
    # decide() earns on such a ticket, so its loyalty discount must be paid for too.
    assert _decide(dataclasses.replace(SALE, completed=False)) is DeductionState.DEDUCT


def test_voided_by_status_only_deducts_nothing() -> None:
    ticket = dataclasses.replace(SALE, completed=False, status="voided")
    assert _decide(ticket) is DeductionState.VOIDED


def test_missing_email_recorded() -> None:
    assert _decide(customer=dataclasses.replace(PAT, email=None)) is DeductionState.NO_EMAIL


def test_before_go_live_deducts_nothing() -> None:
    decision = decide_deduction(SALE, PAT, OFFER_COUPON, datetime(2026, 4, 1, tzinfo=UTC))
    assert decision.state is DeductionState.BEFORE_GO_LIVE


def test_online_code_is_not_deducted_again() -> None:
    assert _decide(coupon=CODE_COUPON) is DeductionState.CODE_USED


def test_online_code_used_elsewhere_rejected() -> None:
    used = dataclasses.replace(CODE_COUPON, used_by_ticket_id=4999)
    assert _decide(coupon=used) is DeductionState.CODE_ALREADY_USED


def _spent(returned: int, restored: int = 0) -> SpentPoints:
    return SpentPoints(5001, 500, 4000, returned, restored)


@pytest.mark.parametrize(
    ("policy", "returned", "restored", "expected"),
    [
        (RestorePolicy.PROPORTIONAL, 2000, 0, 250),
        (RestorePolicy.PROPORTIONAL, 1000, 0, 125),
        (RestorePolicy.PROPORTIONAL, 3000, 125, 250),
        (RestorePolicy.PROPORTIONAL, 4000, 250, 250),
        (RestorePolicy.PROPORTIONAL, 9000, 500, 0),
        (RestorePolicy.PROPORTIONAL, 0, 0, 0),
        (RestorePolicy.FULL, 2000, 0, 0),
        (RestorePolicy.FULL, 4000, 0, 500),
        (RestorePolicy.NEVER, 4000, 0, 0),
        # A return voided or made smaller: what the others no longer justify comes back.
        (RestorePolicy.PROPORTIONAL, 1000, 250, -125),
        (RestorePolicy.PROPORTIONAL, 0, 500, -500),
        (RestorePolicy.FULL, 2000, 500, -500),
        # Every item still returned by the others: nothing changes.
        (RestorePolicy.PROPORTIONAL, 4000, 500, 0),
    ],
)
def test_restore_by_policy(
    policy: RestorePolicy, returned: int, restored: int, expected: int
) -> None:
    assert restore_points(_spent(returned, restored), policy, sale_voided=False) == expected


def test_proportional_rounds_down() -> None:
    spent = SpentPoints(5001, 333, 1000, 500, 0)
    assert restore_points(spent, RestorePolicy.PROPORTIONAL, sale_voided=False) == 166


def test_voided_sale_restores_rest() -> None:
    assert restore_points(_spent(0, 125), RestorePolicy.NEVER, sale_voided=True) == 375


@pytest.mark.parametrize(
    ("returned", "restored", "untaken", "expected"),
    [
        # Given 500, take-back of 500 rejected: every item returned again gives nothing.
        (4000, 0, 500, 0),
        # Half returned again: the customer already has more than that.
        (2000, 0, 500, 0),
        # Given 250 and a take-back of 250 rejected, then everything returned: 250 more.
        (4000, 0, 250, 250),
        # A take-back that is due is queued whatever was rejected before.
        (0, 250, 250, -250),
    ],
)
def test_restore_counts_rejected_take_backs(
    returned: int, restored: int, untaken: int, expected: int
) -> None:
    spent = SpentPoints(5001, 500, 4000, returned, restored, untaken_points=untaken)
    assert restore_points(spent, RestorePolicy.PROPORTIONAL, sale_voided=False) == expected
