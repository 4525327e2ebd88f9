from copy import deepcopy
from datetime import UTC, datetime
from typing import Any

import pytest

from yotposync.errors import InvalidRecordError
from yotposync.logs import register_secret
from yotposync.sync.model import CouponReference
from yotposync.sync.parse import check_email, parse_customer, parse_line, parse_ticket

# A completed sale as GET /api/sales/tickets/5001 returns it with subtotal and tax_total.
SALE: dict[str, Any] = {
    "id": 5001,
    "public_id": "5001",
    "type": "Ticket",
    "status": "complete",
    "completed?": True,
    "voided?": False,
    "customer_id": 9100,
    "customer_name": "Test Person",
    "sales_rep": "Sam",
    "station_id": 310,
    "source_location_id": 201,
    "parent_transaction_id": None,
    "original_subtotal": 60.00,
    "subtotal": 54.00,
    "total_discounts": 6.00,
    "tax_total": 4.32,
    "total": 58.32,
    "total_paid": 58.32,
    "balance": 0,
    "created_at": "2025-04-02T15:01:10Z",
    "updated_at": "2025-04-02T15:07:44Z",
    "completed_at": "2025-04-02T15:07:43Z",
    "local_completed_at": "2025-04-02T10:07:43",
    "custom": {"web_order_no": None},
}

SALE_LINES: list[dict[str, Any]] = [
    {
        "id": 77001,
        "type": "ItemLine",
        "item_id": 4400,
        "description": "Canvas Tote",
        "qty": 2,
        "original_unit_price": 30.00,
        "adjusted_unit_price": 27.00,
        "unit_price": 27.00,
        "value": 54.00,
        "price_adjustments": [{"id": 880, "delta_price": -3.00}],
    },
    {"id": 77002, "type": "TaxLine", "description": "Sales Tax", "value": 4.32},
]

RETURN: dict[str, Any] = {
    "id": 5010,
    "public_id": "5010",
    "type": "Return",
    "status": "complete",
    "completed?": True,
    "parent_transaction_id": 5001,
    "customer_id": 9100,
    "station_id": 310,
    "source_location_id": 201,
    "total": -29.16,
    "balance": 0,
    "completed_at": "2025-04-09T18:20:00Z",
    "updated_at": "2025-04-09T18:20:01+00:00",
    "lines": [
        {
            "id": 77050,
            "type": "ItemLine",
            "item_id": 4400,
            "qty": -1,
            "adjusted_unit_price": 27.00,
            "value": -27.00,
        }
    ],
}

CUSTOMER: dict[str, Any] = {
    "id": 9100,
    "public_id": "C-9100",
    "first_name": "Test",
    "last_name": "Person",
    "email": "test.person@example.com",
    "active": True,
    "custom": {"loyalty_tier": "gold"},
    "created_at": "2024-11-01T12:00:00Z",
    "updated_at": "2025-04-02T15:07:44Z",
}


def sale(**changes: Any) -> dict[str, Any]:
    raw = deepcopy(SALE)
    raw.update(changes)
    return raw


