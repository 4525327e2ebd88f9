"""The customer tables of the ledger: migration, reviews, re-decisions and refresh queues."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlite_utils

from yotposync.ledger import Ledger
from yotposync.ledger import customers as book
from yotposync.ledger.offers import OfferLedger
from yotposync.ledger.schema import MIGRATIONS, schema_version
from yotposync.sync.plan import PlannedPush

NOW = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    ledger = Ledger.open(tmp_path / "ledger.sqlite3")
    yield ledger
    ledger.close()


def row(customer_id: int, **changes: object) -> book.CustomerRow:
    fields: dict[str, object] = {
        "id": customer_id,
        "public_id": f"C-{customer_id}",
        "email": f"c{customer_id}@example.com",
        "email_key": f"c{customer_id}@example.com",
        "first_name": "Pat",
        "last_name": "Lee",
        "phone": None,
        "opted_in": True,
        "deleted": False,
        "status": "enrolled",
        "reason": "enrolled in Yotpo",
        "heartland_updated_at": NOW,
    }
    fields.update(changes)
    return book.CustomerRow(**fields)  # type: ignore[arg-type]


def add_ticket(
    ledger: Ledger, ticket_id: int, customer_id: int, kind: str, **extra: object
) -> None:
    values: dict[str, object] = {
        "id": ticket_id,
        "kind": kind,
        "reason": kind,
        "customer_id": customer_id,
        "versions": 1,
        "first_seen_at": NOW.isoformat(),
        "decided_at": NOW.isoformat(),
        "completed_at": NOW.isoformat(),
    }
    values.update(extra)
    ledger.db.table("tickets").insert(values)


def add_push(
    ledger: Ledger, seq: int, customer_id: int, state: str, confirmed_at: datetime
) -> None:
    ledger.db.table("pushes").insert(
        {
            "seq": seq,
            "push_id": f"hl-{seq}",
            "kind": "order",
            "role": "order",
            "ticket_id": seq,
            "customer_id": customer_id,
            "amount_cents": 100,
            "payload": "{}",
            "state": state,
            "confirmed_at": confirmed_at.isoformat(),
        }
    )


# Migration


def test_v1_ledger_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    db = sqlite_utils.Database(sqlite3.connect(path, isolation_level=None))
    MIGRATIONS[0](db)
    db.execute("PRAGMA user_version = 1")
    db.table("cursors").insert({"name": "tickets", "updated_at": NOW.isoformat(), "last_id": 7})
    db.conn.close()

    ledger = Ledger.open(path)
    try:
        assert schema_version(ledger.db) == len(MIGRATIONS)
        assert ledger.get_cursor("tickets") is not None
        assert ledger.db["customers"].exists()
        assert ledger.db["customer_reviews"].exists()
        assert ledger.db["customer_fields"].exists()
    finally:
        ledger.close()


# Customers


def test_save_keeps_first_seen(ledger: Ledger) -> None:
    book.save_customer(ledger, row(1), NOW)
    book.save_customer(ledger, row(1, status="review"), NOW + timedelta(hours=1))

    stored = book.get_customer(ledger, 1)

    assert stored is not None
    assert stored.first_seen_at == NOW
    assert stored.updated_at == NOW + timedelta(hours=1)
    assert stored.status == "review"


def test_sharing_leaves_out_deleted(ledger: Ledger) -> None:
    book.save_customer(ledger, row(1, email_key="pat@example.com"), NOW)
    book.save_customer(ledger, row(2, email_key="pat@example.com"), NOW)
    book.save_customer(ledger, row(3, email_key="pat@example.com", deleted=True), NOW)

    sharing = book.customers_sharing_email(ledger, "pat@example.com", 1)

    assert [other.id for other in sharing] == [2]


def test_find_by_phone(ledger: Ledger) -> None:
    book.save_customer(ledger, row(1, phone="+15125550147"), NOW)

    assert [c.id for c in book.find_customers(ledger, phone="+15125550147")] == [1]


def test_due_customers_wait_for_their_time(ledger: Ledger) -> None:
    book.save_customer(ledger, row(1, status="pending", next_attempt_at=NOW), NOW)
    later = NOW + timedelta(minutes=5)
    book.save_customer(ledger, row(2, status="pending", next_attempt_at=later), NOW)

    assert book.due_customer_ids(ledger, "pending", NOW, 10) == [1]


# Reviews


def test_open_review_updates_existing(ledger: Ledger) -> None:
    first = book.open_review(ledger, 1, "email_taken", "held by web-1", NOW)
    second = book.open_review(ledger, 1, "email_taken", "held by web-2", NOW)

    reviews = book.list_reviews(ledger)

    assert first == second
    assert [review.detail for review in reviews] == ["held by web-2"]


def test_close_reviews_keeps_listed_kinds(ledger: Ledger) -> None:
    book.open_review(ledger, 1, "email_taken", "a", NOW)
    book.open_review(ledger, 1, "invalid_email", "b", NOW)

    closed = book.close_reviews(ledger, 1, ["invalid_email"], "fixed", NOW)

    assert closed == ["email_taken"]
    assert [review.kind for review in book.list_reviews(ledger)] == ["invalid_email"]


def test_resolve_review_once(ledger: Ledger) -> None:
    review_id = book.open_review(ledger, 1, "gone", "deleted", NOW)

    resolved = book.resolve_review(ledger, review_id, "merged by hand", NOW)
    again = book.resolve_review(ledger, review_id, "merged by hand", NOW)

    assert resolved is not None
    assert resolved.resolution == "merged by hand"
    assert again is None
    assert book.list_reviews(ledger) == []
    assert len(book.list_reviews(ledger, include_resolved=True)) == 1


def test_set_recheck_forgets_sent_payload(ledger: Ledger) -> None:
    book.save_customer(ledger, row(1, status="review", sent_hash="abc"), NOW)

    book.set_recheck(ledger, 1, "review resolved", "pending", NOW)

    stored = book.get_customer(ledger, 1)
    assert stored is not None
    assert stored.status == "pending"
    assert stored.sent_hash is None


# Re-decisions


def test_redecision_candidates_after_email_change(ledger: Ledger) -> None:
    book.save_customer(ledger, row(1, email_changed_at=NOW), NOW)
    book.save_customer(ledger, row(2, email_changed_at=NOW, redecided_at=NOW), NOW)
    book.save_customer(ledger, row(3, email=None, email_key=None), NOW)
    later = NOW + timedelta(minutes=1)
    book.save_customer(ledger, row(4, email_changed_at=later, redecided_at=NOW), NOW)

    assert book.redecision_candidates(ledger) == [1, 4]


def test_tickets_to_redecide_puts_returns_last(ledger: Ledger) -> None:
    add_ticket(ledger, 10, 1, "no_email")
    add_ticket(ledger, 11, 1, "no_customer")
    add_ticket(ledger, 12, 1, "sale")
    add_ticket(ledger, 5, 2, "parent_not_earned", parent_id=10)
    add_ticket(ledger, 13, 3, "no_email")

    assert book.tickets_to_redecide(ledger, [1]) == [10, 11, 5]


def test_mark_redecided(ledger: Ledger) -> None:
    book.save_customer(ledger, row(1, email_changed_at=NOW), NOW)

    book.mark_redecided(ledger, [1], NOW + timedelta(seconds=1))

    assert book.redecision_candidates(ledger) == []


# Refresh queues


def test_changed_customers_from_confirmed_pushes(ledger: Ledger) -> None:
    add_push(ledger, 1, 100, "confirmed", NOW)
    add_push(ledger, 2, 200, "pending", NOW)
    add_push(ledger, 3, 300, "confirmed", NOW - timedelta(hours=1))
    book.record_refresh(ledger, 300, refreshed_at=NOW, written=None, error=None, now=NOW)

    assert book.changed_customer_ids(ledger, 10) == [100]


def test_push_after_refresh_makes_customer_due(ledger: Ledger) -> None:
    book.record_refresh(ledger, 100, refreshed_at=NOW, written=None, error=None, now=NOW)
    add_push(ledger, 1, 100, "confirmed", NOW + timedelta(seconds=1))

    assert book.changed_customer_ids(ledger, 10) == [100]


def test_flagged_customers_come_first(ledger: Ledger) -> None:
    add_push(ledger, 1, 100, "confirmed", NOW)
    book.mark_refresh_due(ledger, 200)

    assert book.changed_customer_ids(ledger, 10) == [200, 100]


def test_new_online_code_flags_its_redeemer(ledger: Ledger) -> None:
    book.save_customer(ledger, row(100, email="Pat@Example.com", email_key="pat@example.com"), NOW)
    book.save_customer(ledger, row(101, email="pat@example.com", deleted=True), NOW)
    add_ticket(ledger, 7, 200, "sale", email="pat@example.com")
    add_ticket(ledger, 8, 300, "sale", email="sam@example.com")
    for customer_id in (100, 200):
        book.record_refresh(
            ledger, customer_id, refreshed_at=NOW, written=None, error=None, now=NOW
        )

    def record(code: str) -> bool:
        return OfferLedger(ledger).record_online_code(
            code=code,
            redemption_id=None,
            option_id=3101,
            option_name="$5 Off",
            email=" PAT@example.com",
            points_cost=500,
            source="webhook",
            now=NOW,
        )

    assert record("ABC123") is True
    assert book.changed_customer_ids(ledger, 10) == [100, 200]

    for customer_id in (100, 200):
        book.record_refresh(
            ledger, customer_id, refreshed_at=NOW, written=None, error=None, now=NOW
        )
    assert record("ABC123") is False
    assert book.changed_customer_ids(ledger, 10) == []


def test_online_code_flags_yotpo_account_holder(ledger: Ledger) -> None:
    # Deleted in Heartland, with a sale under the address.
    deleted = row(101, email="pat@example.com", email_key="pat@example.com", deleted=True)
    book.save_customer(ledger, deleted, NOW)
    add_ticket(ledger, 1, 101, "sale", email="pat@example.com")
    # Moved to another address in Heartland and in Yotpo, with a sale under the old one.
    moved = row(
        102, email="new@example.com", email_key="new@example.com", sent_email="new@example.com"
    )
    book.save_customer(ledger, moved, NOW)
    add_ticket(ledger, 2, 102, "sale", email="pat@example.com")
    # A new address in Heartland that is not sent yet, so the Yotpo account keeps the old one.
    waiting = row(
        103,
        email="sam.new@example.com",
        email_key="sam.new@example.com",
        sent_email="sam@example.com",
    )
    book.save_customer(ledger, waiting, NOW)
    # Decided before the customers job stored the customer.
    add_ticket(ledger, 4, 104, "sale", email="pat@example.com")

    assert book.mark_refresh_due_by_email(ledger, "Pat@Example.com") == 1
    assert book.changed_customer_ids(ledger, 10) == [104]
    assert book.mark_refresh_due_by_email(ledger, "SAM@example.com") == 1
    assert book.changed_customer_ids(ledger, 10) == [103, 104]


def test_refresh_clears_flag_and_keeps_written(ledger: Ledger) -> None:
    book.mark_refresh_due(ledger, 200)
    book.record_refresh(ledger, 200, refreshed_at=NOW, written={"pts": "5"}, error=None, now=NOW)
    book.record_refresh(ledger, 200, refreshed_at=NOW, written=None, error=None, now=NOW)

    fields = book.get_fields(ledger, 200)

    assert fields is not None
    assert fields.refresh_due is False
    assert fields.written == {"pts": "5"}
    assert fields.written_at == NOW


def test_stale_active_customers(ledger: Ledger) -> None:
    add_ticket(ledger, 1, 100, "sale")
    add_ticket(ledger, 2, 200, "sale", completed_at=(NOW - timedelta(days=40)).isoformat())
    add_ticket(ledger, 3, 300, "sale")
    add_ticket(ledger, 4, 400, "excluded")
    book.save_customer(ledger, row(400, status="excluded"), NOW)
    book.record_refresh(ledger, 300, refreshed_at=NOW, written=None, error=None, now=NOW)

    stale = book.stale_active_customer_ids(
        ledger, NOW - timedelta(days=30), NOW - timedelta(hours=24), 10
    )

    assert stale == [100]


def add_order_push(ledger: Ledger, ticket_id: int, customer_id: int, email: str) -> None:
    push = PlannedPush(f"hl-{ticket_id}", "order", ticket_id, email, customer_id, None, 900)
    with ledger.transaction():
        ledger.add_push(push, {"order_id": f"hl-{ticket_id}"}, NOW)


def test_current_email_follows_moved_account(ledger: Ledger) -> None:
    # A restore stored under the address a customer had when spending points goes to the
    # address the customers job moved their Yotpo account to since.
    add_order_push(ledger, 5001, 7, "old@example.com")
    book.save_customer(ledger, row(7, email="new@example.com", sent_email="new@example.com"), NOW)

    assert book.current_email(ledger, "old@example.com") == "new@example.com"


def test_current_email_kept_when_not_one_customer(ledger: Ledger) -> None:
    add_order_push(ledger, 5001, 7, "shared@example.com")
    add_order_push(ledger, 5002, 8, "shared@example.com")
    book.save_customer(ledger, row(7, email="a@example.com", sent_email="a@example.com"), NOW)
    book.save_customer(ledger, row(8, email="b@example.com", sent_email="b@example.com"), NOW)

    assert book.current_email(ledger, "shared@example.com") == "shared@example.com"
    assert book.current_email(ledger, "nobody@example.com") == "nobody@example.com"
