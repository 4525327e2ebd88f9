from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from yotposync.sync.amounts import (
    AmountBasis,
    TicketAmounts,
    earn_cents,
    refund_cents,
    ticket_amounts,
)
from yotposync.sync.model import Kind, Line, ParentInfo, Ticket

UPDATED = datetime(2025, 4, 2, 15, 7, 44, tzinfo=UTC)
ALL_EXTRAS = AmountBasis(include_tax=True, include_shipping=True, include_gift_cards=True)
ITEMS_ONLY = AmountBasis()


def item(qty: int, value_cents: int, line_id: int = 1, **changes: Any) -> Line:
    return Line(id=line_id, type="ItemLine", qty=qty, value_cents=value_cents, **changes)


def extra(line_type: str, value_cents: int, line_id: int = 90, qty: int = 0) -> Line:
    return Line(id=line_id, type=line_type, qty=qty, value_cents=value_cents)


def ticket(*lines: Line, subtotal: int | None = None, tax: int = 0) -> Ticket:
    return Ticket(
        id=5001,
        public_id="5001",
        type="Ticket",
        status="complete",
        completed=True,
        voided=False,
        customer_id=9100,
        station_id=310,
        location_id=201,
        sales_rep="Sam",
        parent_id=None,
        total_cents=0,
        subtotal_cents=subtotal,
        tax_cents=tax,
        balance_cents=0,
        completed_at=UPDATED,
        updated_at=UPDATED,
        local_completed_date="2025-04-02",
        lines=lines,
    )


def parent(earn: int, items: int, net: int, returned_before: int = 0) -> ParentInfo:
    return ParentInfo(
        ticket_id=5001,
        kind=Kind.SALE,
        rule=None,
        customer_id=9100,
        email="test.person@example.com",
        earn_cents=earn,
        item_cents=items,
        item_net_cents=net,
        returned_before_cents=returned_before,
    )


def test_amounts_reference_sale() -> None:
    amounts = ticket_amounts(ticket(item(2, 5400), subtotal=5400, tax=432), ITEMS_ONLY)
    assert amounts == TicketAmounts(
        sold_item_cents=5400,
        returned_item_cents=0,
        ticket_discount_cents=0,
        sold_net_cents=5400,
        sold_extra_cents=0,
        returned_extra_cents=0,
    )


def test_amounts_ticket_discount() -> None:
    amounts = ticket_amounts(ticket(item(2, 6000), subtotal=5400), ITEMS_ONLY)
    assert amounts.ticket_discount_cents == 600
    assert amounts.sold_net_cents == 5400


def test_amounts_unknown_subtotal_no_discount() -> None:
    amounts = ticket_amounts(ticket(item(2, 6000)), ITEMS_ONLY)
    assert amounts.ticket_discount_cents == 0


def test_amounts_subtotal_above_items_no_discount() -> None:
    amounts = ticket_amounts(ticket(item(1, 1000), subtotal=1200), ITEMS_ONLY)
    assert amounts.ticket_discount_cents == 0


def test_amounts_discount_capped_at_sold() -> None:
    amounts = ticket_amounts(ticket(item(1, 1000), subtotal=-500), ITEMS_ONLY)
    assert amounts.ticket_discount_cents == 1000
    assert amounts.sold_net_cents == 0


def test_amounts_return_lines() -> None:
    amounts = ticket_amounts(ticket(item(-1, -2700)), ITEMS_ONLY)
    assert amounts.sold_item_cents == 0
    assert amounts.returned_item_cents == 2700


def test_amounts_exchange_discount_on_sold_part() -> None:
    lines = (item(1, 6000, line_id=1), item(-1, -2000, line_id=2))
    amounts = ticket_amounts(ticket(*lines, subtotal=3500), ITEMS_ONLY)
    assert amounts.sold_item_cents == 6000
    assert amounts.returned_item_cents == 2000
    assert amounts.ticket_discount_cents == 500
    assert amounts.sold_net_cents == 5500


def test_amounts_return_subtotal_no_discount() -> None:
    amounts = ticket_amounts(ticket(item(-1, -2700), subtotal=-2700), ITEMS_ONLY)
    assert amounts.ticket_discount_cents == 0


def test_amounts_skip_voided_lines() -> None:
    lines = (item(1, 1000, line_id=1), item(1, 500, line_id=2, voided=True))
    amounts = ticket_amounts(ticket(*lines), ITEMS_ONLY)
    assert amounts.sold_item_cents == 1000


def test_amounts_skip_zero_qty_items() -> None:
    lines = (item(1, 1000, line_id=1), item(0, 700, line_id=2))
    amounts = ticket_amounts(ticket(*lines), ITEMS_ONLY)
    assert amounts.sold_item_cents == 1000


def test_amounts_tax_line_qty_zero_ignored() -> None:
    lines = (item(1, 1000), extra("TaxLine", 80))
    amounts = ticket_amounts(ticket(*lines), ITEMS_ONLY)
    assert amounts.sold_item_cents == 1000
    assert amounts.sold_extra_cents == 0


