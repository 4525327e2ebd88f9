"""Ledger functions over the customer tables: enrolment state, reviews and cashier fields.

Plain data in and out, like `Ledger` itself. Callers group writes that belong together in
`ledger.transaction()`. Times are stored as UTC ISO 8601 text, which sorts in time order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from yotposync.ledger.integrity import stored_time
from yotposync.ledger.store import Ledger

REVIEW_OPEN = "open"
REVIEW_RESOLVED = "resolved"

# Ticket decisions that a customer's new e-mail address, or the customer's first
# appearance in Heartland, can change into an earning sale.
REDECIDED_KINDS = ("no_email", "no_customer")


@dataclass(frozen=True)
class CustomerRow:
    """The ledger's record of one Heartland customer."""

    id: int
    public_id: str
    email: str | None
    email_key: str | None
    first_name: str
    last_name: str
    phone: str | None
    opted_in: bool
    deleted: bool
    status: str
    reason: str
    heartland_updated_at: datetime | None
    sent_hash: str | None = None
    sent_email: str | None = None
    sent_at: datetime | None = None
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    email_changed_at: datetime | None = None
    redecided_at: datetime | None = None
    first_seen_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class Review:
    """One entry of the review list: a conflict left for staff to resolve by hand."""

    id: int
    customer_id: int
    kind: str
    detail: str
    state: str
    opened_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    resolution: str | None


@dataclass(frozen=True)
class FieldsRow:
    """The last refresh of one customer's cashier fields."""

    customer_id: int
    refresh_due: bool
    refreshed_at: datetime | None
    written_at: datetime | None
    written: dict[str, str]
    last_error: str | None


_CUSTOMER_COLUMNS = (
    "id, public_id, email, email_key, first_name, last_name, phone, opted_in, deleted, status, "
    "reason, heartland_updated_at, sent_hash, sent_email, sent_at, attempts, next_attempt_at, "
    "last_error, email_changed_at, redecided_at, first_seen_at, updated_at"
)
_REVIEW_COLUMNS = (
    "id, customer_id, kind, detail, state, opened_at, updated_at, resolved_at, resolution"
)


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise ValueError("ledger times must be timezone-aware")
    return moment.astimezone(UTC).isoformat()


def _required_iso(moment: datetime) -> str:
    text = _iso(moment)
    assert text is not None
    return text


def _dt(text: object, where: str) -> datetime | None:
    return None if text is None else stored_time(text, where)


def _customer_from_row(row: Sequence[Any]) -> CustomerRow:
    return CustomerRow(
        id=row[0],
        public_id=row[1] or "",
        email=row[2],
        email_key=row[3],
        first_name=row[4] or "",
        last_name=row[5] or "",
        phone=row[6],
        opted_in=bool(row[7]),
        deleted=bool(row[8]),
        status=row[9],
        reason=row[10],
        heartland_updated_at=_dt(row[11], f"customers.heartland_updated_at of customer {row[0]}"),
        sent_hash=row[12],
        sent_email=row[13],
        sent_at=_dt(row[14], f"customers.sent_at of customer {row[0]}"),
        attempts=row[15] or 0,
        next_attempt_at=_dt(row[16], f"customers.next_attempt_at of customer {row[0]}"),
        last_error=row[17],
        email_changed_at=_dt(row[18], f"customers.email_changed_at of customer {row[0]}"),
        redecided_at=_dt(row[19], f"customers.redecided_at of customer {row[0]}"),
        first_seen_at=_dt(row[20], f"customers.first_seen_at of customer {row[0]}"),
        updated_at=_dt(row[21], f"customers.updated_at of customer {row[0]}"),
    )


def _review_from_row(row: Sequence[Any]) -> Review:
    opened_at = _dt(row[5], f"customer_reviews.opened_at of review {row[0]}")
    updated_at = _dt(row[6], f"customer_reviews.updated_at of review {row[0]}")
    assert opened_at is not None and updated_at is not None
    return Review(
        id=row[0],
        customer_id=row[1],
        kind=row[2],
        detail=row[3],
        state=row[4],
        opened_at=opened_at,
        updated_at=updated_at,
        resolved_at=_dt(row[7], f"customer_reviews.resolved_at of review {row[0]}"),
        resolution=row[8],
    )


# Customers


def get_customer(ledger: Ledger, customer_id: int) -> CustomerRow | None:
    row = ledger.db.execute(
        f"SELECT {_CUSTOMER_COLUMNS} FROM customers WHERE id = ?",  # noqa: S608
        [customer_id],
    ).fetchone()
    return None if row is None else _customer_from_row(row)


