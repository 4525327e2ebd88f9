"""The transactions job: walk Heartland tickets, decide each version, queue the pushes.

One page of tickets is one ledger transaction: the decisions, the pushes they plan and the
cursor that covers them commit together, so a crash anywhere leaves the ledger at the end of
the last whole page, and the next run starts again from there.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import structlog

from yotposync.clients.heartland import TicketPage
from yotposync.config import Settings
from yotposync.errors import GuardError, InvalidRecordError
from yotposync.immutable import immutable
from yotposync.ledger import Cursor, Ledger, TicketAmountsRow
from yotposync.ledger import customers as customer_book
from yotposync.ledger.offers import POINTS_ADJUST
from yotposync.logs import SeenOnce, debug_enabled
from yotposync.sync.amounts import AmountBasis, TicketAmounts, ticket_amounts
from yotposync.sync.classify import decide
from yotposync.sync.model import Customer, Decision, Kind, ParentInfo, Ticket
from yotposync.sync.parse import parse_customer, parse_ticket
from yotposync.sync.payloads import is_first_order, order_payload, refund_payload, restore_payload
from yotposync.sync.plan import (
    ORDER,
    OrderBalance,
    PlannedPush,
    PushRecord,
    plan_pushes,
    plan_return_again,
)
from yotposync.sync.planned import PlannedTally
from yotposync.sync.read_ahead import ReadAhead
from yotposync.sync.redemptions import RestorePolicy
from yotposync.sync.rules import ExclusionRules
from yotposync.sync.ticket_offers import TicketOffers
from yotposync.timeutil import parse_timestamp

LOGGER = "yotposync.transactions"
log = structlog.get_logger(LOGGER)

CURSOR_NAME = "tickets"


class TicketSource(Protocol):
    """The part of the Heartland client this job uses."""

    def ticket_pages(
        self,
        *,
        start: datetime,
        end: datetime | None,
        page_size: int,
        after: tuple[str, int] | None = None,
    ) -> Iterable[TicketPage]: ...

    def get_ticket(self, ticket_id: int) -> dict[str, Any] | None: ...

    def ticket_lines(self, ticket_id: int) -> list[dict[str, Any]]: ...

    def customers_by_id(self, ids: Iterable[int]) -> dict[int, dict[str, Any]]: ...

    def get_customer(self, customer_id: int) -> dict[str, Any] | None: ...


# The key under which a transactions run records the settings it decided under.
DECIDED_UNDER = "decided_under"


def decision_settings(settings: Settings) -> dict[str, Any]:
    """Return the settings that decide what a ticket earns, by their configuration keys.

    They contain no secret, so they are stored in the ledger with each run's summary.
    """
    go_live = settings.sync.go_live
    decided: dict[str, Any] = {
        "sync.go_live": go_live.isoformat() if go_live is not None else None,
        "sync.id_prefix": settings.sync.id_prefix,
        "sync.include_tax": settings.sync.include_tax,
        "sync.include_shipping": settings.sync.include_shipping,
        "sync.include_gift_cards": settings.sync.include_gift_cards,
        "yotpo.currency": settings.yotpo.currency,
        "offers.restore_policy": settings.offers.restore_policy,
    }
    for key, value in settings.rules.model_dump(mode="json").items():
        decided[f"rules.{key}"] = value
    return decided


@dataclass
class TransactionsSummary:
    """Counts for one run of the transactions job."""

    start: datetime
    end: datetime
    pages: int = 0
    tickets: int = 0
    total: int | None = None
    # How many fewer tickets a walk that ran to its end read than its first page's `total`.
    short_by: int = 0
    changed: int = 0
    decisions: Counter[str] = field(default_factory=Counter)
    planned: PlannedTally = field(default_factory=PlannedTally)
    invalid: list[str] = field(default_factory=list)
    cursor: Cursor | None = None
    # The settings that decide what earns, as this run used them, and those that differ from
    # the last recorded run's.
    decided_under: dict[str, Any] = field(default_factory=dict)
    settings_changed: list[str] = field(default_factory=list)
    time_limit_reached: bool = False  # a daemon run ended early; the next poll goes on
    # Deductions and restores queued, which `planned` (orders and refunds) does not count.
    points_adjustments: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "pages": self.pages,
            "tickets": self.tickets,
            "changed": self.changed,
            "decisions": dict(sorted(self.decisions.items())),
            "pushes_planned": len(self.planned),
            "points_adjustments": self.points_adjustments,
            "invalid": self.invalid[:20],
            "cursor": self.cursor.updated_at.isoformat() if self.cursor else None,
            "listed": self.total,
            "short_by": self.short_by,
            "settings_changed": self.settings_changed,
            "time_limit_reached": self.time_limit_reached,
            DECIDED_UNDER: self.decided_under,
        }


@immutable
class _Version:
    """A parsed ticket version and the customer it names (None when it names none or it is gone)."""

    ticket: Ticket
    customer: Customer | None
    customer_missing: bool
    customer_problem: str | None = None  # why the named customer could not be read


@immutable
class _ReadPage:
    """A page of tickets and the raw customers it names, read before the page is decided."""

    page: TicketPage
    customers: dict[int, dict[str, Any]]
    requested: frozenset[int]  # the customer ids requested, found or not


class TransactionsJob:
    """Turn Heartland ticket versions into ledger decisions and queued Yotpo pushes."""

    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        heartland: TicketSource,
        *,
        clock: Callable[[], datetime],
    ) -> None:
        self.ledger = ledger
        self.heartland = heartland
        self.clock = clock
        self.rules: ExclusionRules = settings.exclusion_rules()
        self.basis: AmountBasis = settings.amount_basis()
        self.overlap = timedelta(seconds=settings.sync.overlap_seconds)
        self.page_size = settings.heartland.page_size
        self.id_prefix = settings.sync.id_prefix
        self.currency = settings.yotpo.currency
        self.go_live = settings.sync.go_live
        self.decided_under = decision_settings(settings)
        self.offers = TicketOffers(
            ledger,
            id_prefix=self.id_prefix,
            go_live=self.go_live,
            policy=RestorePolicy(settings.offers.restore_policy),
        )

    def window_start(self, now: datetime) -> datetime:
        """Where the daemon's next walk starts: the cursor minus the overlap window."""
        cursor = self._cursor_before(now)
        if cursor is not None:
            return cursor.updated_at - self.overlap
        if self.go_live is not None:
            return self.go_live
        log.warning(
            "no_cursor_and_no_go_live",
            detail="starting from now; run catch-up --since DATE for older tickets",
        )
        return now - self.overlap

    def _cursor_before(self, now: datetime) -> Cursor | None:
        """Return the stored cursor, first moving it back when it is later than `now`.

        A cursor after the current time comes from a clock that was set back since it was
        saved, or from a ticket listed with a future `updated_at` by an older yotposync. Every
        walk would start after the sales made until then, so the cursor goes back to the newest
        ticket version in the ledger that is not in the future.
        """
        cursor = self.ledger.get_cursor(CURSOR_NAME)
        if cursor is None or cursor.updated_at <= now:
            return cursor
        newest = self.ledger.newest_ticket_update(before=now)
        if newest is None:
            rewound = Cursor(self.go_live or now - self.overlap, 0)
        else:
            rewound = Cursor(newest, 0)
        log.warning(
            "cursor_after_now",
            cursor=cursor.updated_at.isoformat(),
            now=now.isoformat(),
            moved_to=rewound.updated_at.isoformat(),
            detail="the stored cursor is later than this machine's clock, so it was moved back "
            "to the newest ticket in the ledger that is not in the future. Check the clock; "
            "run `yotposync catch-up --since DATE` if sales from before that time are missing",
        )
        with self.ledger.transaction():
            self.ledger.rewind_cursor(CURSOR_NAME, rewound, now)
        return rewound

    def run(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        on_page: Callable[[TransactionsSummary, int], None] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        force: bool = False,
        time_limit: timedelta | None = None,
    ) -> TransactionsSummary:
        """Walk one window of tickets and commit a decision for each version seen.

        Without `since`, the window starts at the stored cursor (minus the overlap). The stored
        cursor moves only when the walk covers it: an open-ended walk that starts at or before
        the cursor. Once the run has lasted `time_limit` on the job's clock, the walk ends
        after the first page that moved the cursor past where the run began, and the next
        walk goes on from there (the daemon's first poll over months of sales).

        Raises GuardError when Heartland lists no ticket in a window where the ledger already
        saw some, unless `force` is set (see `check_empty_window`).
        """
        now = self.clock()
        deadline = None if time_limit is None else now + time_limit
        stored = self._cursor_before(now)
        start = since if since is not None else self.window_start(now)
        end = until if until is not None else now
        moves_cursor = until is None and (stored is None or start <= stored.updated_at)
        if stored is None and self.go_live is None:
            # Without a cursor or a go-live date, the next start would begin at "now" again,
            # and the sales of a first walk that fails (Heartland down, a wrong token) would
            # never be read. The cursor therefore starts at this window's start (plus the
            # overlap, which the next start subtracts), and moves on from there page by page.
            stored = Cursor(start + self.overlap, 0)
            with self.ledger.transaction():
                self.ledger.save_cursor(CURSOR_NAME, stored, now)
        summary = TransactionsSummary(start=start, end=end, decided_under=self.decided_under)
        summary.settings_changed = self._note_changed_settings()
        last_push = self.ledger.last_push_seq()
        started = time.monotonic()
        cpu_started = time.process_time()

        pages = self.heartland.ticket_pages(start=start, end=end, page_size=self.page_size)
        # The next page and its customers are read while this page is decided; see
        # yotposync/sync/read_ahead.py.
        with ReadAhead(self._with_customers(pages), name="ticket-pages") as ahead:
            for read in ahead:
                page = read.page
                if summary.total is None:
                    summary.total = page.total
                self._process_page(page.results, summary, moves_cursor, read)
                if on_page is not None:
                    on_page(summary, len(page.results))
                if should_stop():
                    log.info("transactions_stopped", pages=summary.pages)
                    break
                if (
                    deadline is not None
                    and moves_cursor
                    and len(page.results) >= self.page_size  # a short page is the last
                    and summary.cursor is not None
                    and (stored is None or summary.cursor.updated_at > stored.updated_at)
                    and self.clock() >= deadline
                ):
                    summary.time_limit_reached = True
                    log.info(
                        "transactions_time_limit_reached",
                        pages=summary.pages,
                        tickets=summary.tickets,
                        cursor=summary.cursor.updated_at.isoformat(),
                        detail="the next poll goes on from the saved cursor",
                    )
                    break
            else:
                summary.short_by = max(0, (summary.total or 0) - summary.tickets)
                if moves_cursor and stored is None and summary.cursor is None:
                    # A new ledger's walk that found no ticket still covered the window. Without
                    # a cursor, the next start would begin again at "now" and miss the tickets
                    # of a stop longer than the overlap.
                    summary.cursor = Cursor(end, 0)
                    with self.ledger.transaction():
                        self.ledger.save_cursor(CURSOR_NAME, summary.cursor, now)
        if summary.tickets == 0:
            self.check_empty_window(start, end, force=force)
        if summary.short_by:
            log.warning(
                "walk_ended_short",
                listed=summary.total,
                read=summary.tickets,
                detail="the first page's total counted more tickets than the walk read; "
                "tickets edited during the walk leave its window and the next walk reads them, "
                "but a large shortfall means pages came back empty by mistake",
            )

        summary.points_adjustments = self.ledger.count_pushes_after(last_push, POINTS_ADJUST)
        log.info(
            "transactions_run",
            tickets=summary.tickets,
            changed=summary.changed,
            pushes_planned=len(summary.planned),
            points_adjustments=summary.points_adjustments,
            invalid=len(summary.invalid),
            decisions=dict(summary.decisions),
            time_limit_reached=summary.time_limit_reached,
            seconds=round(time.monotonic() - started, 3),
            # CPU time of the whole process (every thread) during the run.
            cpu_seconds=round(time.process_time() - cpu_started, 3),
        )
        return summary

    def _note_changed_settings(self) -> list[str]:
        """Warn when the settings that decide what earns differ from the last recorded run's.

        Tickets read again (the overlap window, a catch-up over older days, an edit in
        Heartland) are decided under the new settings, and the difference is sent: a sale
        before a later go-live gives its points back. Tickets not read again keep their
        decisions. Settings that the last run did not record are not compared.
        """
        previous = self.ledger.last_run_summary_with(DECIDED_UNDER)
        before = previous.get(DECIDED_UNDER) if previous else None
        if not isinstance(before, dict):
            return []
        changed = sorted(
            key
            for key, value in self.decided_under.items()
            if key in before and before[key] != value
        )
        if changed:
            log.warning(
                "decision_settings_changed",
                settings=changed,
                detail="tickets read again from now on are decided under the new settings, and "
                "the difference is sent to Yotpo as orders or refunds. Tickets not read again "
                "keep their decisions. Preview a catch-up with --dry-run",
            )
        return changed

    def check_empty_window(self, start: datetime, end: datetime, *, force: bool) -> None:
        """Stop a walk that listed no ticket in a window where the ledger saw some.

        A ticket's `updated_at` only moves forward, so every ticket the ledger saw updated in
        [start, end] is listed again, unless it changed after `end`, which only a window
        ending in the past allows. An empty listing then points to a fault (an empty page, a
        token that lost access to locations, another account) more often than to a quiet
        store. The cursor has not moved; `force` accepts the empty window instead.
        """
        known = self.ledger.count_tickets_updated_between(start, end)
        if known == 0:
            return
        window = f"{start.astimezone(UTC).isoformat()} to {end.astimezone(UTC).isoformat()}"
        if force:
            log.warning("empty_window_accepted", window=window, known_tickets=known)
            return
        raise GuardError(
            f"Heartland listed no tickets updated from {window}, but the ledger saw {known} "
            "tickets updated in that window. Stopped without moving the cursor. Check that "
            "heartland.base_url and the API token still reach the same account and every "
            "location, then run again. If those tickets were really removed from Heartland, "
            "run `yotposync catch-up` or `yotposync run` with --force to accept the empty "
            "window."
        )

    def redecide(self, ticket_ids: Sequence[int]) -> TransactionsSummary:
        """Fetch known tickets again and decide them as one page, without moving the cursor.

        The customers job calls this when a customer gets a usable e-mail address, or first
        appears in Heartland, after their tickets were decided. A ticket Heartland no longer
        has is skipped. Parents come first when the caller lists them first.
        """
        now = self.clock()
        summary = TransactionsSummary(start=now, end=now)
        raws = []
        for ticket_id in dict.fromkeys(ticket_ids):
            raw = self.heartland.get_ticket(ticket_id)
            if raw is None:
                log.warning("redecided_ticket_not_found", ticket_id=ticket_id)
                continue
            raws.append(raw)
        if raws:
            self._process_page(raws, summary, moves_cursor=False)
        log.info(
            "tickets_redecided",
            tickets=summary.tickets,
            changed=summary.changed,
            pushes_planned=len(summary.planned),
        )
        return summary

    # One page

    def _with_customers(self, pages: Iterable[TicketPage]) -> Iterator[_ReadPage]:
        """Add to each page the raw customers its tickets name, in one list request per chunk.

        This runs in the read-ahead thread, so it only reads: parsing and every decision stay
        with the page in the job's thread.
        """
        for page in pages:
            ids = sorted({c for raw in page.results if (c := _raw_id(raw, "customer_id"))})
            customers = self.heartland.customers_by_id(ids) if ids else {}
            yield _ReadPage(page, customers, frozenset(ids))

    def _process_page(
        self,
        raws: list[dict[str, Any]],
        summary: TransactionsSummary,
        moves_cursor: bool,
        read: _ReadPage | None = None,
    ) -> None:
        summary.planned.start_page()
        versions: dict[int, _Version] = {}
        invalid: list[tuple[int, str]] = []
        for raw in raws:
            parsed = self._parse(raw)
            if isinstance(parsed, Ticket):
                if parsed.id in versions:
                    # One response cannot contain two versions of a ticket, so the later one wins.
                    log.warning("ticket_listed_twice_in_page", ticket_id=parsed.id)
                versions[parsed.id] = _Version(parsed, None, False)
            elif parsed is not None:
                invalid.append(parsed)
            else:
                problem = f"ticket without a usable id: {_short(raw)}"
                summary.invalid.append(problem)
                log.warning("ticket_invalid", error=problem)
        versions = self._attach_customers(versions, read)
        parents = self._fetch_missing_parents(versions)
        # Tickets the ledger has never seen have no pushes and no returns recorded yet, so
        # planning them needs none of the per-ticket reads of what was sent before.
        seen = self.ledger.known_ticket_ids(sorted(versions))
        first_seen = (versions.keys() - seen) | parents.keys()
        versions = self._hold_customers_in_review(versions, first_seen)
        parents = self._hold_customers_in_review(parents, first_seen)

        now = self.clock()
        with self.ledger.transaction():
            batch = _Batch(versions | parents, first_seen)
            for version in parents.values():
                self._decide_and_plan(version, batch, summary, now)
            for version in versions.values():
                self._decide_and_plan(version, batch, summary, now)
            for ticket_id, reason in invalid:
                self._record_invalid(ticket_id, reason, summary, now)
            last = _last_key(raws, summary.end)
            if moves_cursor and last is not None:
                self.ledger.save_cursor(CURSOR_NAME, last, now)
                summary.cursor = last
        summary.pages += 1
        summary.tickets += len(raws)

    def _parse(self, raw: Mapping[str, Any]) -> Ticket | tuple[int, str] | None:
        ticket_id = _ticket_id(raw)
        if ticket_id is None:
            return None
        try:
            lines = None if "lines" in raw else self.heartland.ticket_lines(ticket_id)
            return parse_ticket(raw, lines)
        except InvalidRecordError as exc:
            return (ticket_id, str(exc))

    def _attach_customers(
        self, versions: dict[int, _Version], read: _ReadPage | None = None
    ) -> dict[int, _Version]:
        wanted = {v.ticket.customer_id for v in versions.values() if v.ticket.customer_id}
        customers, problems = self._load_customers(wanted, read)
        attached: dict[int, _Version] = {}
        for ticket_id, version in versions.items():
            customer_id = version.ticket.customer_id
            customer = customers.get(customer_id) if customer_id is not None else None
            missing = customer_id is not None and customer is None
            problem = problems.get(customer_id) if customer_id is not None else None
            attached[ticket_id] = _Version(version.ticket, customer, missing, problem)
        return attached

    def _hold_customers_in_review(
        self, versions: dict[int, _Version], first_seen: set[int]
    ) -> dict[int, _Version]:
        """Return the versions, with no e-mail on the customer of each ticket that must wait.

        The customers job sends nothing for a customer whose e-mail another Heartland or Yotpo
        customer has, and opens a review. Its tickets must not send anything either: an order
        or a deduction under that e-mail could reach the other customer's account. They are
        decided again once the customer is enrolled. A ticket that earned before the review
        keeps being decided as usual, so that what it earned is not taken back.
        """
        # NOTE: a ticket that earned before the review and is edited during it still sends the
        # difference under the shared e-mail.
        candidates = {
            ticket_id: v.customer.id
            for ticket_id, v in versions.items()
            if v.customer is not None and v.customer.email is not None
        }
        in_review = customer_book.customers_in_review(self.ledger, sorted(set(candidates.values())))
        if not in_review:
            return versions
        stored = self.ledger.ticket_kinds(sorted(candidates.keys() - first_seen))
        adjusted = dict(versions)
        for ticket_id, customer_id in candidates.items():
            earned_before = stored.get(ticket_id) in _EARNING_KINDS
            if customer_id not in in_review or earned_before:
                continue
            version = versions[ticket_id]
            assert version.customer is not None  # a candidate names its customer
            problem = (
                f"it waits for staff review ({in_review[customer_id]}), so nothing is sent "
                "under its e-mail; see `yotposync customers review`"
            )
            customer = dataclasses.replace(version.customer, email=None, email_problem=problem)
            adjusted[ticket_id] = dataclasses.replace(version, customer=customer)
        return adjusted

    def _load_customers(
        self, ids: set[int], read: _ReadPage | None = None
    ) -> tuple[dict[int, Customer], dict[int, str]]:
        """Return the customers by id, and the reason for each one that could not be parsed.

        Customers the read-ahead already listed (`read`) are not requested again. A customer
        missing from the list response is requested on its own, and only a 404 counts as
        gone: a ticket decided without its customer earns later only if the customers job
        re-decides it, which it does only when it finds that customer changed.
        """
        wanted = sorted(ids)
        if not wanted:
            return {}, {}
        listed = read.customers if read is not None else {}
        requested = read.requested if read is not None else frozenset()
        raws = {i: listed[i] for i in wanted if i in listed}
        not_requested = [i for i in wanted if i not in requested]
        if not_requested:
            raws.update(self.heartland.customers_by_id(not_requested))
        for customer_id in wanted:
            if customer_id not in raws:
                single = self.heartland.get_customer(customer_id)
                if single is not None:
                    log.warning("customer_missing_from_list", customer_id=customer_id)
                    raws[customer_id] = single
        customers: dict[int, Customer] = {}
        problems: dict[int, str] = {}
        for customer_id, raw in raws.items():
            try:
                customers[customer_id] = parse_customer(raw)
            except InvalidRecordError as exc:
                problems[customer_id] = str(exc)
                log.warning("customer_invalid", customer_id=customer_id, error=str(exc))
        return customers, problems

    def _fetch_missing_parents(self, versions: dict[int, _Version]) -> dict[int, _Version]:
        """Fetch the parent sales of returns that neither the ledger nor this page holds."""
        wanted = {
            v.ticket.parent_id
            for v in versions.values()
            if v.ticket.parent_id is not None and v.ticket.parent_id not in versions
        }
        wanted -= self.ledger.known_ticket_ids(sorted(p for p in wanted if p is not None))
        fetched: dict[int, _Version] = {}
        for parent_id in sorted(p for p in wanted if p is not None):
            raw = self.heartland.get_ticket(parent_id)
            if raw is None:
                log.warning("parent_ticket_not_found", ticket_id=parent_id)
                continue
            parsed = self._parse(raw)
            if isinstance(parsed, Ticket):
                fetched[parent_id] = _Version(parsed, None, False)
            else:
                reason = parsed[1] if isinstance(parsed, tuple) else "no usable id"
                log.warning("parent_ticket_invalid", ticket_id=parent_id, error=reason)
        return self._attach_customers(fetched)

    # One ticket

    def _decide_and_plan(
        self,
        version: _Version,
        batch: _Batch,
        summary: TransactionsSummary,
        now: datetime,
    ) -> None:
        ticket = version.ticket
        if ticket.id in batch.started:
            return
        batch.started.add(ticket.id)
        parent_id = ticket.parent_id
        if parent_id is not None and parent_id in batch.known and parent_id not in batch.started:
            # The parent is in this batch: decide it first so the return sees its outcome.
            self._decide_and_plan(batch.known[parent_id], batch, summary, now)
        parent = self.ledger.parent_info(parent_id) if parent_id is not None else None
        if (
            parent is not None
            and parent_id is not None
            and parent.item_net_cents != parent.item_cents
        ):
            # Only a sale with a ticket-level discount has cents to round (see refund_cents).
            before = self.ledger.items_returned_before(parent_id, ticket.id, ticket.completed_at)
            if before:
                parent = dataclasses.replace(parent, returned_before_cents=before)

        decision = decide(ticket, version.customer, parent, self.rules, self.basis)
        if version.customer_missing and decision.kind is Kind.NO_CUSTOMER:
            if version.customer_problem is not None:
                # A customer record that cannot be read is no evidence about the sale. The
                # version is recorded as unreadable, so that status lists it and a later read
                # of the ticket decides it again, and an earlier decision and its pushes
                # remain, as for an unreadable ticket.
                reason = f"unusable customer record: {version.customer_problem}"
                self._record_invalid(ticket.id, reason, summary, now)
                return
            reason = f"customer {ticket.customer_id} not found in Heartland"
            decision = dataclasses.replace(decision, reason=reason)
        amounts = ticket_amounts(ticket, self.basis)
        changed = self.ledger.record_decision(
            decision,
            public_id=ticket.public_id,
            ticket_type=ticket.type,
            updated_at=ticket.updated_at,
            completed_at=ticket.completed_at,
            business_date=ticket.local_completed_date,
            location_id=ticket.location_id,
            amounts=TicketAmountsRow(
                amounts.sold_item_cents, amounts.sold_net_cents, amounts.returned_item_cents
            ),
            now=now,
        )
        summary.decisions[decision.kind.value] += 1
        summary.changed += int(changed)
        coupon_code = self.offers.apply(ticket, version.customer, amounts, now)
        credited: set[int] = set()  # sales whose orders this ticket's pushes add to
        first_seen = ticket.id in batch.first_seen
        for push in self._plan(decision, parent_id, parent, first_seen=first_seen):
            payload = self._payload(push, ticket, amounts)
            if coupon_code is not None and is_first_order(push, self.id_prefix):
                payload["coupon_code"] = coupon_code
            self._add_push(push, payload, summary, now)
            if push.role == "order":
                credited.add(ticket.id)
            elif push.role == "restore" and parent_id is not None:
                credited.add(parent_id)
        batch.decided.add(ticket.id)
        # A sale new to the ledger has no returns decided before it.
        for sale_id in sorted(credited - batch.first_seen):
            self._plan_returns_again(sale_id, batch, summary, now)

    def _plan_returns_again(
        self, sale_id: int, batch: _Batch, summary: TransactionsSummary, now: datetime
    ) -> None:
        """Plan again the returns of a sale whose orders just gained credit.

        A return is planned against what its sale's orders hold, when the return is read. Two
        cases change that afterwards without the return being read again. A return voided while
        its sale credited no customer can give its refund back once the sale earns again. A
        return capped at what its sale had left can take the rest once another return is voided.
        Planning adds only what is missing, so a return with nothing new plans nothing. Returns
        still to be decided in this batch are left to that decision.
        """
        returns = [
            (decision, completed_at)
            for decision, completed_at in self.ledger.returns_of(sale_id)
            if decision.ticket_id in batch.decided or decision.ticket_id not in batch.known
        ]
        # A restore planned here can let another return take more, so go round until a round
        # plans nothing. The loop ends because each return's refund only grows towards its
        # decided amount, and a voided return restores once.
        for _ in range(len(returns) + 1):
            planned_any = False
            for decision, completed_at in returns:
                parent = self.ledger.parent_info(sale_id)
                pushes = plan_return_again(
                    decision,
                    self.ledger.pushes_for_ticket(decision.ticket_id),
                    self.ledger.order_balances(sale_id),
                    self.id_prefix,
                    parent,
                )
                for push in pushes:
                    if push.kind == ORDER:
                        when = completed_at or now
                        payload = restore_payload(push, when=when, currency=self.currency)
                    else:
                        payload = refund_payload(push, currency=self.currency)
                    self._add_push(push, payload, summary, now)
                    log.info(
                        "return_planned_again",
                        ticket_id=decision.ticket_id,
                        sale_id=sale_id,
                        push_id=push.push_id,
                        amount_cents=push.amount_cents,
                    )
                planned_any = planned_any or bool(pushes)
            if not planned_any:
                return

    def _add_push(
        self,
        push: PlannedPush,
        payload: dict[str, Any],
        summary: TransactionsSummary,
        now: datetime,
    ) -> None:
        self.ledger.add_push(push, payload, now)
        summary.planned.add(push)
        if debug_enabled(LOGGER):
            log.debug(
                "push_planned",
                push_id=push.push_id,
                kind=push.kind,
                ticket_id=push.ticket_id,
                amount_cents=push.amount_cents,
            )

    def _plan(
        self,
        decision: Decision,
        parent_id: int | None,
        parent: ParentInfo | None,
        *,
        first_seen: bool,
    ) -> list[PlannedPush]:
        if first_seen:
            own: list[PushRecord] = []
            own_orders: list[OrderBalance] = []
        else:
            own = self.ledger.pushes_for_ticket(decision.ticket_id)
            own_orders = self.ledger.order_balances(decision.ticket_id)
        parent_orders = self.ledger.order_balances(parent_id) if parent_id is not None else []
        return plan_pushes(decision, own, own_orders, parent_orders, self.id_prefix, parent)

    def _payload(self, push: PlannedPush, ticket: Ticket, amounts: TicketAmounts) -> dict[str, Any]:
        if push.kind == ORDER:
            return order_payload(
                push,
                ticket,
                currency=self.currency,
                discount_cents=amounts.ticket_discount_cents,
                first_order=is_first_order(push, self.id_prefix),
            )
        return refund_payload(push, currency=self.currency)

    def _record_invalid(
        self, ticket_id: int, reason: str, summary: TransactionsSummary, now: datetime
    ) -> None:
        self.ledger.record_invalid(ticket_id, reason, now)
        summary.decisions[Kind.INVALID.value] += 1
        summary.invalid.append(reason)
        log.warning("ticket_invalid", ticket_id=ticket_id, error=reason)