def line(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {"id": 1, "type": "ItemLine", "qty": 1, "value": 10}
    raw.update(changes)
    return raw


def customer(**changes: Any) -> dict[str, Any]:
    raw = deepcopy(CUSTOMER)
    raw.update(changes)
    return raw


def test_parse_ticket_reference_sale() -> None:
    ticket = parse_ticket(SALE, SALE_LINES)
    assert ticket.id == 5001
    assert ticket.public_id == "5001"
    assert ticket.type == "Ticket"
    assert ticket.status == "complete"
    assert ticket.completed is True
    assert ticket.voided is False
    assert ticket.customer_id == 9100
    assert ticket.station_id == 310
    assert ticket.location_id == 201
    assert ticket.sales_rep == "Sam"
    assert ticket.parent_id is None
    assert ticket.total_cents == 5832
    assert ticket.subtotal_cents == 5400
    assert ticket.tax_cents == 432
    assert ticket.balance_cents == 0
    assert ticket.completed_at == datetime(2025, 4, 2, 15, 7, 43, tzinfo=UTC)
    assert ticket.updated_at == datetime(2025, 4, 2, 15, 7, 44, tzinfo=UTC)
    assert ticket.local_completed_date == "2025-04-02"
    assert ticket.custom == {"web_order_no": None}
    assert ticket.coupon is None


def test_parse_ticket_reference_lines() -> None:
    item, tax = parse_ticket(SALE, SALE_LINES).lines
    assert item.id == 77001
    assert item.type == "ItemLine"
    assert item.qty == 2
    assert item.value_cents == 5400
    assert item.unit_price_cents == 2700
    assert item.item_id == 4400
    assert item.description == "Canvas Tote"
    assert item.voided is False
    assert tax.type == "TaxLine"
    assert tax.qty == 0
    assert tax.value_cents == 432
    assert tax.item_id is None


def test_parse_ticket_reference_return() -> None:
    ticket = parse_ticket(RETURN)
    assert ticket.type == "Return"
    assert ticket.parent_id == 5001
    assert ticket.total_cents == -2916
    assert ticket.subtotal_cents is None
    assert ticket.tax_cents == 0
    assert ticket.lines[0].qty == -1
    assert ticket.lines[0].value_cents == -2700


def test_parse_ticket_rejects_itself_as_parent() -> None:
    raw = {**RETURN, "parent_transaction_id": RETURN["id"]}
    with pytest.raises(InvalidRecordError, match="cannot be its own parent sale"):
        parse_ticket(raw)


def test_parse_ticket_lines_argument_wins() -> None:
    raw = sale(lines=[line(id=1, value=99)])
    ticket = parse_ticket(raw, SALE_LINES)
    assert [parsed.id for parsed in ticket.lines] == [77001, 77002]


def test_parse_ticket_empty_lines_argument() -> None:
    assert parse_ticket(SALE, []).lines == ()


def test_parse_ticket_without_lines_raises() -> None:
    with pytest.raises(InvalidRecordError) as caught:
        parse_ticket(SALE)
    assert caught.value.field == "lines"
    assert caught.value.record == "ticket 5001"


def test_parse_ticket_lines_not_array() -> None:
    with pytest.raises(InvalidRecordError):
        parse_ticket(sale(lines="77001"))


@pytest.mark.parametrize("key", ["id", "type", "updated_at"])
def test_parse_ticket_missing_required(key: str) -> None:
    raw = sale()
    del raw[key]
    with pytest.raises(InvalidRecordError) as caught:
        parse_ticket(raw, SALE_LINES)
    assert caught.value.field == key


def test_parse_ticket_missing_id_label() -> None:
    raw = sale()
    del raw["id"]
    with pytest.raises(InvalidRecordError) as caught:
        parse_ticket(raw, SALE_LINES)
    assert caught.value.record == "ticket with public_id 5001"


@pytest.mark.parametrize("value", ["5001", " 5001 "])
def test_parse_ticket_id_from_text(value: str) -> None:
    assert parse_ticket(sale(id=value), SALE_LINES).id == 5001


@pytest.mark.parametrize("value", [5001.0, "5001.5", "abc", True, None, [5001]])
def test_parse_ticket_rejects_bad_id(value: object) -> None:
    with pytest.raises(InvalidRecordError):
        parse_ticket(sale(id=value), SALE_LINES)


@pytest.mark.parametrize(
    "key", ["customer_id", "station_id", "source_location_id", "parent_transaction_id"]
)
def test_parse_ticket_rejects_float_reference(key: str) -> None:
    with pytest.raises(InvalidRecordError) as caught:
        parse_ticket(sale(**{key: 9100.5}), SALE_LINES)
    assert caught.value.field == key


def test_parse_ticket_null_customer() -> None:
    assert parse_ticket(sale(customer_id=None), SALE_LINES).customer_id is None


def test_parse_ticket_status_lower_cased() -> None:
    assert parse_ticket(sale(status="Complete"), SALE_LINES).status == "complete"


def test_parse_ticket_missing_status() -> None:
    raw = sale()
    del raw["status"]
    assert parse_ticket(raw, SALE_LINES).status == ""


def test_parse_ticket_rejects_text_flag() -> None:
    with pytest.raises(InvalidRecordError) as caught:
        parse_ticket(sale(**{"voided?": "yes"}), SALE_LINES)
    assert caught.value.field == "voided?"


def test_parse_ticket_missing_flags_false() -> None:
    raw = sale()
    del raw["completed?"]
    del raw["voided?"]
    ticket = parse_ticket(raw, SALE_LINES)
    assert ticket.completed is False
    assert ticket.voided is False


def test_parse_ticket_total_tax_preferred() -> None:
    ticket = parse_ticket(sale(total_tax=4.33, tax_total=4.32), SALE_LINES)
    assert ticket.tax_cents == 433


def test_parse_ticket_tax_total_fallback() -> None:
    ticket = parse_ticket(sale(total_tax=None, tax_total=4.32), SALE_LINES)
    assert ticket.tax_cents == 432


def test_parse_ticket_rejects_bad_total() -> None:
    with pytest.raises(InvalidRecordError) as caught:
        parse_ticket(sale(total="58.32 USD"), SALE_LINES)
    assert caught.value.field == "total"


def test_parse_ticket_missing_balance_is_unpaid() -> None:
    raw = sale()
    del raw["balance"]
    assert parse_ticket(raw, SALE_LINES).balance_cents == 5832


def test_parse_ticket_negative_balance() -> None:
    assert parse_ticket(sale(balance=-1.5), SALE_LINES).balance_cents == -150


def test_parse_ticket_open_ticket() -> None:
    raw = sale(status="incomplete", completed_at=None, local_completed_at=None, balance=58.32)
    raw["completed?"] = False
    ticket = parse_ticket(raw, SALE_LINES)
    assert ticket.completed_at is None
    assert ticket.local_completed_date is None
    assert ticket.balance_cents == 5832


def test_parse_ticket_local_date_ignores_suffix() -> None:
    ticket = parse_ticket(sale(local_completed_at="2025-04-02T22:07:43+00:00"), SALE_LINES)
    assert ticket.local_completed_date == "2025-04-02"


def test_parse_ticket_offset_timestamps() -> None:
    ticket = parse_ticket(sale(completed_at="2025-04-02T10:07:43-05:00"), SALE_LINES)
    assert ticket.completed_at == datetime(2025, 4, 2, 15, 7, 43, tzinfo=UTC)


def test_parse_ticket_rejects_bad_updated_at() -> None:
    with pytest.raises(InvalidRecordError) as caught:
        parse_ticket(sale(updated_at="2025-04-02"), SALE_LINES)
    assert caught.value.field == "updated_at"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, ""), ("", ""), ("  ", ""), (" Sam ", "Sam"), ("Unknown(Pat)", "Unknown(Pat)")],
)
def test_parse_ticket_sales_rep(value: object, expected: str) -> None:
    assert parse_ticket(sale(sales_rep=value), SALE_LINES).sales_rep == expected


