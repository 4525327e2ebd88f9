"""The `yotposync` command line: parse options, call the library, print the outcome.

Known errors become one readable message and a non-zero exit code:
1 for a failed run (bad ledger, bad credentials, another daemon running), 2 for invalid
configuration or options, 3 when a catch-up finished but some pushes still wait for a retry,
4 when a catch-up finished but Yotpo rejected some pushes or they ran out of attempts.
"""

from __future__ import annotations

import importlib
import json
import re
import signal
import sqlite3
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import click
import structlog

from yotposync import __version__
from yotposync.app import CatchUpResult, run_catch_up, stop_signals, utc_now
from yotposync.config import Settings, load_settings
from yotposync.errors import ConfigError, YotposyncError
from yotposync.ledger import Ledger, LedgerLock
from yotposync.ledger.integrity import known_ledger_error
from yotposync.ledger.store import Push, no_ledger_text
from yotposync.logs import configure_logging, mask_email, register_secret
from yotposync.sync.plan import PlannedPush
from yotposync.sync.transactions import TransactionsSummary

EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_WAITING = 3
EXIT_UNDELIVERED = 4

F = TypeVar("F", bound=Callable[..., Any])

log = structlog.get_logger("yotposync.config")


def _settings(
    ctx: click.Context,
    log_stream: Any = None,
    *,
    require_secrets: bool = True,
    check_secrets: bool | frozenset[str] = True,
    log_warnings: bool = True,
    print_warnings: bool = False,
) -> Settings:
    """Load the settings once per command, set up logging and register the secrets.

    Logs go to stderr by default, so a command's own output on stdout stays clean. The
    daemon passes stdout, where the service manager collects them. Commands that read only
    the ledger pass `require_secrets=False`, and a secret that is not set or not usable, such
    as a webhook secret that is too short, is then skipped here and raises ConfigError only
    where a client or receiver needs it. Commands that never read a secret also pass
    `check_secrets=False`, so a secret given in a bad way is only a warning.
    Each of the settings' warnings, such as a secret written in the configuration file, is
    logged once here, unless the command reports them itself (`log_warnings=False`). One-shot
    commands for a person pass `print_warnings=True` and get `warning: ...` lines on stderr,
    as the ledger-only commands do.
    """
    obj: dict[str, Any] = ctx.ensure_object(dict)
    if "settings" not in obj:
        settings = load_settings(
            obj.get("config_path"), require_secrets=require_secrets, check_secrets=check_secrets
        )
        configure_logging(
            settings.logging.level, settings.logging.format, stream=log_stream or sys.stderr
        )
        for read_secret in (
            settings.heartland_token,
            settings.yotpo_guid,
            settings.yotpo_api_key,
            settings.webhook_secret,
            settings.offers_webhook_secret,
        ):
            try:
                register_secret(read_secret() or "")
            except ConfigError:
                if require_secrets:
                    raise
        if print_warnings:
            for warning in settings.warnings:
                click.echo(f"warning: {warning}", err=True)
        elif log_warnings:
            for warning in settings.warnings:
                log.warning("config_warning", detail=warning)
        obj["settings"] = settings
    settings_obj: Settings = obj["settings"]
    return settings_obj


def ledger_only_settings(ctx: click.Context) -> Settings:
    """Load the settings for a command that reads no secret, without setting up logging.

    A missing or malformed secret does not stop such a command. Each of the settings'
    warnings is printed to stderr instead, so that stdout holds only the command's output.
    """
    settings = load_settings(
        ctx.ensure_object(dict).get("config_path"), require_secrets=False, check_secrets=False
    )
    for warning in settings.warnings:
        click.echo(f"warning: {warning}", err=True)
    # Kept for the message about a damaged or full ledger, which names its path.
    ctx.ensure_object(dict)["ledger_path"] = settings.ledger.path
    return settings


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_when(value: str, option: str) -> datetime:
    """Parse a date (midnight UTC) or an ISO 8601 timestamp with an offset, returned in UTC."""
    return parse_timestamp(value, option).astimezone(UTC)