def test_amounts_unknown_line_type_ignored() -> None:
    lines = (item(1, 1000), Line(id=2, type="DiscountLine", qty=1, value_cents=-300))
    amounts = ticket_amounts(ticket(*lines), ALL_EXTRAS)
    assert amounts.sold_item_cents == 1000
    assert amounts.sold_extra_cents == 0


def test_amounts_reward_item_lowers_sold() -> None:
    lines = (item(1, 1000, line_id=1), item(1, -300, line_id=2))
    amounts = ticket_amounts(ticket(*lines), ITEMS_ONLY)
    assert amounts.sold_item_cents == 700


def test_amounts_sold_never_negative() -> None:
    amounts = ticket_amounts(ticket(item(1, -300)), ITEMS_ONLY)
    assert amounts.sold_item_cents == 0


def test_amounts_tax_excluded_by_default() -> None:
    amounts = ticket_amounts(ticket(item(1, 1000), tax=80), ITEMS_ONLY)
    assert amounts.sold_extra_cents == 0


def test_amounts_tax_included_on_sale() -> None:
    amounts = ticket_amounts(ticket(item(1, 1000), tax=80), AmountBasis(include_tax=True))
    assert amounts.sold_extra_cents == 80
    assert amounts.returned_extra_cents == 0


def test_amounts_negative_tax_on_return() -> None:
    amounts = ticket_amounts(ticket(item(-1, -1000), tax=-80), AmountBasis(include_tax=True))
    assert amounts.sold_extra_cents == 0
    assert amounts.returned_extra_cents == 80


def test_amounts_shipping_by_sign() -> None:
    lines = (extra("ShippingLine", 500, line_id=90), extra("ShippingLine", -200, line_id=91))
    amounts = ticket_amounts(ticket(*lines), AmountBasis(include_shipping=True))
    assert amounts.sold_extra_cents == 500
    assert amounts.returned_extra_cents == 200


def test_amounts_shipping_excluded() -> None:
    amounts = ticket_amounts(ticket(extra("ShippingLine", 500)), AmountBasis(include_tax=True))
    assert amounts.sold_extra_cents == 0


def test_amounts_gift_card_included() -> None:
    amounts = ticket_amounts(ticket(extra("GiftCardLine", 5000, qty=1)), ALL_EXTRAS)
    assert amounts.sold_extra_cents == 5000


def test_amounts_gift_card_excluded() -> None:
    amounts = ticket_amounts(ticket(extra("GiftCardLine", 5000, qty=1)), ITEMS_ONLY)
    assert amounts.sold_extra_cents == 0


def test_amounts_voided_extra_ignored() -> None:
    voided = replace(extra("ShippingLine", 500), voided=True)
    amounts = ticket_amounts(ticket(voided), ALL_EXTRAS)
    assert amounts.sold_extra_cents == 0


def test_earn_cents_adds_extras() -> None:
    lines = (item(2, 6000), extra("ShippingLine", 500))
    amounts = ticket_amounts(ticket(*lines, subtotal=5400, tax=432), ALL_EXTRAS)
    assert earn_cents(amounts) == 5400 + 432 + 500


def test_refund_full_return_matches_earn() -> None:
    sale = ticket_amounts(ticket(item(2, 6000), subtotal=5400), ITEMS_ONLY)
    ret = ticket_amounts(ticket(item(-2, -6000)), ITEMS_ONLY)
    info = parent(earn_cents(sale), sale.sold_item_cents, sale.sold_net_cents)
    assert refund_cents(ret, info) == 5400


def test_refund_partial_uses_net_ratio() -> None:
    ret = ticket_amounts(ticket(item(-1, -3000)), ITEMS_ONLY)
    assert refund_cents(ret, parent(5400, 6000, 5400)) == 2700


def test_refund_rounds_down() -> None:
    ret = ticket_amounts(ticket(item(-1, -1000)), ITEMS_ONLY)
    # 1000 * 2000 / 3000 = 666.67
    assert refund_cents(ret, parent(2000, 3000, 2000)) == 666


def test_refund_rounds_over_earlier_returns() -> None:
    ret = ticket_amounts(ticket(item(-1, -1000)), ITEMS_ONLY)
    # 3 x 10.00 less 5.00: the items returned through each return are worth 8.33, 16.66, 25.00.
    shares = [refund_cents(ret, parent(2500, 3000, 2500, before)) for before in (0, 1000, 2000)]
    assert shares == [833, 833, 834]


def test_refund_adds_returned_extras() -> None:
    ret = ticket_amounts(ticket(item(-1, -3000), tax=-240), AmountBasis(include_tax=True))
    assert refund_cents(ret, parent(5832, 6000, 5400)) == 2700 + 240


def test_refund_capped_at_parent_earned() -> None:
    ret = ticket_amounts(ticket(item(-3, -9000)), ITEMS_ONLY)
    assert refund_cents(ret, parent(5400, 6000, 5400)) == 5400


