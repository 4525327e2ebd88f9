"""The `yotposync` command line: parse options, call the library, print the outcome.

Known errors become one readable message and a non-zero exit code:
1 for a failed run (bad ledger, bad credentials, another daemon running), 2 for invalid
configuration or options, 3 when a catch-up finished but some pushes still wait for a retry.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from yotposync import __version__
from yotposync.app import CatchUpResult, run_catch_up, utc_now
from yotposync.config import Settings, load_settings
from yotposync.errors import ConfigError, YotposyncError
from yotposync.ledger import Ledger
from yotposync.logs import configure_logging, register_secret
from yotposync.sandbox.command import sandbox_command
from yotposync.status import collect_status, format_status

EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_WAITING = 3

F = TypeVar("F", bound=Callable[..., Any])


def _settings(ctx: click.Context, log_stream: Any = None) -> Settings:
    """Load the settings once per command, set up logging and register the secrets.

    Logs go to stderr by default so that a command's own output on stdout stays clean; the
    daemon passes stdout, where the service manager collects them.
    """
    obj: dict[str, Any] = ctx.ensure_object(dict)
    if "settings" not in obj:
        settings = load_settings(obj.get("config_path"))
        configure_logging(
            settings.logging.level, settings.logging.format, stream=log_stream or sys.stderr
        )
        for secret in (
            settings.heartland_token(),
            settings.yotpo_guid(),
            settings.yotpo_api_key(),
        ):
            register_secret(secret)
        obj["settings"] = settings
    settings_obj: Settings = obj["settings"]
    return settings_obj


def parse_when(value: str, option: str) -> datetime:
    """Parse a date (midnight UTC) or an ISO 8601 timestamp with an offset."""
    text = value.strip()
    try:
        if len(text) == 10:
            return datetime.fromisoformat(text).replace(tzinfo=UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a date: use YYYY-MM-DD or 2026-12-01T09:00:00-05:00",
            param_hint=option,
        ) from None
    if parsed.tzinfo is None:
        raise click.BadParameter(
            f"{value!r} has no UTC offset: add one, e.g. {text}-05:00 or {text}Z",
            param_hint=option,
        )
    return parsed.astimezone(UTC)


class YotposyncGroup(click.Group):
    """Turn the package's known errors into one message and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(EXIT_CONFIG)
        except YotposyncError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(EXIT_FAILED)


@click.group(cls=YotposyncGroup)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="YOTPOSYNC_CONFIG",
    help="TOML configuration file (default: $YOTPOSYNC_CONFIG).",
)
@click.version_option(__version__, prog_name="yotposync")
@click.pass_context
def main(ctx: click.Context, config_path: Path | None) -> None:
    """Sync Heartland Retail sales and returns with Yotpo Loyalty points."""
    ctx.ensure_object(dict)["config_path"] = config_path


@main.command()
@click.pass_context
def run(ctx: click.Context) -> None:
    """Run the daemon: poll Heartland and deliver to Yotpo on the configured intervals."""
    from yotposync.scheduler import Daemon

    settings = _settings(ctx, log_stream=sys.stdout)
    ctx.exit(Daemon(settings).run())


@main.command("catch-up")
@click.option("--since", required=True, help="Start: YYYY-MM-DD (midnight UTC) or a timestamp.")
@click.option("--until", help="End (default: now): YYYY-MM-DD or a timestamp with offset.")
@click.option("--dry-run", is_flag=True, help="Show what would be sent; send and store nothing.")
@click.pass_context
def catch_up(ctx: click.Context, since: str, until: str | None, dry_run: bool) -> None:
    """Process every ticket updated in a date range once, then deliver what it queued."""
    start = parse_when(since, "--since")
    end = parse_when(until, "--until") if until else None
    if end is not None and end <= start:
        raise click.BadParameter("must be later than --since", param_hint="--until")
    settings = _settings(ctx)

    bar: Any = None

    def on_page(summary: Any, count: int) -> None:
        nonlocal bar
        if not sys.stderr.isatty():
            return
        if bar is None:
            bar = click.progressbar(
                length=summary.total or 0, label="Tickets", file=sys.stderr, show_pos=True
            )
            bar.__enter__()
        bar.update(count)

    try:
        result = run_catch_up(settings, since=start, until=end, dry_run=dry_run, on_page=on_page)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    click.echo(format_catch_up(result))
    if result.delivery is not None and result.delivery.waiting:
        ctx.exit(EXIT_WAITING)


def format_catch_up(result: CatchUpResult) -> str:
    t = result.transactions
    lines = [
        f"Catch-up {'(dry run) ' if result.dry_run else ''}"
        f"{t.start.isoformat()} to {t.end.isoformat()}: "
        f"{t.tickets} ticket versions in {t.pages} pages, {result.seconds:.1f}s",
        "Decisions: " + (", ".join(f"{k} {v}" for k, v in sorted(t.decisions.items())) or "none"),
    ]
    if result.dry_run:
        lines.append(f"Would send {len(t.planned)} pushes:")
        for push in t.planned:
            target = f" against {push.target_order_id}" if push.target_order_id else ""
            lines.append(
                f"  {push.kind} {push.push_id}{target}: {push.amount_cents / 100:.2f} "
                f"(ticket {push.ticket_id})"
            )
    else:
        d = result.delivery
        lines.append(f"Queued {len(t.planned)} pushes.")
        if d is not None:
            lines.append(
                f"Delivered: {d.confirmed} confirmed, {d.rejected} rejected, "
                f"{d.failed} failed, {d.waiting} waiting for a retry"
            )
    for problem in t.invalid[:10]:
        lines.append(f"Skipped: {problem}")
    return "\n".join(lines)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Show the cursor, lag, outbox counts and recent problems (never secrets)."""
    obj = ctx.ensure_object(dict)
    settings = load_settings(obj.get("config_path"))
    path = settings.ledger.path
    if not path.exists():
        click.echo(f"No ledger at {path} yet: run `yotposync catch-up` or `yotposync run`.")
        ctx.exit(EXIT_FAILED)
    ledger = Ledger.open(path)
    try:
        report = collect_status(ledger, utc_now())
    finally:
        ledger.close()
    click.echo(json.dumps(report, indent=2, default=str) if as_json else format_status(report))


@main.command("retry-failed")
@click.pass_context
def retry_failed(ctx: click.Context) -> None:
    """Queue every push that ran out of attempts again, due now."""
    settings = _settings(ctx)
    ledger = Ledger.open(settings.ledger.path)
    try:
        with ledger.transaction():
            moved = ledger.retry_failed(utc_now())
    finally:
        ledger.close()
    click.echo(f"{moved} failed pushes queued again; the next delivery run sends them.")


@main.command()
@click.option("--tickets", default=300, show_default=True, help="Tickets in the generated store.")
@click.option("--seed", default=7, show_default=True, help="Seed of the generated store.")
@click.option(
    "--ledger",
    "ledger_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Ledger file (default: a new file in a temporary folder).",
)
def demo(tickets: int, seed: int, ledger_path: Path | None) -> None:
    """Start the sandbox, catch up a generated store into a fresh ledger, print a summary."""
    from yotposync.demo import run_demo

    sys.exit(run_demo(tickets=tickets, seed=seed, ledger_path=ledger_path))


main.add_command(sandbox_command, "sandbox")
