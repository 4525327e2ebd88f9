"""The catch-up summary and `status` give the number of unreadable tickets they leave out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from yotposync.app import CatchUpResult
from yotposync.cli import SKIPPED_SHOWN, format_catch_up
from yotposync.ledger import Cursor, Ledger
from yotposync.status import collect_status, format_status
from yotposync.sync.plan import PlannedPush
from yotposync.sync.transactions import CURSOR_NAME, TransactionsSummary

NOW = datetime(2026, 3, 8, 6, 30, tzinfo=UTC)


def test_catch_up_counts_unnamed_skips() -> None:
    summary = TransactionsSummary(start=NOW, end=NOW)
    summary.invalid = [f"ticket {n}: total is missing" for n in range(SKIPPED_SHOWN + 3)]

    text = format_catch_up(CatchUpResult(summary, None, True, 1.0))

    assert text.count("Skipped: ticket") == SKIPPED_SHOWN
    assert "Skipped: 3 more, each in the log as ticket_invalid" in text


def test_catch_up_names_few_skips() -> None:
    summary = TransactionsSummary(start=NOW, end=NOW)
    summary.invalid = ["ticket 7: total is missing"]

    text = format_catch_up(CatchUpResult(summary, None, True, 1.0))

    assert "Skipped: ticket 7: total is missing" in text
    assert "more, each in the log" not in text


def test_status_counts_unnamed_invalid(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path / "ledger.sqlite3")
    try:
        for ticket_id in range(1, 5):
            ledger.record_invalid(ticket_id, f"ticket {ticket_id}: total is missing", NOW)
        limited = format_status(collect_status(ledger, NOW, problem_limit=3))
        every = format_status(collect_status(ledger, NOW, problem_limit=10))
    finally:
        ledger.close()

    assert "Tickets that could not be read (the latest 3 of 4):" in limited
    assert "Tickets that could not be read:" in every


def test_catch_up_counts_orders_and_refunds_in_words() -> None:
    summary = TransactionsSummary(start=NOW, end=NOW)
    none = format_catch_up(CatchUpResult(summary, None, True, 1.0))
    two = format_catch_up(CatchUpResult(summary, None, False, 1.0, points_adjustments=2))
    assert "Would send 0 orders and refunds.\n" in none + "\n"
    assert "listed above" not in none
    assert "Queued 0 orders and refunds and 2 points adjustments." in two


def test_status_lists_push_in_unknown_state(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path / "ledger.sqlite3")
    try:
        push = PlannedPush("hl-7", "order", 7, "pat@example.com", 3, None, 900)
        with ledger.transaction():
            seq = ledger.add_push(push, {"order_id": "hl-7"}, NOW)
            ledger.db.execute("UPDATE pushes SET state = 'bogus' WHERE seq = ?", [seq])
        text = format_status(collect_status(ledger, NOW))
    finally:
        ledger.close()

    assert "Pushes needing attention:" in text
    assert "hl-7 (order, ticket 7) bogus: yotposync never sets this state" in text


def test_status_counts_pushes_held_behind_failed(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path / "ledger.sqlite3")
    try:
        with ledger.transaction():
            order = PlannedPush("hl-7", "order", 7, "pat@example.com", 3, None, 900)
            seq = ledger.add_push(order, {"order_id": "hl-7"}, NOW)
            ledger.mark_retry(seq, 500, "server error", NOW, NOW, failed=True)
            refund = PlannedPush("hl-ret-8", "return", 8, "pat@example.com", 3, "hl-7", 400)
            ledger.add_push(refund, {"id": "hl-ret-8"}, NOW)
            other = PlannedPush("hl-9", "order", 9, "sam@example.com", 4, None, 500)
            ledger.add_push(other, {"order_id": "hl-9"}, NOW)
        status = collect_status(ledger, NOW)
        text = format_status(status)
    finally:
        ledger.close()

    assert status["outbox_held_behind_failed"] == 1
    assert "1 pending push waits behind a failed push of the same customer" in text


@pytest.mark.parametrize(
    ("cursor", "shown"),
    [
        (
            Cursor(NOW - timedelta(minutes=5), 41),
            "Cursor: 2026-03-08T06:25:00+00:00 (ticket 41), lag 5m 0s",
        ),
        (
            Cursor(NOW, 0),
            (
                "Cursor: 2026-03-08T06:30:00+00:00 (set by the first run, no later ticket yet), "
                "lag 0s"
            ),
        ),
        (
            Cursor(NOW + timedelta(hours=2), 41),
            "Cursor: 2026-03-08T08:30:00+00:00 (ticket 41), 2h 0m in the future: check this "
            "machine's clock. The next transactions run moves the cursor back",
        ),
    ],
)
def test_status_shows_cursor(tmp_path: Path, cursor: Cursor, shown: str) -> None:
    ledger = Ledger.open(tmp_path / "ledger.sqlite3")
    try:
        with ledger.transaction():
            ledger.save_cursor(CURSOR_NAME, cursor, NOW)
        text = format_status(collect_status(ledger, NOW))
    finally:
        ledger.close()

    assert shown in text.splitlines()


def test_status_shows_customers_cursor(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path / "ledger.sqlite3")
    try:
        with ledger.transaction():
            ledger.save_cursor("customers", Cursor(NOW - timedelta(minutes=2), 9016), NOW)
        text = format_status(collect_status(ledger, NOW))
    finally:
        ledger.close()

    assert "Customers cursor: 2026-03-08T06:28:00+00:00 (customer 9016), lag 2m 0s" in (
        text.splitlines()
    )
