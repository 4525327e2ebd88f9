"""VIP tiers of the Yotpo emulator: thresholds, placement, and the customer's tier fields.

Tier objects use the snake_case names of Swell's tier webhooks (`id`, `name`, `rank`,
`points_earned`, `amount_spent_cents`, `purchases_made`, `points_multiplier`). A customer
is in the highest-ranked tier whose every threshold (lifetime points earned, amount spent,
purchases made) they meet; a threshold of 0 is no requirement. The choices are documented in
`policies`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Tiers a generated sandbox starts with. Multipliers are 1 because the emulator does not
# apply them (see `policies`).
STANDARD_VIP_TIERS: list[dict[str, Any]] = [
    {
        "id": 1,
        "name": "Bronze",
        "description": "Every member",
        "rank": 1,
        "points_earned": 0,
        "amount_spent_cents": 0,
        "purchases_made": 0,
        "points_multiplier": 1,
    },
    {
        "id": 2,
        "name": "Silver",
        "description": "500 points earned",
        "rank": 2,
        "points_earned": 500,
        "amount_spent_cents": 0,
        "purchases_made": 0,
        "points_multiplier": 1,
    },
    {
        "id": 3,
        "name": "Gold",
        "description": "1500 points earned",
        "rank": 3,
        "points_earned": 1500,
        "amount_spent_cents": 0,
        "purchases_made": 0,
        "points_multiplier": 1,
    },
]

# Redemption options a generated sandbox starts with; `amount` is the cost in points.
STANDARD_REDEMPTION_OPTIONS: list[dict[str, Any]] = [
    {
        "id": 3101,
        "name": "$5 Off",
        "type": "Coupon",
        "description": "Get $5 off for 500 points",
        "cost_text": "500 Points",
        "amount": 500,
        "discount_type": "fixed_amount",
        "discount_amount_cents": 500,
        "discount_percentage": None,
        "discount_rate_cents": None,
        "applies_to_product_type": "ALL",
        "duration": "single_use",
    },
    {
        "id": 3102,
        "name": "$10 Off",
        "type": "Coupon",
        "description": "Get $10 off for 900 points",
        "cost_text": "900 Points",
        "amount": 900,
        "discount_type": "fixed_amount",
        "discount_amount_cents": 1000,
        "discount_percentage": None,
        "discount_rate_cents": None,
        "applies_to_product_type": "ALL",
        "duration": "single_use",
    },
    {
        "id": 3103,
        "name": "15% Off",
        "type": "Coupon",
        "description": "Get 15% off for 1500 points",
        "cost_text": "1500 Points",
        "amount": 1500,
        "discount_type": "percentage",
        "discount_amount_cents": 0,
        "discount_percentage": 15,
        "discount_rate_cents": None,
        "applies_to_product_type": "ALL",
        "duration": "single_use",
    },
]

_THRESHOLDS = ("points_earned", "amount_spent_cents", "purchases_made")
_NEEDED = {
    "points_earned": "points_needed",
    "amount_spent_cents": "amount_cents_needed",
    "purchases_made": "purchases_needed",
}


@dataclass(frozen=True)
class TierTotals:
    """A customer's totals that tier thresholds are compared with."""

    points_earned: int
    amount_spent_cents: int
    purchases_made: int

    def value(self, threshold: str) -> int:
        number: int = getattr(self, threshold)
        return number


def _threshold(tier: Mapping[str, Any], name: str) -> int:
    value = tier.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _rank(tier: Mapping[str, Any]) -> int:
    return _threshold(tier, "rank")


class TierProgram:
    """The account's tiers, ordered by rank."""

    def __init__(self, tiers: Sequence[Mapping[str, Any]]) -> None:
        self._tiers = sorted((copy.deepcopy(dict(tier)) for tier in tiers), key=_rank)

    def tier_for(self, totals: TierTotals) -> dict[str, Any] | None:
        """Return the highest tier whose thresholds the totals meet, or None."""
        reached = None
        for tier in self._tiers:
            if all(totals.value(name) >= _threshold(tier, name) for name in _THRESHOLDS):
                reached = tier
        return reached

    def next_tier(self, totals: TierTotals) -> dict[str, Any] | None:
        current = self.tier_for(totals)
        current_rank = _rank(current) if current is not None else None
        for tier in self._tiers:
            if current_rank is None or _rank(tier) > current_rank:
                return tier
        return None

    def upgrade_requirements(self, totals: TierTotals) -> dict[str, int | None]:
        """Return what is still needed for the next tier; all null at the top or without tiers."""
        upcoming = self.next_tier(totals)
        if upcoming is None:
            return {
                "points_needed": None,
                "amount_cents_needed": None,
                "purchases_needed": None,
                "referrals_needed": None,
            }
        needed: dict[str, int | None] = {
            _NEEDED[name]: max(0, _threshold(upcoming, name) - totals.value(name))
            for name in _THRESHOLDS
        }
        needed["referrals_needed"] = 0
        return needed
