from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from yotposync.sync.amounts import AmountBasis
from yotposync.sync.classify import decide
from yotposync.sync.model import Customer, Decision, Kind, Line, ParentInfo, Ticket
from yotposync.sync.rules import CustomFieldRule, ExclusionRules

COMPLETED = datetime(2025, 4, 2, 15, 7, 43, tzinfo=UTC)
ITEMS_ONLY = AmountBasis()
DEFAULT_RULES = ExclusionRules()


def item(qty: int, value_cents: int, line_id: int = 1) -> Line:
    return Line(id=line_id, type="ItemLine", qty=qty, value_cents=value_cents)


SALE = Ticket(
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
    total_cents=5832,
    subtotal_cents=5400,
    tax_cents=432,
    balance_cents=0,
    completed_at=COMPLETED,
    updated_at=COMPLETED + timedelta(seconds=1),
    local_completed_date="2025-04-02",
    lines=(item(2, 6000), Line(id=2, type="TaxLine", qty=0, value_cents=432)),
)

RETURN = replace(
    SALE,
    id=5010,
    public_id="5010",
    type="Return",
    parent_id=5001,
    total_cents=-2916,
    subtotal_cents=None,
    tax_cents=-216,
    lines=(item(-1, -3000, line_id=3),),
)

EXCHANGE = replace(
    RETURN,
    id=5020,
    public_id="5020",
    type="Ticket",
    lines=(item(-1, -3000, line_id=4), item(1, 4000, line_id=5)),
)

CUSTOMER = Customer(
    id=9100,
    public_id="C-9100",
    email="test.person@example.com",
    first_name="Test",
    last_name="Person",
)

PARENT = ParentInfo(
    ticket_id=5001,
    kind=Kind.SALE,
    rule=None,
    customer_id=9100,
    email="test.person@example.com",
    earn_cents=5400,
    item_cents=6000,
    item_net_cents=5400,
)


def run(
    ticket: Ticket = SALE,
    customer: Customer | None = CUSTOMER,
    parent: ParentInfo | None = None,
    rules: ExclusionRules = DEFAULT_RULES,
    basis: AmountBasis = ITEMS_ONLY,
) -> Decision:
    return decide(ticket, customer, parent, rules, basis)


def test_sale_earns_net_amount() -> None:
    decision = run()
    assert decision.kind == Kind.SALE
    assert decision.earn_cents == 5400
    assert decision.return_cents == 0
    assert decision.rule is None
    assert decision.reason == "earns on 54.00"


def test_sale_carries_customer() -> None:
    decision = run()
    assert decision.ticket_id == 5001
    assert decision.customer_id == 9100
    assert decision.email == "test.person@example.com"
    assert decision.parent_id is None


def test_sale_includes_tax_when_configured() -> None:
    assert run(basis=AmountBasis(include_tax=True)).earn_cents == 5832


def test_sale_completed_by_status_only() -> None:
    assert run(replace(SALE, completed=False)).kind == Kind.SALE


def test_sale_completed_by_flag_only() -> None:
    assert run(replace(SALE, status="")).kind == Kind.SALE


def test_void_after_completion() -> None:
    decision = run(replace(SALE, voided=True))
    assert decision.kind == Kind.VOID
    assert decision.reason == "voided after completion"
    assert decision.earn_cents == 0


def test_void_before_completion() -> None:
    decision = run(replace(SALE, voided=True, completed=False, status="incomplete"))
    assert decision.kind == Kind.VOID
    assert decision.reason == "voided before completion"


def test_void_by_status() -> None:
    assert run(replace(SALE, status="voided", completed=False)).kind == Kind.VOID


def test_void_carries_customer() -> None:
    assert run(replace(SALE, voided=True)).customer_id == 9100


def test_not_completed() -> None:
    decision = run(replace(SALE, status="incomplete", completed=False, completed_at=None))
    assert decision.kind == Kind.NOT_COMPLETED
    assert decision.reason == "ticket is not completed (status incomplete)"


def test_before_go_live() -> None:
    rules = ExclusionRules(go_live=COMPLETED + timedelta(seconds=1))
    decision = run(rules=rules)
    assert decision.kind == Kind.BEFORE_GO_LIVE
    assert decision.earn_cents == 0
    assert decision.reason == (
        "completed at 2025-04-02T15:07:43+00:00, before go-live at 2025-04-02T15:07:44+00:00"
    )


def test_at_go_live_earns() -> None:
    assert run(rules=ExclusionRules(go_live=COMPLETED)).kind == Kind.SALE


