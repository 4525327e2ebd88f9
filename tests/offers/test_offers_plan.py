"""Redemption options to coupons: which options become coupons, and what a rerun changes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.offers.helpers import FIVE_OFF, POINTS_FOR_CASH, TEN_PERCENT
from yotposync.sync.offers import (
    Offer,
    OfferMapping,
    SkippedOption,
    plan_offers,
    read_option,
    read_options,
)


def test_read_fixed_amount_offer() -> None:
    assert read_option(FIVE_OFF) == Offer(3101, "$5 Off", 500, 500, None)


def test_read_percentage_with_string_cost() -> None:
    assert read_option(TEN_PERCENT) == Offer(3103, "10% Off", 800, None, Decimal(10))


def test_variable_offer_skipped_with_reason() -> None:
    result = read_option(POINTS_FOR_CASH)
    assert isinstance(result, SkippedOption)
    assert "variable-points" in result.reason


@pytest.mark.parametrize(
    ("change", "reason_part"),
    [
        ({"discount_type": "custom", "discount_amount_cents": 0}, "discount_type 'custom'"),
        ({"discount_type": "free_shipping"}, "discount_type 'free_shipping'"),
        ({"discount_amount_cents": 0}, "invalid discount_amount_cents"),
        ({"amount": "lots"}, "invalid points cost"),
        ({"amount": 0}, "invalid points cost"),
        ({"name": "  "}, "no name"),
    ],
)
def test_unusable_options_skipped(change: dict[str, Any], reason_part: str) -> None:
    result = read_option({**FIVE_OFF, **change})
    assert isinstance(result, SkippedOption)
    assert reason_part in result.reason


def test_percentage_above_hundred_skipped() -> None:
    result = read_option({**TEN_PERCENT, "discount_percentage": 150})
    assert isinstance(result, SkippedOption)


def test_coupon_spec_shows_name_and_cost() -> None:
    spec = Offer(3101, "$5 Off", 500, 500, None).coupon_spec()
    assert spec.code == "LOYALTY3101"
    assert spec.name == "$5 Off (500 points)"
    assert spec.single_use is False


Discount = tuple[int | None, Decimal | None]


@pytest.mark.parametrize(
    ("name", "matching", "other", "built"),
    [
        ("$5 Off", (500, None), (600, None), "Loyalty: 6.00 off, 500 points"),
        ("$5.00 off your order", (500, None), (None, Decimal(5)), "Loyalty: 5% off, 500 points"),
        ("$7.50 Off", (750, None), (700, None), "Loyalty: 7.00 off, 500 points"),
        # "1,000" is one figure, not 1 followed by 000.
        ("$1,000 Off", (100000, None), (100, None), "Loyalty: 1.00 off, 500 points"),
        ("10% Off", (None, Decimal(10)), (1000, None), "Loyalty: 10.00 off, 500 points"),
        (
            "12.5 percent off",
            (None, Decimal("12.5")),
            (None, Decimal(12)),
            "Loyalty: 12% off, 500 points",
        ),
    ],
)
def test_coupon_name_kept_while_matching(
    name: str, matching: Discount, other: Discount, built: str
) -> None:
    kept = Offer(1, name, 500, *matching).coupon_spec().name
    changed = Offer(1, name, 500, *other).coupon_spec().name
    assert kept == f"{name} (500 points)"
    assert changed == built


def test_name_with_its_cost_not_repeated() -> None:
    # The points figure is not read as an amount, and the cost is not added twice.
    assert Offer(1, "500 points for $5", 500, 500, None).coupon_spec().name == "500 points for $5"
    assert Offer(1, "$5 Off (500 pts)", 500, 500, None).coupon_spec().name == "$5 Off (500 pts)"


def test_name_with_old_cost_rebuilt() -> None:
    offer = Offer(1, "$5 Off (400 points)", 500, 500, None)
    assert offer.coupon_spec().name == "Loyalty: 5.00 off, 500 points"


@pytest.mark.parametrize(
    ("offer", "expected"),
    [
        # The type changed from a fixed amount to a percentage, the name stayed.
        (Offer(1, "$5 Off", 500, None, Decimal(50)), "Loyalty: 50% off, 500 points"),
        (Offer(1, "$5 Off", 500, 600, None), "Loyalty: 6.00 off, 500 points"),
        (Offer(1, "$50 Off", 500, 500, None), "Loyalty: 5.00 off, 500 points"),
        (Offer(1, "10% Off", 800, 1000, None), "Loyalty: 10.00 off, 800 points"),
        (Offer(1, "10% Off", 800, None, Decimal(15)), "Loyalty: 15% off, 800 points"),
        (Offer(1, "Save 5 points", 500, 500, None), "Loyalty: 5.00 off, 500 points"),
        (Offer(1, "Birthday reward", 500, None, Decimal(10)), "Loyalty: 10% off, 500 points"),
        # Another figure in the name is not the discount.
        (Offer(1, "2-for-1: $10 Off", 150, 100, None), "Loyalty: 1.00 off, 150 points"),
        (Offer(1, "2-for-1: $10 Off", 150, 1000, None), "Loyalty: 10.00 off, 150 points"),
        (Offer(1, "15% off over $50", 800, None, Decimal(15)), "Loyalty: 15% off, 800 points"),
        # A name that states the discount is put on one line.
        (Offer(1, "Staff\nPick  $3", 300, 300, None), "Staff Pick $3 (300 points)"),
    ],
)
def test_coupon_name_built_from_discount(offer: Offer, expected: str) -> None:
    assert offer.coupon_spec().name == expected


def test_percent_described_without_exponent() -> None:
    result = read_option(TEN_PERCENT)
    assert isinstance(result, Offer)
    assert result.describe() == "10% off for 800 points"


def test_plan_type_change_renames_coupon() -> None:
    old = read_option(FIVE_OFF)
    new = read_option({**FIVE_OFF, "discount_type": "percentage", "discount_percentage": 50})
    assert isinstance(old, Offer)
    assert isinstance(new, Offer)
    plan = plan_offers([new], [_mapping(old, 61)])
    assert plan.update == [(new, 61)]
    assert new.coupon_spec().name == "Loyalty: 50% off, 500 points"


def _mapping(offer: Offer, coupon_id: int, state: str = "active") -> OfferMapping:
    return OfferMapping(offer.option_id, coupon_id, offer.coupon_spec().as_json(), state)


def test_plan_new_offer_creates() -> None:
    offer = Offer(1, "A", 100, 500, None)
    plan = plan_offers([offer], [])
    assert plan.create == [offer]


def test_plan_unchanged_offer_writes_nothing() -> None:
    offer = Offer(1, "A", 100, 500, None)
    plan = plan_offers([offer], [_mapping(offer, 61)])
    assert (plan.create, plan.update, plan.deactivate) == ([], [], [])


def test_plan_changed_offer_updates() -> None:
    old = Offer(1, "A", 100, 500, None)
    new = Offer(1, "A", 150, 500, None)
    plan = plan_offers([new], [_mapping(old, 61)])
    assert plan.update == [(new, 61)]


def test_plan_inactive_offer_reactivates() -> None:
    offer = Offer(1, "A", 100, 500, None)
    plan = plan_offers([offer], [_mapping(offer, 61, "inactive")])
    assert plan.update == [(offer, 61)]


def test_plan_removed_offer_deactivates() -> None:
    offer = Offer(1, "A", 100, 500, None)
    mapping = _mapping(offer, 61)
    plan = plan_offers([], [mapping])
    assert plan.deactivate == [mapping]


def test_plan_inactive_removed_offer_stays() -> None:
    offer = Offer(1, "A", 100, 500, None)
    plan = plan_offers([], [_mapping(offer, 61, "inactive")])
    assert plan.deactivate == []


# --- the ceiling on fixed amounts --------------------------------------------------------


def test_amount_above_ceiling_skipped() -> None:
    result = read_option({**FIVE_OFF, "discount_amount_cents": 50001}, max_discount_cents=50000)
    assert isinstance(result, SkippedOption)
    assert result.option_id == 3101
    assert "discount_amount_cents 50001 (500.01 off)" in result.reason
    assert "offers.max_discount_cents 50000 (500.00)" in result.reason


def test_amount_at_ceiling_read() -> None:
    result = read_option({**FIVE_OFF, "discount_amount_cents": 50000}, max_discount_cents=50000)
    assert result == Offer(3101, "$5 Off", 500, 50000, None)


def test_huge_amount_skipped_by_read_options() -> None:
    huge = {**FIVE_OFF, "discount_amount_cents": 10000000000000}
    offers, skipped = read_options([huge, TEN_PERCENT], max_discount_cents=50000)
    assert [offer.option_id for offer in offers] == [3103]
    assert [option.option_id for option in skipped] == [3101]
    assert "offers.max_discount_cents" in skipped[0].reason


def test_ceiling_leaves_percentages_alone() -> None:
    full = {**TEN_PERCENT, "discount_percentage": 100}
    offers, skipped = read_options([full], max_discount_cents=1)
    assert [offer.percent for offer in offers] == [Decimal(100)]
    assert skipped == []
