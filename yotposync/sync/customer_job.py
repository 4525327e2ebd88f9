"""The customers job: walk Heartland customers, enrol them in Yotpo, queue re-decisions.

Customers are read from a stored cursor with the same overlap window and `(updated_at, id)`
keyset as tickets. Each customer is settled on its own: its Yotpo calls are made outside any
ledger transaction, then its outcome commits in a short one, so no ledger transaction stays
open across a network call. The cursor moves after a whole page is settled, and a customer
seen again with the same `updated_at` is skipped. A run given a time limit, as the daemon's
are, ends after the page under way once the limit has passed, and the next run goes on from
the saved cursor.

After the walk, the tickets that earned nothing because their customer had no e-mail address
(or was not in Heartland yet) are decided again for every customer that now has one.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import structlog

from yotposync.clients.heartland import KeysetPage
from yotposync.config import Settings
from yotposync.errors import InvalidRecordError, RejectedError, RetriableError
from yotposync.ledger import Cursor, Ledger
from yotposync.ledger import customers as book
from yotposync.logs import SeenOnce
from yotposync.sync.cashier_fields import OPT_IN
from yotposync.sync.customer_fields import FieldDefinitions, ensure_customer_fields
from yotposync.sync.customers import (
    CUSTOMER_GONE,
    EMAIL_TAKEN,
    ENROLLED,
    GONE,
    OPTED_OUT,
    PENDING,
    REVIEW,
    Assessment,
    EnrolmentPolicy,
    assess,
    email_key,
    enrolment_payload,
    is_opted_in,
    payload_hash,
    pick_phone,
    yotpo_conflict,
)
from yotposync.sync.model import Customer
from yotposync.sync.parse import parse_customer
from yotposync.timeutil import optional_timestamp

log = structlog.get_logger("yotposync.customers")

CURSOR_NAME = "customers"
# Start of the first walk, early enough that customers created before yotposync are enrolled.
FIRST_WALK_START = datetime(1970, 1, 1, tzinfo=UTC)
# Review kind for a `POST /customers` that Yotpo rejected.
YOTPO_REJECTED = "yotpo_rejected"
# Maximum customers looked at again (after a failed send or a resolved review) per run.
RECHECK_LIMIT = 200


class CustomerSource(FieldDefinitions, Protocol):
    """The part of the Heartland client this job uses."""

    def customer_pages(
        self,
        *,
        start: datetime,
        end: datetime | None,
        page_size: int,
        after: tuple[str, int] | None = None,
    ) -> Iterable[KeysetPage]: ...

    def customers_by_id(self, ids: Iterable[int]) -> dict[int, dict[str, Any]]: ...

    def get_customer(self, customer_id: int) -> dict[str, Any] | None: ...

    def customer_addresses(self, customer_id: int) -> list[dict[str, Any]] | None: ...


class LoyaltyAccounts(Protocol):
    """The part of the Yotpo client this job uses."""

    def upsert_customer(self, payload: Mapping[str, Any]) -> None: ...

    def get_customer(
        self,
        *,
        email: str | None = None,
        customer_id: str | int | None = None,
        pos_account_id: str | None = None,
        phone_number: str | None = None,
        with_history: bool = False,
    ) -> dict[str, Any] | None: ...


# Decides known tickets again; returns how many ticket versions changed decision.
Redecide = Callable[[Sequence[int]], int]


@dataclass
class CustomersSummary:
    """Counts for one run of the customers job."""

    pages: int = 0
    customers: int = 0
    unchanged: int = 0
    sent: int = 0
    retrying: int = 0
    reviews_opened: int = 0
    rechecked: int = 0
    redecided_tickets: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    invalid: list[str] = field(default_factory=list)
    cursor: Cursor | None = None
    # True when the run ended at its time limit where more pages may follow. The next run
    # reads on from the cursor.
    time_limit_reached: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "pages": self.pages,
            "customers": self.customers,
            "unchanged": self.unchanged,
            "sent": self.sent,
            "retrying": self.retrying,
            "reviews_opened": self.reviews_opened,
            "rechecked": self.rechecked,
            "redecided_tickets": self.redecided_tickets,
            "statuses": dict(sorted(self.statuses.items())),
            "invalid": self.invalid[:20],
            "cursor": self.cursor.updated_at.isoformat() if self.cursor else None,
            "time_limit_reached": self.time_limit_reached,
        }


@dataclass
class _Outcome:
    """The ledger writes that settle one customer version."""

    row: book.CustomerRow
    reviews: list[tuple[str, str]] = field(default_factory=list)
    refresh_due: bool = False
    recheck_sharing: str | None = None  # an e-mail key others shared and this one left


class CustomersJob:
    """Enrol Heartland customers in Yotpo and keep their e-mail, names and phone current."""

    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        heartland: CustomerSource,
        yotpo: LoyaltyAccounts,
        *,
        clock: Callable[[], datetime],
        redecide: Redecide,
    ) -> None:
        self.ledger = ledger
        self.heartland = heartland
        self.yotpo = yotpo
        self.clock = clock
        self.redecide = redecide
        options = settings.customers
        self.policy = EnrolmentPolicy.build(
            enrol_all_with_email=options.enrol_all_with_email,
            opt_in_key=options.opt_in_field,
            opt_in_values=options.opt_in_values,
            rules=settings.exclusion_rules(),
            default_region=options.default_phone_region,
        )
        self.overlap = timedelta(seconds=settings.sync.overlap_seconds)
        self.page_size = settings.heartland.page_size
        self.retry_base = settings.delivery.retry_base_seconds
        self.retry_ceiling = settings.delivery.retry_ceiling_seconds

    def run(
        self,
        *,
        should_stop: Callable[[], bool] = lambda: False,
        time_limit: timedelta | None = None,
    ) -> CustomersSummary:
        """Recheck due customers, walk the changed ones, then re-decide their tickets.

        Once the run has lasted `time_limit` on the job's clock, the walk ends after the page
        under way. Without a time limit it goes on to the last page. A stop request ends it
        after the customer under way.
        """
        summary = CustomersSummary()
        started = time.monotonic()
        deadline = None if time_limit is None else self.clock() + time_limit
        self._ensure_opt_in_field()
        self._recheck_due(summary)
        self._walk_changed(summary, should_stop, deadline)

        if not should_stop():
            # NOTE: The time limit does not bound this step. It re-decides only the tickets
            # of customers that this run enrolled or changed.
            self._redecide_tickets(summary)
        log.info(
            "customers_run",
            **summary.as_dict(),
            seconds=round(time.monotonic() - started, 3),
        )
        return summary

    # Steps of a run

    def _ensure_opt_in_field(self) -> None:
        if self.policy.enrol_all_with_email:
            return
        keys = ensure_customer_fields(self.heartland, {OPT_IN: self.policy.opt_in_key})
        if keys[OPT_IN] != self.policy.opt_in_key:
            self.policy = replace(self.policy, opt_in_key=keys[OPT_IN])

    def _walk_changed(
        self,
        summary: CustomersSummary,
        should_stop: Callable[[], bool],
        deadline: datetime | None,
    ) -> None:
        """Settle the customers changed since the cursor, page by page, moving the cursor.

        Past `deadline`, the walk ends after the first full page that moved the cursor past
        where this run began. Re-reading the overlap window is then never all that a run
        does, so each run makes progress even when that window alone takes longer than the
        time limit. A page shorter than the page size is the last one anyway.
        """
        now = self.clock()
        cursor = self.ledger.get_cursor(CURSOR_NAME)
        if cursor is not None and cursor.updated_at > now:
            # Saved by an older yotposync from a customer listed in the future, or before the
            # clock was set back: no later walk would reach the customers changed until then.
            # Walking from the start again settles each customer once more, which is safe.
            log.warning(
                "cursor_after_now",
                cursor=cursor.updated_at.isoformat(),
                now=now.isoformat(),
                detail="the customers cursor is later than this machine's clock, so the walk "
                "starts again from the first customer. Check the clock",
            )
            cursor = Cursor(FIRST_WALK_START, 0)
            with self.ledger.transaction():
                self.ledger.rewind_cursor(CURSOR_NAME, cursor, now)
        start = FIRST_WALK_START if cursor is None else cursor.updated_at - self.overlap
        pages = self.heartland.customer_pages(start=start, end=now, page_size=self.page_size)
        for page in pages:
            for raw in page.results:
                if should_stop():
                    # Each customer settled so far is committed. The cursor stays before
                    # this page, and the next run skips the customers it finds unchanged.
                    log.info("customers_stopped", pages=summary.pages)
                    return
                self._settle_raw(raw, summary)
            last = _last_key(page.results, now)
            if last is not None:
                with self.ledger.transaction():
                    self.ledger.save_cursor(CURSOR_NAME, last, self.clock())
                summary.cursor = last
            summary.pages += 1
            if should_stop():
                log.info("customers_stopped", pages=summary.pages)
                return
            out_of_time = deadline is not None and self.clock() >= deadline
            full = len(page.results) >= self.page_size
            if out_of_time and full and _is_past(last, cursor):
                summary.time_limit_reached = True
                log.info(
                    "customers_time_limit_reached",
                    pages=summary.pages,
                    customers=summary.customers,
                    cursor=summary.cursor.updated_at.isoformat() if summary.cursor else None,
                    detail="the next run goes on from the saved cursor",
                )
                return

    def _recheck_due(self, summary: CustomersSummary) -> None:
        """Look again at customers waiting for a retry or a recheck after a resolved review."""
        due = book.due_customer_ids(self.ledger, PENDING, self.clock(), RECHECK_LIMIT)
        if not due:
            return
        found = self.heartland.customers_by_id(due)
        for customer_id in due:
            raw = found.get(customer_id)
            if raw is None:
                # Only a 404 counts as gone, because a list response may leave a customer out
                # by mistake.
                raw = self.heartland.get_customer(customer_id)
            if raw is None:
                self._settle_missing(customer_id, summary)
            else:
                self._settle_raw(raw, summary, force=True)
            summary.rechecked += 1

    def _redecide_tickets(self, summary: CustomersSummary) -> None:
        customer_ids = book.redecision_candidates(self.ledger)
        if not customer_ids:
            return
        ticket_ids = book.tickets_to_redecide(self.ledger, customer_ids)
        if ticket_ids:
            log.info("tickets_redecide", customers=len(customer_ids), tickets=len(ticket_ids))
            summary.redecided_tickets += self.redecide(ticket_ids)
        with self.ledger.transaction():
            book.mark_redecided(self.ledger, customer_ids, self.clock())

    # One customer

    def _settle_raw(
        self, raw: Mapping[str, Any], summary: CustomersSummary, *, force: bool = False
    ) -> None:
        summary.customers += 1
        try:
            customer = parse_customer(raw)
            updated_at = optional_timestamp(
                raw.get("updated_at"), record=f"customer {customer.id}", field="updated_at"
            )
        except InvalidRecordError as exc:
            summary.invalid.append(str(exc))
            log.warning("customer_invalid", customer_id=raw.get("id"), error=str(exc))
            return
        known = book.get_customer(self.ledger, customer.id)
        # A customer waiting for a retry is looked at by `_recheck_due` when its time comes.
        # `updated_at` may count whole seconds, as the sandbox's does, so a change made in the
        # same second as the last read can keep it: the fields are compared too.
        if (
            not force
            and known is not None
            and known.heartland_updated_at == updated_at
            and self._same_as_stored(customer, known)
        ):
            summary.unchanged += 1
            return
        outcome = self._assess_and_send(customer, updated_at, known, summary)
        self._commit(outcome, summary)

    def _same_as_stored(self, customer: Customer, known: book.CustomerRow) -> bool:
        """Return whether the fields kept in the ledger still match what Heartland sent."""
        opted_in = self.policy.enrol_all_with_email or is_opted_in(customer, self.policy)
        return (
            known.email,
            known.first_name,
            known.last_name,
            known.public_id,
            known.deleted,
            known.opted_in,
        ) == (
            customer.email,
            customer.first_name,
            customer.last_name,
            customer.public_id,
            customer.deleted,
            opted_in,
        )

    def _assess_and_send(
        self,
        customer: Customer,
        updated_at: datetime | None,
        known: book.CustomerRow | None,
        summary: CustomersSummary,
    ) -> _Outcome:
        now = self.clock()
        key = email_key(customer.email) if customer.email is not None else None
        sharing = [] if key is None else book.customers_sharing_email(self.ledger, key, customer.id)
        was_enrolled = (
            known is not None and known.sent_email is not None and known.status != OPTED_OUT
        )
        assessment = assess(
            customer,
            self.policy,
            was_enrolled=was_enrolled,
            sharing=[(other.id, other.public_id) for other in sharing],
        )
        email_changed_at = known.email_changed_at if known is not None else None
        if key is not None and (known is None or known.email_key != key):
            email_changed_at = now
        row = book.CustomerRow(
            id=customer.id,
            public_id=customer.public_id,
            email=customer.email,
            email_key=key,
            first_name=customer.first_name,
            last_name=customer.last_name,
            phone=known.phone if known is not None else None,
            opted_in=self.policy.enrol_all_with_email or is_opted_in(customer, self.policy),
            deleted=customer.deleted,
            status=assessment.status,
            reason=assessment.reason,
            heartland_updated_at=updated_at,
            sent_hash=known.sent_hash if known is not None else None,
            sent_email=known.sent_email if known is not None else None,
            sent_at=known.sent_at if known is not None else None,
            email_changed_at=email_changed_at,
            redecided_at=known.redecided_at if known is not None else None,
        )
        outcome = _Outcome(row, reviews=list(assessment.reviews))
        if known is not None and known.email_key and known.email_key != key:
            outcome.recheck_sharing = known.email_key

        if assessment.status == GONE:
            self._report_gone(customer.id, customer.public_id, outcome)
        elif assessment.send:
            self._send(customer, assessment, known, outcome, summary)
        return outcome

    def _send(
        self,
        customer: Customer,
        assessment: Assessment,
        known: book.CustomerRow | None,
        outcome: _Outcome,
        summary: CustomersSummary,
    ) -> None:
        addresses = self.heartland.customer_addresses(customer.id) or []
        phone = pick_phone(addresses, self.policy.default_region)
        outcome.row = replace(outcome.row, phone=phone)
        payload = enrolment_payload(customer, phone, assessment.opt_in)
        digest = payload_hash(payload)
        if known is not None and known.sent_hash == digest:
            return

        now = self.clock()
        try:
            if assessment.opt_in and (known is None or known.sent_email != customer.email):
                conflict = yotpo_conflict(self._account(email=customer.email), customer)
                if conflict is not None:
                    outcome.row = replace(outcome.row, status=REVIEW, reason="e-mail held in Yotpo")
                    outcome.reviews.append((EMAIL_TAKEN, conflict))
                    return
            self.yotpo.upsert_customer(payload)
        except RejectedError as exc:
            detail = (
                f"Yotpo rejected customer {customer.id} ({customer.public_id}) with "
                f"HTTP {exc.status}: {exc.reason}; fix the customer in Heartland or Yotpo, "
                "then resolve this review"
            )
            outcome.row = replace(outcome.row, status=REVIEW, reason="rejected by Yotpo")
            outcome.reviews.append((YOTPO_REJECTED, detail))
            log.warning(
                "customer_rejected", customer_id=customer.id, status=exc.status, error=exc.reason
            )
            return
        except RetriableError as exc:
            attempts = (known.attempts if known is not None else 0) + 1
            wait = min(self.retry_ceiling, self.retry_base * 2 ** (attempts - 1))
            outcome.row = replace(
                outcome.row,
                status=PENDING,
                reason="sending to Yotpo failed; retrying",
                attempts=attempts,
                next_attempt_at=now + timedelta(seconds=wait),
                last_error=str(exc),
            )
            summary.retrying += 1
            log.warning(
                "customer_retry_scheduled",
                customer_id=customer.id,
                attempts=attempts,
                wait_seconds=wait,
                error=str(exc),
            )
            return

        outcome.row = replace(
            outcome.row,
            sent_hash=digest,
            sent_email=customer.email,
            sent_at=now,
            attempts=0,
            next_attempt_at=None,
            last_error=None,
        )
        outcome.refresh_due = True
        summary.sent += 1
        event = "customer_enrolled" if assessment.status == ENROLLED else "customer_opted_out"
        log.info(event, customer_id=customer.id, first=known is None or known.sent_hash is None)

    def _account(
        self, *, email: str | None = None, customer_id: int | None = None
    ) -> dict[str, Any] | None:
        """Read a Yotpo customer by e-mail or by our id; None when Yotpo has none."""
        try:
            if customer_id is not None:
                return self.yotpo.get_customer(customer_id=str(customer_id))
            return self.yotpo.get_customer(email=email)
        except RejectedError as exc:
            # NOTE: Yotpo is reported to return 400 instead of 404 for some unknown customers.
            if exc.status == 400:
                return None
            raise

    def _report_gone(self, customer_id: int, public_id: str, outcome: _Outcome) -> None:
        """Open a review when a customer that left Heartland still has a Yotpo account."""
        account = self._account(customer_id=customer_id)
        if account is None:
            return
        balance = account.get("points_balance")
        held = f"{balance} points" if isinstance(balance, int) else "an unknown balance"
        detail = (
            f"customer {customer_id} ({public_id}) was deleted or merged in Heartland; its Yotpo "
            f"customer {account.get('email')} keeps {held} and was not changed. Move the points "
            "to the surviving customer in Yotpo if it was a merge, then resolve this review"
        )
        outcome.reviews.append((CUSTOMER_GONE, detail))

    def _settle_missing(self, customer_id: int, summary: CustomersSummary) -> None:
        """Settle a known customer that Heartland no longer returns at all."""
        known = book.get_customer(self.ledger, customer_id)
        if known is None:
            return
        row = replace(
            known,
            deleted=True,
            status=GONE,
            reason=f"customer {customer_id} is no longer in Heartland",
            next_attempt_at=None,
        )
        outcome = _Outcome(row, recheck_sharing=known.email_key)
        self._report_gone(customer_id, known.public_id, outcome)
        self._commit(outcome, summary)

    def _commit(self, outcome: _Outcome, summary: CustomersSummary) -> None:
        row = outcome.row
        now = self.clock()
        opened = []
        with self.ledger.transaction():
            stored = book.get_customer(self.ledger, row.id)
            if stored is not None and stored.status != ENROLLED and row.status == ENROLLED:
                # Tickets decided while it waited (for review, or for a retry) earned nothing
                # under its e-mail: decide them again.
                row = replace(row, email_changed_at=now)
            book.save_customer(self.ledger, row, now)
            for kind, detail in outcome.reviews:
                book.open_review(self.ledger, row.id, kind, detail, now)
                opened.append(kind)
            book.close_reviews(
                self.ledger,
                row.id,
                keep=opened,
                resolution="no longer found when the customer was next read",
                now=now,
            )
            if outcome.refresh_due:
                book.mark_refresh_due(self.ledger, row.id)
            if outcome.recheck_sharing is not None:
                self._recheck_sharing(outcome.recheck_sharing, row.id, now)
        summary.statuses[row.status] += 1
        for kind in opened:
            summary.reviews_opened += 1
            log.warning("customer_review", customer_id=row.id, kind=kind)

    def _recheck_sharing(self, key: str, customer_id: int, now: datetime) -> None:
        """Queue a recheck of customers held for review because they shared this e-mail."""
        for other in book.customers_sharing_email(self.ledger, key, customer_id):
            if other.status == REVIEW:
                book.set_recheck(
                    self.ledger,
                    other.id,
                    f"customer {customer_id} no longer has the shared e-mail",
                    PENDING,
                    now,
                )


def _is_past(key: Cursor | None, cursor: Cursor | None) -> bool:
    """Return whether `key` is further along the walk than `cursor`, where None is the start."""
    if key is None:
        return False
    if cursor is None:
        return True
    return (key.updated_at, key.last_id) > (cursor.updated_at, cursor.last_id)


# Customer versions already warned about as updated after their window, in this process.
_FUTURE_CUSTOMERS = SeenOnce()


def _last_key(raws: Sequence[Mapping[str, Any]], end: datetime) -> Cursor | None:
    """Return the cursor after a page: the newest (updated_at, id) that parses, in walk order.

    A customer listed as updated after `end`, the walk's end, is settled but does not move
    the cursor, which would otherwise skip every customer changed until then.
    """
    for raw in reversed(raws):
        customer_id = raw.get("id")
        if not isinstance(customer_id, int) or isinstance(customer_id, bool):
            continue
        try:
            updated = optional_timestamp(
                raw.get("updated_at"), record="customer", field="updated_at"
            )
        except InvalidRecordError:
            continue
        if updated is not None and updated > end:
            _FUTURE_CUSTOMERS.warn(
                log,
                (customer_id, updated),
                "customer_updated_after_window",
                customer_id=customer_id,
                updated_at=updated.isoformat(),
                window_end=end.isoformat(),
                detail="Heartland listed this customer as updated after the end of the window "
                "requested; the cursor stays at or before the window's end",
            )
            continue
        if updated is not None:
            return Cursor(updated, customer_id)
    return None
