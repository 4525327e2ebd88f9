"""The offer tables in a real ledger file: migration, and what a sale spent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from yotposync.ledger import Ledger
from yotposync.ledger.offers import REDEEM_ROLE, OfferLedger
from yotposync.ledger.schema import MIGRATIONS, schema_version
from yotposync.ledger.store import REJECTED
from yotposync.sync.offers import Offer
from yotposync.sync.redemptions import OFFER, DeductionDecision, DeductionState, LoyaltyCoupon

NOW = datetime(2026, 3, 1, tzinfo=UTC)
COUPON = LoyaltyCoupon(61, OFFER, "LOYALTY3101", "$5 Off", 3101, 500)


def test_migration_creates_offer_tables(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path / "ledger.sqlite3")
    try:
        tables = set(ledger.db.table_names())
        version = schema_version(ledger.db)
    finally:
        ledger.close()
    assert {"offer_coupons", "online_codes", "redemptions", "point_restores"} <= tables
    assert version == len(MIGRATIONS)


def _deduct(offers: OfferLedger) -> None:
    decision = DeductionDecision(DeductionState.DEDUCT, "deducts 500 points", 500)
    offers.add_points_push(
        push_id="hl-redeem-7",
        role=REDEEM_ROLE,
        ticket_id=7,
        customer_id=1,
        email="pat@example.com",
        points=-500,
        payload={},
        now=NOW,
    )
    offers.save_redemption(
        7,
        COUPON,
        decision,
        customer_id=1,
        email="pat@example.com",
        push_id="hl-redeem-7",
        now=NOW,
    )


def test_spent_points_of_queued_deduction(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path / "ledger.sqlite3")
    try:
        offers = OfferLedger(ledger)
        _deduct(offers)
        spent = offers.spent_points(7)
    finally:
        ledger.close()
    assert spent is not None
    assert spent.points == 500


def test_rejected_deduction_spent_nothing(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path / "ledger.sqlite3")
    try:
        offers = OfferLedger(ledger)
        _deduct(offers)
        ledger.db.execute("UPDATE pushes SET state = ? WHERE push_id = 'hl-redeem-7'", [REJECTED])
        spent = offers.spent_points(7)
    finally:
        ledger.close()
    assert spent is None


def test_online_code_recorded_once(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path / "ledger.sqlite3")
    try:
        offers = OfferLedger(ledger)
        fields = {
            "code": "SBX1",
            "redemption_id": "1",
            "option_id": 3101,
            "option_name": "$5 Off",
            "email": None,
            "points_cost": 500,
            "source": "webhook",
        }
        first = offers.record_online_code(now=NOW, **fields)  # type: ignore[arg-type]
        second = offers.record_online_code(now=NOW, **fields)  # type: ignore[arg-type]
    finally:
        ledger.close()
    assert first is True
    assert second is False


def test_points_cost_at_follows_the_cost_changes(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path / "ledger.sqlite3")
    try:
        offers = OfferLedger(ledger)
        assert offers.points_cost_at(3101, NOW) is None
        with ledger.transaction():
            offers.save_offer(Offer(3101, "$5 Off", 500, 500, None), 61, NOW)
            # Synced again unchanged: no new cost.
            offers.save_offer(Offer(3101, "$5 Off", 500, 500, None), 61, NOW + timedelta(days=1))
            offers.save_offer(Offer(3101, "$5 Off", 800, 500, None), 61, NOW + timedelta(days=2))
        rows = ledger.db.execute("SELECT count(*) FROM offer_costs").fetchone()[0]
        assert rows == 2
        # Before the first recorded cost, the first one: the earliest the ledger stores.
        assert offers.points_cost_at(3101, NOW - timedelta(days=1)) == 500
        assert offers.points_cost_at(3101, NOW + timedelta(days=1, hours=23)) == 500
        assert offers.points_cost_at(3101, NOW + timedelta(days=2)) == 800
        # A cost copied during the second a sale is stamped with applies to that sale.
        with ledger.transaction():
            offers.save_offer(
                Offer(3101, "$5 Off", 1200, 500, None),
                61,
                NOW + timedelta(days=3, milliseconds=557),
            )
        assert offers.points_cost_at(3101, NOW + timedelta(days=3)) == 1200
        assert offers.points_cost_at(3101, NOW + timedelta(days=3, seconds=-1)) == 800
        assert offers.points_cost_at(3102, NOW) is None
    finally:
        ledger.close()