def save_customer(ledger: Ledger, row: CustomerRow, now: datetime) -> None:
    """Insert or replace a customer row; `first_seen_at` is kept from the stored row."""
    stored = get_customer(ledger, row.id)
    first_seen = stored.first_seen_at if stored is not None else None
    ledger.db.table("customers").upsert(
        {
            "id": row.id,
            "public_id": row.public_id,
            "email": row.email,
            "email_key": row.email_key,
            "first_name": row.first_name,
            "last_name": row.last_name,
            "phone": row.phone,
            "opted_in": int(row.opted_in),
            "deleted": int(row.deleted),
            "status": row.status,
            "reason": row.reason,
            "heartland_updated_at": _iso(row.heartland_updated_at),
            "sent_hash": row.sent_hash,
            "sent_email": row.sent_email,
            "sent_at": _iso(row.sent_at),
            "attempts": row.attempts,
            "next_attempt_at": _iso(row.next_attempt_at),
            "last_error": row.last_error,
            "email_changed_at": _iso(row.email_changed_at),
            "redecided_at": _iso(row.redecided_at),
            "first_seen_at": _iso(first_seen or row.first_seen_at or now),
            "updated_at": _required_iso(now),
        },
        pk="id",
    )


def customers_sharing_email(ledger: Ledger, email_key: str, customer_id: int) -> list[CustomerRow]:
    """Return the other customers, not deleted in Heartland, with the same matching key."""
    rows = ledger.db.execute(
        f"SELECT {_CUSTOMER_COLUMNS} FROM customers "  # noqa: S608
        "WHERE email_key = ? AND id != ? AND deleted = 0 ORDER BY id",
        [email_key, customer_id],
    )
    return [_customer_from_row(row) for row in rows]


def customers_in_review(ledger: Ledger, ids: Sequence[int]) -> dict[int, str]:
    """Return, for each of these customers held for staff review, the reason it is held."""
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    rows = ledger.db.execute(
        f"SELECT id, reason FROM customers WHERE status = 'review' AND id IN ({marks})",  # noqa: S608
        list(ids),
    )
    return {int(row[0]): str(row[1]) for row in rows}


def find_customers(
    ledger: Ledger, *, email_key: str | None = None, phone: str | None = None
) -> list[CustomerRow]:
    """Return the customers with this matching e-mail key or this E.164 phone, by id."""
    if (email_key is None) == (phone is None):
        raise ValueError("find_customers needs exactly one of email_key and phone")
    column, value = ("email_key", email_key) if email_key is not None else ("phone", phone)
    rows = ledger.db.execute(
        f"SELECT {_CUSTOMER_COLUMNS} FROM customers WHERE {column} = ? ORDER BY id",  # noqa: S608
        [value],
    )
    return [_customer_from_row(row) for row in rows]


def due_customer_ids(ledger: Ledger, status: str, now: datetime, limit: int) -> list[int]:
    """Return customers in `status` whose next attempt is due, oldest first."""
    rows = ledger.db.execute(
        "SELECT id FROM customers WHERE status = ? AND "
        "(next_attempt_at IS NULL OR next_attempt_at <= ?) ORDER BY next_attempt_at, id LIMIT ?",
        [status, _required_iso(now), limit],
    )
    return [int(row[0]) for row in rows]


def status_counts(ledger: Ledger) -> dict[str, int]:
    rows = ledger.db.execute("SELECT status, count(*) FROM customers GROUP BY status ORDER BY 1")
    return {str(status): int(count) for status, count in rows}


# Re-decisions


def redecision_candidates(ledger: Ledger) -> list[int]:
    """Return customers with a usable e-mail that changed since their tickets were re-decided."""
    rows = ledger.db.execute(
        "SELECT id FROM customers WHERE email IS NOT NULL AND deleted = 0 "
        "AND email_changed_at IS NOT NULL "
        "AND (redecided_at IS NULL OR redecided_at < email_changed_at) ORDER BY id"
    )
    return [int(row[0]) for row in rows]


