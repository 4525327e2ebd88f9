"""`decide()`: what one ticket version should do to loyalty points.

The decision looks at this ticket version alone, plus what the ledger stores about the
parent sale. Comparing it with what was already sent to Yotpo is the planner's job.
Any parsed ticket gets a Decision, because nothing here raises on odd data.
"""

from __future__ import annotations

from datetime import UTC, datetime

from yotposync.immutable import immutable
from yotposync.money import format_cents
from yotposync.sync.amounts import (
    AmountBasis,
    TicketAmounts,
    earn_cents,
    is_returned_item,
    is_sold_item,
    refund_cents,
    ticket_amounts,
)
from yotposync.sync.model import Customer, Decision, Kind, ParentInfo, Ticket
from yotposync.sync.rules import ExclusionRules, match_exclusion
from yotposync.timeutil import format_utc

# Parent kinds that earned points, so that a return of them can take points back.
_EARNING_PARENT_KINDS = frozenset({Kind.SALE, Kind.EXCHANGE})


@immutable
class _Part:
    """The outcome of the sold part or the returned part of a ticket."""

    kind: Kind
    cents: int
    reason: str
    rule: str | None = None

    @property
    def has_effect(self) -> bool:
        return self.kind in (Kind.SALE, Kind.RETURN) and self.cents > 0


def _as_utc(moment: datetime) -> datetime:
    # A naive go-live from hand-built settings is taken as UTC instead of failing the
    # comparison with the ticket's aware timestamps.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _decide_returned(ticket: Ticket, parent: ParentInfo | None, amounts: TicketAmounts) -> _Part:
    """Decide the returned part. It follows its parent sale: exclusion rules do not apply."""
    parent_id = ticket.parent_id
    if parent_id is None:
        return _Part(Kind.BLIND_RETURN, 0, "return without a parent sale: nothing to take back")
    if parent is None:
        return _Part(Kind.BLIND_RETURN, 0, f"parent ticket {parent_id} not found")
    if parent.kind == Kind.EXCLUDED:
        reason = f"parent sale {parent_id} was excluded"
        if parent.rule is not None:
            reason = f"{reason} by {parent.rule}"
        return _Part(Kind.EXCLUDED, 0, reason, rule=parent.rule)
    if parent.kind not in _EARNING_PARENT_KINDS or parent.earn_cents <= 0:
        if parent.kind in _EARNING_PARENT_KINDS:
            # A sale paid in full by a coupon or a gift card, or of items that do not earn.
            decided = f"decided as {parent.kind.value} with no amount that earns"
        else:
            decided = f"decided as {parent.kind.value}"
        return _Part(
            Kind.PARENT_NOT_EARNED, 0, f"parent sale {parent_id} earns nothing now ({decided})"
        )

    cents = refund_cents(amounts, parent)
    return _Part(Kind.RETURN, cents, f"takes back {format_cents(cents)} of parent sale {parent_id}")


def _decide_sold(
    ticket: Ticket,
    customer: Customer | None,
    rules: ExclusionRules,
    amounts: TicketAmounts,
) -> _Part:
    """Decide the sold part: customer, exclusion rules, then e-mail."""
    if customer is None:
        if ticket.customer_id is None:
            return _Part(Kind.NO_CUSTOMER, 0, "no customer on the ticket")
        return _Part(Kind.NO_CUSTOMER, 0, f"customer {ticket.customer_id} not found")

    cents = earn_cents(amounts)
    rule = match_exclusion(ticket, customer, rules, cents)
    if rule is not None:
        return _Part(Kind.EXCLUDED, 0, f"excluded by {rule}", rule=rule)

    if customer.email is None:
        reason = f"customer {customer.id} has no e-mail address"
        if customer.email_problem:
            reason = (
                f"customer {customer.id} has no usable e-mail address: {customer.email_problem}"
            )
        return _Part(Kind.NO_EMAIL, 0, reason)

    return _Part(Kind.SALE, cents, f"earns on {format_cents(cents)}")


def _combine(sold: _Part, returned: _Part) -> _Part:
    """Merge the outcomes of the two parts of an exchange ticket.

    The ticket is an exchange when either part has an effect, and the part without one
    contributes 0. Otherwise the sold part's kind wins. Both reasons are kept.
    """
    reason = f"sold part: {sold.reason}; returned part: {returned.reason}"
    if sold.has_effect or returned.has_effect:
        # The exchange keeps the rule of whichever part was excluded, if any.
        return _Part(Kind.EXCHANGE, 0, reason, rule=sold.rule or returned.rule)
    return _Part(sold.kind, 0, reason, rule=sold.rule)


def decide(
    ticket: Ticket,
    customer: Customer | None,
    parent: ParentInfo | None,
    rules: ExclusionRules,
    basis: AmountBasis,
) -> Decision:
    """Decide what one ticket version should do to points.

    `customer` is the ticket's customer (None when it has none or it was not found) and
    `parent` is what the ledger stores about the parent sale (None when not found). The
    checks run in order: void and completion, go-live, then the returned part and the sold
    part of the ticket, split by its item lines.
    """

    def make(
        kind: Kind,
        reason: str,
        rule: str | None = None,
        earned: int = 0,
        taken_back: int = 0,
    ) -> Decision:
        return Decision(
            ticket_id=ticket.id,
            kind=kind,
            reason=reason,
            rule=rule,
            customer_id=customer.id if customer is not None else ticket.customer_id,
            email=customer.email if customer is not None else None,
            earn_cents=earned,
            return_cents=taken_back,
            parent_id=ticket.parent_id,
        )

    if ticket.is_voided:
        when = "after" if ticket.is_completed else "before"
        return make(Kind.VOID, f"voided {when} completion")
    if not ticket.is_completed:
        shown = ticket.status or "missing"
        return make(Kind.NOT_COMPLETED, f"ticket is not completed (status {shown})")

    moment = _as_utc(ticket.completed_at or ticket.updated_at)
    if rules.go_live is not None and moment < _as_utc(rules.go_live):
        go_live = format_utc(_as_utc(rules.go_live))
        return make(
            Kind.BEFORE_GO_LIVE,
            f"completed at {format_utc(moment)}, before go-live at {go_live}",
        )

    amounts = ticket_amounts(ticket, basis)
    has_sold = any(is_sold_item(line) for line in ticket.lines)
    has_returned = any(is_returned_item(line) for line in ticket.lines)

    # Parts that have no effect carry 0 cents, so their cents can be passed on as they are.
    # A ticket with no item lines at all is treated as a sale of its included extras.
    if not has_returned:
        sold = _decide_sold(ticket, customer, rules, amounts)
        return make(sold.kind, sold.reason, rule=sold.rule, earned=sold.cents)

    returned = _decide_returned(ticket, parent, amounts)
    if not has_sold:
        return make(returned.kind, returned.reason, rule=returned.rule, taken_back=returned.cents)

    sold = _decide_sold(ticket, customer, rules, amounts)
    combined = _combine(sold, returned)
    return make(
        combined.kind,
        combined.reason,
        rule=combined.rule,
        earned=sold.cents,
        taken_back=returned.cents,
    )