def test_parse_ticket_public_id_number() -> None:
    assert parse_ticket(sale(public_id=5001), SALE_LINES).public_id == "5001"


def test_parse_ticket_custom_values_to_text() -> None:
    raw = sale(custom={"a": "web", "b": 247, "c": 1.5, "d": None, "e": True})
    custom = parse_ticket(raw, SALE_LINES).custom
    assert custom == {"a": "web", "b": "247", "c": "1.5", "d": None, "e": "true"}


def test_parse_ticket_top_level_custom_members() -> None:
    raw = sale(custom={"channel": "web"})
    raw["custom@web_order_no"] = 1234
    raw["custom@channel"] = "store"
    custom = parse_ticket(raw, SALE_LINES).custom
    assert custom == {"web_order_no": "1234", "channel": "web"}


def test_parse_ticket_custom_members_beside_other_keys() -> None:
    raw: dict[Any, Any] = sale()
    raw["my_custom@note"] = "not a custom field"
    raw[7] = "a key that is not text"
    raw["custom@lane"] = 3
    custom = parse_ticket(raw, SALE_LINES).custom
    assert custom["lane"] == "3"
    assert "note" not in custom
    del raw[7]
    assert parse_ticket(raw, SALE_LINES).custom == custom


def test_parse_ticket_rejects_custom_array() -> None:
    with pytest.raises(InvalidRecordError) as caught:
        parse_ticket(sale(custom=["web"]), SALE_LINES)
    assert caught.value.field == "custom"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        (61, CouponReference(coupon_id=61)),
        (" 61 ", CouponReference(coupon_id=61)),
        ("LOYALTY3101", CouponReference(code="LOYALTY3101")),
        ({"id": 61, "code": "LOYALTY3101"}, CouponReference(coupon_id=61, code="LOYALTY3101")),
        ({"id": "61"}, CouponReference(coupon_id=61)),
        ({"code": " SBX1 "}, CouponReference(code="SBX1")),
        (True, CouponReference(unreadable="True")),
        (6.1, CouponReference(unreadable="6.1")),
        ([61], CouponReference(unreadable="[61]")),
        ({"name": "x"}, CouponReference(unreadable="{'name': 'x'}")),
    ],
)
def test_parse_ticket_coupon_reference(value: object, expected: CouponReference | None) -> None:
    # Whatever `coupon_id` holds, the ticket itself stays usable: the coupon does not change
    # what the sale earns.
    assert parse_ticket(sale(coupon_id=value), SALE_LINES).coupon == expected