def test_go_live_falls_back_to_updated_at() -> None:
    ticket = replace(SALE, completed_at=None)
    rules = ExclusionRules(go_live=COMPLETED + timedelta(seconds=1))
    assert run(ticket, rules=rules).kind == Kind.SALE


def test_go_live_naive_taken_as_utc() -> None:
    rules = ExclusionRules(go_live=datetime(2025, 4, 3))
    assert run(rules=rules).kind == Kind.BEFORE_GO_LIVE


def test_go_live_other_zone() -> None:
    # The sale completed at 10:07:43 in UTC-5, so a go-live of 10:08 there is later.
    go_live = datetime(2025, 4, 2, 10, 8, tzinfo=timezone(timedelta(hours=-5)))
    assert run(rules=ExclusionRules(go_live=go_live)).kind == Kind.BEFORE_GO_LIVE


def test_no_customer_on_ticket() -> None:
    decision = run(replace(SALE, customer_id=None), customer=None)
    assert decision.kind == Kind.NO_CUSTOMER
    assert decision.reason == "no customer on the ticket"
    assert decision.customer_id is None


def test_customer_not_found() -> None:
    decision = run(customer=None)
    assert decision.kind == Kind.NO_CUSTOMER
    assert decision.reason == "customer 9100 not found"
    assert decision.customer_id == 9100


def test_excluded_by_location() -> None:
    decision = run(rules=ExclusionRules(location_ids=frozenset({201})))
    assert decision.kind == Kind.EXCLUDED
    assert decision.rule == "location_id=201"
    assert decision.earn_cents == 0
    assert decision.reason == "excluded by location_id=201"


def test_excluded_cash_customer_without_email() -> None:
    customer = replace(CUSTOMER, public_id="CASH", email=None)
    decision = run(customer=customer)
    assert decision.kind == Kind.EXCLUDED
    assert decision.rule == "customer_public_id=CASH"


def test_excluded_staff_customer() -> None:
    rules = ExclusionRules(customer_custom=(CustomFieldRule("staff", "yes"),))
    decision = run(customer=replace(CUSTOMER, custom={"staff": "Yes"}), rules=rules)
    assert decision.rule == "customer_custom:staff=yes"


def test_excluded_below_minimum() -> None:
    decision = run(rules=ExclusionRules(minimum_amount_cents=6000))
    assert decision.kind == Kind.EXCLUDED
    assert decision.rule == "minimum_amount_cents=6000"


def test_no_email() -> None:
    decision = run(customer=replace(CUSTOMER, email=None))
    assert decision.kind == Kind.NO_EMAIL
    assert decision.reason == "customer 9100 has no e-mail address"
    assert decision.email is None


def test_no_email_with_problem() -> None:
    customer = replace(CUSTOMER, email=None, email_problem="the e-mail address has no @")
    decision = run(customer=customer)
    assert decision.kind == Kind.NO_EMAIL
    assert decision.reason == (
        "customer 9100 has no usable e-mail address: the e-mail address has no @"
    )


def test_sale_earning_zero_is_sale() -> None:
    decision = run(replace(SALE, subtotal_cents=0))
    assert decision.kind == Kind.SALE
    assert decision.earn_cents == 0


def test_return_takes_back_net_share() -> None:
    decision = run(RETURN, parent=PARENT)
    assert decision.kind == Kind.RETURN
    assert decision.return_cents == 2700
    assert decision.earn_cents == 0
    assert decision.parent_id == 5001
    assert decision.reason == "takes back 27.00 of parent sale 5001"


def test_return_includes_tax_when_configured() -> None:
    decision = run(RETURN, parent=PARENT, basis=AmountBasis(include_tax=True))
    assert decision.return_cents == 2700 + 216


def test_return_without_customer() -> None:
    decision = run(replace(RETURN, customer_id=None), customer=None, parent=PARENT)
    assert decision.kind == Kind.RETURN
    assert decision.return_cents == 2700


def test_return_ignores_exclusion_rules() -> None:
    rules = ExclusionRules(location_ids=frozenset({201}), minimum_amount_cents=100_000)
    assert run(RETURN, parent=PARENT, rules=rules).kind == Kind.RETURN


