"""The loyalty step of the transactions job: deductions, restores and online codes per ticket.

It runs inside the page transaction, right after a ticket version's decision is recorded, so the
deduction or restore it queues commits together with that decision and the cursor. The pure
choices are in `sync.redemptions`; this module reads and writes the ledger around them.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

import structlog

from yotposync.ledger import Ledger
from yotposync.ledger import customers as customer_book
from yotposync.ledger.offers import CODE_USED, REDEEM_ROLE, RESTORE_ROLE, OfferLedger
from yotposync.sync.amounts import TicketAmounts
from yotposync.sync.model import Customer, Kind, Ticket
from yotposync.sync.points_push import history_title
from yotposync.sync.redemptions import (
    OFFER,
    ONLINE_CODE,
    PROBLEM_STATES,
    DeductionState,
    LoyaltyCoupon,
    RestorePolicy,
    decide_deduction,
    restore_points,
)

log = structlog.get_logger("yotposync.redemptions")


class TicketOffers:
    """Apply the loyalty rules to one ticket version at a time."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        id_prefix: str,
        go_live: datetime | None,
        policy: RestorePolicy,
    ) -> None:
        self.ledger = ledger
        self.offers = OfferLedger(ledger)
        self.id_prefix = id_prefix
        self.go_live = go_live
        self.policy = policy

    def apply(
        self,
        ticket: Ticket,
        customer: Customer | None,
        amounts: TicketAmounts,
        now: datetime,
    ) -> str | None:
        """Queue the deduction or restores this version needs.

        Returns the online code to send as the Yotpo order's `coupon_code`, or None.
        """
        code = self._deduct(ticket, customer, now)
        if ticket.parent_id is not None:
            self._restore_for_return(ticket, ticket.parent_id, amounts, now)
        return code

    # Deductions.

    def _applied_loyalty_coupon(self, ticket: Ticket) -> LoyaltyCoupon | None:
        """Return the loyalty coupon the ticket used, found by its id or else by its code."""
        reference = ticket.coupon
        if reference is None:
            return None
        if reference.unreadable is not None:
            log.warning(
                "ticket_coupon_unreadable",
                ticket_id=ticket.id,
                coupon_id=reference.unreadable,
                detail="the ticket's coupon_id is neither a coupon id nor a code, so a loyalty "
                "discount on it cannot be matched and no points are deducted for it. The sale "
                "earns as usual. Check the ticket in Heartland, and deduct the points by hand "
                "in Yotpo if a loyalty coupon was used",
            )
            return None
        found = None
        if reference.coupon_id is not None:
            found = self.offers.loyalty_coupon(reference.coupon_id)
        if found is None and reference.code:
            found = self.offers.loyalty_coupon_by_code(reference.code)
        return self._cost_when_completed(found, ticket)

    def _cost_when_completed(
        self, coupon: LoyaltyCoupon | None, ticket: Ticket
    ) -> LoyaltyCoupon | None:
        """Give a register offer's coupon the points cost the offer had when the ticket completed.

        The offers job updates a coupon in place when its offer's cost changes in Yotpo. A sale
        read after that, at the next poll or after an outage, still pays the cost the cashier
        saw.
        """
        if coupon is None or coupon.kind != OFFER or coupon.option_id is None:
            return coupon
        if ticket.completed_at is None:
            return coupon
        cost = self.offers.points_cost_at(coupon.option_id, ticket.completed_at)
        if cost is None or cost == coupon.points_cost:
            return coupon
        return dataclasses.replace(coupon, points_cost=cost)

    def _deduct(self, ticket: Ticket, customer: Customer | None, now: datetime) -> str | None:
        coupon = self._applied_loyalty_coupon(ticket)
        if coupon is None:
            return None  # no coupon, or one yotposync did not create: not a loyalty discount
        existing = self.offers.redemption(ticket.id)
        if existing is not None and existing["push_id"] is not None:
            # Deducted once already: a ticket seen again never deducts twice.
            if ticket.is_voided:
                self._restore_voided_sale(ticket, existing, now)
            elif existing["coupon_kind"] == OFFER:
                self._follow_moved_sale(ticket, customer, coupon, existing, now)
            return None

        decision = decide_deduction(ticket, customer, coupon, self.go_live)
        email = customer.email if customer is not None else None
        push_id = None
        if decision.state is DeductionState.DEDUCT and email is not None:
            push_id = f"{self.id_prefix}-redeem-{ticket.id}"
            self._queue_deduction(ticket, coupon, email, decision.points, push_id, now)
            log.info(
                "deduction_planned", ticket_id=ticket.id, push_id=push_id, points=decision.points
            )
        if decision.state is DeductionState.CODE_USED and coupon.used_by_ticket_id is None:
            self.offers.set_code_state(coupon.code, CODE_USED, now, ticket_id=ticket.id)

        changed = existing is None or (existing["state"], existing["reason"]) != (
            decision.state.value,
            decision.reason,
        )
        if changed:
            self.offers.save_redemption(
                ticket.id,
                coupon,
                decision,
                customer_id=ticket.customer_id,
                email=email,
                push_id=push_id,
                now=now,
            )
            if decision.state in PROBLEM_STATES:
                log.warning(
                    "deduction_not_possible",
                    ticket_id=ticket.id,
                    state=decision.state.value,
                    reason=decision.reason,
                )
        if push_id is not None and existing is not None:
            # Returns read while the sale could not deduct (no customer, no e-mail address)
            # kept their share. The customer who pays now gets back what they justify.
            self._reconcile_restores(ticket.id, ticket.id, f"sale {ticket.id} deducted", now)
        return _order_coupon_code(coupon, ticket)

    def _restore_voided_sale(self, ticket: Ticket, existing: dict[str, Any], now: datetime) -> None:
        spent = self.offers.spent_points(ticket.id)
        if spent is None:
            return
        points = restore_points(spent, self.policy, sale_voided=True)
        self._queue_restore(
            ticket.id, ticket.id, existing["email"], points, "sale voided after its deduction", now
        )

    def _queue_deduction(
        self,
        ticket: Ticket,
        coupon: LoyaltyCoupon,
        email: str,
        points: int,
        push_id: str,
        now: datetime,
    ) -> None:
        """Queue the adjustment that takes `points` from the ticket's customer for its coupon."""
        title = history_title(f"{coupon.name} at the store, ticket {ticket.public_id}", push_id)
        self.offers.add_points_push(
            push_id=push_id,
            role=REDEEM_ROLE,
            ticket_id=ticket.id,
            customer_id=ticket.customer_id,
            email=email,
            points=-points,
            payload=_adjust_payload(email, title),
            now=now,
        )

    def _follow_moved_sale(
        self,
        ticket: Ticket,
        customer: Customer | None,
        coupon: LoyaltyCoupon,
        existing: dict[str, Any],
        now: datetime,
    ) -> None:
        """Move a register deduction to the customer a sale was moved to after it.

        The discount went to the sale, so its points follow the sale as its order does: the
        first customer gets back what they still paid (the deduction less what returns gave
        back), and the new customer pays the same. A deduction Yotpo rejected took nothing,
        so the new customer pays the whole cost and the first gets nothing back. A sale left
        with no customer, or with one without an e-mail address, gives the points back too,
        and its deduction is listed for staff, as for a sale rung up that way.
        """
        payer = ticket.customer_id if customer is not None and customer.email else None
        new_email = customer.email if payer is not None and customer is not None else None
        if ticket.customer_id == existing["customer_id"] and (new_email is None) == (
            existing["email"] is None
        ):
            return  # the same payer, whose e-mail may have changed, or still no payer
        spent = self.offers.spent_points(ticket.id)
        # Points that returns gave back remain given back when the current deduction was
        # rejected, so a customer the sale moves back to pays only for the part they kept.
        owed = existing["points"] - self.offers.restored_points(ticket.id)
        if spent is not None:
            owed = spent.points - spent.restored_points
        # One more than the pushes queued so far, so the number is new even when an earlier
        # move queued a single push, as a move from or to no payer does.
        number = self.offers.redeem_push_count(ticket.id) + 1
        old_email = existing["email"]
        # The first customer already kept the points of take-backs that Yotpo rejected.
        back = owed - spent.untaken_points if spent is not None else 0
        if back > 0 and old_email:
            back_id = f"{self.id_prefix}-redeem-back-{ticket.id}-{number}"
            email = customer_book.current_email(self.ledger, old_email)
            title = history_title(f"Points given back, ticket {ticket.public_id} moved", back_id)
            self.offers.add_points_push(
                push_id=back_id,
                role=REDEEM_ROLE,
                ticket_id=ticket.id,
                customer_id=existing["customer_id"],
                email=email,
                points=back,
                payload=_adjust_payload(email, title),
                now=now,
            )
        push_id = existing["push_id"]
        if new_email is not None:
            state = DeductionState.DEDUCT
            reason = f"{coupon.name}: moved with the sale to customer {ticket.customer_id}"
            if owed > 0:
                push_id = f"{self.id_prefix}-redeem-{ticket.id}-{number}"
                self._queue_deduction(ticket, coupon, new_email, owed, push_id, now)
        elif ticket.customer_id is None:
            state = DeductionState.NO_CUSTOMER
            reason = "loyalty discount on a sale whose customer was removed: nobody paid for it"
        else:
            state = DeductionState.NO_EMAIL
            reason = (
                f"loyalty discount on a sale moved to customer {ticket.customer_id}, who has "
                "no usable e-mail address: nobody paid for it"
            )
        self.offers.move_redemption(
            ticket.id,
            customer_id=ticket.customer_id,
            email=new_email,
            push_id=push_id,
            state=state.value,
            reason=reason,
            now=now,
        )
        if new_email is not None:
            # Returns read while no customer paid, or while the deduction was rejected, gave
            # nothing back. The new payer gets back now what they justify.
            self._reconcile_restores(ticket.id, ticket.id, f"sale {ticket.id} moved", now)
        log.info(
            "deduction_moved",
            ticket_id=ticket.id,
            from_customer=existing["customer_id"],
            to_customer=ticket.customer_id,
            points=owed,
        )
        if state in PROBLEM_STATES:
            log.warning(
                "deduction_not_possible", ticket_id=ticket.id, state=state.value, reason=reason
            )

    # Restores on returns.

    def _restore_for_return(
        self, ticket: Ticket, sale_id: int, amounts: TicketAmounts, now: datetime
    ) -> None:
        """Bring the points given back for the sale to what its returns justify now.

        The target follows the sale's returns as they stand, each at its latest version: a
        voided return returns nothing, and a voided sale gives back everything it spent.
        The difference from what was given back so far is queued under this ticket, positive
        or negative, so a return read again unchanged queues nothing. A return voided after
        its restore takes back only what the other returns no longer justify: once a later
        return has returned every item, voiding an earlier one changes nothing.
        """
        if not self.offers.has_spending(sale_id):
            return
        counts = ticket.is_completed and not ticket.is_voided
        returned = amounts.returned_item_cents if counts else 0
        self.offers.save_return_share(ticket.id, sale_id, returned, now)
        if ticket.is_voided:
            changed = f"return {ticket.id} voided after its restore"
        else:
            changed = f"return {ticket.id} changed: the returns of sale {sale_id} return less"
        self._reconcile_restores(ticket.id, sale_id, changed, now)

    def _reconcile_restores(self, ticket_id: int, sale_id: int, less: str, now: datetime) -> None:
        """Queue, under `ticket_id`, what the sale's returns justify beyond what was given back.

        `less` is the reason recorded when less is justified than was given back.
        """
        spent = self.offers.spent_points(sale_id)
        if spent is None:
            return
        points = restore_points(spent, self.policy, sale_voided=self._sale_voided(sale_id))
        reason = f"return of sale {sale_id}, {self.policy.value} restore policy"
        if points < 0:
            reason = less
        email = self.offers.spender_email(sale_id)
        self._queue_restore(ticket_id, sale_id, email, points, reason, now)

    def _sale_voided(self, sale_id: int) -> bool:
        sale = self.ledger.parent_info(sale_id)
        return sale is not None and sale.kind is Kind.VOID

    def _queue_restore(
        self,
        ticket_id: int,
        sale_id: int,
        email: str | None,
        points: int,
        reason: str,
        now: datetime,
    ) -> None:
        if points == 0 or email is None:
            return
        email = customer_book.current_email(self.ledger, email)
        number = self.offers.restore_count(ticket_id) + 1
        push_id = f"{self.id_prefix}-restore-{ticket_id}-{number}"
        verb = "given back" if points > 0 else "taken back, return voided"
        if points < 0 and "voided" not in reason:
            verb = "taken back, return changed"
        title = history_title(f"Points {verb}, ticket {ticket_id}", push_id)
        self.offers.add_points_push(
            push_id=push_id,
            role=RESTORE_ROLE,
            ticket_id=ticket_id,
            customer_id=None,
            email=email,
            points=points,
            payload=_adjust_payload(email, title),
            now=now,
        )
        self.offers.add_restore(
            push_id=push_id,
            ticket_id=ticket_id,
            sale_ticket_id=sale_id,
            points=points,
            reason=reason,
            now=now,
        )
        log.info(
            "restore_planned",
            ticket_id=ticket_id,
            sale_ticket_id=sale_id,
            push_id=push_id,
            points=points,
        )


def _adjust_payload(email: str, title: str) -> dict[str, Any]:
    # Spent and given-back points are not earned points, so lifetime earned stays unchanged.
    return {
        "customer_email": email,
        "apply_adjustment_to_points_earned": False,
        "history_title": title,
        "visible_to_customer": True,
    }


def _order_coupon_code(coupon: LoyaltyCoupon, ticket: Ticket) -> str | None:
    """Return the online code a ticket's order carries, unless another ticket used it first."""
    if coupon.kind != ONLINE_CODE:
        return None
    if coupon.used_by_ticket_id is not None and coupon.used_by_ticket_id != ticket.id:
        return None
    return coupon.code
