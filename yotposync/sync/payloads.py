"""Yotpo request bodies for planned pushes. Pure: plain data in, JSON-ready dicts out."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from yotposync import __version__
from yotposync.sync.model import Ticket
from yotposync.sync.plan import ORDER, PlannedPush

USER_AGENT = f"yotposync/{__version__}"


def order_payload(
    push: PlannedPush,
    ticket: Ticket,
    *,
    currency: str,
    discount_cents: int,
    first_order: bool,
) -> dict[str, Any]:
    """Build the `POST /orders` body for an order push.

    Only the first order of a ticket lists its items and discount; a later order for the same
    ticket carries just the extra amount, so Yotpo never sees the same items twice.
    """
    payload = _order_body(push, ticket.completed_at or ticket.updated_at, currency)
    if first_order:
        payload["discount_amount_cents"] = discount_cents
        payload["items"] = [
            {
                "id": str(line.item_id if line.item_id is not None else line.id),
                "name": line.description,
                "quantity": line.qty,
                "price_cents": line.value_cents // line.qty,
            }
            for line in ticket.lines
            if line.type == "ItemLine" and line.qty > 0 and not line.voided
        ]
    return payload


def restore_payload(push: PlannedPush, *, when: datetime, currency: str) -> dict[str, Any]:
    """Build the `POST /orders` body for a restore planned without its return's ticket at hand."""
    return _order_body(push, when, currency)


def _order_body(push: PlannedPush, when: datetime, currency: str) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "order_id": push.push_id,
        "customer_email": push.email,
        "total_amount_cents": push.amount_cents,
        "currency_code": currency,
        "status": "paid",
        # NOTE: Yotpo's example writes "2019-05-25 20:59:53" without a zone; we send ISO 8601
        # with an explicit UTC offset so that no reader has to guess the zone.
        "created_at": when.isoformat(),
        # Store sales have no shopper IP or browser, so the referral fraud checks are skipped
        # the way other point-of-sale integrations do.
        "ignore_ip_ua": True,
        "ip_address": "0.0.0.0",  # noqa: S104 - a placeholder value, not a bind address
        "user_agent": USER_AGENT,
        "customer": {"has_account": True},
    }
    if push.customer_id is not None:
        payload["customer_id"] = str(push.customer_id)
    return payload


def refund_payload(push: PlannedPush, *, currency: str) -> dict[str, Any]:
    """Build the `POST /refunds` body for a refund push."""
    return {
        "id": push.push_id,
        "order_id": push.target_order_id,
        "total_amount_cents": push.amount_cents,
        "currency": currency,
    }


def is_first_order(push: PlannedPush, id_prefix: str) -> bool:
    """True for the `P-T` order of a ticket, the only one that lists items."""
    return push.kind == ORDER and push.push_id == f"{id_prefix}-{push.ticket_id}"
