"""The `yotposync customers ...` and `yotposync customer show` commands.

They parse options, call `customer_service` or the ledger, and format the outcome. Known
errors reach the main group, which prints one message and exits non-zero.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from typing import Any

import click

from yotposync.app import utc_now, yotpo_client
from yotposync.config import YOTPO_SECRETS, Settings
from yotposync.customer_service import (
    CustomerReport,
    CustomerSyncResult,
    lookup_customer,
    parse_query,
    run_customer_sync,
)
from yotposync.ledger import Ledger
from yotposync.ledger import customers as book
from yotposync.ledger.offers import POINTS_ADJUST
from yotposync.ledger.store import no_ledger_text
from yotposync.money import format_stored_cents
from yotposync.sync.cashier_fields import format_offer
from yotposync.sync.customers import PENDING

EXIT_FAILED = 1


def _configured(
    ctx: click.Context,
    *,
    require_secrets: bool = True,
    check_secrets: bool | frozenset[str] = True,
    print_warnings: bool = False,
) -> Settings:
    """Load the settings and set up logging the way every other command does."""
    # Imported here because cli.py imports this module to register the commands.
    from yotposync.cli import _settings

    return _settings(
        ctx,
        require_secrets=require_secrets,
        check_secrets=check_secrets,
        print_warnings=print_warnings,
    )


def _ledger_only_settings(ctx: click.Context) -> Settings:
    from yotposync.cli import ledger_only_settings

    return ledger_only_settings(ctx)


def _open_ledger(ctx: click.Context, settings: Settings, *, reading: bool = False) -> Ledger:
    path = settings.ledger.path
    if not path.exists():
        click.echo(
            f"error: {no_ledger_text(path, '`yotposync customers sync` or `yotposync run`')}",
            err=True,
        )
        ctx.exit(EXIT_FAILED)
    return Ledger.open_for_reading(path) if reading else Ledger.open(path)


def _when(moment: datetime | str | None) -> str:
    if moment is None:
        return "-"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return f"{moment:%Y-%m-%d %H:%M} UTC"


@click.group("customers")
def customers_group() -> None:
    """Enrol Heartland customers in Yotpo and review the conflicts left for staff."""


@customers_group.command("sync")
@click.pass_context
def sync_command(ctx: click.Context) -> None:
    """Poll customers once, enrol them, send what that queued, refresh the cashier fields."""
    settings = _configured(ctx)
    result = run_customer_sync(settings)
    click.echo(format_sync(result))


def format_sync(result: CustomerSyncResult) -> str:
    lines = []
    customers = result.customers
    if customers is None:
        lines.append("Enrolment is off (customers.enrol = false).")
    else:
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(customers.statuses.items()))
        lines.append(
            f"Customers: {customers.customers} read, {customers.unchanged} unchanged, "
            f"{customers.sent} sent to Yotpo, {customers.retrying} waiting for a retry"
        )
        lines.append(f"Statuses: {statuses or 'none changed'}")
        lines.append(f"Tickets decided again: {customers.redecided_tickets} changed")
    delivery = result.delivery
    lines.append(
        f"Delivered: {delivery.confirmed} confirmed, {delivery.rejected} rejected, "
        f"{delivery.waiting} still queued"
    )
    refresh = result.refresh
    lines.append(
        f"Cashier fields: {refresh.written} written, {refresh.unchanged} unchanged, "
        f"{refresh.not_in_yotpo} not in Yotpo"
    )
    lines.append(f"Open reviews: {result.open_reviews}")
    return "\n".join(lines)


@customers_group.command("review")
@click.option("--all", "show_all", is_flag=True, help="Include resolved reviews.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.pass_context
def review_command(ctx: click.Context, show_all: bool, as_json: bool) -> None:
    """List the customer conflicts that wait for staff, oldest first."""
    settings = _ledger_only_settings(ctx)
    ledger = _open_ledger(ctx, settings, reading=True)
    try:
        reviews = book.list_reviews(ledger, include_resolved=show_all)
    finally:
        ledger.close()
    if as_json:
        click.echo(json.dumps([asdict(review) for review in reviews], indent=2, default=str))
        return
    click.echo(format_reviews(reviews, show_all))


def format_reviews(reviews: list[book.Review], show_all: bool) -> str:
    if not reviews:
        return "No reviews." if show_all else "No open reviews."
    label = "review" if show_all else "open review"
    lines = [f"{len(reviews)} {label}{'' if len(reviews) == 1 else 's'}:"]
    for review in reviews:
        state = (
            "" if review.state == book.REVIEW_OPEN else f", resolved {_when(review.resolved_at)}"
        )
        lines.append(
            f"  #{review.id} customer {review.customer_id}, {review.kind}, "
            f"opened {_when(review.opened_at)}{state}"
        )
        lines.append(f"      {review.detail}")
        if review.resolution:
            lines.append(f"      Resolution: {review.resolution}")
    return "\n".join(lines)


def _parse_review_id(text: str) -> int:
    """Read a review number as `customers review` prints it, with or without its `#`."""
    digits = text.strip().removeprefix("#")
    if digits.isascii() and digits.isdigit() and 0 < int(digits) < 2**63:
        return int(digits)
    if digits.isascii() and digits.isdigit() and int(digits) > 0:
        raise click.BadParameter(
            f"{text!r} is larger than any review number: copy the number that "
            "`yotposync customers review` shows after the #.",
            param_hint="REVIEW_ID",
        )
    raise click.BadParameter(
        f"{text!r} is not a review number. Give the whole number from 1 up, such as 3, that "
        "`yotposync customers review` shows after the #.",
        param_hint="REVIEW_ID",
    )


@customers_group.command("resolve")
@click.argument("review_text", metavar="REVIEW_ID")
@click.option("--note", default="", help="What staff did, kept with the review.")
@click.pass_context
def resolve_command(ctx: click.Context, review_text: str, note: str) -> None:
    """Close a review after fixing its cause; the customer is checked again at the next run."""
    review_id = _parse_review_id(review_text)
    settings = _ledger_only_settings(ctx)
    ledger = _open_ledger(ctx, settings)
    # One line, so that the note keeps `customers review --all` readable.
    resolution = " ".join(note.split()) or "resolved by staff"
    try:
        now = utc_now()
        with ledger.transaction():
            review = book.resolve_review(ledger, review_id, resolution, now)
            if review is not None:
                book.set_recheck(
                    ledger, review.customer_id, f"review {review_id} resolved", PENDING, now
                )
    finally:
        ledger.close()
    if review is None:
        click.echo(f"error: no open review #{review_id}; list them with `customers review`")
        ctx.exit(EXIT_FAILED)
    click.echo(
        f"Review #{review_id} resolved. Customer {review.customer_id} is checked again at "
        "the next customers run; a conflict still present opens a new review."
    )


@click.group("customer")
def customer_group() -> None:
    """Look up one customer's loyalty standing."""


