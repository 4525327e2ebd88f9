"""The refresh job: write each customer's Yotpo balance, tier and offers to Heartland.

A customer is due after any change the daemon made for them: a push Yotpo confirmed after
their last refresh started (orders, refunds, and any other push kind in the ledger), an
enrolment, or a code they redeemed online, once it reaches the ledger. Customers with a
ticket completed in the configured recent window are also due once their last refresh is
older than the configured period.

For each due customer the job reads the Yotpo customer and the redemption options they
qualify for, builds the field values, and writes to Heartland only the fields whose text
differs from what the customer record holds. The update-time field is written only along
with such a change.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog

from yotposync.config import Settings
from yotposync.errors import InvalidRecordError, NotFoundError, RejectedError, RetriableError
from yotposync.ledger import Ledger
from yotposync.ledger import customers as book
from yotposync.ledger.offers import OfferLedger
from yotposync.sync.cashier_fields import (
    NEXT_TIER,
    OFFERS,
    POINTS,
    TIER,
    UPDATED,
    changed_values,
    field_values,
    format_updated,
    parse_snapshot,
)
from yotposync.sync.customer_fields import FieldDefinitions, ensure_customer_fields
from yotposync.sync.customers import GONE, PENDING
from yotposync.sync.parse import parse_customer

log = structlog.get_logger("yotposync.refresh")


class CustomerFields(FieldDefinitions, Protocol):
    """The part of the Heartland client this job uses."""

    def customers_by_id(self, ids: Iterable[int]) -> dict[int, dict[str, Any]]: ...

    def update_customer(self, customer_id: int, *, custom: Mapping[str, str | None]) -> None: ...


class LoyaltyReader(Protocol):
    """The part of the Yotpo client this job uses."""

    def get_customer(
        self,
        *,
        email: str | None = None,
        customer_id: str | int | None = None,
        pos_account_id: str | None = None,
        phone_number: str | None = None,
        with_history: bool = False,
    ) -> dict[str, Any] | None: ...

    def redemption_options(self, **filters: str | int | bool) -> list[dict[str, Any]]: ...


@dataclass
class RefreshSummary:
    """Counts for one run of the refresh job."""

    due: int = 0
    written: int = 0
    unchanged: int = 0
    not_in_yotpo: int = 0
    not_in_heartland: int = 0
    failed: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "due": self.due,
            "written": self.written,
            "unchanged": self.unchanged,
            "not_in_yotpo": self.not_in_yotpo,
            "not_in_heartland": self.not_in_heartland,
            "failed": self.failed,
        }


class RefreshJob:
    """Keep the cashier's loyalty fields on Heartland customers in step with Yotpo."""

    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        heartland: CustomerFields,
        yotpo: LoyaltyReader,
        *,
        clock: Callable[[], datetime],
    ) -> None:
        self.ledger = ledger
        self.heartland = heartland
        self.yotpo = yotpo
        self.clock = clock
        options = settings.customers
        self.enabled = options.write_fields
        self.configured_keys = {
            POINTS: options.points_field,
            TIER: options.tier_field,
            NEXT_TIER: options.next_tier_field,
            OFFERS: options.offers_field,
            UPDATED: options.updated_field,
        }
        self.batch_size = options.refresh_batch_size
        self.active_window = timedelta(days=options.refresh_active_days)
        self.period = timedelta(hours=options.refresh_every_hours)
        self.offers_max_length = options.offers_max_length
        self.time_zone = options.field_time_zone
        self.register_offers = settings.offers.enabled

    def due_customers(self, now: datetime) -> list[int]:
        """Return the customers to refresh now: changed ones first, then stale active ones."""
        due = book.changed_customer_ids(self.ledger, self.batch_size)
        room = self.batch_size - len(due)
        if room > 0 and self.active_window > timedelta(0):
            stale = book.stale_active_customer_ids(
                self.ledger, now - self.active_window, now - self.period, self.batch_size
            )
            due += [customer_id for customer_id in stale if customer_id not in due][:room]
        return due

    def run(self, *, should_stop: Callable[[], bool] = lambda: False) -> RefreshSummary:
        """Refresh every due customer, up to the batch size."""
        summary = RefreshSummary()
        if not self.enabled:
            return summary
        started = time.monotonic()
        due = self.due_customers(self.clock())
        summary.due = len(due)
        if due:
            keys = ensure_customer_fields(self.heartland, self.configured_keys)
            records = self.heartland.customers_by_id(due)
            coupon_names = self.coupon_names()
            for customer_id in due:
                if should_stop():
                    break
                try:
                    self._refresh(
                        customer_id, records.get(customer_id), keys, coupon_names, summary
                    )
                except RetriableError as exc:
                    # The HTTP layer already retried; the rest waits for the next run.
                    summary.failed += 1
                    log.warning("refresh_stopped", customer_id=customer_id, error=str(exc))
                    break
        log.info("refresh_run", **summary.as_dict(), seconds=round(time.monotonic() - started, 3))
        return summary

    def coupon_names(self) -> dict[str, str] | None:
        """Return option id to coupon name for the offers with an active register coupon.

        None when yotposync does not manage coupons (`offers.enabled = false`): every
        option the balance pays for is then listed, under Yotpo's name.
        """
        if not self.register_offers:
            return None
        return OfferLedger(self.ledger).active_coupon_names()

    def _refresh(
        self,
        customer_id: int,
        record: Mapping[str, Any] | None,
        keys: Mapping[str, str],
        coupon_names: Mapping[str, str] | None,
        summary: RefreshSummary,
    ) -> None:
        started = self.clock()
        if record is None or record.get("deleted_at") is not None:
            # The customers job reports a deleted customer for review when it reads the
            # deletion. One that vanished without a trace is queued for it to look at.
            summary.not_in_heartland += 1
            self._record(customer_id, started, None, "customer not found in Heartland")
            known = book.get_customer(self.ledger, customer_id)
            if record is None and known is not None and known.status != GONE:
                with self.ledger.transaction():
                    book.set_recheck(
                        self.ledger, customer_id, "not found in Heartland", PENDING, started
                    )
            return
        try:
            current = parse_customer(record).custom
        except InvalidRecordError as exc:
            summary.failed += 1
            self._record(customer_id, started, None, str(exc))
            return

        try:
            account = self.yotpo.get_customer(customer_id=str(customer_id))
        except RejectedError:
            account = None  # NOTE: Yotpo may return 400 instead of 404 for an unknown customer
        if account is None:
            summary.not_in_yotpo += 1
            self._record(customer_id, started, None, None)
            return
        options = self.yotpo.redemption_options(customer_id=str(customer_id))

        snapshot = parse_snapshot(account, options, coupon_names)
        values = field_values(snapshot, keys, self.offers_max_length)
        changes: dict[str, str] = changed_values(current, values)
        if not changes:
            summary.unchanged += 1
            self._record(customer_id, started, None, None)
            return
        changes[keys[UPDATED]] = format_updated(started, self.time_zone)
        try:
            self.heartland.update_customer(customer_id, custom=changes)
        except (NotFoundError, RejectedError) as exc:
            summary.failed += 1
            log.warning("fields_write_rejected", customer_id=customer_id, error=str(exc))
            self._record(customer_id, started, None, str(exc))
            return
        summary.written += 1
        log.debug(
            "fields_written",
            customer_id=customer_id,
            points=snapshot.balance,
            tier=snapshot.tier,
            offers=len(snapshot.offers),
        )
        self._record(customer_id, started, changes, None)

    def _record(
        self,
        customer_id: int,
        started: datetime,
        written: dict[str, str] | None,
        error: str | None,
    ) -> None:
        with self.ledger.transaction():
            book.record_refresh(
                self.ledger,
                customer_id,
                refreshed_at=started,
                written=written,
                error=error,
                now=self.clock(),
            )
