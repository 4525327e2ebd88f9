"""Plan the Yotpo pushes one ticket version still needs, given what was already planned.

Pure: a decision and the ledger's records in, a list of new pushes out. Planning compares the
effect a ticket should have with the effect its earlier pushes already have, and plans only
the difference, so seeing a ticket again plans nothing and an edited ticket plans a correction.

Roles of a push:
- `order`: an order crediting the sold part of ticket T (`P-T`, then `P-T-2`, ...).
- `adjust`: a refund that takes back part of T's own orders after an edit, a void or a change
  of customer (`P-adj-T-N`).
- `return`: a refund against the parent's orders for the returned part of T (`P-ret-T`, ...).
- `restore`: an order that gives back what a return took when the return is voided or reduced
  (`P-rst-T-N`). Yotpo has no way to cancel a refund, so a new order is the only way back; it
  counts as a purchase in the customer's Yotpo statistics.
"""

from __future__ import annotations

from collections.abc import Sequence

from yotposync.immutable import immutable
from yotposync.sync.model import Decision, Kind, ParentInfo

ORDER = "order"
REFUND = "refund"
ROLE_KIND = {"order": ORDER, "adjust": REFUND, "return": REFUND, "restore": ORDER}


@immutable
class PushRecord:
    """A push already in the ledger, in any state."""

    push_id: str
    role: str
    ticket_id: int
    email: str | None
    customer_id: int | None
    target_order_id: str | None
    amount_cents: int


@immutable
class OrderBalance:
    """One order in the ledger and how much of it has been refunded so far, by any ticket."""

    order_id: str
    email: str | None
    customer_id: int | None
    amount_cents: int
    refunded_cents: int
    # "order" for the ticket's own orders, "restore" for a restore made by one of its returns.
    role: str = "order"

    @property
    def remaining_cents(self) -> int:
        return max(0, self.amount_cents - self.refunded_cents)


@immutable
class PlannedPush:
    """A push to add to the outbox."""

    push_id: str
    role: str
    ticket_id: int
    email: str | None
    customer_id: int | None
    target_order_id: str | None
    amount_cents: int

    @property
    def kind(self) -> str:
        return ROLE_KIND[self.role]


def plan_pushes(
    decision: Decision,
    own: Sequence[PushRecord],
    own_orders: Sequence[OrderBalance],
    parent_orders: Sequence[OrderBalance],
    id_prefix: str,
    parent: ParentInfo | None = None,
) -> list[PlannedPush]:
    """Plan the pushes that bring ticket `decision.ticket_id` to the effect `decision` asks for.

    `own` holds every push recorded for this ticket; `own_orders` the balances of the orders
    crediting this ticket's sold part (its own orders and its returns' restores);
    `parent_orders` the same for the parent sale (empty when there is no parent), and
    `parent` what the ledger decided for the parent sale.
    """
    ids = _IdMaker(id_prefix, decision.ticket_id, own)
    planned = _plan_sold_part(decision, own, own_orders, ids)
    planned += _plan_returned_part(decision, own, parent_orders, ids, parent)
    return planned


def plan_return_again(
    decision: Decision,
    own: Sequence[PushRecord],
    parent_orders: Sequence[OrderBalance],
    id_prefix: str,
    parent: ParentInfo | None,
) -> list[PlannedPush]:
    """Plan only the returned part of a return decided earlier, after its parent's orders changed.

    The sold part of an exchange depends on the exchange's own version alone, so it is left to
    the next time that version is read.
    """
    ids = _IdMaker(id_prefix, decision.ticket_id, own)
    return _plan_returned_part(decision, own, parent_orders, ids, parent)


def _plan_sold_part(
    decision: Decision,
    own: Sequence[PushRecord],
    own_orders: Sequence[OrderBalance],
    ids: _IdMaker,
) -> list[PlannedPush]:
    # Credit is kept per Heartland customer, so an e-mail change alone moves no points
    # (Yotpo links the orders by customer id); a ticket without a customer id falls back to
    # the e-mail address.
    credited: dict[_CustomerKey, int] = {}
    pushed_as: dict[_CustomerKey, tuple[str | None, int | None]] = {}
    adjusted: dict[str, int] = {}  # by order id, this ticket's own adjustments
    for push in own:
        key = _customer_key(push.customer_id, push.email)
        if push.role == "order":
            credited[key] = credited.get(key, 0) + push.amount_cents
            pushed_as[key] = (push.email, push.customer_id)
        elif push.role == "adjust":
            credited[key] = credited.get(key, 0) - push.amount_cents
            if push.target_order_id is not None:
                order_id = push.target_order_id
                adjusted[order_id] = adjusted.get(order_id, 0) + push.amount_cents

    # Refunds against these orders that are not this ticket's adjustments came from its
    # returns, and a voided return gave its refund back as a restore order. Both change the
    # credit on both sides. The credited customer has what the returns left, and a customer
    # the sale moves to gets its earnings less what is still returned.
    returned = 0
    for order in own_orders:
        key = _customer_key(order.customer_id, order.email)
        if order.role == "restore":
            credited[key] = credited.get(key, 0) + order.amount_cents
            pushed_as.setdefault(key, (order.email, order.customer_id))
            returned -= order.amount_cents
        by_returns = max(0, order.refunded_cents - adjusted.get(order.order_id, 0))
        credited[key] = credited.get(key, 0) - by_returns
        returned += by_returns

    desired: dict[_CustomerKey, int] = {}
    earn_left = decision.earn_cents - returned
    if earn_left > 0 and decision.email is not None:
        desired[_customer_key(decision.customer_id, decision.email)] = earn_left

    planned: list[PlannedPush] = []
    # Take back first, so a change of customer never credits both customers at once.
    for key, amount in sorted(credited.items()):
        excess = amount - desired.get(key, 0)
        if excess <= 0:
            continue
        email, customer_id = pushed_as.get(key, (None, None))
        orders = [o for o in own_orders if _customer_key(o.customer_id, o.email) == key]
        for order, cents in _allocate(excess, orders):
            planned.append(
                PlannedPush(
                    push_id=ids.next_adjust(),
                    role="adjust",
                    ticket_id=decision.ticket_id,
                    email=order.email or email,
                    customer_id=customer_id,
                    target_order_id=order.order_id,
                    amount_cents=cents,
                )
            )
    for key, amount in desired.items():
        missing = amount - credited.get(key, 0)
        if missing > 0:
            planned.append(
                PlannedPush(
                    push_id=ids.next_order(),
                    role="order",
                    ticket_id=decision.ticket_id,
                    email=decision.email,
                    customer_id=decision.customer_id,
                    target_order_id=None,
                    amount_cents=missing,
                )
            )
    return planned