def tickets_to_redecide(ledger: Ledger, customer_ids: Sequence[int]) -> list[int]:
    """Return the tickets of these customers that earned nothing for want of them or an e-mail.

    Returns decided as `parent_not_earned` whose parent is one of those tickets come after
    their parents, so that a re-decided sale is known before its return is decided again.
    """
    if not customer_ids:
        return []
    marks = ",".join("?" * len(customer_ids))
    kinds = ",".join("?" * len(REDECIDED_KINDS))
    sales = [
        int(row[0])
        for row in ledger.db.execute(
            f"SELECT id FROM tickets WHERE customer_id IN ({marks}) "  # noqa: S608
            f"AND kind IN ({kinds}) ORDER BY id",
            [*customer_ids, *REDECIDED_KINDS],
        )
    ]
    if not sales:
        return []
    parent_marks = ",".join("?" * len(sales))
    returns = [
        int(row[0])
        for row in ledger.db.execute(
            f"SELECT id FROM tickets WHERE parent_id IN ({parent_marks}) "  # noqa: S608
            "AND kind = 'parent_not_earned' ORDER BY id",
            sales,
        )
    ]
    return sales + [ticket_id for ticket_id in returns if ticket_id not in sales]


def mark_redecided(ledger: Ledger, customer_ids: Iterable[int], now: datetime) -> None:
    ledger.db.conn.executemany(
        "UPDATE customers SET redecided_at = ? WHERE id = ?",
        [(_required_iso(now), customer_id) for customer_id in customer_ids],
    )


# Reviews


def open_review(ledger: Ledger, customer_id: int, kind: str, detail: str, now: datetime) -> int:
    """Open a review, or update the detail of the open one of the same customer and kind."""
    row = ledger.db.execute(
        "SELECT id, detail FROM customer_reviews WHERE state = ? AND customer_id = ? AND kind = ?",
        [REVIEW_OPEN, customer_id, kind],
    ).fetchone()
    if row is not None:
        if row[1] != detail:
            ledger.db.execute(
                "UPDATE customer_reviews SET detail = ?, updated_at = ? WHERE id = ?",
                [detail, _required_iso(now), row[0]],
            )
        return int(row[0])
    table = ledger.db.table("customer_reviews")
    table.insert(
        {
            "customer_id": customer_id,
            "kind": kind,
            "detail": detail,
            "state": REVIEW_OPEN,
            "opened_at": _required_iso(now),
            "updated_at": _required_iso(now),
        }
    )
    return int(table.last_pk or 0)


def close_reviews(
    ledger: Ledger,
    customer_id: int,
    keep: Iterable[str],
    resolution: str,
    now: datetime,
) -> list[str]:
    """Resolve the customer's open reviews whose kind is not in `keep`; return their kinds."""
    kept = set(keep)
    rows = ledger.db.execute(
        "SELECT id, kind FROM customer_reviews WHERE state = ? AND customer_id = ?",
        [REVIEW_OPEN, customer_id],
    ).fetchall()
    closed = []
    for review_id, kind in rows:
        if kind in kept:
            continue
        ledger.db.execute(
            "UPDATE customer_reviews SET state = ?, resolved_at = ?, updated_at = ?, "
            "resolution = ? WHERE id = ?",
            [REVIEW_RESOLVED, _required_iso(now), _required_iso(now), resolution, review_id],
        )
        closed.append(str(kind))
    return closed


def resolve_review(ledger: Ledger, review_id: int, resolution: str, now: datetime) -> Review | None:
    """Mark one open review resolved; return it, or None when no open review has this id."""
    cursor = ledger.db.execute(
        "UPDATE customer_reviews SET state = ?, resolved_at = ?, updated_at = ?, resolution = ? "
        "WHERE id = ? AND state = ?",
        [
            REVIEW_RESOLVED,
            _required_iso(now),
            _required_iso(now),
            resolution,
            review_id,
            REVIEW_OPEN,
        ],
    )
    if cursor.rowcount == 0:
        return None
    return get_review(ledger, review_id)


def get_review(ledger: Ledger, review_id: int) -> Review | None:
    row = ledger.db.execute(
        f"SELECT {_REVIEW_COLUMNS} FROM customer_reviews WHERE id = ?",  # noqa: S608
        [review_id],
    ).fetchone()
    return None if row is None else _review_from_row(row)


def list_reviews(
    ledger: Ledger, *, include_resolved: bool = False, customer_id: int | None = None
) -> list[Review]:
    """Return reviews, oldest first: the open ones, or all of them."""
    conditions = []
    params: list[Any] = []
    if not include_resolved:
        conditions.append("state = ?")
        params.append(REVIEW_OPEN)
    if customer_id is not None:
        conditions.append("customer_id = ?")
        params.append(customer_id)
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    rows = ledger.db.execute(
        f"SELECT {_REVIEW_COLUMNS} FROM customer_reviews {where} ORDER BY id",  # noqa: S608
        params,
    )
    return [_review_from_row(row) for row in rows]