def test_return_of_cash_sale_follows_parent() -> None:
    parent = replace(PARENT, kind=Kind.EXCLUDED, rule="customer_public_id=CASH", earn_cents=0)
    decision = run(RETURN, customer=replace(CUSTOMER, public_id="CASH"), parent=parent)
    assert decision.kind == Kind.EXCLUDED
    assert decision.rule == "customer_public_id=CASH"
    assert decision.reason == "parent sale 5001 was excluded by customer_public_id=CASH"
    assert decision.return_cents == 0


def test_return_without_parent_id_is_blind() -> None:
    decision = run(replace(RETURN, parent_id=None))
    assert decision.kind == Kind.BLIND_RETURN
    assert decision.reason == "return without a parent sale: nothing to take back"
    assert decision.return_cents == 0


def test_return_parent_not_found() -> None:
    decision = run(RETURN, parent=None)
    assert decision.kind == Kind.BLIND_RETURN
    assert decision.reason == "parent ticket 5001 not found"


def test_return_parent_without_email() -> None:
    parent = replace(PARENT, kind=Kind.NO_EMAIL, earn_cents=0)
    decision = run(RETURN, parent=parent)
    assert decision.kind == Kind.PARENT_NOT_EARNED
    assert decision.reason == "parent sale 5001 earns nothing now (decided as no_email)"


def test_return_parent_earned_zero() -> None:
    # A sale paid in full by a coupon: decided as a sale, but with nothing that earns.
    parent = replace(PARENT, earn_cents=0)
    decision = run(RETURN, parent=parent)
    assert decision.kind == Kind.PARENT_NOT_EARNED
    assert decision.reason == (
        "parent sale 5001 earns nothing now (decided as sale with no amount that earns)"
    )


def test_return_parent_voided() -> None:
    parent = replace(PARENT, kind=Kind.VOID)
    assert run(RETURN, parent=parent).kind == Kind.PARENT_NOT_EARNED


def test_return_parent_exchange_earned() -> None:
    parent = replace(PARENT, kind=Kind.EXCHANGE)
    assert run(RETURN, parent=parent).return_cents == 2700


def test_return_capped_at_parent_earned() -> None:
    ticket = replace(RETURN, lines=(item(-5, -15000, line_id=3),))
    assert run(ticket, parent=PARENT).return_cents == 5400


def test_return_typed_ticket_by_lines() -> None:
    assert run(replace(RETURN, type="Ticket"), parent=PARENT).kind == Kind.RETURN


def test_sale_typed_return_by_lines() -> None:
    assert run(replace(SALE, type="Return")).kind == Kind.SALE


def test_exchange_both_parts() -> None:
    decision = run(EXCHANGE, parent=PARENT)
    assert decision.kind == Kind.EXCHANGE
    assert decision.earn_cents == 4000
    assert decision.return_cents == 2700
    assert decision.reason == (
        "sold part: earns on 40.00; returned part: takes back 27.00 of parent sale 5001"
    )


def test_exchange_blind_return_still_earns() -> None:
    decision = run(replace(EXCHANGE, parent_id=None))
    assert decision.kind == Kind.EXCHANGE
    assert decision.earn_cents == 4000
    assert decision.return_cents == 0
    assert "nothing to take back" in decision.reason


def test_exchange_without_email_still_takes_back() -> None:
    decision = run(EXCHANGE, customer=replace(CUSTOMER, email=None), parent=PARENT)
    assert decision.kind == Kind.EXCHANGE
    assert decision.earn_cents == 0
    assert decision.return_cents == 2700


def test_exchange_excluded_sold_part_keeps_rule() -> None:
    rules = ExclusionRules(location_ids=frozenset({201}))
    decision = run(EXCHANGE, parent=PARENT, rules=rules)
    assert decision.kind == Kind.EXCHANGE
    assert decision.rule == "location_id=201"
    assert decision.earn_cents == 0
    assert decision.return_cents == 2700


def test_exchange_excluded_parent_keeps_rule() -> None:
    parent = replace(PARENT, kind=Kind.EXCLUDED, rule="station_id=310", earn_cents=0)
    decision = run(EXCHANGE, parent=parent)
    assert decision.kind == Kind.EXCHANGE
    assert decision.rule == "station_id=310"
    assert decision.earn_cents == 4000


def test_exchange_without_effect() -> None:
    decision = run(replace(EXCHANGE, parent_id=None), customer=replace(CUSTOMER, email=None))
    assert decision.kind == Kind.NO_EMAIL
    assert decision.earn_cents == 0
    assert decision.return_cents == 0
    assert "nothing to take back" in decision.reason