def test_refund_zero_parent_items_keeps_extras() -> None:
    ret = ticket_amounts(ticket(item(-1, -1000), tax=-80), AmountBasis(include_tax=True))
    assert refund_cents(ret, parent(500, 0, 0)) == 80


def test_refund_zero_parent_earn() -> None:
    ret = ticket_amounts(ticket(item(-1, -1000)), ITEMS_ONLY)
    assert refund_cents(ret, parent(0, 1000, 1000)) == 0


def test_refund_nothing_returned() -> None:
    ret = ticket_amounts(ticket(item(1, 1000)), ITEMS_ONLY)
    assert refund_cents(ret, parent(1000, 1000, 1000)) == 0


# Small prices make rounding errors large enough to matter.
_unit_prices = st.one_of(
    st.integers(min_value=1, max_value=5), st.integers(min_value=1, max_value=50_000)
)


@st.composite
def sale_and_returns(draw: st.DrawFn) -> tuple[list[Line], int, list[list[int]], int, int]:
    """A sale's item lines, its subtotal, per-line return quantities and tax amounts."""
    line_count = draw(st.integers(min_value=1, max_value=4))
    lines = []
    for index in range(line_count):
        qty = draw(st.integers(min_value=1, max_value=6))
        price = draw(_unit_prices)
        lines.append(item(qty, qty * price, line_id=index + 1, unit_price_cents=price))
    sold = sum(line.value_cents for line in lines)
    subtotal = draw(st.integers(min_value=0, max_value=sold))

    # Return some units of each line, one unit at a time, then group consecutive units
    # into return tickets. Many one-unit returns are the hardest case for rounding.
    units = [
        index
        for index, line in enumerate(lines)
        for _ in range(draw(st.integers(min_value=0, max_value=line.qty)))
    ]
    returns: list[list[int]] = []
    for position, index in enumerate(units):
        if position == 0 or draw(st.booleans()):
            returns.append([0] * line_count)
        returns[-1][index] += 1
    sale_tax = draw(st.integers(min_value=0, max_value=10_000))
    return_tax = draw(st.integers(min_value=0, max_value=10_000))
    return lines, subtotal, returns, sale_tax, return_tax


def return_ticket(lines: list[Line], quantities: list[int], tax: int) -> Ticket:
    returned = tuple(
        item(-qty, -qty * (line.unit_price_cents or 0), line_id=100 + line.id)
        for line, qty in zip(lines, quantities, strict=True)
        if qty
    )
    return ticket(*returned, tax=-tax)


@given(sale_and_returns())
def test_partial_refunds_within_net_items(
    case: tuple[list[Line], int, list[list[int]], int, int],
) -> None:
    lines, subtotal, returns, _, _ = case
    sale = ticket_amounts(ticket(*lines, subtotal=subtotal), ITEMS_ONLY)
    info = parent(earn_cents(sale), sale.sold_item_cents, sale.sold_net_cents)

    total = sum(
        refund_cents(ticket_amounts(return_ticket(lines, quantities, 0), ITEMS_ONLY), info)
        for quantities in returns
    )
    assert total <= earn_cents(sale)


@given(sale_and_returns())
def test_partial_refunds_with_running_cap(
    case: tuple[list[Line], int, list[list[int]], int, int],
) -> None:
    lines, subtotal, returns, sale_tax, return_tax = case
    sale = ticket_amounts(ticket(*lines, subtotal=subtotal, tax=sale_tax), ALL_EXTRAS)
    earned = earn_cents(sale)
    info = parent(earned, sale.sold_item_cents, sale.sold_net_cents)

    taken_back = 0
    for quantities in returns:
        ret = ticket_amounts(return_ticket(lines, quantities, return_tax), ALL_EXTRAS)
        refund = refund_cents(ret, info)
        assert 0 <= refund <= earned
        taken_back += min(refund, earned - taken_back)
    assert taken_back <= earned


@given(sale_and_returns())
def test_full_returns_take_back_net_items(
    case: tuple[list[Line], int, list[list[int]], int, int],
) -> None:
    lines, subtotal, returns, _, _ = case
    sale = ticket_amounts(ticket(*lines, subtotal=subtotal), ITEMS_ONLY)
    returned_before = 0
    total = 0
    for quantities in returns:
        ret = ticket_amounts(return_ticket(lines, quantities, 0), ITEMS_ONLY)
        info = parent(earn_cents(sale), sale.sold_item_cents, sale.sold_net_cents, returned_before)
        refund = refund_cents(ret, info)
        # Within a cent of the exact share of this return's items.
        exact = ret.returned_item_cents * sale.sold_net_cents / sale.sold_item_cents
        assert exact - 1 < refund < exact + 1
        total += refund
        returned_before += ret.returned_item_cents
    if returned_before == sale.sold_item_cents:
        assert total == sale.sold_net_cents
    else:
        assert total <= sale.sold_net_cents