def set_recheck(ledger: Ledger, customer_id: int, reason: str, status: str, now: datetime) -> None:
    """Make a customer due for another look at the next customers run."""
    ledger.db.execute(
        "UPDATE customers SET status = ?, reason = ?, next_attempt_at = ?, attempts = 0, "
        "sent_hash = NULL, updated_at = ? WHERE id = ?",
        [status, reason, _required_iso(now), _required_iso(now), customer_id],
    )


# Cashier fields


def mark_refresh_due(ledger: Ledger, customer_id: int) -> None:
    ledger.db.execute(
        "INSERT INTO customer_fields (customer_id, refresh_due) VALUES (?, 1) "
        "ON CONFLICT (customer_id) DO UPDATE SET refresh_due = 1",
        [customer_id],
    )


def mark_refresh_due_by_email(ledger: Ledger, email: str) -> int:
    """Flag for a refresh every customer known by this e-mail address, and count them.

    Their cashier fields then show the balance after a change made outside the store, such
    as an offer redeemed online with the Yotpo account of that address. A customer the
    customers job stored is known by their Heartland address and by the address last sent
    to Yotpo, unless deleted. Any other customer is known by the address of their tickets.
    """
    key = email.strip().casefold()
    lowered = email.strip().lower()
    rows = ledger.db.execute(
        "SELECT id FROM customers WHERE deleted = 0 AND (email_key = ? OR sent_email = ?) "
        "UNION SELECT customer_id FROM tickets WHERE email = ? AND customer_id IS NOT NULL "
        "AND customer_id NOT IN (SELECT id FROM customers)",
        [key, lowered, lowered],
    ).fetchall()
    for row in rows:
        mark_refresh_due(ledger, int(row[0]))
    return len(rows)


def get_fields(ledger: Ledger, customer_id: int) -> FieldsRow | None:
    row = ledger.db.execute(
        "SELECT customer_id, refresh_due, refreshed_at, written_at, written, last_error "
        "FROM customer_fields WHERE customer_id = ?",
        [customer_id],
    ).fetchone()
    if row is None:
        return None
    return FieldsRow(
        customer_id=row[0],
        refresh_due=bool(row[1]),
        refreshed_at=_dt(row[2], f"customer_fields.refreshed_at of customer {row[0]}"),
        written_at=_dt(row[3], f"customer_fields.written_at of customer {row[0]}"),
        written=json.loads(row[4]) if row[4] else {},
        last_error=row[5],
    )


def changed_customer_ids(ledger: Ledger, limit: int) -> list[int]:
    """Return customers due for a refresh because of a change: flagged, or a confirmed push.

    A push counts when Yotpo confirmed it after the customer's last refresh started. The
    customers whose change is oldest come first.
    """
    rows = ledger.db.execute(
        "SELECT customer_id, min(changed_at) FROM ("
        "  SELECT customer_id, '' AS changed_at FROM customer_fields WHERE refresh_due = 1"
        "  UNION ALL"
        "  SELECT p.customer_id, p.confirmed_at FROM pushes p"
        "  LEFT JOIN customer_fields f ON f.customer_id = p.customer_id"
        "  WHERE p.state = 'confirmed' AND p.customer_id IS NOT NULL"
        "  AND (f.refreshed_at IS NULL OR p.confirmed_at > f.refreshed_at)"
        ") GROUP BY customer_id ORDER BY 2, 1 LIMIT ?",
        [limit],
    )
    return [int(row[0]) for row in rows]


def stale_active_customer_ids(
    ledger: Ledger, active_since: datetime, refreshed_before: datetime, limit: int
) -> list[int]:
    """Return customers with a ticket completed since `active_since` and no recent refresh.

    Customers never refreshed come first, then those refreshed longest ago. Customers the
    customers job found excluded (the walk-in account, staff) are left out.
    """
    rows = ledger.db.execute(
        "SELECT t.customer_id, f.refreshed_at FROM tickets t "
        "LEFT JOIN customer_fields f ON f.customer_id = t.customer_id "
        "LEFT JOIN customers c ON c.id = t.customer_id "
        "WHERE t.customer_id IS NOT NULL "
        "AND COALESCE(t.completed_at, t.decided_at) >= ? "
        "AND (f.refreshed_at IS NULL OR f.refreshed_at < ?) "
        "AND (c.status IS NULL OR c.status NOT IN ('excluded', 'gone')) "
        "GROUP BY t.customer_id ORDER BY f.refreshed_at IS NOT NULL, f.refreshed_at, "
        "t.customer_id LIMIT ?",
        [_required_iso(active_since), _required_iso(refreshed_before), limit],
    )
    return [int(row[0]) for row in rows]


