"""The `yotposync offers` commands: run the offer jobs once, and list offers and problems."""

from __future__ import annotations

import json
from typing import Any

import click

from yotposync.app import heartland_client, utc_now, yotpo_client
from yotposync.clients.heartland_coupons import offer_text
from yotposync.config import Settings
from yotposync.errors import InvalidRecordError
from yotposync.ledger import Ledger, LedgerLock
from yotposync.ledger.offers import OfferLedger
from yotposync.ledger.store import no_ledger_text
from yotposync.money import to_cents, to_decimal
from yotposync.offers_runtime import offers_job, run_online_codes
from yotposync.sync.offers import is_online_code


def _settings(ctx: click.Context) -> Settings:
    """Load the settings, set up logging and register the secrets, as every command does."""
    # Imported here because cli.py imports this module to register the commands.
    from yotposync.cli import _settings as load_for_command

    return load_for_command(ctx)


@click.group("offers")
def offers_command() -> None:
    """Copy Yotpo offers into Heartland coupons and show what points were spent."""


@offers_command.command("sync")
@click.option(
    "--allow-empty",
    is_flag=True,
    help="Switch off every offer coupon when Yotpo lists no redemption options.",
)
@click.pass_context
def sync_offers(ctx: click.Context, allow_empty: bool) -> None:
    """Create, update and switch off Heartland coupons to match Yotpo's redemption options."""
    settings = _settings(ctx)
    with LedgerLock(settings.ledger.path):
        ledger = Ledger.open_for_writing(settings.ledger.path)
        heartland = heartland_client(settings)
        yotpo = yotpo_client(settings)
        try:
            summary = offers_job(settings, ledger, heartland, yotpo, utc_now).run(
                allow_empty=allow_empty
            )
        finally:
            ledger.close()
            heartland.close()
            yotpo.close()
    click.echo(
        f"Offers: {summary.options} options, {summary.created} coupons created, "
        f"{summary.updated} updated, {summary.deactivated} switched off, "
        f"{summary.unchanged} unchanged, {summary.skipped} skipped."
    )
    if summary.guarded:
        click.echo(
            "Yotpo listed no redemption options, so no coupon was switched off; "
            "run again with --allow-empty if every offer was removed."
        )
        # A script or timer must notice that the guard held the run back.
        ctx.exit(1)
    for problem in summary.failed:
        click.echo(f"Failed: {problem}")
    if summary.failed:
        # A coupon that Heartland rejected is missing at the register: a timer must notice.
        ctx.exit(1)


@offers_command.command("codes")
@click.pass_context
def sync_codes(ctx: click.Context) -> None:
    """Make single-use coupons for codes redeemed online and switch off used ones."""
    settings = _settings(ctx)
    with LedgerLock(settings.ledger.path):
        ledger = Ledger.open_for_writing(settings.ledger.path)
        try:
            summary = run_online_codes(settings, ledger, utc_now)
        finally:
            ledger.close()
    click.echo(
        f"Online codes: {summary['found']} found in customer history, "
        f"{summary['created']} coupons created, {summary['skipped']} skipped, "
        f"{summary['closed']} used codes switched off."
    )


@offers_command.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.pass_context
def list_offers(ctx: click.Context, as_json: bool) -> None:
    """List the offers in the ledger with their coupons, and the latest deduction problems."""
    # Imported here because cli.py imports this module to register the commands.
    from yotposync.cli import ledger_only_settings

    settings = ledger_only_settings(ctx)
    if not settings.ledger.path.exists():
        path = settings.ledger.path
        click.echo(f"error: {no_ledger_text(path, '`yotposync offers sync`')}", err=True)
        ctx.exit(1)
    ledger = Ledger.open_for_reading(settings.ledger.path)
    try:
        offers = OfferLedger(ledger)
        rows = offers.offer_rows()
        for row in rows:
            if row["state"] == "active":
                spec = offers.offer_spec(row["option_id"])
                row["reason"] = _active_offer_text(spec, row["points_cost"]) or row["reason"]
        report: dict[str, Any] = {"offers": rows, "status": offers.status(20)}
    finally:
        ledger.close()
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
        return
    for row in report["offers"]:
        coupon = f"coupon {row['coupon_id']} ({row['code']})" if row["coupon_id"] else "no coupon"
        click.echo(
            f"option {row['option_id']} {row['name']!r}: {row['state']}, {coupon}: {row['reason']}"
        )
    if not report["offers"]:
        click.echo("No offers yet: run `yotposync offers sync`.")
    click.echo("\n".join(format_offer_status(report["status"])))


def _active_offer_text(spec: dict[str, Any] | None, points_cost: object) -> str | None:
    """Describe an active offer from the coupon body stored for it, or return None if unreadable.

    The stored reason of an active offer is not shown, because the offers job rewrites it only
    when the coupon changes, so ledgers written by earlier versions keep `1E+2%` for 100%.
    """
    if spec is None or not isinstance(points_cost, int):
        return None
    record = f"coupon {spec.get('code')}"
    try:
        if spec.get("amount") is not None:
            cents = to_cents(spec["amount"], record=record, field="amount")
            return offer_text(cents, None, points_cost)
        if spec.get("percent") is not None:
            percent = to_decimal(spec["percent"], record=record, field="percent")
            return offer_text(None, percent, points_cost)
    except InvalidRecordError:
        return None
    return None


def format_offer_status(status: dict[str, Any]) -> list[str]:
    """Render the offer part of `yotposync status` as lines of text."""
    lines = []
    offers = ", ".join(f"{state} {n}" for state, n in sorted(status["offers"].items()))
    lines.append(f"Offers: {offers or 'none yet'}")
    deductions = ", ".join(f"{state} {n}" for state, n in sorted(status["deductions"].items()))
    lines.append(f"Register deductions: {deductions or 'none yet'}")
    codes = ", ".join(f"{state} {n}" for state, n in sorted(status["online_codes"].items()))
    lines.append(f"Online codes: {codes or 'none yet'}")
    if status["deduction_problems"]:
        lines.append("Deductions needing attention:")
        for problem in status["deduction_problems"]:
            lines.append(f"  ticket {problem['ticket_id']} {problem['state']}: {problem['reason']}")
    if status["skipped_offers"] or status["skipped_codes"]:
        lines.append("Offers and online codes without a coupon:")
    for option in status["skipped_offers"]:
        lines.append(
            f"  offer {option['option_id']} {option['name']!r} skipped: {option['reason']}"
        )
    for code in status["skipped_codes"]:
        # A code recorded before codes were checked may hold a line break.
        printed = code["code"] if is_online_code(code["code"]) else repr(code["code"])
        lines.append(f"  online code {printed} skipped: {code['reason']}")
    return lines
