"""Planning pushes from a decision and what the ledger already holds."""

from __future__ import annotations

from yotposync.sync.model import Decision, Kind
from yotposync.sync.plan import OrderBalance, PushRecord, plan_pushes

EMAIL = "pat@example.com"


def sale(ticket_id: int = 10, earn: int = 5000, email: str | None = EMAIL) -> Decision:
    return Decision(ticket_id, Kind.SALE, "sale", customer_id=7, email=email, earn_cents=earn)


def ret(ticket_id: int = 20, amount: int = 2000, parent: int = 10) -> Decision:
    return Decision(
        ticket_id,
        Kind.RETURN,
        "return",
        customer_id=7,
        email=EMAIL,
        return_cents=amount,
        parent_id=parent,
    )


def order(push_id: str, ticket_id: int, amount: int, email: str = EMAIL) -> PushRecord:
    return PushRecord(push_id, "order", ticket_id, email, 7, None, amount)


def test_new_sale_plans_one_order() -> None:
    pushes = plan_pushes(sale(), [], [], [], "hl")
    assert [(p.push_id, p.kind, p.amount_cents) for p in pushes] == [("hl-10", "order", 5000)]


def test_same_sale_again_plans_nothing() -> None:
    own = [order("hl-10", 10, 5000)]
    balances = [OrderBalance("hl-10", EMAIL, 7, 5000, 0)]
    assert plan_pushes(sale(), own, balances, [], "hl") == []


def test_sale_edited_up_plans_supplementary_order() -> None:
    own = [order("hl-10", 10, 5000)]
    balances = [OrderBalance("hl-10", EMAIL, 7, 5000, 0)]
    pushes = plan_pushes(sale(earn=6500), own, balances, [], "hl")
    assert [(p.push_id, p.amount_cents) for p in pushes] == [("hl-10-2", 1500)]


def test_sale_edited_down_plans_adjusting_refund() -> None:
    own = [order("hl-10", 10, 5000)]
    balances = [OrderBalance("hl-10", EMAIL, 7, 5000, 0)]
    pushes = plan_pushes(sale(earn=4000), own, balances, [], "hl")
    assert [(p.push_id, p.kind, p.target_order_id, p.amount_cents) for p in pushes] == [
        ("hl-adj-10-1", "refund", "hl-10", 1000)
    ]


def test_void_after_partial_return_refunds_only_remaining() -> None:
    own = [order("hl-10", 10, 5000)]
    balances = [OrderBalance("hl-10", EMAIL, 7, 5000, 2000)]
    voided = Decision(10, Kind.VOID, "voided after completion", customer_id=7, email=EMAIL)
    pushes = plan_pushes(voided, own, balances, [], "hl")
    assert [p.amount_cents for p in pushes] == [3000]


def test_customer_change_moves_credit() -> None:
    own = [PushRecord("hl-10", "order", 10, "old@example.com", 6, None, 5000)]
    balances = [OrderBalance("hl-10", "old@example.com", 6, 5000, 0)]
    pushes = plan_pushes(sale(), own, balances, [], "hl")
    assert [(p.push_id, p.email, p.amount_cents) for p in pushes] == [
        ("hl-adj-10-1", "old@example.com", 5000),
        ("hl-10-2", EMAIL, 5000),
    ]


def test_customer_change_after_return_moves_only_rest() -> None:
    # A return already took 2000 of the 5000 back from the old customer's order.
    own = [PushRecord("hl-10", "order", 10, "old@example.com", 6, None, 5000)]
    balances = [OrderBalance("hl-10", "old@example.com", 6, 5000, 2000)]
    pushes = plan_pushes(sale(), own, balances, [], "hl")
    assert [(p.push_id, p.email, p.amount_cents) for p in pushes] == [
        ("hl-adj-10-1", "old@example.com", 3000),
        ("hl-10-2", EMAIL, 3000),
    ]


def test_customer_change_after_full_return_moves_nothing() -> None:
    own = [PushRecord("hl-10", "order", 10, "old@example.com", 6, None, 5000)]
    balances = [OrderBalance("hl-10", "old@example.com", 6, 5000, 5000)]
    assert plan_pushes(sale(), own, balances, [], "hl") == []


def test_sale_after_return_seen_again_plans_nothing() -> None:
    own = [order("hl-10", 10, 5000)]
    balances = [OrderBalance("hl-10", EMAIL, 7, 5000, 2000)]
    assert plan_pushes(sale(), own, balances, [], "hl") == []


