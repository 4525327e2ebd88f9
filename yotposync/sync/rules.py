"""Exclusion rules: which sold tickets must not earn points.

A matched rule is reported as a stable string such as `location_id=201`, which the ledger
stores with the skipped ticket and which a return of that ticket inherits. Text
comparisons ignore case and surrounding spaces.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from yotposync.sync.model import Customer, Ticket


def _normalize(text: str) -> str:
    return text.strip().casefold()


@dataclass(frozen=True)
class CustomFieldRule:
    """A condition on one custom field.

    With `equals` None the field must be present: non-null and not blank. Otherwise its
    trimmed value must equal `equals`, ignoring case.
    """

    key: str
    equals: str | None = None

    def matches(self, custom: Mapping[str, str | None]) -> bool:
        """Tell whether the custom fields of a record satisfy this condition."""
        value = custom.get(self.key)
        if value is None or not value.strip():
            return False
        if self.equals is None:
            return True
        return _normalize(value) == _normalize(self.equals)

    def describe(self, scope: str) -> str:
        """Name the rule for the ledger, such as `ticket_custom:channel=web`."""
        if self.equals is None:
            return f"{scope}:{self.key} present"
        return f"{scope}:{self.key}={self.equals.strip()}"


@dataclass(frozen=True)
class ExclusionRules:
    """The configured exclusion rules, plus the go-live time before which nothing is sent.

    `go_live` is checked by `decide()`, not by `match_exclusion()`, because a ticket before
    go-live is not excluded but left alone.
    """

    location_ids: frozenset[int] = frozenset()
    station_ids: frozenset[int] = frozenset()
    sales_reps: frozenset[str] = frozenset()
    public_id_prefixes: tuple[str, ...] = ()
    customer_public_ids: frozenset[str] = frozenset({"CASH"})
    ticket_custom: tuple[CustomFieldRule, ...] = ()
    customer_custom: tuple[CustomFieldRule, ...] = ()
    minimum_amount_cents: int = 0
    go_live: datetime | None = None


def _match_text(value: str, options: Iterable[str]) -> str | None:
    """Return the configured option equal to `value` ignoring case and spaces, else None.

    Blank options never match. Options are tried in sorted order, so the result is stable
    when two options differ only in case.
    """
    wanted = _normalize(value)
    if not wanted:
        return None
    for option in sorted(options):
        if _normalize(option) == wanted:
            return option.strip()
    return None


def _match_prefix(public_id: str, prefixes: Iterable[str]) -> str | None:
    folded = public_id.strip().casefold()
    for prefix in prefixes:
        cleaned = prefix.strip()
        # A blank prefix would match every ticket, so it is ignored.
        if cleaned and folded.startswith(cleaned.casefold()):
            return cleaned
    return None


def _match_custom(
    custom: Mapping[str, str | None], rules: Iterable[CustomFieldRule], scope: str
) -> str | None:
    for rule in rules:
        if rule.matches(custom):
            return rule.describe(scope)
    return None


def match_exclusion(
    ticket: Ticket, customer: Customer | None, rules: ExclusionRules, earn_cents: int
) -> str | None:
    """Return the first exclusion rule that matches a sold ticket, or None.

    Rules are tried in a fixed order: location, station, sales rep, public id prefix,
    ticket custom fields, customer public id, customer custom fields, minimum amount. The
    minimum applies only when the ticket earns something, so a zero-amount ticket is not
    reported as excluded.
    """
    if ticket.location_id is not None and ticket.location_id in rules.location_ids:
        return f"location_id={ticket.location_id}"
    if ticket.station_id is not None and ticket.station_id in rules.station_ids:
        return f"station_id={ticket.station_id}"

    sales_rep = _match_text(ticket.sales_rep, rules.sales_reps)
    if sales_rep is not None:
        return f"sales_rep={sales_rep}"

    prefix = _match_prefix(ticket.public_id, rules.public_id_prefixes)
    if prefix is not None:
        return f"public_id_prefix={prefix}"

    ticket_rule = _match_custom(ticket.custom, rules.ticket_custom, "ticket_custom")
    if ticket_rule is not None:
        return ticket_rule

    if customer is not None:
        public_id = _match_text(customer.public_id, rules.customer_public_ids)
        if public_id is not None:
            return f"customer_public_id={public_id}"
        customer_rule = _match_custom(customer.custom, rules.customer_custom, "customer_custom")
        if customer_rule is not None:
            return customer_rule

    if 0 < earn_cents < rules.minimum_amount_cents:
        return f"minimum_amount_cents={rules.minimum_amount_cents}"
    return None
