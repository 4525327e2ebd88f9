"""Ledger functions over the offer tables (see `offers_schema`): plain data in and out.

Callers group writes with `Ledger.transaction()`, so a deduction, its push and the ticket
decision that caused it commit together.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from yotposync.ledger import customers
from yotposync.ledger.integrity import stored_time
from yotposync.ledger.store import PENDING, Ledger
from yotposync.sync.offers import Offer, OfferMapping
from yotposync.sync.redemptions import (
    OFFER,
    ONLINE_CODE,
    DeductionDecision,
    LoyaltyCoupon,
    SpentPoints,
)

# Push kind and roles of points adjustments in the `pushes` outbox.
POINTS_ADJUST = "points_adjust"
REDEEM_ROLE = "redeem"
RESTORE_ROLE = "restore_points"

# States of an online code.
CODE_PENDING = "pending"  # recorded, its Heartland coupon not created yet
CODE_ACTIVE = "active"  # a single-use coupon waits at the register
CODE_USED = "used"  # used on a completed ticket; its coupon still has to be switched off
CODE_CLOSED = "closed"  # used and switched off
CODE_SKIPPED = "skipped"  # no coupon can be made for it, for the `reason` stored


def _iso(value: datetime) -> str:
    return value.isoformat()


class OfferLedger:
    """The offer tables of one open ledger."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.db = ledger.db

    # Offers and their coupons.

    def offer_mappings(self) -> list[OfferMapping]:
        rows = self.db.execute(
            "SELECT option_id, coupon_id, spec, state FROM offer_coupons ORDER BY option_id"
        )
        return [OfferMapping(*row) for row in rows]

    def save_offer(self, offer: Offer, coupon_id: int, now: datetime) -> None:
        """Record that the offer's coupon `coupon_id` now matches the offer and is active."""
        spec = offer.coupon_spec()
        if self.offer_points_cost(offer.option_id) != offer.points_cost:
            self.db.execute(
                "INSERT INTO offer_costs (option_id, points_cost, since) VALUES (?, ?, ?)",
                [offer.option_id, offer.points_cost, _iso(now)],
            )
        self._upsert_offer(
            offer.option_id,
            {
                "name": offer.name,
                "points_cost": offer.points_cost,
                "code": spec.code,
                "coupon_id": coupon_id,
                "spec": spec.as_json(),
                "state": "active",
                "reason": offer.describe(),
            },
            now,
        )

    def offer_state(self, option_id: int) -> tuple[str, str] | None:
        """Return an option's stored state and reason, or None when it is not in the ledger."""
        row = self.db.execute(
            "SELECT state, reason FROM offer_coupons WHERE option_id = ?", [option_id]
        ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]))

    def mark_offer(self, option_id: int, name: str, state: str, reason: str, now: datetime) -> None:
        """Set an option's state ("inactive" or "skipped") and reason, keeping its coupon."""
        self._upsert_offer(option_id, {"name": name, "state": state, "reason": reason}, now)

    def _upsert_offer(self, option_id: int, values: dict[str, Any], now: datetime) -> None:
        # One statement, so that a transaction holding only this write takes the write lock
        # first and waits for it, instead of failing on a read snapshot another job outdated.
        columns = ["option_id", *values, "created_at", "updated_at"]
        updates = ", ".join(f"{name} = excluded.{name}" for name in [*values, "updated_at"])
        self.db.execute(
            f"INSERT INTO offer_coupons ({', '.join(columns)}) "  # noqa: S608 - literal names
            f"VALUES ({', '.join('?' * len(columns))}) "
            f"ON CONFLICT(option_id) DO UPDATE SET {updates}",
            [option_id, *values.values(), _iso(now), _iso(now)],
        )

    def offer_rows(self) -> list[dict[str, Any]]:
        return list(
            self.db.query(
                "SELECT option_id, name, points_cost, code, coupon_id, state, reason, updated_at "
                "FROM offer_coupons ORDER BY option_id"
            )
        )

    def offer_spec(self, option_id: int) -> dict[str, Any] | None:
        """Return the coupon body last written for an option, or None when it never had one."""
        row = self.db.execute(
            "SELECT spec FROM offer_coupons WHERE option_id = ?", [option_id]
        ).fetchone()
        if row is None or row[0] is None:
            return None
        spec: dict[str, Any] = json.loads(row[0])
        return spec

    def loyalty_coupon(self, coupon_id: int) -> LoyaltyCoupon | None:
        """Return the ledger's record of a coupon, or None when yotposync did not make it."""
        row = self.db.execute(
            "SELECT code, name, option_id, points_cost FROM offer_coupons WHERE coupon_id = ?",
            [coupon_id],
        ).fetchone()
        if row is not None:
            return LoyaltyCoupon(coupon_id, OFFER, row[0], row[1], row[2], row[3] or 0)
        row = self.db.execute(
            "SELECT code, option_name, option_id, points_cost, ticket_id FROM online_codes "
            "WHERE coupon_id = ?",
            [coupon_id],
        ).fetchone()
        if row is not None:
            return LoyaltyCoupon(
                coupon_id, ONLINE_CODE, row[0], row[1] or row[0], row[2], row[3] or 0, row[4]
            )
        return None

    def offer_points_cost(self, option_id: int) -> int | None:
        """Return the points cost of an option as the offers job last copied it, or None."""
        row = self.db.execute(
            "SELECT points_cost FROM offer_coupons WHERE option_id = ?", [option_id]
        ).fetchone()
        return int(row[0]) if row is not None and row[0] else None

    def points_cost_at(self, option_id: int, when: datetime) -> int | None:
        """Return the points cost an option had at `when`, as the offers job copied it.

        Costs are compared by whole seconds, the precision of Heartland's times: a sale
        stamped with the second in which a cost was copied pays that cost. A time before the
        first recorded cost gets that first cost, the earliest one the ledger stores. Returns
        None when no cost was ever recorded for the option.
        """
        rows = self.db.execute(
            "SELECT points_cost, since FROM offer_costs WHERE option_id = ? ORDER BY rowid",
            [option_id],
        ).fetchall()
        costs = [
            (
                stored_time(since, f"offer_costs.since of option {option_id}").replace(
                    microsecond=0
                ),
                int(points),
            )
            for points, since in rows
        ]
        if not costs:
            return None
        costs.sort(key=lambda cost: cost[0])
        chosen = costs[0][1]
        for since, points in costs:
            if since <= when:
                chosen = points
        return chosen

    def loyalty_coupon_by_code(self, code: str) -> LoyaltyCoupon | None:
        """Return the ledger's record of the coupon with `code`, ignoring case, or None.

        For a ticket whose `coupon_id` names the coupon by its code; see `_coupon_reference`.
        """
        row = self.db.execute(
            "SELECT coupon_id FROM offer_coupons WHERE upper(code) = upper(?) "
            "UNION ALL SELECT coupon_id FROM online_codes WHERE upper(code) = upper(?) LIMIT 1",
            [code, code],
        ).fetchone()
        if row is None or row[0] is None:
            return None
        return self.loyalty_coupon(int(row[0]))

    # Online codes.

    def record_online_code(
        self,
        *,
        code: str,
        redemption_id: str | None,
        option_id: int | None,
        option_name: str | None,
        email: str | None,
        points_cost: int | None,
        source: str,
        now: datetime,
    ) -> bool:
        """Record a code redeemed online; return False when it was already known.

        The insert is the first statement, so in a transaction of its own it takes the write
        lock at once and never has to upgrade a read snapshot that another writer outdated.
        A new code flags its redeemer's cashier fields for a refresh: Yotpo has taken points
        that the balance shown at the register still counts.
        """
        cursor = self.db.execute(
            "INSERT OR IGNORE INTO online_codes (code, redemption_id, option_id, option_name, "
            "email, points_cost, source, state, received_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                code,
                redemption_id,
                option_id,
                option_name,
                email,
                points_cost,
                source,
                CODE_PENDING,
                _iso(now),
                _iso(now),
            ],
        )
        if not cursor.rowcount:
            return False
        if email:
            customers.mark_refresh_due_by_email(self.ledger, email)
        return True

    def active_coupon_names(self) -> dict[str, str]:
        """Return option id (as text) to coupon name for the offers with an active coupon."""
        names: dict[str, str] = {}
        for mapping in self.offer_mappings():
            if mapping.state != "active" or mapping.coupon_id is None or not mapping.spec_json:
                continue
            name = json.loads(mapping.spec_json).get("name")
            if isinstance(name, str) and name.strip():
                names[str(mapping.option_id)] = name
        return names

    def known_codes(self) -> set[str]:
        return {str(row[0]) for row in self.db.execute("SELECT code FROM online_codes")}

    def codes_in_state(self, state: str) -> list[dict[str, Any]]:
        return list(
            self.db.query(
                "SELECT code, option_id, option_name, email, coupon_id, ticket_id, source, "
                "points_cost, reason "
                "FROM online_codes WHERE state = ? ORDER BY received_at, code",
                [state],
            )
        )

    def set_code_state(
        self,
        code: str,
        state: str,
        now: datetime,
        *,
        reason: str | None = None,
        coupon_id: int | None = None,
        ticket_id: int | None = None,
        points_cost: int | None = None,
    ) -> None:
        values: dict[str, Any] = {"state": state, "updated_at": _iso(now), "reason": reason}
        if coupon_id is not None:
            values["coupon_id"] = coupon_id
        if points_cost is not None:
            values["points_cost"] = points_cost
        if ticket_id is not None:
            values["ticket_id"] = ticket_id
        self.db.table("online_codes").update(code, values)

    def code_counts(self) -> dict[str, int]:
        rows = self.db.execute("SELECT state, count(*) FROM online_codes GROUP BY state")
        return {str(state): int(n) for state, n in rows}

    def recent_customer_emails(self, now: datetime, days: int, limit: int) -> list[str]:
        """E-mails of customers with a ticket completed in the last `days` days, newest first."""
        since = _iso(now - timedelta(days=days))
        rows = self.db.execute(
            "SELECT email, max(completed_at) AS last FROM tickets "
            "WHERE email IS NOT NULL AND completed_at >= ? GROUP BY email "
            "ORDER BY last DESC LIMIT ?",
            [since, limit],
        )
        return [str(row[0]) for row in rows]

    def spender_email(self, sale_ticket_id: int) -> str | None:
        """Return the e-mail of the customer who spent points on a sale.

        For a code redeemed online it is the customer who redeemed the code, also when the
        sale is rung up for another customer or for none. For a register deduction it is the
        sale's customer, whose points were deducted.
        """
        for query in (
            "SELECT email FROM online_codes WHERE ticket_id = ? AND email IS NOT NULL",
            "SELECT email FROM redemptions WHERE ticket_id = ? AND email IS NOT NULL",
        ):
            row = self.db.execute(query, [sale_ticket_id]).fetchone()
            if row is not None and row[0]:
                return str(row[0])
        return None

    # Register deductions.

    def redemption(self, ticket_id: int) -> dict[str, Any] | None:
        rows = list(
            self.db.query(
                "SELECT ticket_id, coupon_id, coupon_kind, code, state, reason, push_id, points, "
                "email, customer_id FROM redemptions WHERE ticket_id = ?",
                [ticket_id],
            )
        )
        return rows[0] if rows else None

    def save_redemption(
        self,
        ticket_id: int,
        coupon: LoyaltyCoupon,
        decision: DeductionDecision,
        *,
        customer_id: int | None,
        email: str | None,
        push_id: str | None,
        now: datetime,
    ) -> None:
        self.db.table("redemptions").upsert(
            {
                "ticket_id": ticket_id,
                "coupon_id": coupon.coupon_id,
                "coupon_kind": coupon.kind,
                "code": coupon.code,
                "option_id": coupon.option_id,
                "customer_id": customer_id,
                "email": email,
                "points": decision.points,
                "state": decision.state.value,
                "reason": decision.reason,
                "push_id": push_id,
                "decided_at": _iso(now),
            },
            pk="ticket_id",
        )

    def move_redemption(
        self,
        ticket_id: int,
        *,
        customer_id: int | None,
        email: str | None,
        push_id: str,
        state: str,
        reason: str,
        now: datetime,
    ) -> None:
        """Record who pays a sale's deduction now, and by which push (no one without `email`)."""
        self.db.execute(
            "UPDATE redemptions SET customer_id = ?, email = ?, push_id = ?, state = ?, "
            "reason = ?, decided_at = ? WHERE ticket_id = ?",
            [customer_id, email, push_id, state, reason, _iso(now), ticket_id],
        )

    def redeem_push_count(self, ticket_id: int) -> int:
        """Return how many deductions and give-backs were queued for one sale's coupon."""
        row = self.db.execute(
            "SELECT count(*) FROM pushes WHERE ticket_id = ? AND role = ?",
            [ticket_id, REDEEM_ROLE],
        ).fetchone()
        return int(row[0])

    def add_points_push(
        self,
        *,
        push_id: str,
        role: str,
        ticket_id: int,
        customer_id: int | None,
        email: str,
        points: int,
        payload: dict[str, Any],
        now: datetime,
    ) -> None:
        """Queue a points adjustment. Its `amount_cents` is 0 because it moves points, not money."""
        self.db.table("pushes").insert(
            {
                "push_id": push_id,
                "kind": POINTS_ADJUST,
                "role": role,
                "ticket_id": ticket_id,
                "customer_id": customer_id,
                "email": email,
                "target_order_id": None,
                "amount_cents": 0,
                "payload": json.dumps(
                    payload | {"point_adjustment_amount": points}, sort_keys=True
                ),
                "state": PENDING,
                "attempts": 0,
                "next_attempt_at": _iso(now),
                "created_at": _iso(now),
                "updated_at": _iso(now),
            }
        )

    # Returns and restores.

    def spent_points(self, sale_ticket_id: int) -> SpentPoints | None:
        """Return the points a sale spent, or None when it spent nothing that counts.

        Points count when they were deducted at the register, or when the sale used a code the
        customer redeemed online (Yotpo took its points cost then). A deduction that Yotpo
        rejected spent nothing, so its returns give nothing back.
        """
        row = self.db.execute(
            "SELECT r.points, COALESCE(t.item_cents, 0) FROM redemptions r "
            "JOIN pushes p ON p.push_id = r.push_id "
            "LEFT JOIN tickets t ON t.id = r.ticket_id "
            "WHERE r.ticket_id = ? AND p.state != 'rejected'",
            [sale_ticket_id],
        ).fetchone()
        if row is None:
            row = self.db.execute(
                "SELECT o.points_cost, COALESCE(t.item_cents, 0) FROM online_codes o "
                "LEFT JOIN tickets t ON t.id = o.ticket_id "
                "WHERE o.ticket_id = ? AND o.state IN (?, ?) AND o.points_cost > 0",
                [sale_ticket_id, CODE_USED, CODE_CLOSED],
            ).fetchone()
        if row is None:
            return None
        returned = self.db.execute(
            "SELECT COALESCE(sum(returned_item_cents), 0) FROM redemption_returns "
            "WHERE sale_ticket_id = ?",
            [sale_ticket_id],
        ).fetchone()[0]
        # Take-backs Yotpo rejected (the customer had spent the points) left those points with
        # the customer, although the restores above count them as taken. Only those queued
        # after the sale's latest deduction or give-back count, because a move settles the
        # earlier ones with the customer who kept them.
        # NOTE: a move that queues no push (nothing left owed) keeps the earlier ones counted,
        # so they still limit what the next payer's returns give back.
        untaken = self.db.execute(
            "SELECT COALESCE(sum(x.points), 0) FROM point_restores x "
            "JOIN pushes p ON p.push_id = x.push_id "
            "WHERE x.sale_ticket_id = ? AND x.points < 0 AND p.state = 'rejected' "
            "AND p.seq > (SELECT COALESCE(max(d.seq), 0) FROM pushes d "
            "WHERE d.ticket_id = ? AND d.role = ?)",
            [sale_ticket_id, sale_ticket_id, REDEEM_ROLE],
        ).fetchone()[0]
        return SpentPoints(
            sale_ticket_id=sale_ticket_id,
            points=int(row[0] or 0),
            sold_item_cents=int(row[1]),
            returned_item_cents=int(returned),
            restored_points=self.restored_points(sale_ticket_id),
            untaken_points=-int(untaken),
        )

    def has_spending(self, sale_ticket_id: int) -> bool:
        """Tell whether a sale used a loyalty coupon, whether or not it deducted anything yet.

        A return of such a sale keeps its returned share even while nothing counts as spent,
        because the sale may later get a customer who then pays for the discount.
        """
        row = self.db.execute(
            "SELECT 1 FROM redemptions WHERE ticket_id = ? "
            "UNION ALL SELECT 1 FROM online_codes WHERE ticket_id = ? AND state IN (?, ?) "
            "LIMIT 1",
            [sale_ticket_id, sale_ticket_id, CODE_USED, CODE_CLOSED],
        ).fetchone()
        return row is not None

    def restored_points(self, sale_ticket_id: int) -> int:
        row = self.db.execute(
            "SELECT COALESCE(sum(points), 0) FROM point_restores WHERE sale_ticket_id = ?",
            [sale_ticket_id],
        ).fetchone()
        return int(row[0])

    def save_return_share(
        self, return_ticket_id: int, sale_ticket_id: int, returned_item_cents: int, now: datetime
    ) -> None:
        self.db.table("redemption_returns").upsert(
            {
                "return_ticket_id": return_ticket_id,
                "sale_ticket_id": sale_ticket_id,
                "returned_item_cents": returned_item_cents,
                "updated_at": _iso(now),
            },
            pk="return_ticket_id",
        )

    def restored_by_ticket(self, ticket_id: int) -> int:
        """Return the net points that one return ticket's restores gave back."""
        row = self.db.execute(
            "SELECT COALESCE(sum(points), 0) FROM point_restores WHERE ticket_id = ?",
            [ticket_id],
        ).fetchone()
        return int(row[0])

    def restore_count(self, ticket_id: int) -> int:
        row = self.db.execute(
            "SELECT count(*) FROM point_restores WHERE ticket_id = ?", [ticket_id]
        ).fetchone()
        return int(row[0])

    def add_restore(
        self,
        *,
        push_id: str,
        ticket_id: int,
        sale_ticket_id: int,
        points: int,
        reason: str,
        now: datetime,
    ) -> None:
        self.db.table("point_restores").insert(
            {
                "push_id": push_id,
                "ticket_id": ticket_id,
                "sale_ticket_id": sale_ticket_id,
                "points": points,
                "reason": reason,
                "created_at": _iso(now),
            }
        )

    def deduction_state_for_restore(self, restore_push_id: str) -> str | None:
        """Return the outbox state of the deduction that a restore gives back, or None."""
        row = self.db.execute(
            "SELECT p.state FROM point_restores x "
            "JOIN redemptions r ON r.ticket_id = x.sale_ticket_id "
            "JOIN pushes p ON p.push_id = r.push_id WHERE x.push_id = ?",
            [restore_push_id],
        ).fetchone()
        return None if row is None else str(row[0])

    # Status.

    def status(self, limit: int) -> dict[str, Any]:
        """Counts and the latest problems, for `yotposync status`."""
        offers = dict(
            self.db.execute("SELECT state, count(*) FROM offer_coupons GROUP BY state").fetchall()
        )
        # A sale voided since, or left without a paying customer, counts by that state and
        # not by the deduction it once made, which was given back.
        deductions = dict(
            self.db.execute(
                "SELECT CASE WHEN t.kind = 'void' AND r.push_id IS NOT NULL THEN 'sale_voided' "
                "WHEN r.push_id IS NULL "
                "OR r.state IN ('no_customer', 'no_email', 'code_already_used') THEN r.state "
                "ELSE 'deduction_' || p.state END, "
                "count(*) FROM redemptions r LEFT JOIN pushes p ON p.push_id = r.push_id "
                "LEFT JOIN tickets t ON t.id = r.ticket_id GROUP BY 1"
            ).fetchall()
        )
        # The states here are those in PROBLEM_STATES. A sale voided since gave no discount, so
        # it needs nothing, and a sale in one of those states is listed once, by its state.
        problems = list(
            self.db.query(
                "SELECT r.ticket_id, r.code, r.state, r.reason, r.decided_at AS at "
                "FROM redemptions r LEFT JOIN tickets t ON t.id = r.ticket_id "
                "WHERE r.state IN ('no_customer', 'no_email', 'code_already_used') "
                "AND t.kind IS NOT 'void' "
                "UNION ALL "
                "SELECT r.ticket_id, r.code, 'deduction_' || p.state, "
                "'HTTP ' || COALESCE(p.last_status, '-') || ': ' || COALESCE(p.last_error, ''), "
                "p.updated_at FROM redemptions r JOIN pushes p ON p.push_id = r.push_id "
                "LEFT JOIN tickets t ON t.id = r.ticket_id "
                "WHERE p.state IN ('rejected', 'failed') AND t.kind IS NOT 'void' "
                "AND r.state NOT IN ('no_customer', 'no_email', 'code_already_used') "
                "ORDER BY at DESC LIMIT ?",
                [limit],
            )
        )
        skipped = list(
            self.db.query(
                "SELECT option_id, name, reason FROM offer_coupons WHERE state = 'skipped' "
                "ORDER BY option_id LIMIT ?",
                [limit],
            )
        )
        codes = list(
            self.db.query(
                "SELECT code, state, reason FROM online_codes WHERE state = 'skipped' "
                "ORDER BY updated_at DESC LIMIT ?",
                [limit],
            )
        )
        return {
            "offers": {str(k): int(v) for k, v in offers.items()},
            "deductions": {str(k): int(v) for k, v in deductions.items()},
            "online_codes": self.code_counts(),
            "deduction_problems": problems,
            "skipped_offers": skipped,
            "skipped_codes": codes,
        }
