"""Which texts count as codes redeemed online, and how `status` shows those it skipped."""

from __future__ import annotations

from typing import Any

from yotposync.offers_cli import format_offer_status
from yotposync.sync.online_codes import history_codes


def _redemption(status: str) -> dict[str, Any]:
    return {"points": -500, "status": status, "action": "$5 Off"}


def test_history_keeps_codes_only() -> None:
    customer = {
        "history_items": [
            _redemption("LOYAL-5OFF-8XK2"),
            _redemption("BAD\nCODE"),
            _redemption("TWO WORDS"),
            _redemption("Approved"),
            {"points": 120, "status": "Approved", "action": "Made a purchase"},
        ]
    }

    assert history_codes(customer) == [("LOYAL-5OFF-8XK2", "$5 Off", 500)]


def test_status_shows_skipped_code_on_one_line() -> None:
    status = {
        "offers": {"active": 1},
        "deductions": {},
        "online_codes": {"skipped": 1},
        "deduction_problems": [],
        "skipped_offers": [],
        # Recorded by a version that did not check codes.
        "skipped_codes": [{"code": "BAD\nCODE", "reason": "Heartland rejected the coupon"}],
    }

    lines = format_offer_status(status)

    assert lines[-2:] == [
        "Offers and online codes without a coupon:",
        "  online code 'BAD\\nCODE' skipped: Heartland rejected the coupon",
    ]
    assert "Deductions needing attention:" not in lines
