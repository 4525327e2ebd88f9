"""The operations commands: `check`, `explain`, `report` and `webhooks`.

They parse options, call the ops modules and print the outcome. Known errors reach the main
group, which prints one message and exits non-zero.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime

import click

from yotposync.config import YOTPO_SECRETS, Settings
from yotposync.errors import ConfigError, NotFoundError
from yotposync.ledger import Ledger
from yotposync.ops.check import (
    PROBLEM,
    check_installation,
    configuration_problems,
    findings_as_json,
    format_findings,
)
from yotposync.ops.command_clients import command_heartland, command_yotpo
from yotposync.ops.explain import add_balance, explain_ticket, find_ticket, format_explanation
from yotposync.ops.heartland_webhooks import (
    delete_webhook,
    hide_secret,
    list_webhooks,
    receiver_url,
    register_webhook,
    same_url,
)
from yotposync.ops.report import build_report, format_csv, format_table
from yotposync.ops.webhook import EVENT

EXIT_PROBLEMS = 1
EXIT_CONFIG = 2


def _configured(
    ctx: click.Context,
    *,
    require_secrets: bool = True,
    check_secrets: bool | frozenset[str] = True,
    log_warnings: bool = True,
    print_warnings: bool = False,
) -> Settings:
    """Load the settings and set up logging the way every other command does.

    Commands that read only the ledger pass `require_secrets=False`, so they run from a
    shell without the API secrets, and `check_secrets=False` when they read no secret at
    all, so a secret given in a bad way is only a warning.
    """
    # Imported here because cli.py imports this module to register the commands.
    from yotposync.cli import _settings

    return _settings(
        ctx,
        require_secrets=require_secrets,
        check_secrets=check_secrets,
        log_warnings=log_warnings,
        print_warnings=print_warnings,
    )


def _parse_day(value: str, option: str) -> date:
    """Parse a business day: a date, or the date of a timestamp in the offset it is written in.

    Business days are the store's local dates, so 2026-03-01T21:00:00-05:00 is 2026-03-01
    although it is 2026-03-02 in UTC.
    """
    # Imported here because cli.py imports this module to register the commands.
    from yotposync.cli import parse_timestamp

    return parse_timestamp(value, option).date()


@click.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.pass_context
def check_command(ctx: click.Context, as_json: bool) -> None:
    """Check the configuration, both APIs, the ledger path and the webhook set-up.

    Every finding is printed with how to fix it. Reads only: nothing is written to Heartland,
    Yotpo or the ledger, and no secret is printed. Exits 0 when ready to run, 1 when
    something is wrong, 2 when the configuration is invalid.
    """
    try:
        # The settings' warnings become findings of their own below.
        settings = _configured(ctx, log_warnings=False)
    except ConfigError as exc:
        findings = configuration_problems(exc)
        click.echo(findings_as_json(findings) if as_json else format_findings(findings))
        ctx.exit(EXIT_CONFIG)
    findings = check_installation(
        settings,
        heartland=lambda: command_heartland(settings),
        yotpo=lambda: command_yotpo(settings),
    )
    click.echo(findings_as_json(findings) if as_json else format_findings(findings))
    if any(finding.status == PROBLEM for finding in findings):
        ctx.exit(EXIT_PROBLEMS)


@click.command("explain")
@click.argument("ticket")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.option(
    "--no-balance", is_flag=True, help="Do not ask Yotpo for the customer's points balance."
)
@click.pass_context
def explain_command(ctx: click.Context, ticket: str, as_json: bool, no_balance: bool) -> None:
    """Show what happened to one ticket, by Heartland id or public id.

    Every version seen, its decision and rule, the eligible amounts, the pushes with their
    ids, states, attempts and last errors, refunds from later returns, and the customer's
    points balance after each push, read from Yotpo. Everything else comes from the ledger,
    so with --no-balance no API secret is needed.
    """
    # The Yotpo secrets are read only when the balance is requested, by command_yotpo below.
    settings = _configured(
        ctx,
        require_secrets=False,
        check_secrets=False if no_balance else YOTPO_SECRETS,
        print_warnings=True,
    )
    ledger = Ledger.open_read_only(settings.ledger.path)
    try:
        ticket_id, note = find_ticket(ledger, ticket)
        explanation = explain_ticket(ledger, ticket_id)
    finally:
        ledger.close()
    explanation.note = note
    if not no_balance:
        yotpo = command_yotpo(settings)
        try:
            add_balance(explanation, yotpo)
        finally:
            yotpo.close()
    if as_json:
        click.echo(json.dumps(explanation.as_dict(), indent=2, default=str))
    else:
        click.echo(format_explanation(explanation))


@click.command("report")
@click.option(
    "--since",
    required=True,
    help="First business day, included: YYYY-MM-DD, or an ISO 8601 timestamp with offset, "
    "which counts as its date in that offset.",
)
@click.option(
    "--until",
    help="Last business day, included (default: no end): YYYY-MM-DD or a timestamp with offset.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "csv"]),
    default="table",
    show_default=True,
    help="Aligned tables for reading, or CSV with amounts in cents for a spreadsheet.",
)
@click.pass_context
def report_command(ctx: click.Context, since: str, until: str | None, output_format: str) -> None:
    """Report points-eligible amounts per business day and location, from the ledger.

    Columns: tickets seen, amounts earned and taken back (confirmed by Yotpo), pushes still
    waiting, and the tickets that earned nothing by reason (no customer, no e-mail, excluded
    by a rule, rejected by Yotpo). Points spent are the points Yotpo took for loyalty coupons
    used at the register, less what moving a sale gave back. Points restored are those given
    back on returns.

    Business days are the store's local dates, so a timestamp such as
    2026-03-01T21:00:00-05:00 selects 2026-03-01, its date in the offset it is written in.
    """
    first = _parse_day(since, "--since")
    last = _parse_day(until, "--until") if until else None
    if last is not None and last < first:
        raise click.BadParameter("must not be before --since", param_hint="--until")
    if first > datetime.now(UTC).date():
        raise click.BadParameter(
            f"{since!r} is in the future: nothing has been sold on it yet", param_hint="--since"
        )
    settings = _configured(ctx, require_secrets=False, check_secrets=False, print_warnings=True)
    ledger = Ledger.open_read_only(settings.ledger.path)
    try:
        report = build_report(ledger, first, last)
    finally:
        ledger.close()
    click.echo(format_csv(report) if output_format == "csv" else format_table(report), nl=False)
    if output_format != "csv":
        click.echo()


@click.group("webhooks")
def webhooks_group() -> None:
    """Manage the Heartland webhook that starts a poll as soon as a ticket is completed."""


def _webhook_secret(settings: Settings) -> str:
    secret = settings.webhook_secret()
    if secret is None:
        raise ConfigError(
            [
                "ops.webhook_secret is not set: set YOTPOSYNC_OPS__WEBHOOK_SECRET or "
                "ops.webhook_secret_file, and ops.webhook_listen for the receiver"
            ]
        )
    return secret


@webhooks_group.command("register")
@click.option(
    "--url",
    required=True,
    help="Public address at which Heartland reaches ops.webhook_listen, e.g. "
    "https://sync.example.com; /heartland/<secret> is added.",
)
@click.pass_context
def register_command(ctx: click.Context, url: str) -> None:
    """Register the receiver with Heartland for completed transactions (once is enough)."""
    settings = _configured(ctx)
    secret = _webhook_secret(settings)
    try:
        target = receiver_url(url, secret)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--url") from None
    heartland = command_heartland(settings)
    try:
        hooks = list_webhooks(heartland.http)
        existing = [hook for hook in hooks if same_url(hook.url, target)]
        if any(EVENT in hook.events for hook in existing):
            click.echo(
                f"Already registered: webhook {existing[0].id} posts {EVENT} to "
                f"{hide_secret(target, secret)}"
            )
            return
        created = register_webhook(heartland.http, target)
    finally:
        heartland.close()
    click.echo(
        f"Registered webhook {created.id}: Heartland posts {EVENT} to {hide_secret(target, secret)}"
    )


@webhooks_group.command("list")
@click.pass_context
def list_command(ctx: click.Context) -> None:
    """List the webhooks registered in Heartland; the secret in a URL is shown as ***."""
    settings = _configured(ctx)
    secret = settings.webhook_secret()
    heartland = command_heartland(settings)
    try:
        hooks = list_webhooks(heartland.http)
    finally:
        heartland.close()
    if not hooks:
        click.echo("No webhooks registered.")
    for hook in hooks:
        events = ", ".join(hook.events) or "no events"
        click.echo(f"{hook.id}: {hide_secret(hook.url, secret)} ({events})")


_WEBHOOK_ID = re.compile(r"[0-9]+")


def _parse_webhook_id(value: str) -> int:
    """Parse a Heartland webhook id, a whole number from 1 up.

    Raises click.BadParameter naming the value, so that nothing is sent for a typo.
    """
    text = value.strip()
    if _WEBHOOK_ID.fullmatch(text) is None or int(text) == 0:
        raise click.BadParameter(
            f"{value!r} is not a webhook id. Give the whole number from 1 up, such as 12, "
            "that `yotposync webhooks list` shows before the colon.",
            param_hint="WEBHOOK_ID",
        )
    return int(text)


@webhooks_group.command("delete")
@click.argument("webhook_id")
@click.pass_context
def delete_command(ctx: click.Context, webhook_id: str) -> None:
    """Remove one webhook registration from Heartland, by the id `webhooks list` shows."""
    hook_id = _parse_webhook_id(webhook_id)
    settings = _configured(ctx)
    heartland = command_heartland(settings)
    try:
        delete_webhook(heartland.http, hook_id)
    except NotFoundError:
        click.echo(
            f"error: Heartland has no webhook {hook_id}: run `yotposync webhooks list` to see "
            "the registered ids",
            err=True,
        )
        ctx.exit(1)
    finally:
        heartland.close()
    click.echo(f"Deleted webhook {hook_id}.")