# Decided kinds that credit the customer: a ticket decided so keeps its credit while its
# customer waits for review.
_EARNING_KINDS = frozenset({Kind.SALE.value, Kind.EXCHANGE.value})


class _Batch:
    """The tickets of one page being decided, and how far each has got."""

    def __init__(self, known: dict[int, _Version], first_seen: set[int]) -> None:
        self.known = known
        self.first_seen = first_seen  # tickets not in the ledger before this batch
        self.started: set[int] = set()  # each ticket is decided once, even in a cycle of parents
        self.decided: set[int] = set()


def _ticket_id(raw: Mapping[str, Any]) -> int | None:
    return _raw_id(raw, "id")


def _raw_id(raw: Mapping[str, Any], key: str) -> int | None:
    """Read an id from a raw record without raising: None when it is not a usable integer."""
    value = raw.get(key)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


# Ticket versions already warned about as updated after their window, in this process.
_FUTURE_TICKETS = SeenOnce()


def _last_key(raws: list[dict[str, Any]], end: datetime) -> Cursor | None:
    """Return the cursor after a page: the newest (updated_at, id) that parses, in walk order.

    The walk requests tickets updated at or before `end`. A ticket listed with a later
    `updated_at` comes from a wrong clock where it was written, or a listing that ignores the
    filter. It is decided like any other, but it does not move the cursor. A cursor in 2030
    would make every later walk start after the sales made until then.
    """
    for raw in reversed(raws):
        ticket_id = _ticket_id(raw)
        try:
            updated = parse_timestamp(raw.get("updated_at"), record="ticket", field="updated_at")
        except InvalidRecordError:
            continue
        if ticket_id is None:
            continue
        if updated > end:
            # Warned once per ticket version: it stays in every window until its time comes.
            _FUTURE_TICKETS.warn(
                log,
                (ticket_id, updated),
                "ticket_updated_after_window",
                ticket_id=ticket_id,
                updated_at=updated.isoformat(),
                window_end=end.isoformat(),
                detail="Heartland listed this ticket as updated after the end of the window "
                "asked for; it was decided, but the cursor stays at or before the window's end. "
                "Check the clock of the register or system that changed the ticket",
            )
            continue
        return Cursor(updated, ticket_id)
    return None


def _short(raw: Mapping[str, Any]) -> str:
    text = repr({k: raw[k] for k in list(raw)[:4]})
    return text if len(text) <= 120 else text[:117] + "..."
