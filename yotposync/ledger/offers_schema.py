"""Ledger tables for loyalty offers, online codes, register deductions and restores.

- `offer_coupons`: one row per Yotpo redemption option: its Heartland coupon, the spec last
  written to it, and whether it is active, inactive or skipped (with the reason).
- `online_codes`: codes that customers redeemed online, each a single-use Heartland coupon,
  and the ticket that used it.
- `redemptions`: one row per ticket that used a loyalty coupon: what it did to points, and the
  deduction push when one was queued. Its outcome (confirmed, rejected) is the push's state.
- `redemption_returns`: the item amount each return ticket gave back of a sale that spent
  points, at its latest version.
- `point_restores`: every positive adjustment that gave spent points back, one per push.
"""

from __future__ import annotations

import sqlite_utils


def create_offer_tables(db: sqlite_utils.Database) -> None:
    """Create the offer tables (a ledger migration; runs inside the migration transaction)."""
    db.table("offer_coupons").create(
        {
            "option_id": int,
            "name": str,
            "points_cost": int,
            "code": str,
            "coupon_id": int,
            "spec": str,
            "state": str,
            "reason": str,
            "created_at": str,
            "updated_at": str,
        },
        pk="option_id",
        not_null={"name", "state", "updated_at"},
    )
    db.table("offer_coupons").create_index(["coupon_id"])
    db.table("online_codes").create(
        {
            "code": str,
            "redemption_id": str,
            "option_id": int,
            "option_name": str,
            "email": str,
            "points_cost": int,
            "source": str,
            "coupon_id": int,
            "state": str,
            "reason": str,
            "ticket_id": int,
            "received_at": str,
            "updated_at": str,
        },
        pk="code",
        not_null={"source", "state", "received_at", "updated_at"},
    )
    db.table("online_codes").create_index(["coupon_id"])
    db.table("online_codes").create_index(["state"])
    db.table("redemptions").create(
        {
            "ticket_id": int,
            "coupon_id": int,
            "coupon_kind": str,
            "code": str,
            "option_id": int,
            "customer_id": int,
            "email": str,
            "points": int,
            "state": str,
            "reason": str,
            "push_id": str,
            "decided_at": str,
        },
        pk="ticket_id",
        not_null={"coupon_id", "coupon_kind", "state", "reason", "decided_at"},
    )
    db.table("redemptions").create_index(["state"])
    db.table("redemption_returns").create(
        {
            "return_ticket_id": int,
            "sale_ticket_id": int,
            "returned_item_cents": int,
            "updated_at": str,
        },
        pk="return_ticket_id",
        not_null={"sale_ticket_id", "returned_item_cents", "updated_at"},
    )
    db.table("redemption_returns").create_index(["sale_ticket_id"])
    db.table("point_restores").create(
        {
            "push_id": str,
            "ticket_id": int,
            "sale_ticket_id": int,
            "points": int,
            "reason": str,
            "created_at": str,
        },
        pk="push_id",
        not_null={"ticket_id", "sale_ticket_id", "points", "created_at"},
    )
    db.table("point_restores").create_index(["sale_ticket_id"])
