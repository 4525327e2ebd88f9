"""Yotpo redemption options to Heartland coupons. Pure: raw options and ledger rows in, plans out.

An option becomes a coupon when it takes a fixed amount or a percentage off the order. Other
options are skipped with a reason a manager can read:
- variable-points options ("points for cash", `discount_type` starting with `generic` and
  containing `variable`): the customer picks how many points to spend, which a fixed coupon
  cannot express;
- custom coupons, free shipping, free products and unknown discount types: Heartland gets no
  amount to take off;
- options without a usable id, name, points cost or discount value;
- fixed-amount options above the `offers.max_discount_cents` ceiling (see `read_option`).

A coupon's name comes from the option's name only when that name states the actual discount,
because Yotpo keeps the name and the discount in separate fields (see `coupon_name`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from yotposync.clients.heartland_coupons import CouponSpec, discount_text, offer_code, offer_text
from yotposync.money import format_cents


@dataclass(frozen=True)
class Offer:
    """A Yotpo redemption option that a cashier can apply as a Heartland coupon."""

    option_id: int
    name: str
    points_cost: int
    amount_cents: int | None
    percent: Decimal | None

    def coupon_spec(self) -> CouponSpec:
        """Return the coupon the cashier applies, named by `coupon_name`."""
        return CouponSpec(
            code=offer_code(self.option_id),
            name=coupon_name(self),
            amount_cents=self.amount_cents,
            percent=self.percent,
            single_use=False,
        )

    def discount_text(self) -> str:
        """Return the discount as the cashier reads it, such as `5.00` or `50%`."""
        return discount_text(self.amount_cents, self.percent)

    def describe(self) -> str:
        return offer_text(self.amount_cents, self.percent, self.points_cost)


# A number in an option's name, and what follows it: "%" or "percent" makes it a percentage,
# "points" or "pts" a points cost, and anything else an amount in the store's currency.
_NAME_FIGURE = re.compile(
    r"(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?\s*(%|percent\b|points?\b|pts\b)?", re.IGNORECASE
)


# A code redeemed online, as a cashier scans or types it: printable ASCII, no spaces.
_ONLINE_CODE = re.compile(r"[!-~]{1,200}")
ONLINE_CODE_RULE = "1 to 200 printable ASCII characters without spaces"


def is_online_code(text: str) -> bool:
    """Tell whether `text` can be the code of an offer redeemed online (ONLINE_CODE_RULE)."""
    return _ONLINE_CODE.fullmatch(text) is not None


def coupon_name(offer: Offer) -> str:
    """Name an offer's coupon after the option when its name states the actual discount.

    Yotpo sends an option's name and its discount in separate fields, so a retailer who
    changes "$5 Off" to 50% off keeps the old name. The option's name is used, on one line,
    as `$5 Off (500 points)`, when `name_states_discount` holds. Otherwise the name is built
    from the discount, as `Loyalty: 50% off, 500 points`, so the cashier reads the real
    discount.
    """
    if name_states_discount(offer):
        if _names_points(offer.name):
            return one_line(offer.name)  # the name states the cost already
        return f"{one_line(offer.name)} ({offer.points_cost} points)"
    return f"Loyalty: {offer.discount_text()} off, {offer.points_cost} points"


def _names_points(name: str) -> bool:
    return any(
        (match.group(3) or "").lower() not in ("", "%", "percent")
        for match in _NAME_FIGURE.finditer(name)
    )


def one_line(text: str) -> str:
    """Return `text` with each run of spaces, tabs and line breaks made one space."""
    return " ".join(text.split())


def name_states_discount(offer: Offer) -> bool:
    """Tell whether the option's name states the offer's discount and no other figure.

    Figures followed by "points" or "pts" must be the points cost. Every other figure must
    be the discount: a percentage for "%" or "percent", else an amount in currency units.
    So "2-for-1: $10 Off" states no discount of $1 (its "1"), nor of $10 (its "2"), and
    "$5 Off (400 points)" does not name an offer that costs 500.
    """
    stated = False
    for match in _NAME_FIGURE.finditer(offer.name):
        whole, fraction, unit = match.groups()
        figure = Decimal(whole.replace(",", "") + (fraction or ""))
        unit = (unit or "").lower()
        if unit in ("%", "percent"):
            if offer.percent is None or figure != offer.percent:
                return False
        elif not unit:
            if offer.amount_cents is None or figure * 100 != offer.amount_cents:
                return False
        else:
            if figure != offer.points_cost:
                return False
            continue  # a points cost, which states no discount
        stated = True
    return stated


@dataclass(frozen=True)
class SkippedOption:
    """A redemption option that gets no coupon, and why."""

    option_id: int | None
    name: str
    reason: str


@dataclass(frozen=True)
class OfferMapping:
    """The ledger's record of one option: its coupon and the spec last written to it."""

    option_id: int
    coupon_id: int | None
    spec_json: str | None
    state: str  # "active", "inactive" or "skipped"


