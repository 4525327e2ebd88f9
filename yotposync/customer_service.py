"""Customer features wired from settings: the jobs, a one-shot sync, and the customer lookup.

The scheduler and the `customers` commands both start here, so the wiring is written once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

from yotposync.app import heartland_client, utc_now, yotpo_client
from yotposync.clients.heartland import HeartlandClient
from yotposync.clients.yotpo import YotpoClient
from yotposync.config import Settings
from yotposync.errors import RejectedError
from yotposync.ledger import Ledger, LedgerLock
from yotposync.ledger import customers as book
from yotposync.ledger.offers import OfferLedger
from yotposync.sync.cashier_fields import LoyaltySnapshot, parse_snapshot
from yotposync.sync.customer_job import CustomersJob, CustomersSummary
from yotposync.sync.customers import e164_phone, email_key
from yotposync.sync.delivery import DeliveryJob, DeliverySummary
from yotposync.sync.parse import check_email
from yotposync.sync.refresh_job import LoyaltyReader, RefreshJob, RefreshSummary
from yotposync.sync.transactions import TransactionsJob

log = structlog.get_logger("yotposync.customers")

# A query of only digits, up to this many, is a Heartland customer id; longer is a phone.
MAX_ID_DIGITS = 9
_DIGITS = re.compile(r"\d+")


def customers_job(
    settings: Settings,
    ledger: Ledger,
    heartland: HeartlandClient,
    yotpo: YotpoClient,
    *,
    clock: Callable[[], datetime],
    redecide_lock: AbstractContextManager[Any] | None = None,
) -> CustomersJob:
    """Build the customers job, with re-decisions run by the transactions job's own code.

    `redecide_lock` is held while tickets are decided again, so that the daemon's
    transactions job never decides the same ticket at the same time.
    """
    transactions = TransactionsJob(settings, ledger, heartland, clock=clock)
    lock = redecide_lock if redecide_lock is not None else nullcontext()

    def redecide(ticket_ids: Sequence[int]) -> int:
        with lock:
            return transactions.redecide(ticket_ids).changed

    return CustomersJob(settings, ledger, heartland, yotpo, clock=clock, redecide=redecide)


@dataclass
class CustomerSyncResult:
    """Counts from one `yotposync customers sync` run."""

    customers: CustomersSummary | None
    delivery: DeliverySummary
    refresh: RefreshSummary
    open_reviews: int
    seconds: float


def run_customer_sync(
    settings: Settings, *, clock: Callable[[], datetime] = utc_now
) -> CustomerSyncResult:
    """Run the customers job once, deliver what it queued, then refresh the cashier fields."""
    started = clock()
    with LedgerLock(settings.ledger.path):
        ledger = Ledger.open_for_writing(settings.ledger.path)
        heartland = heartland_client(settings)
        yotpo = yotpo_client(settings)
        try:
            run_id = ledger.start_run("customers-sync", started)
            customers = None
            if settings.customers.enrol:
                customers = customers_job(settings, ledger, heartland, yotpo, clock=clock).run()
            delivery = DeliveryJob(settings, ledger, yotpo, clock=clock).run()
            refresh = RefreshJob(settings, ledger, heartland, yotpo, clock=clock).run()
            open_reviews = len(book.list_reviews(ledger))
            seconds = (clock() - started).total_seconds()
            ledger.finish_run(
                run_id,
                "ok",
                {
                    "customers": customers.as_dict() if customers else None,
                    "delivery": delivery.as_dict(),
                    "refresh": refresh.as_dict(),
                },
                clock(),
            )
            return CustomerSyncResult(customers, delivery, refresh, open_reviews, seconds)
        finally:
            heartland.close()
            yotpo.close()
            ledger.close()


# Looking one customer up


@dataclass(frozen=True)
class CustomerQuery:
    """A parsed `customer show` query: an e-mail, a Heartland customer id or a phone."""

    kind: str  # "email", "id" or "phone"
    email: str | None = None
    customer_id: int | None = None
    phone: str | None = None

    def describe(self) -> str:
        if self.kind == "email":
            return f"e-mail {self.email}"
        if self.kind == "id":
            return f"Heartland customer {self.customer_id}"
        return f"phone {self.phone}"


def parse_query(text: str, default_region: str) -> CustomerQuery:
    """Read a lookup query. Raises ValueError saying what is wrong with it.

    Text with an `@` is an e-mail address. Up to nine digits are a Heartland customer id.
    Anything else is a phone number, which must convert to E.164.
    """
    query = text.strip()
    if "@" in query:
        email, problem = check_email(query)
        if email is None:
            raise ValueError(f"{query!r} is not a usable e-mail address: {problem}")
        return CustomerQuery("email", email=email)
    if _DIGITS.fullmatch(query) and len(query) <= MAX_ID_DIGITS:
        return CustomerQuery("id", customer_id=int(query))
    phone = e164_phone(query, default_region)
    if phone is None:
        raise ValueError(
            f"{query!r} is neither an e-mail address, a Heartland customer id (up to "
            f"{MAX_ID_DIGITS} digits) nor a phone number valid in {default_region}; "
            "write a phone with its country code, e.g. +15125550147"
        )
    return CustomerQuery("phone", phone=phone)


@dataclass
class CustomerReport:
    """Everything `customer show` prints about one customer."""

    query: CustomerQuery
    customer_id: int | None = None
    row: book.CustomerRow | None = None
    account: dict[str, Any] | None = None
    snapshot: LoyaltySnapshot | None = None
    tickets: list[dict[str, Any]] = field(default_factory=list)
    pushes: list[dict[str, Any]] = field(default_factory=list)
    reviews: list[book.Review] = field(default_factory=list)
    fields: book.FieldsRow | None = None
    # The other Heartland customers with the queried e-mail or phone, and their open
    # reviews. The report shows only the lowest id in full.
    other_customer_ids: list[int] = field(default_factory=list)
    other_reviews: list[book.Review] = field(default_factory=list)

    @property
    def found(self) -> bool:
        return self.account is not None or self.row is not None or bool(self.tickets)


def lookup_customer(
    ledger: Ledger | None,
    yotpo: LoyaltyReader,
    query: CustomerQuery,
    *,
    limit: int = 10,
    register_offers: bool = True,
) -> CustomerReport:
    """Gather a customer's Yotpo standing and the ledger's recent activity for them.

    The Heartland id comes from the query, or from the ledger's customers (by e-mail or
    phone), or from the Yotpo account's linked id. `ledger` may be None before any run.
    With `register_offers` and a ledger, the offers are those the cashier can apply, as the
    cashier's field lists them.
    """
    report = CustomerReport(query)
    matches = _ledger_customer_ids(ledger, query)
    report.customer_id = matches[0] if matches else None
    report.account = _find_account(yotpo, query, report.customer_id)
    linked = _linked_id(report.account)
    # Customers sharing an e-mail share one Yotpo account, linked to one of them, which is
    # not always the lowest id: show the one the account belongs to.
    if linked is not None and (report.customer_id is None or linked in matches):
        report.customer_id = linked

    if report.account is not None:
        # Yotpo finds the account by its linked id, or else by its e-mail alone.
        if linked is not None:
            options = yotpo.redemption_options(customer_id=str(linked))
        else:
            options = yotpo.redemption_options(customer_email=str(report.account.get("email")))
        coupon_names = None
        if register_offers and ledger is not None:
            coupon_names = OfferLedger(ledger).active_coupon_names()
        report.snapshot = parse_snapshot(report.account, options, coupon_names)

    if ledger is not None and report.customer_id is not None:
        customer_id = report.customer_id
        report.row = book.get_customer(ledger, customer_id)
        report.tickets = book.customer_tickets(ledger, customer_id, limit)
        report.pushes = book.customer_pushes(ledger, customer_id, limit)
        report.reviews = book.list_reviews(ledger, customer_id=customer_id)
        report.fields = book.get_fields(ledger, customer_id)
        report.other_customer_ids = [other for other in matches if other != customer_id]
        for other_id in report.other_customer_ids:
            report.other_reviews += book.list_reviews(ledger, customer_id=other_id)
    return report


def _linked_id(account: dict[str, Any] | None) -> int | None:
    """Return the Heartland customer id a Yotpo account is linked to, when it is one."""
    if account is None:
        return None
    linked = account.get("third_party_id") or account.get("thirty_party_id")
    if isinstance(linked, str | int) and _DIGITS.fullmatch(str(linked)):
        return int(linked)
    return None


def _ledger_customer_ids(ledger: Ledger | None, query: CustomerQuery) -> list[int]:
    """Return the Heartland customer ids that match the query, lowest first."""
    if query.customer_id is not None:
        return [query.customer_id]
    if ledger is None:
        return []
    if query.email is not None:
        rows = book.find_customers(ledger, email_key=email_key(query.email))
        if rows:
            return [row.id for row in rows]
        return book.customer_ids_by_ticket_email(ledger, query.email)
    return [row.id for row in book.find_customers(ledger, phone=query.phone)]


def _find_account(
    yotpo: LoyaltyReader, query: CustomerQuery, customer_id: int | None
) -> dict[str, Any] | None:
    lookups: list[Callable[[], dict[str, Any] | None]] = []
    if customer_id is not None:
        lookups.append(lambda: yotpo.get_customer(customer_id=str(customer_id)))
    if query.email is not None:
        lookups.append(lambda: yotpo.get_customer(email=query.email))
    if query.phone is not None:
        lookups.append(lambda: yotpo.get_customer(phone_number=query.phone))
    for lookup in lookups:
        try:
            account = lookup()
        except RejectedError:
            account = None  # NOTE: Yotpo may return 400 instead of 404 for an unknown customer
        if account is not None:
            return account
    return None
