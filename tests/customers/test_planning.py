"""Pure enrolment planning: assessment, phones, payloads and Yotpo conflicts."""

from __future__ import annotations

import pytest

from yotposync.sync.customers import (
    BAD_EMAIL,
    ENROLLED,
    EXCLUDED,
    GONE,
    INVALID_EMAIL,
    NO_EMAIL,
    NOT_OPTED_IN,
    OPTED_OUT,
    REVIEW,
    SHARED_EMAIL,
    EnrolmentPolicy,
    assess,
    customer_exclusion,
    e164_phone,
    email_key,
    enrolment_payload,
    is_opted_in,
    payload_hash,
    pick_phone,
    yotpo_conflict,
)
from yotposync.sync.model import Customer
from yotposync.sync.rules import CustomFieldRule, ExclusionRules

RULES = ExclusionRules(
    customer_public_ids=frozenset({"CASH"}),
    customer_custom=(CustomFieldRule("staff", "yes"),),
)


def policy(enrol_all: bool = False) -> EnrolmentPolicy:
    return EnrolmentPolicy.build(
        enrol_all_with_email=enrol_all,
        opt_in_key="loyalty_opt_in",
        opt_in_values=["yes", "True", " "],
        rules=RULES,
        default_region="US",
    )


def customer(**changes: object) -> Customer:
    fields: dict[str, object] = {
        "id": 9100,
        "public_id": "C-9100",
        "email": "pat@example.com",
        "first_name": "Pat",
        "last_name": "Lee",
        "custom": {"loyalty_opt_in": "yes"},
    }
    fields.update(changes)
    return Customer(**fields)  # type: ignore[arg-type]


# Opt-in and exclusions


@pytest.mark.parametrize(("value", "expected"), [("yes", True), (" TRUE ", True), ("no", False),
                                                 ("", False), (None, False)])  # fmt: skip
def test_opt_in_values(value: str | None, expected: bool) -> None:
    assert is_opted_in(customer(custom={"loyalty_opt_in": value}), policy()) is expected


def test_blank_opt_in_value_ignored() -> None:
    assert policy().opt_in_values == frozenset({"yes", "true"})


def test_exclusion_walk_in_customer() -> None:
    assert customer_exclusion(customer(public_id=" cash "), RULES) == "customer_public_id=CASH"


def test_exclusion_staff_field() -> None:
    staff = customer(custom={"staff": "Yes", "loyalty_opt_in": "yes"})
    assert customer_exclusion(staff, RULES) == "customer_custom:staff=yes"


def test_exclusion_none() -> None:
    assert customer_exclusion(customer(), RULES) is None


# Assessment


def test_assess_opted_in_enrols() -> None:
    result = assess(customer(), policy(), was_enrolled=False, sharing=[])
    assert result.status == ENROLLED
    assert result.send is True
    assert result.opt_in is True


def test_assess_not_opted_in_sends_nothing() -> None:
    result = assess(customer(custom={}), policy(), was_enrolled=False, sharing=[])
    assert result.status == NOT_OPTED_IN
    assert result.send is False


def test_assess_enrol_all_ignores_field() -> None:
    result = assess(customer(custom={}), policy(enrol_all=True), was_enrolled=False, sharing=[])
    assert result.status == ENROLLED


def test_assess_opt_out_after_enrolment() -> None:
    result = assess(customer(custom={}), policy(), was_enrolled=True, sharing=[])
    assert result.status == OPTED_OUT
    assert result.send is True
    assert result.opt_in is False


def test_assess_deleted_is_gone() -> None:
    result = assess(customer(deleted=True), policy(), was_enrolled=True, sharing=[])
    assert result.status == GONE
    assert result.send is False


def test_assess_excluded_before_email() -> None:
    result = assess(
        customer(public_id="CASH", email=None), policy(), was_enrolled=False, sharing=[]
    )
    assert result.status == EXCLUDED


def test_assess_no_email() -> None:
    result = assess(customer(email=None), policy(), was_enrolled=False, sharing=[])
    assert result.status == NO_EMAIL
    assert result.reviews == ()


def test_assess_invalid_email_reviewed_when_wanted() -> None:
    bad = customer(email=None, email_problem="the e-mail address has no @")
    result = assess(bad, policy(), was_enrolled=False, sharing=[])
    assert result.status == INVALID_EMAIL
    assert [kind for kind, _ in result.reviews] == [BAD_EMAIL]
    assert "9100" in result.reviews[0][1]