@dataclass(frozen=True)
class OfferPlan:
    """The Heartland writes that bring the coupons in line with Yotpo's options."""

    create: list[Offer]
    update: list[tuple[Offer, int]]  # offer and the coupon id to update
    deactivate: list[OfferMapping]
    unchanged: list[Offer]


# The setting that caps fixed-amount offers, as skip reasons name it.
CEILING_SETTING = "offers.max_discount_cents"


def read_options(
    raw_options: Iterable[Mapping[str, Any]], *, max_discount_cents: int
) -> tuple[list[Offer], list[SkippedOption]]:
    """Split raw redemption options into offers and skipped options."""
    offers: list[Offer] = []
    skipped: list[SkippedOption] = []
    seen: set[int] = set()
    for raw in raw_options:
        result = read_option(raw, max_discount_cents=max_discount_cents)
        if isinstance(result, SkippedOption):
            skipped.append(result)
        elif result.option_id in seen:
            skipped.append(
                SkippedOption(result.option_id, result.name, "listed twice; the first is used")
            )
        else:
            seen.add(result.option_id)
            offers.append(result)
    return offers, skipped


def read_option(
    raw: Mapping[str, Any], *, max_discount_cents: int | None = None
) -> Offer | SkippedOption:
    """Read one raw redemption option as an offer, or as a skipped option with the reason.

    A fixed amount above `max_discount_cents` is skipped, because Yotpo accepts any amount,
    and a typo there (cents typed as dollars, extra zeros) would otherwise become a coupon
    that gives a fortune away at the register. None sets no ceiling.
    """
    option_id = _whole_number(raw.get("id"))
    name = raw.get("name")
    shown_name = name.strip() if isinstance(name, str) else ""
    if option_id is None or option_id <= 0:
        return SkippedOption(None, shown_name, f"invalid id {raw.get('id')!r}")
    if not shown_name:
        return SkippedOption(option_id, "", "the option has no name")
    points = _whole_number(raw.get("amount"))
    if points is None or points <= 0:
        return SkippedOption(
            option_id, shown_name, f"invalid points cost (amount) {raw.get('amount')!r}"
        )

    discount_type = str(raw.get("discount_type") or "").strip().lower()
    if "variable" in discount_type:
        return SkippedOption(
            option_id,
            shown_name,
            "variable-points offer (points for cash): the customer chooses the points, "
            "which a fixed store coupon cannot express, so it is for online orders only",
        )
    if "percent" in discount_type:
        percent = _decimal(raw.get("discount_percentage"))
        if percent is None or not Decimal(0) < percent <= Decimal(100):
            return SkippedOption(
                option_id,
                shown_name,
                f"invalid discount_percentage {raw.get('discount_percentage')!r}: "
                "must be above 0 and at most 100",
            )
        return Offer(option_id, shown_name, points, None, percent.normalize())
    if "fixed" in discount_type:
        cents = _whole_number(raw.get("discount_amount_cents"))
        if cents is None or cents <= 0:
            return SkippedOption(
                option_id,
                shown_name,
                f"invalid discount_amount_cents {raw.get('discount_amount_cents')!r}: "
                "must be a whole number above 0",
            )
        if max_discount_cents is not None and cents > max_discount_cents:
            return SkippedOption(
                option_id,
                shown_name,
                f"discount_amount_cents {cents} ({format_cents(cents)} off) is above "
                f"{CEILING_SETTING} {max_discount_cents} "
                f"({format_cents(max_discount_cents)}): raise that setting if the amount "
                "is meant, or correct the option in Yotpo",
            )
        return Offer(option_id, shown_name, points, cents, None)
    shown_type = discount_type or "none"
    return SkippedOption(
        option_id,
        shown_name,
        f"discount_type {shown_type!r} takes no amount or percentage off the order",
    )


def plan_offers(offers: Sequence[Offer], mappings: Sequence[OfferMapping]) -> OfferPlan:
    """Compare the offers with the ledger's coupons and plan the difference.

    A new offer is created. An offer whose coupon spec changed, or whose coupon was switched
    off earlier, is updated. An active coupon whose option is gone (removed, disabled or now
    skipped) is deactivated. Offers already in line plan nothing.
    """
    by_option = {mapping.option_id: mapping for mapping in mappings}
    plan = OfferPlan(create=[], update=[], deactivate=[], unchanged=[])
    listed: set[int] = set()
    for offer in offers:
        listed.add(offer.option_id)
        mapping = by_option.get(offer.option_id)
        if mapping is None or mapping.coupon_id is None:
            plan.create.append(offer)
        elif mapping.state != "active" or mapping.spec_json != offer.coupon_spec().as_json():
            plan.update.append((offer, mapping.coupon_id))
        else:
            plan.unchanged.append(offer)
    for mapping in mappings:
        if mapping.option_id not in listed and mapping.state == "active":
            plan.deactivate.append(mapping)
    return plan


def _whole_number(value: Any) -> int | None:
    """Read an integer sent as a number or a digit string; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    number = _decimal(value)
    if number is None or number != number.to_integral_value():
        return None
    return int(number)


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    if not isinstance(value, int | float | str):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None
