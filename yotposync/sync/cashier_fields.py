"""Loyalty values for the Heartland customer custom fields that cashiers read.

Pure: a Yotpo customer record and the redemption options in; text values per field out.
Heartland custom field values are text, so numbers are written as their digits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from yotposync.sync.offers import one_line

# Roles of the custom fields, with the name a field gets when yotposync creates it.
POINTS = "points"
TIER = "tier"
NEXT_TIER = "next_tier"
OFFERS = "offers"
UPDATED = "updated"
OPT_IN = "opt_in"
FIELD_NAMES = {
    POINTS: "Loyalty Points",
    TIER: "Loyalty Tier",
    NEXT_TIER: "Loyalty Points To Next Tier",
    OFFERS: "Loyalty Offers",
    UPDATED: "Loyalty Updated",
    OPT_IN: "Loyalty Opt-In",
}
# The roles whose values come from Yotpo; `updated` is written only with a change to them.
VALUE_ROLES = (POINTS, TIER, NEXT_TIER, OFFERS)


@dataclass(frozen=True)
class Offer:
    """A redemption option and its cost in points (per point of value for variable ones)."""

    id: str
    name: str
    cost_points: int
    variable: bool = False
    # The whole text to show, cost included, when the offer has a register coupon.
    label: str | None = None


@dataclass(frozen=True)
class LoyaltySnapshot:
    """One customer's standing in Yotpo, as the cashier needs it."""

    balance: int
    tier: str | None
    points_to_next_tier: int | None
    offers: tuple[Offer, ...]


def _whole_number(value: object) -> int | None:
    """Read a whole number sent as a JSON number or as text; anything else is None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if not isinstance(value, float | str):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    if not number.is_finite() or number != number.to_integral_value():
        return None
    return int(number)


def parse_offer(option: Mapping[str, Any]) -> Offer | None:
    """Read one redemption option; None when it has no name or no usable points cost.

    The cost is `amount`, a number in real responses and text in Yotpo's docs. Options
    whose `discount_type` starts with `generic` and that carry `discount_rate_cents` are
    variable: `amount` is then the cost of one step, and any balance of at least one step
    can pay.
    """
    name = option.get("name")
    cost = _whole_number(option.get("amount"))
    if not isinstance(name, str) or not name.strip() or cost is None or cost < 0:
        return None
    discount_type = option.get("discount_type")
    variable = (
        isinstance(discount_type, str)
        and discount_type.startswith("generic")
        and option.get("discount_rate_cents") not in (None, 0)
    )
    # The id is read as the offers job reads it (3101, "3101" and 3101.0 are one option), so
    # that the option's coupon is found.
    option_id = _whole_number(option.get("id"))
    option_key = str(option_id) if option_id is not None else str(option.get("id", ""))
    return Offer(option_key, name.strip(), cost, variable)


def affordable_offers(
    options: Sequence[Mapping[str, Any]],
    balance: int,
    coupon_names: Mapping[str, str] | None = None,
) -> tuple[Offer, ...]:
    """Return the options the balance can pay for now, cheapest first, then by name.

    With `coupon_names` (option id to the name of its active register coupon), only options
    with a coupon are returned, labelled with the coupon's name: the cashier cannot apply
    any other at the register.
    """
    offers = [offer for option in options if (offer := parse_offer(option)) is not None]
    if coupon_names is not None:
        offers = [
            replace(offer, label=coupon_names[offer.id])
            for offer in offers
            if offer.id in coupon_names
        ]
    affordable = [offer for offer in offers if offer.cost_points <= balance]
    return tuple(sorted(affordable, key=lambda offer: (offer.cost_points, offer.name, offer.id)))


def parse_snapshot(
    customer: Mapping[str, Any],
    options: Sequence[Mapping[str, Any]],
    coupon_names: Mapping[str, str] | None = None,
) -> LoyaltySnapshot:
    """Read balance, tier and points to the next tier from a `GET /customers` record.

    A missing or unreadable balance counts as 0. Empty VIP fields are null in Yotpo, and
    `vip_tier_upgrade_requirements` may be an object of nulls at the top tier: both give
    None here. `coupon_names` limits the offers as `affordable_offers` describes.
    """
    balance = _whole_number(customer.get("points_balance")) or 0
    tier = customer.get("vip_tier_name")
    requirements = customer.get("vip_tier_upgrade_requirements")
    needed = None
    if isinstance(requirements, Mapping):
        needed = _whole_number(requirements.get("points_needed"))
    return LoyaltySnapshot(
        balance=balance,
        tier=tier.strip() if isinstance(tier, str) and tier.strip() else None,
        points_to_next_tier=needed if needed is not None and needed >= 0 else None,
        offers=affordable_offers(options, balance, coupon_names),
    )


def _one_line(text: str) -> str:
    """Put a name from Yotpo on one line, without the "; " that separates offers."""
    return one_line(text.replace(";", ","))


def format_offer(offer: Offer) -> str:
    if offer.label is not None:
        return _one_line(offer.label)
    unit = "point" if offer.cost_points == 1 else "points"
    name = _one_line(offer.name)
    if offer.variable:
        return f"{name} ({offer.cost_points} {unit} each)"
    return f"{name} ({offer.cost_points} {unit})"


def format_offers(offers: Sequence[Offer], max_length: int) -> str:
    """Join offers with "; " in at most `max_length` characters.

    Offers are taken in order, and one that does not fit is left out while later, shorter
    ones may still fit. Offers left out are counted at the end as "+N more", so the cashier
    can tell that the list goes on.
    """
    texts = [format_offer(offer) for offer in offers]

    def joined(listed: list[str], hidden: int) -> str:
        text = "; ".join(listed)
        if hidden:
            text = f"{text}; +{hidden} more" if text else f"+{hidden} more"
        return text

    listed: list[str] = []
    for position, text in enumerate(texts):
        # Count every later offer as hidden, so that the text stays within the limit
        # whichever of them fit after this one.
        hidden_at_most = len(texts) - position - 1 + (position - len(listed))
        if len(joined([*listed, text], hidden_at_most)) <= max_length:
            listed.append(text)
    result = joined(listed, len(texts) - len(listed))
    return result if len(result) <= max_length else ""


def field_values(
    snapshot: LoyaltySnapshot, keys: Mapping[str, str], offers_max_length: int
) -> dict[str, str]:
    """Return the text for each value field, keyed by its Heartland custom field key.

    `keys` maps the roles in `VALUE_ROLES` to field keys. A customer without a tier, or at
    the top tier, gets empty text in the tier or next-tier field.
    """
    next_tier = snapshot.points_to_next_tier
    return {
        keys[POINTS]: str(snapshot.balance),
        keys[TIER]: snapshot.tier or "",
        keys[NEXT_TIER]: "" if next_tier is None else str(next_tier),
        keys[OFFERS]: format_offers(snapshot.offers, offers_max_length),
    }


def changed_values(current: Mapping[str, str | None], new: Mapping[str, str]) -> dict[str, str]:
    """Return the new values that differ from the current ones; null equals empty text."""
    return {key: value for key, value in new.items() if (current.get(key) or "") != value}


def format_updated(moment: datetime, zone: str) -> str:
    """Format the update time for the cashier: `2025-05-01 07:00 CDT`."""
    local = moment.astimezone(ZoneInfo(zone))
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"
