"""Enrolment planning: which Heartland customers become Yotpo customers, and with what data.

Pure: a parsed customer, its addresses and what the ledger knows in; an assessment and a
`POST /customers` body out. The customers job does the I/O around it.

A customer is enrolled when it has a usable e-mail address and the opt-in custom field set
(or any e-mail, with `enrol_all_with_email`), and no exclusion rule for customers matches.
Conflicts are never settled here: they become review entries for staff.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import phonenumbers

from yotposync.sync.model import Customer
from yotposync.sync.rules import ExclusionRules

# Customer statuses kept in the ledger.
ENROLLED = "enrolled"  # Yotpo has the customer as last sent, opted in
OPTED_OUT = "opted_out"  # was enrolled, then the opt-in field was cleared: sent opted out
NOT_OPTED_IN = "not_opted_in"  # the opt-in field is not set, so nothing was sent
EXCLUDED = "excluded"  # an exclusion rule for customers matches (walk-in, staff)
NO_EMAIL = "no_email"
INVALID_EMAIL = "invalid_email"
REVIEW = "review"  # waits for staff: see the open reviews
PENDING = "pending"  # to be sent or looked at again at the next run
GONE = "gone"  # deleted in Heartland, or merged into another customer

# Review kinds.
EMAIL_TAKEN = "email_taken"  # the e-mail belongs to another Yotpo customer
SHARED_EMAIL = "shared_email"  # another Heartland customer has the same e-mail
CUSTOMER_GONE = "gone"  # the customer was deleted or merged in Heartland
BAD_EMAIL = "invalid_email"  # the e-mail cannot be sent to Yotpo


@dataclass(frozen=True)
class EnrolmentPolicy:
    """The enrolment rules. `opt_in_values` are compared case-folded and trimmed."""

    enrol_all_with_email: bool
    opt_in_key: str
    opt_in_values: frozenset[str]
    rules: ExclusionRules
    default_region: str

    @classmethod
    def build(
        cls,
        *,
        enrol_all_with_email: bool,
        opt_in_key: str,
        opt_in_values: Sequence[str],
        rules: ExclusionRules,
        default_region: str,
    ) -> EnrolmentPolicy:
        return cls(
            enrol_all_with_email=enrol_all_with_email,
            opt_in_key=opt_in_key,
            opt_in_values=frozenset(_fold(value) for value in opt_in_values if value.strip()),
            rules=rules,
            default_region=default_region,
        )


@dataclass(frozen=True)
class Assessment:
    """The outcome of assessing one customer version.

    `send` is True when Yotpo should get a `POST /customers` with `opted_in` set to
    `opt_in`. `status` and `reason` are what the ledger keeps when nothing is sent (or
    after the send succeeds), and `reviews` the review entries this version opens.
    """

    status: str
    reason: str
    send: bool = False
    opt_in: bool = False
    reviews: tuple[tuple[str, str], ...] = ()


def _fold(text: str) -> str:
    return text.strip().casefold()


def email_key(email: str) -> str:
    """Return the form under which two e-mail addresses count as the same: trimmed, case-folded."""
    return _fold(email)


def is_opted_in(customer: Customer, policy: EnrolmentPolicy) -> bool:
    """Tell whether the customer's opt-in custom field contains one of the opt-in values."""
    value = customer.custom.get(policy.opt_in_key)
    return value is not None and _fold(value) in policy.opt_in_values


def customer_exclusion(customer: Customer, rules: ExclusionRules) -> str | None:
    """Return the exclusion rule for customers that matches, named as tickets name it, or None.

    The same rules keep the customer's tickets from earning, so enrolling them would only
    create a Yotpo account that can never earn.
    """
    public_id = _fold(customer.public_id)
    if public_id:
        for excluded in sorted(rules.customer_public_ids):
            if _fold(excluded) == public_id:
                return f"customer_public_id={excluded.strip()}"
    for rule in rules.customer_custom:
        if rule.matches(customer.custom):
            return rule.describe("customer_custom")
    return None


def e164_phone(raw: object, region: str | None) -> str | None:
    """Convert a free-text phone number to E.164 (`+15125550147`), or None when it cannot be.

    `region` (ISO 3166, e.g. US) is used for numbers written without a country code. A
    number counts only when it is valid for its country, so `555-0100` (no area code) is
    dropped instead of being sent half right.
    """
    if not isinstance(raw, str) or not raw.strip():
        return None
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def pick_phone(addresses: Sequence[Mapping[str, Any]], default_region: str) -> str | None:
    """Return the first address phone that converts to E.164, in Heartland's address order.

    Each address's own `country` (a two-letter code) sets the region for its number; the
    configured default is used when it has none.
    """
    for address in addresses:
        country = address.get("country")
        region = default_region
        if isinstance(country, str) and len(country.strip()) == 2:
            region = country.strip().upper()
        phone = e164_phone(address.get("phone"), region)
        if phone is not None:
            return phone
    return None


