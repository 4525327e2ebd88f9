"""Points-eligible amounts of a ticket, in integer cents.

A ticket is split by its lines, never by its `type`: item lines with a positive quantity
are the sold part and item lines with a negative quantity are the returned part, so an
exchange has both. Voided lines and zero-quantity item lines never count.
"""

from __future__ import annotations

from yotposync.immutable import immutable
from yotposync.sync.model import Line, ParentInfo, Ticket

ITEM_LINE = "ItemLine"
SHIPPING_LINE = "ShippingLine"
GIFT_CARD_LINE = "GiftCardLine"


@immutable
class AmountBasis:
    """Choice of the amounts besides items that earn points. Refunds use the same basis."""

    include_tax: bool = False
    include_shipping: bool = False
    include_gift_cards: bool = False


@immutable
class TicketAmounts:
    """A ticket's amounts in cents, each zero or positive.

    `ticket_discount_cents` is the ticket-level discount: what the item lines add up to
    beyond `subtotal`. It reduces the sold part only and never exceeds `sold_item_cents`.
    The extras are the tax, shipping and gift-card amounts that the basis includes, split
    by sign between the sold part and the returned part.
    """

    sold_item_cents: int
    returned_item_cents: int
    ticket_discount_cents: int
    sold_net_cents: int
    sold_extra_cents: int
    returned_extra_cents: int


def _counts(line: Line) -> bool:
    return not line.voided


def is_sold_item(line: Line) -> bool:
    """Tell whether a line belongs to the sold part: a non-voided item line with qty > 0."""
    return line.type == ITEM_LINE and _counts(line) and line.qty > 0


def is_returned_item(line: Line) -> bool:
    """Tell whether a line belongs to the returned part: a non-voided item line with qty < 0."""
    return line.type == ITEM_LINE and _counts(line) and line.qty < 0


def _extra_types(basis: AmountBasis) -> frozenset[str]:
    types: set[str] = set()
    if basis.include_shipping:
        types.add(SHIPPING_LINE)
    if basis.include_gift_cards:
        types.add(GIFT_CARD_LINE)
    return frozenset(types)


def ticket_amounts(ticket: Ticket, basis: AmountBasis) -> TicketAmounts:
    """Compute the sold and returned amounts of a ticket under `basis`."""
    # A sold line with a negative value (a reward item, for example) lowers the sold part.
    # Both sums stop at zero, so one part never reduces the other.
    sold_item = max(0, sum(line.value_cents for line in ticket.lines if is_sold_item(line)))
    returned_item = max(
        0, -sum(line.value_cents for line in ticket.lines if is_returned_item(line))
    )

    ticket_discount = 0
    if ticket.subtotal_cents is not None:
        # NOTE: this assumes `subtotal` is the item lines after ticket-level discounts. If
        # Heartland also counts gift-card lines in it, such a ticket shows no discount here.
        ticket_discount = max(0, (sold_item - returned_item) - ticket.subtotal_cents)
        ticket_discount = min(ticket_discount, sold_item)

    sold_extra = 0
    returned_extra = 0
    if basis.include_tax:
        if ticket.tax_cents > 0:
            sold_extra += ticket.tax_cents
        else:
            returned_extra -= ticket.tax_cents

    # Shipping and gift-card lines often carry no quantity, so their value's sign decides
    # which part they belong to.
    extra_types = _extra_types(basis)
    for line in ticket.lines:
        if line.type not in extra_types or not _counts(line):
            continue
        if line.value_cents > 0:
            sold_extra += line.value_cents
        else:
            returned_extra -= line.value_cents

    return TicketAmounts(
        sold_item_cents=sold_item,
        returned_item_cents=returned_item,
        ticket_discount_cents=ticket_discount,
        sold_net_cents=sold_item - ticket_discount,
        sold_extra_cents=sold_extra,
        returned_extra_cents=returned_extra,
    )


def earn_cents(amounts: TicketAmounts) -> int:
    """Return the eligible amount of the sold part: net items plus included extras."""
    return amounts.sold_net_cents + amounts.sold_extra_cents


def refund_cents(amounts: TicketAmounts, parent: ParentInfo) -> int:
    """Compute the eligible amount a return takes back from its parent sale.

    Returned items are valued at the price the parent actually received: the returned item
    amount times the parent's net-to-gross item ratio. The rounding runs over the parent's
    returns in order: a return takes the value of everything returned so far, including
    its own items, minus the value of what the returns before it returned, each rounded
    down to the cent. So every return is within a cent of its exact share. Returns that
    together return every item take back exactly the parent's net item amount. Rounding each
    return down on its own would leave a cent per return with the customer.
    Included extras are added in full. The result is capped at what the parent earned.
    Capping the sum of several returns is the caller's job.
    """
    returned_items = 0
    if parent.item_cents > 0:
        before = parent.returned_before_cents
        through = before + amounts.returned_item_cents
        net, gross = parent.item_net_cents, parent.item_cents
        returned_items = through * net // gross - before * net // gross
    refund = max(0, returned_items) + amounts.returned_extra_cents
    return min(refund, max(0, parent.earn_cents))
