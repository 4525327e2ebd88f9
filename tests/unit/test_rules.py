from dataclasses import replace
from datetime import UTC, datetime

import pytest

from yotposync.sync.model import Customer, Ticket
from yotposync.sync.rules import CustomFieldRule, ExclusionRules, match_exclusion

UPDATED = datetime(2025, 4, 2, 15, 7, 44, tzinfo=UTC)

TICKET = Ticket(
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
    completed_at=UPDATED,
    updated_at=UPDATED,
    local_completed_date="2025-04-02",
    custom={"web_order_no": None, "channel": "store"},
)

CUSTOMER = Customer(
    id=9100,
    public_id="C-9100",
    email="test.person@example.com",
    first_name="Test",
    last_name="Person",
    custom={"staff": None},
)

NO_RULES = ExclusionRules(customer_public_ids=frozenset())


def match(
    rules: ExclusionRules,
    ticket: Ticket = TICKET,
    customer: Customer | None = CUSTOMER,
    earn: int = 5400,
) -> str | None:
    return match_exclusion(ticket, customer, rules, earn)


def test_no_rules_match_nothing() -> None:
    assert match(NO_RULES) is None


def test_default_rules_exclude_cash() -> None:
    assert match(ExclusionRules(), customer=replace(CUSTOMER, public_id="CASH")) == (
        "customer_public_id=CASH"
    )


def test_default_rules_pass_named_customer() -> None:
    assert match(ExclusionRules()) is None


def test_location_rule() -> None:
    assert match(ExclusionRules(location_ids=frozenset({201}))) == "location_id=201"


def test_location_rule_other_location() -> None:
    assert match(ExclusionRules(location_ids=frozenset({202}))) is None


def test_location_rule_null_location() -> None:
    rules = ExclusionRules(location_ids=frozenset({201}))
    assert match(rules, ticket=replace(TICKET, location_id=None)) is None


def test_station_rule() -> None:
    assert match(ExclusionRules(station_ids=frozenset({310}))) == "station_id=310"


@pytest.mark.parametrize("rep", ["Ecommerce", "ecommerce", " ECOMMERCE "])
def test_sales_rep_rule_ignores_case(rep: str) -> None:
    rules = ExclusionRules(sales_reps=frozenset({"Ecommerce"}))
    assert match(rules, ticket=replace(TICKET, sales_rep=rep)) == "sales_rep=Ecommerce"


def test_sales_rep_rule_blank_rep() -> None:
    rules = ExclusionRules(sales_reps=frozenset({"Ecommerce", " "}))
    assert match(rules, ticket=replace(TICKET, sales_rep="")) is None


def test_sales_rep_rule_unknown_rep_kept() -> None:
    rules = ExclusionRules(sales_reps=frozenset({"Ecommerce"}))
    assert match(rules, ticket=replace(TICKET, sales_rep="Unknown(Ecommerce)")) is None


def test_public_id_prefix_rule() -> None:
    rules = ExclusionRules(public_id_prefixes=("X", "W"))
    assert match(rules, ticket=replace(TICKET, public_id="W1001")) == "public_id_prefix=W"


def test_public_id_prefix_ignores_case() -> None:
    rules = ExclusionRules(public_id_prefixes=("WEB-",))
    assert match(rules, ticket=replace(TICKET, public_id="web-1001")) == "public_id_prefix=WEB-"


def test_public_id_prefix_blank_ignored() -> None:
    assert match(ExclusionRules(public_id_prefixes=("",))) is None


def test_ticket_custom_present() -> None:
    rules = ExclusionRules(ticket_custom=(CustomFieldRule("web_order_no"),))
    ticket = replace(TICKET, custom={"web_order_no": "W-77"})
    assert match(rules, ticket=ticket) == "ticket_custom:web_order_no present"


@pytest.mark.parametrize("value", [None, "", "   "])
def test_ticket_custom_absent_values(value: str | None) -> None:
    rules = ExclusionRules(ticket_custom=(CustomFieldRule("web_order_no"),))
    ticket = replace(TICKET, custom={"web_order_no": value})
    assert match(rules, ticket=ticket) is None