def enrolment_payload(customer: Customer, phone: str | None, opt_in: bool) -> dict[str, Any]:
    """Build the `POST /customers` body.

    `id` is the Heartland customer id and `pos_account_id` its public id, so the Yotpo
    account stays linked to the Heartland customer when the e-mail changes. Blank names
    and a missing phone are left out, so they never erase what Yotpo already has.
    """
    if customer.email is None:
        raise ValueError(f"customer {customer.id} has no usable e-mail address to enrol")
    payload: dict[str, Any] = {
        "email": customer.email,
        "id": str(customer.id),
        "pos_account_id": customer.public_id,
        "opted_in": opt_in,
    }
    if customer.first_name:
        payload["first_name"] = customer.first_name
    if customer.last_name:
        payload["last_name"] = customer.last_name
    if phone is not None:
        payload["phone_number"] = phone
    return payload


def payload_hash(payload: Mapping[str, Any]) -> str:
    """Return a stable digest of a payload, to recognise one that was already sent."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def assess(
    customer: Customer,
    policy: EnrolmentPolicy,
    *,
    was_enrolled: bool,
    sharing: Sequence[tuple[int, str]],
) -> Assessment:
    """Decide what one customer version should do in Yotpo.

    `was_enrolled` is True when Yotpo was last sent this customer opted in. `sharing`
    lists `(id, public_id)` of other Heartland customers with the same e-mail. The checks
    run in order: deleted, exclusion rules, e-mail, opt-in, then a shared e-mail.
    """
    if customer.deleted:
        return Assessment(GONE, f"customer {customer.id} is deleted in Heartland")

    rule = customer_exclusion(customer, policy.rules)
    if rule is not None:
        return Assessment(EXCLUDED, f"excluded by {rule}")

    wants = policy.enrol_all_with_email or is_opted_in(customer, policy)
    if customer.email is None:
        if customer.email_problem is None:
            return Assessment(NO_EMAIL, f"customer {customer.id} has no e-mail address")
        reason = f"customer {customer.id} has an invalid e-mail address: {customer.email_problem}"
        reviews = ((BAD_EMAIL, reason),) if wants else ()
        return Assessment(INVALID_EMAIL, reason, reviews=reviews)

    if not wants:
        reason = f"customer {customer.id} has not opted in ({policy.opt_in_key} not set)"
        if was_enrolled:
            return Assessment(OPTED_OUT, reason, send=True, opt_in=False)
        return Assessment(NOT_OPTED_IN, reason)

    if sharing:
        others = ", ".join(f"{other_id} ({public_id})" for other_id, public_id in sharing)
        if len(sharing) == 1:
            named, verb = f"customer {others}", "has"
        else:
            named, verb = f"customers {others}", "have"
        detail = (
            f"customer {customer.id} ({customer.public_id}) has the e-mail {customer.email}, "
            f"which Heartland {named} also {verb}; merge them in Heartland or change "
            "one e-mail, then resolve this review"
        )
        return Assessment(
            REVIEW,
            "e-mail shared with another Heartland customer",
            reviews=((SHARED_EMAIL, detail),),
        )

    return Assessment(ENROLLED, "enrolled in Yotpo", send=True, opt_in=True)


def yotpo_conflict(found: Mapping[str, Any] | None, customer: Customer) -> str | None:
    """Describe why the Yotpo customer holding this e-mail is someone else, or return None.

    The holder is someone else when Yotpo links it to another platform customer id or to
    another POS account. A holder linked to nothing is taken as this customer: Yotpo
    identifies customers by e-mail, and orders for this e-mail already credit it.
    """
    if found is None:
        return None
    linked_id = found.get("third_party_id") or found.get("thirty_party_id")
    pos_account = found.get("pos_account_id")
    balance = found.get("points_balance")
    held = f"{balance} points" if isinstance(balance, int) else "an unknown balance"
    if linked_id not in (None, "") and str(linked_id) != str(customer.id):
        return (
            f"the e-mail {customer.email} of customer {customer.id} ({customer.public_id}) "
            f"belongs to the Yotpo customer with id {linked_id}, who has {held}; merge the two "
            "in Yotpo or change the e-mail in Heartland, then resolve this review"
        )
    if pos_account not in (None, "") and str(pos_account) != customer.public_id:
        return (
            f"the e-mail {customer.email} of customer {customer.id} ({customer.public_id}) "
            f"belongs to the Yotpo customer with POS account {pos_account}, who has {held}; "
            "merge the two in Yotpo or change the e-mail in Heartland, then resolve this review"
        )
    return None