def test_parse_ticket_unknown_line_type_kept() -> None:
    ticket = parse_ticket(SALE, [line(type="DiscountLine", qty=None, value=-5)])
    assert ticket.lines[0].type == "DiscountLine"


def test_parse_ticket_line_error_names_line() -> None:
    with pytest.raises(InvalidRecordError) as caught:
        parse_ticket(SALE, [line(id=77003, qty=1.5)])
    assert caught.value.record == "ticket 5001 line 77003"


def parse_one(**changes: Any) -> Any:
    return parse_line(line(**changes), ticket_record="ticket 5001")


def test_parse_line_float_value() -> None:
    assert parse_one(value=19.99).value_cents == 1999


def test_parse_line_integer_value() -> None:
    assert parse_one(value=20).value_cents == 2000


@pytest.mark.parametrize(("value", "expected"), [(2, 2), (2.0, 2), ("-1", -1), (0, 0)])
def test_parse_line_qty(value: object, expected: int) -> None:
    assert parse_one(qty=value).qty == expected


@pytest.mark.parametrize("value", [1.5, "0.5", "two", True, 10_000_000])
def test_parse_line_rejects_qty(value: object) -> None:
    with pytest.raises(InvalidRecordError) as caught:
        parse_one(qty=value)
    assert caught.value.field == "qty"


def test_parse_line_item_needs_qty() -> None:
    with pytest.raises(InvalidRecordError) as caught:
        parse_one(qty=None)
    assert caught.value.field == "qty"


def test_parse_line_tax_without_qty() -> None:
    assert parse_one(type="TaxLine", qty=None).qty == 0


def test_parse_line_tax_with_item_keys() -> None:
    parsed = parse_one(type="TaxLine", qty=0, item_id=None, unit_price=None, value=4.32)
    assert parsed.qty == 0
    assert parsed.value_cents == 432


def test_parse_line_value_from_adjusted_price() -> None:
    parsed = parse_one(qty=2, value=None, unit_price=30.0, adjusted_unit_price=27.0)
    assert parsed.value_cents == 5400


def test_parse_line_null_adjusted_price() -> None:
    parsed = parse_one(qty=3, value=None, unit_price=19.99, adjusted_unit_price=None)
    assert parsed.unit_price_cents == 1999
    assert parsed.value_cents == 5997


def test_parse_line_zero_adjusted_price() -> None:
    parsed = parse_one(qty=1, value=None, unit_price=10.0, adjusted_unit_price=0)
    assert parsed.value_cents == 0


def test_parse_line_needs_value_or_price() -> None:
    with pytest.raises(InvalidRecordError) as caught:
        parse_one(value=None)
    assert caught.value.field == "value"


def test_parse_line_voided_flag() -> None:
    assert parse_one(**{"voided?": True}).voided is True


def test_parse_line_voided_status() -> None:
    assert parse_one(status="Voided").voided is True