def test_assess_invalid_email_not_reviewed_when_opted_out() -> None:
    bad = customer(email=None, email_problem="the e-mail address has no @", custom={})
    result = assess(bad, policy(), was_enrolled=False, sharing=[])
    assert result.reviews == ()


def test_assess_shared_email_reviewed() -> None:
    result = assess(customer(), policy(), was_enrolled=False, sharing=[(9200, "C-9200")])
    assert result.status == REVIEW
    assert result.send is False
    assert [kind for kind, _ in result.reviews] == [SHARED_EMAIL]
    assert "9200 (C-9200)" in result.reviews[0][1]
    assert "Heartland customer 9200 (C-9200) also has;" in result.reviews[0][1]


def test_assess_email_shared_by_several_names_them() -> None:
    sharing = [(9200, "C-9200"), (9201, "C-9201")]
    result = assess(customer(), policy(), was_enrolled=False, sharing=sharing)
    assert "Heartland customers 9200 (C-9200), 9201 (C-9201) also have;" in result.reviews[0][1]


# Phones


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("512-555-0147", "US", "+15125550147"),
        ("(512) 555 0147", "US", "+15125550147"),
        ("+1 512.555.0147", "GB", "+15125550147"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("555-0100", "US", None),
        ("call after 5", "US", None),
        ("", "US", None),
        (None, "US", None),
    ],
)
def test_e164_phone(raw: str | None, region: str, expected: str | None) -> None:
    assert e164_phone(raw, region) == expected


def test_pick_phone_uses_address_country() -> None:
    addresses = [
        {"phone": "555-0100", "country": "US"},
        {"phone": "020 7946 0958", "country": "gb"},
    ]
    assert pick_phone(addresses, "US") == "+442079460958"


def test_pick_phone_none_usable() -> None:
    assert pick_phone([{"phone": None}, {"line_1": "1 Example St"}], "US") is None


# Payloads


def test_payload_carries_identity() -> None:
    payload = enrolment_payload(customer(), "+15125550147", True)
    assert payload == {
        "email": "pat@example.com",
        "id": "9100",
        "pos_account_id": "C-9100",
        "opted_in": True,
        "first_name": "Pat",
        "last_name": "Lee",
        "phone_number": "+15125550147",
    }


def test_payload_leaves_out_blanks() -> None:
    payload = enrolment_payload(customer(first_name="", last_name=""), None, True)
    assert set(payload) == {"email", "id", "pos_account_id", "opted_in"}


def test_payload_needs_email() -> None:
    with pytest.raises(ValueError, match="9100"):
        enrolment_payload(customer(email=None), None, True)


def test_payload_hash_ignores_key_order() -> None:
    assert payload_hash({"a": 1, "b": 2}) == payload_hash({"b": 2, "a": 1})


def test_payload_hash_sees_opt_in() -> None:
    assert payload_hash({"opted_in": True}) != payload_hash({"opted_in": False})


def test_email_key_case_folds() -> None:
    assert email_key(" Pat@EXAMPLE.com ") == "pat@example.com"


# Yotpo conflicts


def test_conflict_none_without_holder() -> None:
    assert yotpo_conflict(None, customer()) is None


def test_conflict_none_for_same_id() -> None:
    assert (
        yotpo_conflict({"third_party_id": "9100", "pos_account_id": "C-9100"}, customer()) is None
    )


def test_conflict_none_for_unlinked_holder() -> None:
    assert yotpo_conflict({"third_party_id": None, "pos_account_id": None}, customer()) is None


def test_conflict_other_id() -> None:
    found = {"third_party_id": "web-1", "points_balance": 730}
    detail = yotpo_conflict(found, customer())
    assert detail is not None
    assert "web-1" in detail
    assert "730 points" in detail


def test_conflict_misspelt_id_key() -> None:
    assert yotpo_conflict({"thirty_party_id": "web-1"}, customer()) is not None


def test_conflict_other_pos_account() -> None:
    detail = yotpo_conflict({"third_party_id": "9100", "pos_account_id": "C-1"}, customer())
    assert detail is not None
    assert "C-1" in detail
