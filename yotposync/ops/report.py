"""`yotposync report`: points-eligible amounts per business day and location, from the ledger.

Amounts count only pushes that Yotpo confirmed, on the business day (the store's local date
of completion) and location of the ticket that caused them:
- earned: orders for sold items, less the refunds that corrected them after an edit or void,
- taken back: refunds for returned items, less the orders that gave them back after a return
  was voided or reduced,
- points spent and restored: points deducted for loyalty coupons used at the register (less
  what moving a sale gave back to its earlier customer), and
  points given back on returns of those sales. These two count points, not money. Codes
  redeemed online spent their points in Yotpo, so they are not counted here.

A ticket whose local completion time Heartland sent unreadable has no business day. Such
tickets are not left out: they are counted on a row whose business day is `unknown`, when
the date of their completion timestamp falls in the range.

Tickets that earned nothing are counted by reason, so a manager can see which habits cost
customers their points. The reasons are no customer on the ticket, a customer without an
e-mail address, an exclusion rule, and an order or refund that Yotpo rejected.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field
from datetime import date

from yotposync.ledger import Ledger
from yotposync.ledger.integrity import stored_int
from yotposync.ledger.offers import POINTS_ADJUST, REDEEM_ROLE, RESTORE_ROLE
from yotposync.money import format_cents

NO_CUSTOMER = "no_customer"
NO_EMAIL = "no_email"
REJECTED = "rejected"
EXCLUDED_PREFIX = "excluded:"
# The business day of tickets whose local completion time could not be read.
UNKNOWN_DAY = "unknown"

_REASON_LABELS = {
    NO_CUSTOMER: "no customer",
    NO_EMAIL: "no e-mail",
    REJECTED: "rejected by Yotpo",
}

_UNSETTLED = ("pending", "sent", "failed")


@dataclass
class ReportRow:
    """One business day at one location."""

    business_date: str
    location_id: int | None
    tickets: int = 0
    earned_cents: int = 0
    taken_back_cents: int = 0
    spent_points: int = 0
    restored_points: int = 0
    pushes_waiting: int = 0
    nothing_earned: Counter[str] = field(default_factory=Counter)


@dataclass
class Report:
    since: date
    until: date | None
    rows: list[ReportRow]

    @property
    def reasons(self) -> list[str]:
        """Every reason that occurs in the report, in a stable order."""
        found = {reason for row in self.rows for reason in row.nothing_earned}
        fixed = [reason for reason in (NO_CUSTOMER, NO_EMAIL, REJECTED) if reason in found]
        return fixed + sorted(found - set(fixed))


def reason_label(reason: str) -> str:
    if reason.startswith(EXCLUDED_PREFIX):
        rule = reason.removeprefix(EXCLUDED_PREFIX)
        return f"excluded by {rule}" if rule else "excluded"
    return _REASON_LABELS.get(reason, reason)


# Select a ticket `t` by its business day in [?1, ?2], or by the date of its completion
# timestamp when it has none. The column `day` is the day it is counted on.
_TICKET_DAY = f"COALESCE(t.business_date, '{UNKNOWN_DAY}') AS day"
_TICKET_IN_RANGE = (
    "(t.business_date BETWEEN ?1 AND ?2 OR "
    "(t.business_date IS NULL AND substr(t.completed_at, 1, 10) BETWEEN ?1 AND ?2))"
)


def build_report(ledger: Ledger, since: date, until: date | None) -> Report:
    """Sum the ledger's tickets whose business day is in [since, until], both included."""
    last = (until or date.max).isoformat()
    window = [since.isoformat(), last]
    rows: dict[tuple[str, int | None], ReportRow] = {}

    def row_for(business_date: str, location_id: int | None) -> ReportRow:
        key = (business_date, location_id)
        if key not in rows:
            rows[key] = ReportRow(business_date, location_id)
        return rows[key]

    rejected_tickets: set[int] = set()
    for ticket_id, business_date, location_id, role, state, amount, push_id in ledger.db.execute(
        f"SELECT t.id, {_TICKET_DAY}, t.location_id, p.role, p.state, p.amount_cents, "  # noqa: S608
        "p.push_id "
        f"FROM pushes p JOIN tickets t ON t.id = p.ticket_id WHERE {_TICKET_IN_RANGE}",
        window,
    ):
        row = row_for(business_date, location_id)
        if state in _UNSETTLED:
            row.pushes_waiting += 1
        # A rejected points adjustment (a deduction or restore) is listed with the offers'
        # problems; only a rejected order or refund changes what the ticket earned.
        if state == "rejected" and role in _EARNING_ROLES:
            rejected_tickets.add(ticket_id)
        if state != "confirmed":
            continue
        amount = stored_int(amount, f"pushes.amount_cents of push {push_id}")
        if role == "order":
            row.earned_cents += amount
        elif role == "adjust":
            row.earned_cents -= amount
        elif role == "return":
            row.taken_back_cents += amount
        elif role == "restore":
            row.taken_back_cents -= amount

    # Points moved at the register, by the day of the ticket that moved them, once Yotpo
    # confirmed the adjustment: deductions for loyalty coupons less what moves of the sale gave
    # back (both role `redeem`), and restores on returns. The fragments are literals here.
    moved = (
        f"SELECT p.role, {_TICKET_DAY}, t.location_id, "  # noqa: S608
        "json_extract(p.payload, '$.point_adjustment_amount') FROM pushes p "
        "JOIN tickets t ON t.id = p.ticket_id "
        f"WHERE p.kind = ?3 AND p.state = 'confirmed' AND json_valid(p.payload) "
        f"AND {_TICKET_IN_RANGE}"
    )
    for role, business_date, location_id, points in ledger.db.execute(
        moved, [*window, POINTS_ADJUST]
    ):
        if not isinstance(points, int):
            continue
        row = row_for(business_date, location_id)
        if role == REDEEM_ROLE:
            row.spent_points -= points
        elif role == RESTORE_ROLE:
            row.restored_points += points

    for ticket_id, business_date, location_id, kind, rule in ledger.db.execute(
        f"SELECT t.id, {_TICKET_DAY}, t.location_id, t.kind, t.rule FROM tickets t "  # noqa: S608
        f"WHERE {_TICKET_IN_RANGE}",
        window,
    ):
        row = row_for(business_date, location_id)
        row.tickets += 1
        reason = _nothing_earned_reason(kind, rule, ticket_id in rejected_tickets)
        if reason is not None:
            row.nothing_earned[reason] += 1

    ordered = sorted(rows.values(), key=lambda r: (r.business_date, _location_key(r)))
    return Report(since, until, ordered)


