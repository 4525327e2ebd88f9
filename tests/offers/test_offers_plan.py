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