def test_no_item_lines_earns_extras() -> None:
    ticket = replace(
        SALE, subtotal_cents=None, lines=(Line(id=9, type="ShippingLine", qty=0, value_cents=500),)
    )
    decision = run(ticket, basis=AmountBasis(include_shipping=True))
    assert decision.kind == Kind.SALE
    assert decision.earn_cents == 500


def test_no_lines_earns_nothing() -> None:
    decision = run(replace(SALE, lines=(), subtotal_cents=None))
    assert decision.kind == Kind.SALE
    assert decision.earn_cents == 0


def test_voided_return_lines_ignored() -> None:
    lines = (item(1, 4000, line_id=5), replace(item(-1, -3000, line_id=4), voided=True))
    decision = run(replace(EXCHANGE, lines=lines), parent=PARENT)
    assert decision.kind == Kind.SALE
    assert decision.earn_cents == 4000


_moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
_lines = st.builds(
    Line,
    id=st.integers(min_value=1, max_value=10**6),
    type=st.sampled_from(["ItemLine", "TaxLine", "ShippingLine", "GiftCardLine", "Other"]),
    qty=st.integers(min_value=-5, max_value=5),
    value_cents=st.integers(min_value=-(10**9), max_value=10**9),
    voided=st.booleans(),
)
_optional_ids = st.none() | st.integers(min_value=1, max_value=10**6)
_tickets = st.builds(
    Ticket,
    id=st.integers(min_value=1, max_value=10**6),
    public_id=st.text(max_size=6),
    type=st.sampled_from(["Ticket", "Return", "Layaway"]),
    status=st.sampled_from(["complete", "incomplete", "voided", "", "held"]),
    completed=st.booleans(),
    voided=st.booleans(),
    customer_id=_optional_ids,
    station_id=_optional_ids,
    location_id=_optional_ids,
    sales_rep=st.text(max_size=6),
    parent_id=_optional_ids,
    total_cents=st.integers(min_value=-(10**9), max_value=10**9),
    subtotal_cents=st.none() | st.integers(min_value=-(10**9), max_value=10**9),
    tax_cents=st.integers(min_value=-(10**7), max_value=10**7),
    balance_cents=st.integers(min_value=-(10**9), max_value=10**9),
    completed_at=st.none() | _moments,
    updated_at=_moments,
    local_completed_date=st.none(),
    custom=st.dictionaries(
        st.sampled_from(["channel", "web_order_no"]), st.none() | st.text(max_size=4)
    ),
    lines=st.lists(_lines, max_size=6).map(tuple),
)
_customers = st.none() | st.builds(
    Customer,
    id=st.integers(min_value=1, max_value=10**6),
    public_id=st.sampled_from(["CASH", "C-1", ""]),
    email=st.none() | st.just("pat@example.com"),
    first_name=st.just(""),
    last_name=st.just(""),
    custom=st.dictionaries(st.just("staff"), st.none() | st.text(max_size=3)),
)
_parents = st.none() | st.builds(
    ParentInfo,
    ticket_id=st.integers(min_value=1, max_value=10**6),
    kind=st.sampled_from(list(Kind)),
    rule=st.none() | st.just("location_id=201"),
    customer_id=_optional_ids,
    email=st.none() | st.just("pat@example.com"),
    earn_cents=st.integers(min_value=-10, max_value=10**9),
    item_cents=st.integers(min_value=-10, max_value=10**9),
    item_net_cents=st.integers(min_value=-10, max_value=10**9),
)
_rules = st.builds(
    ExclusionRules,
    location_ids=st.frozensets(st.integers(min_value=1, max_value=5)),
    sales_reps=st.frozensets(st.text(max_size=3)),
    public_id_prefixes=st.lists(st.text(max_size=2), max_size=2).map(tuple),
    ticket_custom=st.lists(
        st.builds(CustomFieldRule, key=st.just("channel"), equals=st.none() | st.text(max_size=3)),
        max_size=2,
    ).map(tuple),
    minimum_amount_cents=st.integers(min_value=0, max_value=10_000),
    go_live=st.none() | _moments,
)
_bases = st.builds(AmountBasis, st.booleans(), st.booleans(), st.booleans())


@given(_tickets, _customers, _parents, _rules, _bases)
def test_decide_never_raises(
    ticket: Ticket,
    customer: Customer | None,
    parent: ParentInfo | None,
    rules: ExclusionRules,
    basis: AmountBasis,
) -> None:
    decision = decide(ticket, customer, parent, rules, basis)
    assert decision.earn_cents >= 0
    assert decision.return_cents >= 0
    assert decision.reason