def parse_timestamp(value: str, option: str) -> datetime:
    """Parse a date (midnight UTC) or an ISO 8601 timestamp, keeping the offset it is given in.

    Raises click.BadParameter naming `option` when the value is not a date or a timestamp,
    or when a timestamp has no UTC offset.
    """
    text = value.strip()
    not_a_date = click.BadParameter(
        f"{value!r} is not a date: use YYYY-MM-DD or 2026-12-01T09:00:00-05:00",
        param_hint=option,
    )
    # A date alone is taken only in the one form the help shows: Python would also read
    # 20261201 or 2026-W49, which are easy to mistype and hard to check by eye.
    if ":" not in text and not _DATE.fullmatch(text):
        raise not_a_date
    try:
        if len(text) == 10:
            return datetime.fromisoformat(text).replace(tzinfo=UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise not_a_date from None
    if parsed.tzinfo is None:
        raise click.BadParameter(
            f"{value!r} has no UTC offset: add one, e.g. {text}-05:00 or {text}Z",
            param_hint=option,
        )
    return parsed


# Commands whose modules are imported only when the command runs or help lists them, so a
# catch-up or a daemon start does not import the sandbox, the offers and the operations
# tools: about 0.15 s of CPU on every start. Each value is "module:attribute".
LAZY_COMMANDS = {
    "check": "yotposync.ops.commands:check_command",
    "customer": "yotposync.customers_cli:customer_group",
    "customers": "yotposync.customers_cli:customers_group",
    "explain": "yotposync.ops.commands:explain_command",
    "offers": "yotposync.offers_cli:offers_command",
    "report": "yotposync.ops.commands:report_command",
    "sandbox": "yotposync.sandbox.command:sandbox_command",
    "webhooks": "yotposync.ops.commands:webhooks_group",
}


class YotposyncGroup(click.Group):
    """Turn the package's known errors into one message and an exit code.

    The commands named in LAZY_COMMANDS are loaded on first use.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in LAZY_COMMANDS:
            module_name, attribute = LAZY_COMMANDS[cmd_name].split(":")
            command: click.Command = getattr(importlib.import_module(module_name), attribute)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            # Ctrl-C outside a catch-up's own handling, such as while the settings load.
            click.echo("Stopped by SIGINT.", err=True)
            ctx.exit(128 + signal.SIGINT)
        except ConfigError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(EXIT_CONFIG)
        except YotposyncError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(EXIT_FAILED)
        except sqlite3.DatabaseError as exc:
            obj = ctx.obj or {}
            settings = obj.get("settings")
            path = settings.ledger.path if settings else obj.get("ledger_path")
            known = known_ledger_error(exc, path)
            if known is None:
                raise
            click.echo(f"error: {known}", err=True)
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


FORCE_HELP = (
    "Accept a window in which Heartland lists no ticket although the ledger saw some, "
    "instead of stopping."
)


@main.command()
@click.option("--force", is_flag=True, help=FORCE_HELP + " Applies until the daemon stops.")
@click.pass_context
def run(ctx: click.Context, force: bool) -> None:
    """Run the daemon: poll Heartland and deliver to Yotpo on the configured intervals."""
    from yotposync.scheduler import Daemon

    settings = _settings(ctx, log_stream=sys.stdout)
    ctx.exit(Daemon(settings, force=force).run())


@main.command("catch-up")
@click.option("--since", required=True, help="Start: YYYY-MM-DD (midnight UTC) or a timestamp.")
@click.option("--until", help="End (default: now): YYYY-MM-DD or a timestamp with offset.")
@click.option("--dry-run", is_flag=True, help="Show what would be sent; send and store nothing.")
@click.option("--force", is_flag=True, help=FORCE_HELP)
@click.pass_context
def catch_up(ctx: click.Context, since: str, until: str | None, dry_run: bool, force: bool) -> None:
    """Process every ticket updated in a date range once, then deliver what it queued."""
    start = parse_when(since, "--since")
    end = parse_when(until, "--until") if until else None
    if end is not None and end <= start:
        raise click.BadParameter("must be later than --since", param_hint="--until")
    if end is None and start >= utc_now():
        raise click.BadParameter(
            f"{since!r} is in the future: nothing has been updated since then", param_hint="--since"
        )
    settings = _settings(ctx)

    bar: Any = None

    def on_page(summary: Any, count: int) -> None:
        nonlocal bar
        if dry_run:
            # Printed page by page, so a dry run over a long range keeps no list of pushes.
            for push in summary.planned.page:
                click.echo(format_planned_push(push))
        if not sys.stderr.isatty():
            return
        if bar is None:
            bar = click.progressbar(
                length=summary.total or 0, label="Tickets", file=sys.stderr, show_pos=True
            )
            bar.__enter__()
        bar.update(count)

    def on_points_adjustments(pushes: list[Push]) -> None:
        for push in pushes:
            click.echo(format_points_adjustment(push))

    try:
        with StopOnSignal() as stop:
            result = run_catch_up(
                settings,
                since=start,
                until=end,
                dry_run=dry_run,
                on_page=on_page,
                force=force,
                should_stop=stop.requested,
                on_points_adjustments=on_points_adjustments,
            )
    except StoppedAtOnce as stopped:
        click.echo(
            f"Stopped at once by a second {signal.Signals(stopped.signum).name}. What was "
            "committed is kept in the ledger; run the same command again to finish.",
            err=True,
        )
        ctx.exit(128 + stopped.signum)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    click.echo(format_catch_up(result))
    if result.interrupted and stop.signum is not None:
        click.echo(
            f"Stopped by {signal.Signals(stop.signum).name} before the catch-up finished. What "
            "it read and sent is kept in the ledger; run the same command again to finish.",
            err=True,
        )
        ctx.exit(128 + stop.signum)
    if result.first_run and result.transactions.tickets == 0:
        click.echo(empty_first_catch_up_warning(result.transactions), err=True)
    elif result.transactions.short_by:
        click.echo(short_walk_warning(result.transactions), err=True)
    delivery = result.delivery
    if delivery is not None and (delivery.rejected or delivery.failed):
        ctx.exit(EXIT_UNDELIVERED)
    if delivery is not None and delivery.waiting:
        ctx.exit(EXIT_WAITING)


class StoppedAtOnce(BaseException):
    """A second stop signal during a catch-up: stop where it is."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"stopped at once by a second {signal.Signals(signum).name}")


class StopOnSignal:
    """Turn the first SIGINT, SIGTERM or SIGHUP into a stop request; a second stops at once.

    A catch-up then ends after the page or delivery batch under way, and records what it
    finished. Outside the main thread, where handlers cannot be set, signals keep their
    usual effect. A SIGHUP ignored when the process started, as under `nohup`, stays ignored.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def requested(self) -> bool:
        return self.signum is not None

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for signum in stop_signals():
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            raise StoppedAtOnce(signum)
        self.signum = signum
        click.echo(
            f"{signal.Signals(signum).name} received: stopping after the page or delivery "
            "batch under way. Send it again to stop at once.",
            err=True,
        )


def empty_first_catch_up_warning(transactions: TransactionsSummary) -> str:
    """Warn about a first catch-up that read nothing, which the empty-window guard cannot catch.

    The guard compares a window with the tickets the ledger saw, and a new ledger saw none.
    """
    window = f"{transactions.start.isoformat()} to {transactions.end.isoformat()}"
    return (
        f"warning: Heartland listed no tickets updated from {window}, and the ledger has no "
        "earlier run to compare with. Check that heartland.base_url and the API token reach "
        "the right account and every location, and that --since is early enough to cover the "
        "sales you expect."
    )


def short_walk_warning(transactions: TransactionsSummary) -> str:
    """Warn about a walk that read fewer tickets than its first page counted in the window."""
    return (
        f"warning: Heartland's first page counted {transactions.total} tickets in the window, "
        f"but the walk read {transactions.tickets} before a page came back empty. Tickets "
        "edited during the walk are read by the next run; if many are missing, run the same "
        "catch-up again."
    )


def format_planned_push(push: PlannedPush) -> str:
    """Format one push a dry run would send, as one indented line."""
    target = f" against {push.target_order_id}" if push.target_order_id else ""
    return (
        f"  {push.kind} {push.push_id}{target}: {push.amount_cents / 100:.2f} "
        f"(ticket {push.ticket_id})"
    )


def format_points_adjustment(push: Push) -> str:
    """Format one points adjustment a dry run would send, as one indented line."""
    customer = mask_email(push.email) if push.email else "no customer"
    points = push.payload.get("point_adjustment_amount")
    moved = f"{points:+d}" if isinstance(points, int) else repr(points)
    return (
        f"  {push.kind} {push.push_id} ({push.role}) to {customer}: {moved} points "
        f"(ticket {push.ticket_id})"
    )


def _count(n: int, singular: str, plural: str | None = None) -> str:
    return f"{n} {singular if n == 1 else (plural or singular + 's')}"


# How many unreadable tickets the catch-up summary names one by one.
SKIPPED_SHOWN = 10


def format_catch_up(result: CatchUpResult) -> str:
    t = result.transactions
    lines = [
        f"Catch-up {'(dry run) ' if result.dry_run else ''}"
        f"{t.start.isoformat()} to {t.end.isoformat()}: "
        f"{_count(t.tickets, 'ticket version')} in {_count(t.pages, 'page')}, "
        f"{result.seconds:.1f}s",
        "Decisions: " + (", ".join(f"{k} {v}" for k, v in sorted(t.decisions.items())) or "none"),
    ]
    planned = _count(len(t.planned), "order or refund", "orders and refunds")
    adjustments = ""
    if result.points_adjustments:
        adjustments = f" and {_count(result.points_adjustments, 'points adjustment')}"
    if result.dry_run:
        listed = " They are listed above." if t.planned or result.points_adjustments else ""
        lines.append(f"Would send {planned}{adjustments}.{listed}")
    else:
        d = result.delivery
        lines.append(f"Queued {planned}{adjustments}.")
        if d is not None:
            lines.append(
                f"Delivered: {d.confirmed} confirmed, {d.rejected} rejected, "
                f"{d.failed} failed, {d.waiting} still queued"
            )
    if t.settings_changed:
        lines.append(
            f"Changed since the last run: {', '.join(t.settings_changed)}. Tickets read again "
            "are decided under the new settings, and each one's difference from what it earned "
            "before is sent as an order or refund. Tickets outside the window keep their "
            "decisions."
        )
    for problem in t.invalid[:SKIPPED_SHOWN]:
        lines.append(f"Skipped: {problem}")
    if len(t.invalid) > SKIPPED_SHOWN:
        lines.append(
            f"Skipped: {len(t.invalid) - SKIPPED_SHOWN} more, each in the log as ticket_invalid; "
            "`yotposync status` lists the latest ones with a ticket id."
        )
    return "\n".join(lines)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Show the cursor, lag, outbox counts and recent problems (never secrets)."""
    # status reads only the ledger, so it works from a shell without the API credentials,
    # and a secret given in a bad way is only a warning.
    settings = ledger_only_settings(ctx)
    path = settings.ledger.path
    if not path.exists():
        click.echo(
            f"error: {no_ledger_text(path, '`yotposync catch-up` or `yotposync run`')}",
            err=True,
        )
        ctx.exit(EXIT_FAILED)
    from yotposync.status import collect_status, format_status

    try:
        in_use = LedgerLock(path).is_held()
    except OSError as exc:
        in_use = True  # unknown: runs marked running are shown as they are
        click.echo(f"warning: {exc}; until then `run` and `catch-up` refuse to start", err=True)
    ledger = Ledger.open_for_reading(path)
    try:
        report = collect_status(ledger, utc_now(), ledger_in_use=in_use)
    finally:
        ledger.close()
    click.echo(json.dumps(report, indent=2, default=str) if as_json else format_status(report))


@main.command("retry-failed")
@click.pass_context
def retry_failed(ctx: click.Context) -> None:
    """Queue every push that ran out of attempts again, due now."""
    # Only the ledger changes, so it works from a shell without the API credentials.
    settings = _settings(ctx, require_secrets=False, check_secrets=False, print_warnings=True)
    path = settings.ledger.path
    if not path.exists():
        # Opening the ledger would create an empty one. A missing ledger is an error, as in
        # `status`: a mistyped ledger.path must not look like a ledger without failed pushes.
        click.echo(
            f"error: {no_ledger_text(path, '`yotposync catch-up` or `yotposync run`')}",
            err=True,
        )
        ctx.exit(EXIT_FAILED)
    with LedgerLock(path):
        ledger = Ledger.open_for_writing(path)
        try:
            with ledger.transaction():
                moved = ledger.retry_failed(utc_now())
        finally:
            ledger.close()
    if moved == 0:
        click.echo("No failed pushes to queue again.")
        return
    click.echo(
        f"{_count(moved, 'failed push', 'failed pushes')} queued again; "
        f"the next delivery run sends {'it' if moved == 1 else 'them'}."
    )


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
