"""The offers job: keep one Heartland coupon per Yotpo redemption option.

Each Heartland write is followed by its own ledger commit, so a run stopped halfway leaves the
ledger in line with what Heartland holds, and the next run carries on. Coupons are found by
their code before any is created, so a rerun never makes a duplicate.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog

from yotposync.clients.heartland_coupons import CouponSpec, CouponWrite, offer_text
from yotposync.errors import RejectedError
from yotposync.ledger import Ledger, customers
from yotposync.ledger.offers import OfferLedger
from yotposync.sync.offers import (
    Offer,
    OfferMapping,
    SkippedOption,
    plan_offers,
    read_options,
)

log = structlog.get_logger("yotposync.offers")

NOT_LISTED = "no longer offered by Yotpo (removed or disabled)"
REMOVED_REASON = f"{NOT_LISTED}: coupon switched off"


class OptionSource(Protocol):
    """The part of the Yotpo client this job uses."""

    def redemption_options(self, **filters: str | int | bool) -> list[dict[str, Any]]: ...


class CouponWriter(Protocol):
    """The Heartland coupon calls this job uses."""

    def upsert(self, spec: CouponSpec, coupon_id: int | None) -> CouponWrite: ...

    def deactivate(self, coupon_id: int) -> bool: ...


@dataclass
class OffersSummary:
    """Counts for one run of the offers job."""

    options: int = 0
    created: int = 0
    updated: int = 0
    deactivated: int = 0
    unchanged: int = 0
    skipped: int = 0
    failed: list[str] = field(default_factory=list)
    guarded: bool = False
    stopped: bool = False  # ended early by a stop request; the next run writes the rest

    def as_dict(self) -> dict[str, Any]:
        return {
            "options": self.options,
            "created": self.created,
            "updated": self.updated,
            "deactivated": self.deactivated,
            "unchanged": self.unchanged,
            "skipped": self.skipped,
            "failed": self.failed[:20],
            "guarded": self.guarded,
            "stopped": self.stopped,
        }


class OffersJob:
    """Copy Yotpo redemption options into Heartland coupons."""

    def __init__(
        self,
        ledger: Ledger,
        yotpo: OptionSource,
        coupons: CouponWriter,
        *,
        clock: Callable[[], datetime],
        max_discount_cents: int,
        refresh_active_days: int = 0,
    ) -> None:
        self.offers = OfferLedger(ledger)
        self.ledger = ledger
        self.yotpo = yotpo
        self.coupons = coupons
        self.clock = clock
        self.max_discount_cents = max_discount_cents
        # Customers active this many days get their offers field refreshed after a change.
        self.refresh_active_days = refresh_active_days

    def run(
        self, *, allow_empty: bool = False, should_stop: Callable[[], bool] = lambda: False
    ) -> OffersSummary:
        """Create, update and switch off coupons so that Heartland matches the options.

        When Yotpo lists no options at all while coupons are active, nothing is switched
        off unless `allow_empty` is set: an empty list is more often a fault on the account
        than a retailer removing every offer at once. Once `should_stop` returns True, the
        run ends after the coupon under way. Each coupon written is kept in the ledger, so
        the next run writes only the rest.
        """
        started = time.monotonic()
        raw = self.yotpo.redemption_options()
        offers, skipped = read_options(raw, max_discount_cents=self.max_discount_cents)
        summary = OffersSummary(options=len(raw), skipped=len(skipped))
        mappings = self.offers.offer_mappings()
        plan = plan_offers(offers, mappings)
        summary.unchanged = len(plan.unchanged)

        # An option whose coupon is still active is marked skipped only once the coupon is
        # switched off below. Marked earlier, a failed switch-off would leave the coupon
        # active, and no later run would plan to switch it off.
        switching_off = {mapping.option_id for mapping in plan.deactivate}
        # An option listed twice is used once, so the skip of its second listing is only
        # logged. Recording it would mark the used option skipped, and every other run would
        # then rewrite its coupon.
        used = {offer.option_id for offer in offers}
        for option in skipped:
            if option.option_id is None or option.option_id in used:
                log.warning(
                    "offer_skipped",
                    option_id=option.option_id,
                    name=option.name,
                    reason=option.reason,
                )
                continue
            # Read outside the transaction, so the transaction only writes.
            changed = self.offers.offer_state(option.option_id) != ("skipped", option.reason)
            if changed:
                if option.option_id not in switching_off:
                    with self.ledger.transaction():
                        self.offers.mark_offer(
                            option.option_id, option.name, "skipped", option.reason, self.clock()
                        )
                log.warning(
                    "offer_skipped",
                    option_id=option.option_id,
                    name=option.name,
                    reason=option.reason,
                )

        writes = [(offer, None) for offer in plan.create] + list(plan.update)
        for offer, coupon_id in writes:
            if should_stop():
                summary.stopped = True
                log.info("offers_stopped", written=summary.created + summary.updated)
                return summary
            self._write(offer, coupon_id, summary)

        if not raw and plan.deactivate and not allow_empty:
            summary.guarded = True
            log.warning(
                "offers_empty_guard",
                active_coupons=len(plan.deactivate),
                detail="Yotpo listed no redemption options; no coupon was switched off. "
                "Run `yotposync offers sync --allow-empty` if every offer was removed",
            )
        else:
            skipped_reasons = {s.option_id: s.reason for s in skipped}
            for mapping in plan.deactivate:
                if mapping.coupon_id is not None:
                    self.coupons.deactivate(mapping.coupon_id)
                reason = skipped_reasons.get(mapping.option_id)
                state = "skipped" if reason is not None else "inactive"
                name = next((s.name for s in skipped if s.option_id == mapping.option_id), "")
                name = name or self._stored_name(mapping.option_id)
                with self.ledger.transaction():
                    self.offers.mark_offer(
                        mapping.option_id,
                        name,
                        state,
                        reason or REMOVED_REASON,
                        self.clock(),
                    )
                summary.deactivated += 1
                log.info(
                    "offer_deactivated", option_id=mapping.option_id, coupon_id=mapping.coupon_id
                )
            self._forget_unlisted_skipped(mappings, offers, skipped)

        if summary.created + summary.updated + summary.deactivated:
            self._refresh_active_customers()
        log.info("offers_run", **summary.as_dict(), seconds=round(time.monotonic() - started, 3))
        return summary

    def _refresh_active_customers(self) -> None:
        """Queue a refresh of recently active customers, whose offers field may be stale."""
        if self.refresh_active_days <= 0:
            return
        since = self.clock() - timedelta(days=self.refresh_active_days)
        with self.ledger.transaction():
            flagged = customers.mark_active_refresh_due(self.ledger, since)
        if flagged:
            log.info("offers_refresh_queued", customers=flagged)

    def _forget_unlisted_skipped(
        self,
        mappings: Sequence[OfferMapping],
        offers: Sequence[Offer],
        skipped: Sequence[SkippedOption],
    ) -> None:
        """Mark skipped options that Yotpo no longer lists as removed.

        A skipped option has no coupon switched on, so there is nothing to deactivate. Only
        its state changes, and `offers list` stops giving the old reason.
        """
        listed = {offer.option_id for offer in offers} | {s.option_id for s in skipped}
        for mapping in mappings:
            if mapping.state != "skipped" or mapping.option_id in listed:
                continue
            with self.ledger.transaction():
                self.offers.mark_offer(
                    mapping.option_id,
                    self._stored_name(mapping.option_id),
                    "inactive",
                    NOT_LISTED,
                    self.clock(),
                )
            log.info("offer_removed", option_id=mapping.option_id)

    def _write(self, offer: Offer, coupon_id: int | None, summary: OffersSummary) -> None:
        try:
            written = self.coupons.upsert(offer.coupon_spec(), coupon_id)
        except RejectedError as exc:
            summary.failed.append(f"option {offer.option_id}: {exc.reason}")
            log.error(
                "offer_coupon_rejected",
                option_id=offer.option_id,
                status=exc.status,
                error=exc.reason,
            )
            return
        with self.ledger.transaction():
            self.offers.save_offer(offer, written.coupon_id, self.clock())
        # A coupon found in Heartland by its code (one a lost ledger wrote) counts as updated.
        if written.created:
            summary.created += 1
        else:
            summary.updated += 1
        log.info(
            "offer_coupon_written",
            option_id=offer.option_id,
            coupon_id=written.coupon_id,
            offer=offer_text(offer.amount_cents, offer.percent, offer.points_cost),
            created=written.created,
        )

    def _stored_name(self, option_id: int) -> str:
        for row in self.offers.offer_rows():
            if row["option_id"] == option_id:
                return str(row["name"])
        return ""
