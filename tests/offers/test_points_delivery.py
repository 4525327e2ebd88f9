"""Delivering points adjustments: 423 is retried, an unknown outcome is checked in history."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.offers.helpers import FIVE_OFF, TEN_PERCENT, LoyaltyStore
from yotposync.app import heartland_client, yotpo_client
from yotposync.clients.heartland_coupons import HeartlandCoupons
from yotposync.config import load_settings
from yotposync.ledger import Ledger, Push
from yotposync.ledger.offers import REDEEM_ROLE
from yotposync.sync.delivery import DeliveryJob
from yotposync.sync.offers_job import OffersJob
from yotposync.sync.points_push import send_points_adjustment
from yotposync.sync.transactions import TransactionsJob

EMAIL = "pat@example.com"


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def test_locked_customer_deduction_retried(store: LoyaltyStore) -> None:
    settings = load_settings(store.config)
    clock = Clock()
    store.set_options(FIVE_OFF)
    store.member(EMAIL, 1000)
    ledger = Ledger.open(store.ledger)
    yotpo = yotpo_client(settings)
    heartland = heartland_client(settings)
    try:
        OffersJob(
            ledger,
            yotpo,
            HeartlandCoupons(heartland),
            clock=clock,
            max_discount_cents=settings.offers.max_discount_cents,
        ).run()
        customer = store.customer(EMAIL)
        ticket = store.ticket(customer_id=customer, coupon_code="LOYALTY3101", items=[(1, 30.0)])
        store.admin("POST", "/locks", {"customer_email": EMAIL, "locked": True})
        clock.now = datetime.now(UTC) + timedelta(seconds=1)
        TransactionsJob(settings, ledger, heartland, clock=clock).run(
            since=clock.now - timedelta(days=1)
        )
        first = DeliveryJob(settings, ledger, yotpo, clock=clock).run()
        store.admin("POST", "/locks", {"customer_email": EMAIL, "locked": False})
        clock.now += timedelta(seconds=5)
        second = DeliveryJob(settings, ledger, yotpo, clock=clock).run()
    finally:
        ledger.close()
        yotpo.close()
        heartland.close()
    locked = [e for e in store.records()["redemptions"] if e.get("locked")]
    assert first.retrying == 1
    assert len(locked) == 1
    assert second.confirmed == 2
    assert len(store.adjustments(f"hl-redeem-{ticket}")) == 1


def _push(
    attempts: int, state: str, push_id: str = "hl-redeem-42", points: int = -500, ticket: int = 42
) -> Push:
    return Push(
        seq=1,
        push_id=push_id,
        kind="points_adjust",
        role=REDEEM_ROLE,
        ticket_id=ticket,
        email=EMAIL,
        target_order_id=None,
        amount_cents=0,
        body=json.dumps(
            {
                "customer_email": EMAIL,
                "point_adjustment_amount": points,
                "history_title": f"$5 Off at the store, ticket {ticket} [{push_id}]",
            }
        ),
        state=state,
        attempts=attempts,
    )


def test_applied_adjustment_not_sent_again(store: LoyaltyStore) -> None:
    settings = load_settings(store.config)
    store.member(EMAIL, 1000)
    ledger = Ledger.open(store.ledger)
    yotpo = yotpo_client(settings)
    try:
        send_points_adjustment(yotpo, ledger, _push(0, "pending"))
        send_points_adjustment(yotpo, ledger, _push(1, "sent"))
    finally:
        ledger.close()
        yotpo.close()
    assert len(store.adjustments("[hl-redeem-42]")) == 1
    assert store.balance(EMAIL) == 500


def test_unapplied_adjustment_sent_on_retry(store: LoyaltyStore) -> None:
    settings = load_settings(store.config)
    store.member(EMAIL, 1000)
    ledger = Ledger.open(store.ledger)
    yotpo = yotpo_client(settings)
    try:
        send_points_adjustment(yotpo, ledger, _push(1, "sent"))
    finally:
        ledger.close()
        yotpo.close()
    assert len(store.adjustments("[hl-redeem-42]")) == 1


@pytest.mark.parametrize(
    ("history", "ticket", "sent"),
    [
        # The customer paid for ticket 42 under the id of a later move: not charged again.
        ([("hl-redeem-42-2", -500)], 42, False),
        # Paid, then given back when the sale moved away: this deduction is owed.
        ([("hl-redeem-42-2", -500), ("hl-redeem-back-42-3", 500)], 42, True),
        # A deduction for ticket 42 does not settle one for ticket 4, whose id starts the same.
        ([("hl-redeem-42-2", -500)], 4, True),
    ],
    ids=["paid under a moved id", "paid and given back", "other ticket"],
)
def test_deduction_checks_history_of_its_sale(
    store: LoyaltyStore, history: list[tuple[str, int]], ticket: int, sent: bool
) -> None:
    store.member(EMAIL, 5000)
    _adjust_earlier(store, history)
    before = store.balance(EMAIL)
    # A rebuilt ledger plans the sale's first id, at the cost the offer has now.
    _send(store, _push(0, "pending", push_id=f"hl-redeem-{ticket}", points=-1200, ticket=ticket))
    assert store.balance(EMAIL) == (before - 1200 if sent else before)


def _adjust_earlier(store: LoyaltyStore, history: list[tuple[str, int]]) -> None:
    """Write adjustments to the customer's Yotpo history as an earlier ledger sent them."""
    for push_id, points in history:
        body = {
            "customer_email": EMAIL,
            "point_adjustment_amount": points,
            "history_title": f"earlier ledger [{push_id}]",
        }
        assert store.yotpo("POST", "/points/adjust", body).status_code == 200


def _send(store: LoyaltyStore, push: Push) -> None:
    ledger = Ledger.open(store.ledger)
    yotpo = yotpo_client(load_settings(store.config))
    try:
        send_points_adjustment(yotpo, ledger, push)
    finally:
        ledger.close()
        yotpo.close()


def test_later_deduction_checks_own_id(store: LoyaltyStore) -> None:
    store.member(EMAIL, 5000)
    # Pat paid 500, a return gave 250 back under its own id, and the sale then moved to Sam,
    # giving Pat the other 250 back. The sale has moved back to Pat, who owes 250 again.
    _adjust_earlier(store, [("hl-redeem-42", -500), ("hl-redeem-back-42-2", 250)])
    before = store.balance(EMAIL)
    _send(store, _push(0, "pending", "hl-redeem-42-4", points=-250))
    assert store.balance(EMAIL) == before - 250


def test_offers_run_stops_between_coupons(store: LoyaltyStore) -> None:
    # A stop request ends the run after the coupon under way. The next run writes the rest,
    # and no second coupon for an offer already written.
    settings = load_settings(store.config)
    store.set_options(FIVE_OFF, TEN_PERCENT)
    ledger = Ledger.open(store.ledger)
    yotpo = yotpo_client(settings)
    heartland = heartland_client(settings)
    try:
        job = OffersJob(
            ledger,
            yotpo,
            HeartlandCoupons(heartland),
            clock=Clock(),
            max_discount_cents=settings.offers.max_discount_cents,
        )
        first = job.run(should_stop=lambda: len(store.coupons()) >= 1)
        written_first = [coupon["code"] for coupon in store.coupons()]
        second = job.run()
    finally:
        ledger.close()
        yotpo.close()
        heartland.close()

    assert (first.created, first.stopped) == (1, True)
    assert len(written_first) == 1
    assert (second.created, second.unchanged, second.stopped) == (1, 1, False)
    codes = [coupon["code"] for coupon in store.coupons()]
    assert len(codes) == 2
    assert len(set(codes)) == 2