def test_ticket_custom_missing_key() -> None:
    rules = ExclusionRules(ticket_custom=(CustomFieldRule("web_order_no"),))
    assert match(rules, ticket=replace(TICKET, custom={})) is None


def test_ticket_custom_equals() -> None:
    rules = ExclusionRules(ticket_custom=(CustomFieldRule("channel", "web"),))
    ticket = replace(TICKET, custom={"channel": " Web "})
    assert match(rules, ticket=ticket) == "ticket_custom:channel=web"


def test_ticket_custom_equals_other_value() -> None:
    rules = ExclusionRules(ticket_custom=(CustomFieldRule("channel", "web"),))
    assert match(rules) is None


def test_customer_public_id_ignores_case() -> None:
    rules = ExclusionRules(customer_public_ids=frozenset({"CASH"}))
    customer = replace(CUSTOMER, public_id="cash")
    assert match(rules, customer=customer) == "customer_public_id=CASH"


def test_customer_custom_equals() -> None:
    rules = ExclusionRules(customer_custom=(CustomFieldRule("staff", "yes"),))
    customer = replace(CUSTOMER, custom={"staff": "YES"})
    assert match(rules, customer=customer) == "customer_custom:staff=yes"


def test_customer_custom_present() -> None:
    rules = ExclusionRules(customer_custom=(CustomFieldRule("staff"),))
    customer = replace(CUSTOMER, custom={"staff": "1"})
    assert match(rules, customer=customer) == "customer_custom:staff present"


def test_customer_rules_skip_missing_customer() -> None:
    rules = ExclusionRules(
        customer_public_ids=frozenset({"CASH"}), customer_custom=(CustomFieldRule("staff"),)
    )
    assert match(rules, customer=None) is None


def test_minimum_amount_below() -> None:
    rules = ExclusionRules(minimum_amount_cents=500)
    assert match(rules, earn=499) == "minimum_amount_cents=500"


def test_minimum_amount_reached() -> None:
    assert match(ExclusionRules(minimum_amount_cents=500), earn=500) is None


def test_minimum_amount_zero_earn() -> None:
    assert match(ExclusionRules(minimum_amount_cents=500), earn=0) is None


def test_first_rule_wins_in_order() -> None:
    rules = ExclusionRules(
        location_ids=frozenset({201}),
        station_ids=frozenset({310}),
        sales_reps=frozenset({"Sam"}),
        public_id_prefixes=("5",),
        ticket_custom=(CustomFieldRule("channel"),),
        customer_public_ids=frozenset({"C-9100"}),
        customer_custom=(CustomFieldRule("staff"),),
        minimum_amount_cents=10_000,
    )
    customer = replace(CUSTOMER, custom={"staff": "yes"})
    expected_order = [
        "location_id=201",
        "station_id=310",
        "sales_rep=Sam",
        "public_id_prefix=5",
        "ticket_custom:channel present",
        "customer_public_id=C-9100",
        "customer_custom:staff present",
        "minimum_amount_cents=10000",
    ]
    seen = []
    for _ in expected_order:
        rule = match(rules, customer=customer)
        assert rule is not None
        seen.append(rule)
        rules = _without(rules, rule)
    assert seen == expected_order
    assert match(rules, customer=customer) is None


def _without(rules: ExclusionRules, rule: str) -> ExclusionRules:
    """Remove the rule that matched, so the next one in order can match."""
    name = rule.split("=")[0].split(":")[0].split(" ")[0]
    empty = ExclusionRules(customer_public_ids=frozenset())
    field = {
        "location_id": "location_ids",
        "station_id": "station_ids",
        "sales_rep": "sales_reps",
        "public_id_prefix": "public_id_prefixes",
        "ticket_custom": "ticket_custom",
        "customer_public_id": "customer_public_ids",
        "customer_custom": "customer_custom",
        "minimum_amount_cents": "minimum_amount_cents",
    }[name]
    return replace(rules, **{field: getattr(empty, field)})


def test_custom_field_rule_describe_trims() -> None:
    assert CustomFieldRule("channel", " web ").describe("ticket_custom") == (
        "ticket_custom:channel=web"
    )