def test_edit_after_return_and_adjust_plans_difference() -> None:
    # The sale was edited down by 500 (own adjustment) and a return took 2000; an edit up to
    # 6000 then owes the customer 6000 - 2000 - (5000 - 500 - 2000) = 1500.
    own = [
        order("hl-10", 10, 5000),
        PushRecord("hl-adj-10-1", "adjust", 10, EMAIL, 7, "hl-10", 500),
    ]
    balances = [OrderBalance("hl-10", EMAIL, 7, 5000, 2500)]
    pushes = plan_pushes(sale(earn=6000), own, balances, [], "hl")
    assert [(p.push_id, p.kind, p.amount_cents) for p in pushes] == [("hl-10-2", "order", 1500)]


def test_restore_counts_as_credit_of_sale() -> None:
    # A return refunded 2000 and was voided: its restore order gave the 2000 back.
    own = [order("hl-10", 10, 5000)]
    balances = [
        OrderBalance("hl-10", EMAIL, 7, 5000, 2000),
        OrderBalance("hl-rst-20-1", EMAIL, 7, 2000, 0, role="restore"),
    ]
    assert plan_pushes(sale(), own, balances, [], "hl") == []

    voided = Decision(10, Kind.VOID, "voided after completion", customer_id=7, email=EMAIL)
    pushes = plan_pushes(voided, own, balances, [], "hl")
    assert [(p.target_order_id, p.amount_cents) for p in pushes] == [
        ("hl-10", 3000),
        ("hl-rst-20-1", 2000),
    ]


def test_customer_attached_later_plans_first_order() -> None:
    earlier_without_customer: list[PushRecord] = []
    pushes = plan_pushes(sale(), earlier_without_customer, [], [], "hl")
    assert [p.push_id for p in pushes] == ["hl-10"]


def test_return_refunds_against_parent_order() -> None:
    parent = [OrderBalance("hl-10", EMAIL, 7, 5000, 0)]
    pushes = plan_pushes(ret(), [], [], parent, "hl")
    assert [(p.push_id, p.kind, p.target_order_id, p.amount_cents) for p in pushes] == [
        ("hl-ret-20", "refund", "hl-10", 2000)
    ]


def test_return_capped_at_parent_remaining() -> None:
    parent = [OrderBalance("hl-10", EMAIL, 7, 5000, 4000)]
    pushes = plan_pushes(ret(amount=2500), [], [], parent, "hl")
    assert [p.amount_cents for p in pushes] == [1000]


def test_return_split_over_parent_orders() -> None:
    parent = [
        OrderBalance("hl-10", EMAIL, 7, 1000, 0),
        OrderBalance("hl-10-2", EMAIL, 7, 3000, 0),
    ]
    pushes = plan_pushes(ret(amount=2500), [], [], parent, "hl")
    assert [(p.push_id, p.target_order_id, p.amount_cents) for p in pushes] == [
        ("hl-ret-20", "hl-10", 1000),
        ("hl-ret-20-2", "hl-10-2", 1500),
    ]


def test_return_seen_again_plans_nothing() -> None:
    own = [PushRecord("hl-ret-20", "return", 20, EMAIL, 7, "hl-10", 2000)]
    parent = [OrderBalance("hl-10", EMAIL, 7, 5000, 2000)]
    assert plan_pushes(ret(), own, [], parent, "hl") == []


def test_voided_return_restores_with_order() -> None:
    own = [PushRecord("hl-ret-20", "return", 20, EMAIL, 7, "hl-10", 2000)]
    parent = [OrderBalance("hl-10", EMAIL, 7, 5000, 2000)]
    voided = Decision(20, Kind.VOID, "voided after completion", parent_id=10)
    pushes = plan_pushes(voided, own, [], parent, "hl")
    assert [(p.push_id, p.kind, p.email, p.amount_cents) for p in pushes] == [
        ("hl-rst-20-1", "order", EMAIL, 2000)
    ]


def test_exchange_plans_refund_and_order() -> None:
    decision = Decision(
        30,
        Kind.EXCHANGE,
        "exchange",
        customer_id=7,
        email=EMAIL,
        earn_cents=4000,
        return_cents=2000,
        parent_id=10,
    )
    parent = [OrderBalance("hl-10", EMAIL, 7, 5000, 0)]
    pushes = plan_pushes(decision, [], [], parent, "hl")
    assert sorted((p.push_id, p.kind, p.amount_cents) for p in pushes) == [
        ("hl-30", "order", 4000),
        ("hl-ret-30", "refund", 2000),
    ]


def test_sale_without_email_plans_nothing() -> None:
    assert plan_pushes(sale(email=None), [], [], [], "hl") == []


def test_ids_use_configured_prefix() -> None:
    pushes = plan_pushes(sale(), [], [], [], "hl-store2")
    assert pushes[0].push_id == "hl-store2-10"


def test_email_change_alone_moves_nothing() -> None:
    own = [order("hl-10", 10, 5000, email="old@example.com")]
    balances = [OrderBalance("hl-10", "old@example.com", 7, 5000, 0)]
    assert plan_pushes(sale(), own, balances, [], "hl") == []
