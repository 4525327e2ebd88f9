"""Send points adjustments from the outbox: register deductions and restores.

Yotpo has no way to recognise a repeated `POST /points/adjust`, so every adjustment carries its
push id in brackets in `history_title`. Before an adjustment is sent again (after a timeout, a
5xx or a crash left it `sent`), the customer's history is read, and a row whose title contains
the id settles the push without a second request.

NOTE: The history check relies on Yotpo showing `history_title` as the history row's `action`,
as the sandbox does and as public integrations read it; confirm on a real account.
"""

from __future__ import annotations

from typing import Any, Protocol

from yotposync.errors import RejectedError
from yotposync.ledger import Ledger, Push
from yotposync.ledger.offers import REDEEM_ROLE, RESTORE_ROLE, OfferLedger
from yotposync.ledger.store import REJECTED

ADJUST_PATH = "/points/adjust"


class PointsTarget(Protocol):
    """The part of the Yotpo client that points adjustments use."""

    def adjust_points(self, payload: dict[str, Any]) -> None: ...

    def get_customer(
        self, *, email: str | None = None, with_history: bool = False
    ) -> dict[str, Any] | None: ...


def history_title(text: str, push_id: str) -> str:
    """Return the history title for an adjustment: readable text, then the push id in brackets."""
    return f"{text} [{push_id}]"


def send_points_adjustment(yotpo: PointsTarget, ledger: Ledger, push: Push) -> None:
    """Send one points adjustment, unless the customer's history shows it already applied.

    A restore whose deduction Yotpo rejected gives back points that were never spent, so it
    is rejected here without a request.
    """
    if push.role == RESTORE_ROLE:
        state = OfferLedger(ledger).deduction_state_for_restore(push.push_id)
        if state == REJECTED:
            raise RejectedError(
                "yotpo",
                "POST",
                ADJUST_PATH,
                None,
                "the deduction this restore gives back was rejected, so nothing was spent",
            )
    # The history is read before every send, the first included: a ledger restored from a
    # backup or moved aside has lost the record of earlier sends, and Yotpo has no other way
    # to recognise a repeated adjustment. It costs one read per adjustment.
    if already_applied(yotpo, push):
        return
    yotpo.adjust_points(push.payload)


def already_applied(yotpo: PointsTarget, push: Push) -> bool:
    """Tell whether the customer's Yotpo history shows this push, or its deduction, applied.

    A row whose title contains the push id settles any push. A sale's first deduction
    (`<prefix>-redeem-<ticket>`) is also settled when the customer's history shows them
    paying for the same sale's discount under another id of its family
    (`-redeem-<ticket>-<n>`, less any `-redeem-back-<ticket>-<n>`). A ledger rebuilt after a
    sale moved between customers would otherwise charge the customer who paid a second time,
    under the sale's first id. A later deduction (`-redeem-<ticket>-<n>`) is settled by its
    own id only. It can charge a customer the sale moved back to, whose history still shows
    an earlier payment because the restores of returns carry the return's id, not the sale's.
    """
    if push.email is None:
        return False
    customer = yotpo.get_customer(email=push.email, with_history=True)
    if customer is None:
        return False
    items = customer.get("history_items")
    if not isinstance(items, list):
        return False
    rows = [item for item in items if isinstance(item, dict)]
    marker = f"[{push.push_id}]"
    if any(marker in str(row.get("action", "")) for row in rows):
        return True
    return _is_first_deduction(push) and _paid_for_sale(rows, push) < 0


def _is_first_deduction(push: Push) -> bool:
    if push.role != REDEEM_ROLE or "-redeem-back-" in push.push_id:
        return False
    if not push.push_id.endswith(f"-redeem-{push.ticket_id}"):
        return False
    points = push.payload.get("point_adjustment_amount")
    return isinstance(points, int) and points < 0


def _paid_for_sale(rows: list[dict[str, Any]], push: Push) -> int:
    """Sum the points of the history rows of this push's sale's deductions and give-backs."""
    prefix = push.push_id.split("-redeem-", 1)[0]
    ticket = push.ticket_id
    tags = (
        f"[{prefix}-redeem-{ticket}]",
        f"[{prefix}-redeem-{ticket}-",
        f"[{prefix}-redeem-back-{ticket}-",
    )
    total = 0
    for row in rows:
        action = str(row.get("action", ""))
        points = row.get("points")
        if any(tag in action for tag in tags) and isinstance(points, int):
            total += points
    return total