def mark_active_refresh_due(ledger: Ledger, active_since: datetime) -> int:
    """Flag for a refresh every customer with a ticket completed since `active_since`.

    The customers the periodic refresh covers are flagged, with the same exclusions, and
    the refresh job then takes them in batches. Return how many were flagged.
    """
    cursor = ledger.db.execute(
        "INSERT INTO customer_fields (customer_id, refresh_due) "
        "SELECT DISTINCT t.customer_id, 1 FROM tickets t "
        "LEFT JOIN customers c ON c.id = t.customer_id "
        "WHERE t.customer_id IS NOT NULL "
        "AND COALESCE(t.completed_at, t.decided_at) >= ? "
        "AND (c.status IS NULL OR c.status NOT IN ('excluded', 'gone')) "
        "ON CONFLICT (customer_id) DO UPDATE SET refresh_due = 1",
        [_required_iso(active_since)],
    )
    return int(cursor.rowcount)


def record_refresh(
    ledger: Ledger,
    customer_id: int,
    *,
    refreshed_at: datetime,
    written: dict[str, str] | None,
    error: str | None,
    now: datetime,
) -> None:
    """Store a finished refresh. `written` contains the values sent, or None when none were."""
    stored = get_fields(ledger, customer_id)
    values = dict(stored.written) if stored is not None else {}
    written_at = stored.written_at if stored is not None else None
    if written:
        values.update(written)
        written_at = now
    ledger.db.table("customer_fields").upsert(
        {
            "customer_id": customer_id,
            "refresh_due": 0,
            "refreshed_at": _required_iso(refreshed_at),
            "written_at": _iso(written_at),
            "written": json.dumps(values, sort_keys=True),
            "last_error": error,
        },
        pk="customer_id",
    )


# Activity for `yotposync customer show`


def customer_tickets(ledger: Ledger, customer_id: int, limit: int) -> list[dict[str, Any]]:
    """Return the customer's latest tickets with their decisions, newest first."""
    return list(
        ledger.db.query(
            "SELECT id, public_id, type, completed_at, business_date, kind, reason, rule, "
            "earn_cents, return_cents, parent_id FROM tickets WHERE customer_id = ? "
            "ORDER BY COALESCE(completed_at, decided_at) DESC, id DESC LIMIT ?",
            [customer_id, limit],
        )
    )


def customer_pushes(ledger: Ledger, customer_id: int, limit: int) -> list[dict[str, Any]]:
    """Return the customer's latest pushes to Yotpo, newest first.

    Restores of points carry no customer id, only the e-mail address of the customer who
    spent the points, so they are found by the addresses of the customer's other pushes.
    """
    return list(
        ledger.db.query(
            "SELECT push_id, kind, role, ticket_id, target_order_id, amount_cents, state, "
            "CASE WHEN json_valid(payload) "
            "THEN json_extract(payload, '$.point_adjustment_amount') END AS points, "
            "last_error, created_at, confirmed_at FROM pushes WHERE customer_id = ?1 "
            "OR (customer_id IS NULL AND email IN (SELECT DISTINCT email FROM pushes "
            "WHERE customer_id = ?1 AND email IS NOT NULL)) "
            "ORDER BY seq DESC LIMIT ?2",
            [customer_id, limit],
        )
    )


def customer_ids_by_ticket_email(ledger: Ledger, email: str) -> list[int]:
    """Return the customer ids that tickets decided with this (lower-cased) e-mail name."""
    rows = ledger.db.execute(
        "SELECT DISTINCT customer_id FROM tickets WHERE email = ? AND customer_id IS NOT NULL "
        "ORDER BY customer_id",
        [email],
    )
    return [int(row[0]) for row in rows]


def current_email(ledger: Ledger, email: str) -> str:
    """Return a customer's current Yotpo address, for an address stored earlier.

    A restore goes to the customer who spent the points, by the address stored then. When
    the customers job has since moved that customer's Yotpo account to a new address, the
    old one finds no account and Yotpo rejects the adjustment. The customer is found by the
    pushes sent to the old address. An address that names no single customer is returned
    as it is.
    """
    rows = ledger.db.execute(
        "SELECT DISTINCT customer_id FROM pushes WHERE email = ? AND customer_id IS NOT NULL",
        [email],
    ).fetchall()
    if len(rows) != 1:
        return email
    row = get_customer(ledger, int(rows[0][0]))
    if row is None or row.deleted:
        return email
    now_known = row.sent_email or row.email
    return now_known if now_known else email