def test_parse_line_active_status() -> None:
    assert parse_one(status="complete").voided is False


def test_parse_line_item_description_fallback() -> None:
    assert parse_one(item_description="Canvas Tote").description == "Canvas Tote"


def test_parse_line_needs_id() -> None:
    with pytest.raises(InvalidRecordError) as caught:
        parse_one(id=None)
    assert caught.value.field == "id"


def test_parse_line_needs_type() -> None:
    with pytest.raises(InvalidRecordError) as caught:
        parse_one(type=None)
    assert caught.value.field == "type"


def test_parse_line_rejects_non_object() -> None:
    with pytest.raises(InvalidRecordError):
        parse_line([77001], ticket_record="ticket 5001")


def test_parse_customer_reference() -> None:
    parsed = parse_customer(CUSTOMER)
    assert parsed.id == 9100
    assert parsed.public_id == "C-9100"
    assert parsed.email == "test.person@example.com"
    assert parsed.email_problem is None
    assert parsed.first_name == "Test"
    assert parsed.last_name == "Person"
    assert parsed.custom == {"loyalty_tier": "gold"}
    assert parsed.deleted is False


def test_parse_customer_email_trimmed_lower() -> None:
    parsed = parse_customer(customer(email="  Test.Person@Example.COM "))
    assert parsed.email == "test.person@example.com"


def test_parse_customer_null_email() -> None:
    parsed = parse_customer(customer(email=None))
    assert parsed.email is None
    assert parsed.email_problem is None


def test_parse_customer_blank_email() -> None:
    parsed = parse_customer(customer(email="   "))
    assert parsed.email is None
    assert parsed.email_problem is None


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("test.person.example.com", "the e-mail address has no @"),
        ("test@person@example.com", "the e-mail address has more than one @"),
        ("Test Person@example.com", "the e-mail address contains a space"),
        ("@example.com", "the e-mail address has nothing before the @"),
        ("test.person@", "the e-mail address has no domain after the @"),
        ("test.person@localhost", "the e-mail domain 'localhost' has no dot"),
        ("test.person@example..com", "the e-mail domain 'example..com' has an empty label"),
        (12345, "the e-mail address is not text"),
    ],
)
def test_check_email_problem(value: object, problem: str) -> None:
    assert check_email(value) == (None, problem)


def test_email_problem_hides_local_part() -> None:
    parsed = parse_customer(customer(email="Test Person@example.com"))
    assert parsed.email is None
    assert "test" not in (parsed.email_problem or "").lower()


def test_parse_customer_placeholder_names() -> None:
    parsed = parse_customer(customer(first_name="?", last_name=" ? "))
    assert parsed.first_name == ""
    assert parsed.last_name == ""


def test_parse_customer_null_names() -> None:
    parsed = parse_customer(customer(first_name=None, last_name=None))
    assert parsed.first_name == ""
    assert parsed.last_name == ""


def test_parse_customer_deleted() -> None:
    assert parse_customer(customer(deleted_at="2025-04-03T00:00:00Z")).deleted is True


def test_parse_customer_custom_number_text() -> None:
    parsed = parse_customer(customer(custom={"points": 247, "staff": None}))
    assert parsed.custom == {"points": "247", "staff": None}


def test_parse_customer_cash_public_id() -> None:
    assert parse_customer(customer(public_id="CASH")).public_id == "CASH"


def test_parse_customer_needs_id() -> None:
    with pytest.raises(InvalidRecordError) as caught:
        parse_customer(customer(id=None))
    assert caught.value.record == "customer with public_id C-9100"


def test_invalid_value_hides_registered_secret() -> None:
    register_secret("echoed-credential-7c41")
    with pytest.raises(InvalidRecordError) as caught:
        parse_ticket(sale(total="echoed-credential-7c41"))
    assert "echoed-credential-7c41" not in str(caught.value)
    assert "invalid total '[redacted]'" in str(caught.value)


def test_email_problem_hides_registered_secret() -> None:
    register_secret("echoed-credential-7c41")
    email, problem = check_email("pat@echoed-credential-7c41")
    assert email is None
    assert problem == "the e-mail domain '[redacted]' has no dot"