@customer_group.command("show")
@click.argument("query")
@click.option("--limit", default=10, show_default=True, help="Recent tickets and pushes to list.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.pass_context
def show_command(ctx: click.Context, query: str, limit: int, as_json: bool) -> None:
    """Show balance, tier, affordable offers and recent activity for EMAIL, ID or PHONE.

    QUERY is an e-mail address, a Heartland customer id (up to nine digits), or a phone
    number, with its country code unless it is in customers.default_phone_region. When
    several customers have the e-mail or phone, the one their Yotpo account is linked to is
    shown (or else the lowest id), and the others are named with their open reviews.
    """
    # Only Yotpo is asked, so the Heartland token may be missing or unreadable; the Yotpo
    # client reports a missing GUID or API key by name.
    settings = _configured(
        ctx, require_secrets=False, check_secrets=YOTPO_SECRETS, print_warnings=True
    )
    try:
        parsed = parse_query(query, settings.customers.default_phone_region)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="QUERY") from None
    path = settings.ledger.path
    ledger = Ledger.open(path) if path.exists() else None
    if ledger is None and settings.offers.enabled:
        # Without the ledger the register's coupons are unknown, and a mistyped path looks
        # the same as a machine where yotposync never ran.
        click.echo(
            f"warning: {no_ledger_text(path, '`yotposync run`')}. The offers below are every "
            "offer Yotpo lists, with or without a register coupon.",
            err=True,
        )
    yotpo = yotpo_client(settings)
    try:
        report = lookup_customer(
            ledger, yotpo, parsed, limit=limit, register_offers=settings.offers.enabled
        )
    finally:
        yotpo.close()
        if ledger is not None:
            ledger.close()
    if not report.found:
        click.echo(f"No customer found for {parsed.describe()}.", err=True)
        ctx.exit(EXIT_FAILED)
    if as_json:
        click.echo(json.dumps(report_json(report), indent=2, default=str))
    else:
        click.echo(format_report(report))


