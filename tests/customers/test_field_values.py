"""Pure cashier field values: snapshot parsing, affordable offers, text, and what changed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from yotposync.sync.cashier_fields import (
    NEXT_TIER,
    OFFERS,
    POINTS,
    TIER,
    LoyaltySnapshot,
    Offer,
    affordable_offers,
    changed_values,
    field_values,
    format_offers,
    format_updated,
    parse_offer,
    parse_snapshot,
)

KEYS = {POINTS: "pts", TIER: "tier", NEXT_TIER: "next", OFFERS: "offers"}
OPTIONS: list[dict[str, Any]] = [
    {"id": 3102, "name": "$10 Off", "amount": 900, "discount_type": "fixed_amount"},
    {"id": 3101, "name": "$5 Off", "amount": "500", "discount_type": "fixed_amount"},
    {"id": 3103, "name": "15% Off", "amount": 1500, "discount_type": "percentage"},
    {"id": 3104, "name": "Points for cash", "amount": 1, "discount_type": "generic_variable",
     "discount_rate_cents": 1},
    {"id": 3105, "name": "Broken", "amount": "lots"},
]  # fmt: skip


def test_snapshot_reads_reference_fields() -> None:
    account = {
        "points_balance": 730,
        "vip_tier_name": "Gold",
        "vip_tier_upgrade_requirements": {"points_needed": 270, "amount_cents_needed": 0},
    }
    snapshot = parse_snapshot(account, OPTIONS)
    assert snapshot.balance == 730
    assert snapshot.tier == "Gold"
    assert snapshot.points_to_next_tier == 270


def test_snapshot_null_tier_fields() -> None:
    account = {
        "points_balance": 0,
        "vip_tier_name": None,
        "vip_tier_upgrade_requirements": {"points_needed": None},
    }
    snapshot = parse_snapshot(account, [])
    assert snapshot.tier is None
    assert snapshot.points_to_next_tier is None


def test_snapshot_missing_fields() -> None:
    snapshot = parse_snapshot({}, [])
    assert snapshot == LoyaltySnapshot(balance=0, tier=None, points_to_next_tier=None, offers=())


def test_snapshot_balance_as_text() -> None:
    assert parse_snapshot({"points_balance": "120"}, []).balance == 120


def test_affordable_offers_cheapest_first() -> None:
    offers = affordable_offers(OPTIONS, 1000)
    assert [offer.name for offer in offers] == ["Points for cash", "$5 Off", "$10 Off"]


@pytest.mark.parametrize("option_id", [3101, "3101", " 3101", 3101.0])
def test_offer_found_by_any_id(option_id: object) -> None:
    option = {"id": option_id, "name": "$5 Off", "amount": 500, "discount_type": "fixed_amount"}

    offers = affordable_offers([option], 600, {"3101": "$5 Off (500 points)"})

    assert [offer.label for offer in offers] == ["$5 Off (500 points)"]


def test_affordable_offers_none_for_zero() -> None:
    assert affordable_offers(OPTIONS, 0) == ()


def test_offer_without_cost_skipped() -> None:
    assert parse_offer({"name": "Broken", "amount": "lots"}) is None


def test_offer_variable() -> None:
    offer = parse_offer(OPTIONS[3])
    assert offer == Offer("3104", "Points for cash", 1, variable=True)


def test_format_offers_joined() -> None:
    offers = affordable_offers(OPTIONS, 1000)
    assert format_offers(offers, 255) == (
        "Points for cash (1 point each); $5 Off (500 points); $10 Off (900 points)"
    )


def test_format_offers_counts_what_does_not_fit() -> None:
    offers = affordable_offers(OPTIONS, 2000)
    text = format_offers(offers, 60)
    assert text == "Points for cash (1 point each); $5 Off (500 points); +2 more"
    assert len(text) <= 60


def test_format_offers_skips_one_too_long() -> None:
    offers = [Offer("1", "Spring " * 40, 10), Offer("2", "$5 Off", 500), Offer("3", "$10 Off", 900)]

    text = format_offers(offers, 60)

    assert text == "$5 Off (500 points); $10 Off (900 points); +1 more"


def test_format_offers_all_hidden() -> None:
    offers = (Offer("1", "A very long offer name indeed", 5),)
    assert format_offers(offers, 20) == "+1 more"


def test_field_values_text() -> None:
    snapshot = LoyaltySnapshot(400, "Bronze", 100, (Offer("1", "$5 Off", 300),))
    assert field_values(snapshot, KEYS, 255) == {
        "pts": "400",
        "tier": "Bronze",
        "next": "100",
        "offers": "$5 Off (300 points)",
    }


def test_field_values_top_tier() -> None:
    values = field_values(LoyaltySnapshot(2000, "Gold", None, ()), KEYS, 255)
    assert values["next"] == ""
    assert values["offers"] == ""


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        ({"pts": "400", "tier": "Bronze"}, {}),
        ({"pts": "300", "tier": "Bronze"}, {"pts": "400"}),
        ({"pts": None, "tier": None}, {"pts": "400", "tier": "Bronze"}),
        ({}, {"pts": "400", "tier": "Bronze"}),
    ],
)
def test_changed_values(current: dict[str, str | None], expected: dict[str, str]) -> None:
    assert changed_values(current, {"pts": "400", "tier": "Bronze"}) == expected


def test_changed_values_null_equals_empty() -> None:
    assert changed_values({"next": None}, {"next": ""}) == {}


def test_format_updated_in_zone() -> None:
    moment = datetime(2025, 1, 15, 18, 30, tzinfo=UTC)
    assert format_updated(moment, "America/New_York") == "2025-01-15 13:30 EST"


def test_format_updated_utc() -> None:
    moment = datetime(2025, 7, 1, 9, 5, tzinfo=UTC)
    assert format_updated(moment, "UTC") == "2025-07-01 09:05 UTC"