_CustomerKey = tuple[str, str]


def _customer_key(customer_id: int | None, email: str | None) -> _CustomerKey:
    if customer_id is not None:
        return ("customer", str(customer_id))
    return ("email", email or "")


def _plan_returned_part(
    decision: Decision,
    own: Sequence[PushRecord],
    parent_orders: Sequence[OrderBalance],
    ids: _IdMaker,
    parent: ParentInfo | None,
) -> list[PlannedPush]:
    taken = sum(p.amount_cents for p in own if p.role == "return")
    restored = sum(p.amount_cents for p in own if p.role == "restore")
    current = taken - restored
    available = sum(o.remaining_cents for o in parent_orders)
    # Never take back more than the parent's orders still hold, whatever the decision says.
    desired = min(decision.return_cents, current + available)

    if desired > current:
        return [
            PlannedPush(
                push_id=ids.next_return(),
                role="return",
                ticket_id=decision.ticket_id,
                email=order.email,
                customer_id=order.customer_id,
                target_order_id=order.order_id,
                amount_cents=cents,
            )
            for order, cents in _allocate(desired - current, parent_orders)
        ]
    if desired < current and decision.kind in (Kind.VOID, Kind.NOT_COMPLETED):
        # Only the return's own void gives back what it took. A smaller figure caused by the
        # parent sale (voided or edited after the return) must not: the parent's own
        # correction already accounts for it.
        # NOTE: a return whose returned lines shrink without a void restores nothing.
        # Give back to the customer the parent sale credits now. The sale may have moved since
        # the return refunded another customer. A parent that earns nothing now (voided, or
        # left with no customer) was already taken back in full, so nothing comes back.
        # When that parent earns again, the transactions job plans this return again and the
        # refund comes back then.
        email: str | None
        if parent is not None:
            if parent.earn_cents <= 0 or parent.email is None:
                return []
            email, customer_id = parent.email, parent.customer_id
        else:
            first = next(p for p in own if p.role == "return")
            email, customer_id = first.email, first.customer_id
        return [
            PlannedPush(
                push_id=ids.next_restore(),
                role="restore",
                ticket_id=decision.ticket_id,
                email=email,
                customer_id=customer_id,
                target_order_id=None,
                amount_cents=current - desired,
            )
        ]
    return []


def _allocate(amount: int, orders: Sequence[OrderBalance]) -> list[tuple[OrderBalance, int]]:
    """Split `amount` over the orders' remaining balances, oldest order first."""
    shares: list[tuple[OrderBalance, int]] = []
    left = amount
    for order in orders:
        if left <= 0:
            break
        share = min(left, order.remaining_cents)
        if share > 0:
            shares.append((order, share))
            left -= share
    return shares


class _IdMaker:
    """Deterministic push ids: the n-th push of a role for a ticket always gets the same id."""

    def __init__(self, prefix: str, ticket_id: int, own: Sequence[PushRecord]) -> None:
        self.prefix = prefix
        self.ticket_id = ticket_id
        self.counts = {role: 0 for role in ROLE_KIND}
        for push in own:
            # Pushes of other roles (points adjustments) have ids of their own.
            if push.role in self.counts:
                self.counts[push.role] += 1

    def _bump(self, role: str) -> int:
        self.counts[role] += 1
        return self.counts[role]

    def next_order(self) -> str:
        n = self._bump("order")
        base = f"{self.prefix}-{self.ticket_id}"
        return base if n == 1 else f"{base}-{n}"

    def next_return(self) -> str:
        n = self._bump("return")
        base = f"{self.prefix}-ret-{self.ticket_id}"
        return base if n == 1 else f"{base}-{n}"

    def next_adjust(self) -> str:
        return f"{self.prefix}-adj-{self.ticket_id}-{self._bump('adjust')}"

    def next_restore(self) -> str:
        return f"{self.prefix}-rst-{self.ticket_id}-{self._bump('restore')}"
