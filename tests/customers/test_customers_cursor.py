"""The customers cursor never moves past the walk's end, and one in the future is moved back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from structlog.testing import capture_logs

from tests.customers.support import ANCHOR, Jobs, Shop
from yotposync.ledger import Cursor
from yotposync.sync.customer_job import CURSOR_NAME, _last_key

FUTURE = datetime(2030, 1, 1, tzinfo=UTC)


def test_customer_listed_after_window_end_leaves_cursor() -> None:
    end = ANCHOR + timedelta(hours=1)
    raws = [
        {"id": 7, "updated_at": ANCHOR.isoformat()},
        {"id": 8, "updated_at": FUTURE.isoformat()},
    ]

    with capture_logs() as logs:
        last = _last_key(raws, end)

    assert last == Cursor(ANCHOR, 7)
    assert [entry["customer_id"] for entry in logs] == [8]
    assert logs[0]["event"] == "customer_updated_after_window"


def test_customer_after_window_warned_once_per_version() -> None:
    end = ANCHOR + timedelta(hours=1)
    listed = [{"id": 9001, "updated_at": FUTURE.isoformat()}]
    edited = [{"id": 9001, "updated_at": (FUTURE + timedelta(days=1)).isoformat()}]

    with capture_logs() as logs:
        for raws in (listed, listed, edited, listed):
            assert _last_key(raws, end) is None

    assert [entry["log_level"] for entry in logs] == ["warning", "debug", "warning", "debug"]


def test_customers_cursor_after_now_walks_again(shop: Shop, jobs: Jobs) -> None:
    shop.customer("early@example.com")
    jobs.customers()
    with jobs.ledger.transaction():
        jobs.ledger.save_cursor(CURSOR_NAME, Cursor(FUTURE, 1), jobs.now())
    shop.tick(3600)
    shop.customer("late@example.com")

    with capture_logs() as logs:
        summary = jobs.customers()

    assert shop.loyalty(customer_email="late@example.com") is not None
    assert summary.sent == 1
    cursor = jobs.ledger.get_cursor(CURSOR_NAME)
    assert cursor is not None
    assert cursor.updated_at <= jobs.now()
    assert [entry["event"] for entry in logs if entry["event"] == "cursor_after_now"] == [
        "cursor_after_now"
    ]