_EARNING_ROLES = frozenset({"order", "adjust", "return", "restore"})


def _nothing_earned_reason(kind: str, rule: str | None, rejected: bool) -> str | None:
    if rejected:
        return REJECTED
    if kind == "no_customer":
        return NO_CUSTOMER
    if kind == "no_email":
        return NO_EMAIL
    if kind == "excluded":
        # An excluded return counts under the rule that excluded its parent sale.
        return f"{EXCLUDED_PREFIX}{rule or ''}"
    return None


def _location_key(row: ReportRow) -> int:
    return -1 if row.location_id is None else row.location_id


CSV_AMOUNT_COLUMNS = (
    "business_date",
    "location_id",
    "tickets",
    "earned_cents",
    "taken_back_cents",
    "spent_points",
    "restored_points",
    "pushes_waiting",
)


def format_csv(report: Report) -> str:
    """Write one line per business day and location, with a `nothing_earned:<reason>` column
    per reason."""
    reasons = report.reasons
    output = io.StringIO()
    writer = csv.writer(output, lineterminator="\n")
    writer.writerow([*CSV_AMOUNT_COLUMNS, *(f"nothing_earned:{reason}" for reason in reasons)])
    for row in report.rows:
        writer.writerow(
            [
                row.business_date,
                "" if row.location_id is None else row.location_id,
                row.tickets,
                row.earned_cents,
                row.taken_back_cents,
                row.spent_points,
                row.restored_points,
                row.pushes_waiting,
                *(row.nothing_earned.get(reason, 0) for reason in reasons),
            ]
        )
    return output.getvalue()


def format_table(report: Report) -> str:
    """Two aligned tables: amounts per day and location, then tickets that earned nothing."""
    period = f"{report.since.isoformat()} to {report.until.isoformat() if report.until else 'now'}"
    if not report.rows:
        return f"No tickets with a business day from {period} in the ledger."

    header = ["business day", "location", "tickets", "earned", "taken back", "points spent"]
    header += ["points restored", "pushes waiting"]
    amounts = [header]
    for row in report.rows:
        amounts.append(
            [
                row.business_date,
                _location_text(row),
                str(row.tickets),
                format_cents(row.earned_cents),
                format_cents(row.taken_back_cents),
                str(row.spent_points),
                str(row.restored_points),
                str(row.pushes_waiting),
            ]
        )
    amounts.append(
        [
            "total",
            "",
            str(sum(row.tickets for row in report.rows)),
            format_cents(sum(row.earned_cents for row in report.rows)),
            format_cents(sum(row.taken_back_cents for row in report.rows)),
            str(sum(row.spent_points for row in report.rows)),
            str(sum(row.restored_points for row in report.rows)),
            str(sum(row.pushes_waiting for row in report.rows)),
        ]
    )
    lines = [
        f"Points-eligible amounts confirmed by Yotpo, by business day and location, {period}",
        "",
        *_align(amounts, numeric_from=2),
        "",
    ]
    if any(row.business_date == UNKNOWN_DAY for row in report.rows):
        lines += [
            f"Business day {UNKNOWN_DAY}: tickets whose local completion time Heartland sent "
            "unreadable. They are in the range when the date of their completion timestamp "
            "is. `yotposync explain TICKET` shows each one.",
            "",
        ]

    reasons = [["business day", "location", "reason", "tickets"]]
    for row in report.rows:
        for reason in report.reasons:
            count = row.nothing_earned.get(reason, 0)
            if count:
                reasons.append(
                    [row.business_date, _location_text(row), reason_label(reason), str(count)]
                )
    if len(reasons) == 1:
        lines.append(
            "No ticket lost its points to a missing customer, a missing e-mail address, "
            "an exclusion rule or a rejection."
        )
    else:
        lines += ["Tickets that earned nothing, by reason", "", *_align(reasons, numeric_from=3)]
    return "\n".join(lines)


def _location_text(row: ReportRow) -> str:
    return "-" if row.location_id is None else str(row.location_id)


def _align(table: list[list[str]], numeric_from: int) -> list[str]:
    """Pad columns to equal width; columns from `numeric_from` on are right-aligned."""
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    lines = []
    for line in table:
        cells = [
            cell.rjust(width) if index >= numeric_from else cell.ljust(width)
            for index, (cell, width) in enumerate(zip(line, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return lines