def report_json(report: CustomerReport) -> dict[str, Any]:
    snapshot = report.snapshot
    return {
        "query": asdict(report.query),
        "customer_id": report.customer_id,
        "ledger": asdict(report.row) if report.row else None,
        "yotpo": None
        if snapshot is None
        else {
            "email": report.account.get("email") if report.account else None,
            "points_balance": snapshot.balance,
            "vip_tier": snapshot.tier,
            "points_to_next_tier": snapshot.points_to_next_tier,
            "affordable_offers": [asdict(offer) for offer in snapshot.offers],
        },
        "reviews": [asdict(review) for review in report.reviews],
        "tickets": report.tickets,
        "pushes": report.pushes,
        "fields": asdict(report.fields) if report.fields else None,
        "other_customer_ids": report.other_customer_ids,
        "other_reviews": [asdict(review) for review in report.other_reviews],
    }


def format_report(report: CustomerReport) -> str:
    lines = []
    row = report.row
    account = report.account or {}
    if row is not None:
        name = f"{row.first_name} {row.last_name}".strip() or "(no name)"
        lines.append(f"Customer {row.id} ({row.public_id}): {name}")
        lines.append(f"  E-mail: {row.email or '-'}  Phone: {row.phone or '-'}")
        lines.append(f"  Enrolment: {row.status} ({row.reason})")
    elif report.customer_id is not None:
        lines.append(f"Customer {report.customer_id}: not read from Heartland yet")
    else:
        lines.append("Customer: not linked to a Heartland customer")
    lines += _other_customer_lines(report)

    snapshot = report.snapshot
    if snapshot is None:
        lines.append("Yotpo: no loyalty account found")
    else:
        tier = snapshot.tier or "none"
        next_tier = (
            "top tier or no next tier"
            if snapshot.points_to_next_tier is None
            else f"{snapshot.points_to_next_tier} points to the next tier"
        )
        lines.append(f"Yotpo: {account.get('email')}")
        lines.append(f"  Balance: {snapshot.balance} points")
        lines.append(f"  Tier: {tier}, {next_tier}")
        offers = "; ".join(format_offer(offer) for offer in snapshot.offers) or "none"
        lines.append(f"  Offers they can afford now: {offers}")
    if report.fields is not None and report.fields.written_at is not None:
        lines.append(f"Cashier fields last written {_when(report.fields.written_at)}")

    open_reviews = [review for review in report.reviews if review.state == book.REVIEW_OPEN]
    for review in open_reviews:
        lines.append(f"Open review #{review.id} ({review.kind}): {review.detail}")

    lines.append("Recent tickets:" if report.tickets else "Recent tickets: none in the ledger")
    for ticket in report.tickets:
        date = ticket["business_date"] or (ticket["completed_at"] or "")[:10] or "-"
        lines.append(
            f"  {date}  ticket {ticket['id']} ({ticket['public_id']})  {ticket['kind']}: "
            f"{_ticket_detail(ticket)}"
        )
    lines.append("Recent pushes:" if report.pushes else "Recent pushes: none")
    for push in report.pushes:
        target = f" against {push['target_order_id']}" if push["target_order_id"] else ""
        # A points adjustment moves points, not money: its amount_cents is 0.
        points = push.get("points")
        amount = (
            f"{points:+d} points"
            if isinstance(points, int) and push["kind"] == POINTS_ADJUST
            else format_stored_cents(push["amount_cents"])
        )
        lines.append(f"  {push['push_id']}  {push['kind']}{target}  {amount}  {push['state']}")
    return "\n".join(lines)


def _other_customer_lines(report: CustomerReport) -> list[str]:
    """Name the other customers that share the queried e-mail or phone, and their reviews."""
    if not report.other_customer_ids:
        return []
    ids = [str(customer_id) for customer_id in report.other_customer_ids]
    listed = ", ".join([f"{report.customer_id} (shown here)", *ids[:-1]]) + f" and {ids[-1]}"
    lines = [
        f"  {len(ids) + 1} Heartland customers have {report.query.describe()}: {listed}. "
        f"Show another with `yotposync customer show {ids[0]}`."
    ]
    for review in report.other_reviews:
        lines.append(
            f"  Open review #{review.id} of customer {review.customer_id} ({review.kind}): "
            f"{review.detail}"
        )
    return lines


def _ticket_detail(ticket: dict[str, Any]) -> str:
    """Return a ticket's decision reason, followed by any amount the reason does not name.

    The reason of a sale or a return already names its amount ("earns on 12.50").
    """
    reason = str(ticket["reason"])
    amounts = []
    if ticket["earn_cents"]:
        amounts.append(f"earns on {format_stored_cents(ticket['earn_cents'])}")
    if ticket["return_cents"]:
        amounts.append(f"takes back {format_stored_cents(ticket['return_cents'])}")
    missing = [amount for amount in amounts if amount not in reason]
    return "; ".join([reason, *missing])
