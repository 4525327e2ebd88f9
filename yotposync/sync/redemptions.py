"""Points spent at the register and given back on returns. Pure: plain data in, decisions out.

A ticket that used a loyalty coupon deducts the offer's points once, when it is completed,
not voided and paid in full. Exclusion rules do not stop a deduction, because they decide
who earns, and a discount given at the register must be paid for with points either way.

A return of such a sale gives points back by the configured policy:
- `proportional` (default): the share of the sale's item amount returned so far, rounded down;
- `full`: everything, once the whole item amount has been returned;
- `never`: nothing.
A sale voided after its deduction gives everything back, whatever the policy. The points given
back for one sale never add up to more than it spent.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from yotposync.money import format_cents
from yotposync.sync.model import Customer, Ticket

OFFER = "offer"
ONLINE_CODE = "online_code"


class RestorePolicy(enum.StrEnum):
    """The rule by which a return of a sale that spent points gives them back."""

    PROPORTIONAL = "proportional"
    FULL = "full"
    NEVER = "never"


class DeductionState(enum.StrEnum):
    """The effect on points of a ticket that used a loyalty coupon."""

    DEDUCT = "deduct"  # queue the deduction now
    WAITING = "waiting"  # not completed or not paid: deducts when it is
    VOIDED = "voided"  # voided before anything was deducted
    BEFORE_GO_LIVE = "before_go_live"
    NO_CUSTOMER = "no_customer"  # recorded for staff, never retried blindly
    NO_EMAIL = "no_email"  # recorded for staff, never retried blindly
    CODE_USED = "code_used"  # an online code: Yotpo deducted at redemption, send it with the order
    CODE_ALREADY_USED = "code_already_used"  # a single-use code seen on a second ticket


# States that staff should look at; `status` lists them.
PROBLEM_STATES = frozenset(
    {DeductionState.NO_CUSTOMER, DeductionState.NO_EMAIL, DeductionState.CODE_ALREADY_USED}
)


@dataclass(frozen=True)
class LoyaltyCoupon:
    """A Heartland coupon that yotposync created, as recorded in the ledger."""

    coupon_id: int
    kind: str  # OFFER or ONLINE_CODE
    code: str
    name: str
    option_id: int | None
    points_cost: int
    used_by_ticket_id: int | None = None  # online codes: the ticket that used it first


@dataclass(frozen=True)
class DeductionDecision:
    """The outcome for one ticket version; `points` is set only for DEDUCT."""

    state: DeductionState
    reason: str
    points: int = 0


def decide_deduction(
    ticket: Ticket,
    customer: Customer | None,
    coupon: LoyaltyCoupon,
    go_live: datetime | None,
) -> DeductionDecision:
    """Decide what a ticket that used `coupon` does to points, before looking at the ledger."""
    if ticket.is_voided:
        return DeductionDecision(DeductionState.VOIDED, "ticket voided: nothing to deduct")
    if not ticket.is_completed:
        return DeductionDecision(
            DeductionState.WAITING,
            f"ticket not completed (status {ticket.status or 'unknown'}): "
            "deducts when it is completed and paid",
        )
    if ticket.balance_cents > 0:
        return DeductionDecision(
            DeductionState.WAITING,
            f"balance of {format_cents(ticket.balance_cents)} unpaid: deducts when paid in full",
        )
    completed_at = ticket.completed_at or ticket.updated_at
    if go_live is not None and completed_at < go_live:
        return DeductionDecision(
            DeductionState.BEFORE_GO_LIVE, "completed before go-live: nothing is deducted"
        )
    if coupon.kind == ONLINE_CODE:
        if coupon.used_by_ticket_id is not None and coupon.used_by_ticket_id != ticket.id:
            return DeductionDecision(
                DeductionState.CODE_ALREADY_USED,
                f"single-use code {coupon.code} was already used on ticket "
                f"{coupon.used_by_ticket_id}: not sent to Yotpo again",
            )
        return DeductionDecision(
            DeductionState.CODE_USED,
            f"online code {coupon.code} used: sent with the order as its coupon_code",
        )
    if customer is None:
        reason = (
            "loyalty discount on a ticket with no customer"
            if ticket.customer_id is None
            else f"loyalty discount for customer {ticket.customer_id}, not found in Heartland"
        )
        return DeductionDecision(DeductionState.NO_CUSTOMER, reason)
    if customer.email is None:
        reason = f"loyalty discount for customer {customer.id}, who has no usable e-mail address"
        if customer.email_problem:
            reason += f": {customer.email_problem}"
        return DeductionDecision(DeductionState.NO_EMAIL, reason)
    return DeductionDecision(
        DeductionState.DEDUCT,
        f"{coupon.name}: deducts {coupon.points_cost} points",
        coupon.points_cost,
    )


@dataclass(frozen=True)
class SpentPoints:
    """The points a sale spent at the register, and what its returns have done since.

    `returned_item_cents` is the item amount returned by all its returns together, each
    counted at its latest version.
    """

    sale_ticket_id: int
    points: int
    sold_item_cents: int
    returned_item_cents: int
    restored_points: int
    # Points of take-backs that Yotpo rejected, which the customer therefore still has.
    untaken_points: int = 0


def restore_points(spent: SpentPoints, policy: RestorePolicy, *, sale_voided: bool) -> int:
    """Return the points to give back now, on top of what was already given back.

    The result is negative when more was given back than the sale's returns justify now,
    after a return was voided or returns less.
    """
    if spent.points <= 0:
        return 0
    if sale_voided:
        target = spent.points
    elif policy is RestorePolicy.NEVER or spent.returned_item_cents <= 0:
        target = 0
    elif spent.sold_item_cents <= 0 or spent.returned_item_cents >= spent.sold_item_cents:
        target = spent.points
    elif policy is RestorePolicy.FULL:
        target = 0
    else:
        target = spent.points * spent.returned_item_cents // spent.sold_item_cents
    due = min(target, spent.points) - spent.restored_points
    if due > 0 and spent.untaken_points:
        # The customer kept points a rejected take-back meant to remove: give back only what
        # they do not have already.
        held = spent.restored_points + spent.untaken_points
        due = min(due, max(0, min(target, spent.points) - held))
    return due
