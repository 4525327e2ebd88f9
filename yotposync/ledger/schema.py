"""Ledger schema and its migrations.

The schema version lives in SQLite's `user_version`. Each migration moves the ledger from one
version to the next inside one transaction, so a ledger is always at a version this code can read.
A ledger whose version is newer than `SCHEMA_VERSION` was written by a newer yotposync and is
never touched.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlite_utils

from yotposync.ledger.offers_schema import create_offer_tables


def _create_v1(db: sqlite_utils.Database) -> None:
    db.table("cursors").create(
        {"name": str, "updated_at": str, "last_id": int, "saved_at": str},
        pk="name",
    )
    db.table("tickets").create(
        {
            "id": int,
            "public_id": str,
            "type": str,
            "updated_at": str,
            "completed_at": str,
            "business_date": str,
            "location_id": int,
            "kind": str,
            "reason": str,
            "rule": str,
            "customer_id": int,
            "email": str,
            "parent_id": int,
            "earn_cents": int,
            "return_cents": int,
            "item_cents": int,
            "item_net_cents": int,
            "versions": int,
            "first_seen_at": str,
            "decided_at": str,
        },
        pk="id",
        not_null={"kind", "reason", "versions", "first_seen_at", "decided_at"},
    )
    db.table("tickets").create_index(["parent_id"])
    db.table("tickets").create_index(["customer_id"])
    db.table("ticket_versions").create(
        {
            "id": int,
            "ticket_id": int,
            "updated_at": str,
            "kind": str,
            "reason": str,
            "rule": str,
            "customer_id": int,
            "earn_cents": int,
            "return_cents": int,
            "seen_at": str,
        },
        pk="id",
    )
    db.table("ticket_versions").create_index(["ticket_id"])
    # The outbox. `seq` orders delivery; `push_id` is the id sent to Yotpo and never changes.
    db.table("pushes").create(
        {
            "seq": int,
            "push_id": str,
            "kind": str,
            "role": str,
            "ticket_id": int,
            "customer_id": int,
            "email": str,
            "target_order_id": str,
            "amount_cents": int,
            "payload": str,
            "state": str,
            "attempts": int,
            "next_attempt_at": str,
            "last_status": int,
            "last_error": str,
            "created_at": str,
            "updated_at": str,
            "confirmed_at": str,
        },
        pk="seq",
        not_null={"push_id", "kind", "role", "ticket_id", "amount_cents", "payload", "state"},
        defaults={"attempts": 0},
    )
    db.table("pushes").create_index(["push_id"], unique=True)
    db.table("pushes").create_index(["ticket_id"])
    db.table("pushes").create_index(["target_order_id"])
    db.table("pushes").create_index(["state", "next_attempt_at"])
    db.table("pushes").create_index(["email", "seq"])
    db.table("runs").create(
        {
            "id": int,
            "job": str,
            "started_at": str,
            "finished_at": str,
            "outcome": str,
            "summary": str,
            "error": str,
        },
        pk="id",
    )
    db.table("runs").create_index(["job", "id"])


def _add_customers_v2(db: sqlite_utils.Database) -> None:
    """Add the customer tables: enrolment state, the review list and the cashier fields."""
    # One row per Heartland customer the customers job has seen. `email` is trimmed and
    # lower-cased; `email_key` is its case-folded form, used for matching.
    db.table("customers").create(
        {
            "id": int,
            "public_id": str,
            "email": str,
            "email_key": str,
            "first_name": str,
            "last_name": str,
            "phone": str,
            "opted_in": int,
            "deleted": int,
            "status": str,
            "reason": str,
            "heartland_updated_at": str,
            "sent_hash": str,
            "sent_email": str,
            "sent_at": str,
            "attempts": int,
            "next_attempt_at": str,
            "last_error": str,
            "email_changed_at": str,
            "redecided_at": str,
            "first_seen_at": str,
            "updated_at": str,
        },
        pk="id",
        not_null={"status", "reason", "first_seen_at", "updated_at"},
        defaults={"attempts": 0, "opted_in": 0, "deleted": 0},
    )
    db.table("customers").create_index(["email_key"])
    db.table("customers").create_index(["phone"])
    db.table("customers").create_index(["status", "next_attempt_at"])
    # Conflicts that staff resolve by hand. At most one open review per customer and kind.
    db.table("customer_reviews").create(
        {
            "id": int,
            "customer_id": int,
            "kind": str,
            "detail": str,
            "state": str,
            "opened_at": str,
            "updated_at": str,
            "resolved_at": str,
            "resolution": str,
        },
        pk="id",
        not_null={"customer_id", "kind", "detail", "state", "opened_at", "updated_at"},
    )
    db.table("customer_reviews").create_index(["state", "customer_id", "kind"])
    # The figures shown to the cashier. `refreshed_at` is when the last refresh started
    # reading Yotpo, so a push confirmed after it makes the customer due again.
    db.table("customer_fields").create(
        {
            "customer_id": int,
            "refresh_due": int,
            "refreshed_at": str,
            "written_at": str,
            "written": str,
            "last_error": str,
        },
        pk="customer_id",
        defaults={"refresh_due": 0},
    )
    db.table("pushes").create_index(["customer_id", "state"])


def _index_open_pushes_v4(db: sqlite_utils.Database) -> None:
    """Add partial indexes over the unfinished pushes only, for the delivery job's queries.

    Without them, finding the next batch of due pushes read every due push and sorted them,
    once per batch, so a catch-up of n pushes cost O(n * n / batch size). The partial indexes
    hold only pushes that are still open, in `seq` order, so a batch reads about its own size.
    """
    db.execute(
        "CREATE INDEX IF NOT EXISTS idx_pushes_open_seq ON pushes (seq) "
        "WHERE state IN ('pending', 'sent')"
    )
    db.execute(
        "CREATE INDEX IF NOT EXISTS idx_pushes_waiting_email ON pushes (email, seq) "
        "WHERE state IN ('pending', 'failed')"
    )


def _add_returned_items_v5(db: sqlite_utils.Database) -> None:
    """Keep each ticket's returned item amount, which later returns of the same sale round by.

    Tickets decided before this version have NULL here; a return after them rounds on its own.
    """
    db.table("tickets").add_column("returned_item_cents", int)


def _add_offer_costs_v6(db: sqlite_utils.Database) -> None:
    """Keep each offer's points costs with the time each took effect.

    A sale deducts the cost its offer had when the sale was completed, not the cost the offers
    job copied since. Offers synced before this version start with their cost at the time
    their row was created.
    """
    db.table("offer_costs").create(
        {"option_id": int, "points_cost": int, "since": str},
        not_null={"option_id", "points_cost", "since"},
    )
    db.table("offer_costs").create_index(["option_id"])
    db.execute(
        "INSERT INTO offer_costs (option_id, points_cost, since) "
        "SELECT option_id, points_cost, created_at FROM offer_coupons "
        "WHERE points_cost IS NOT NULL AND created_at IS NOT NULL"
    )


# Index i is the migration from version i to version i + 1.
MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [
    _create_v1,
    _add_customers_v2,
    create_offer_tables,
    _index_open_pushes_v4,
    _add_returned_items_v5,
    _add_offer_costs_v6,
]
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(db: sqlite_utils.Database) -> int:
    """Read the ledger's schema version (0 for a new, empty file)."""
    row = db.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def migrate(db: sqlite_utils.Database, target: int = SCHEMA_VERSION) -> list[int]:
    """Apply every migration the ledger lacks up to version `target`.

    Returns the versions reached, in order.
    """
    reached: list[int] = []
    version = schema_version(db)
    while version < target:
        with db.atomic():
            MIGRATIONS[version](db)
            version += 1
            db.execute(f"PRAGMA user_version = {version}")
        reached.append(version)
    return reached
