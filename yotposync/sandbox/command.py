"""The `yotposync sandbox` command: serve both emulators with a generated store until stopped."""

from __future__ import annotations

import errno
import gc
import signal
import socket
import sys
import threading
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import FrameType
from typing import Any

import click

from yotposync.sandbox.faults import FaultPlan, load_fault_plan
from yotposync.sandbox.generator import generate_store
from yotposync.sandbox.policies import format_utc
from yotposync.sandbox.server import Sandbox, is_loopback
from yotposync.sandbox.store import Store
from yotposync.sandbox.vip_tiers import STANDARD_REDEMPTION_OPTIONS, STANDARD_VIP_TIERS


class _DecimalType(click.ParamType[Decimal, Any]):
    name = "decimal"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> Decimal:
        if isinstance(value, Decimal):
            return value
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            self.fail(f"{value!r} is not a decimal number", param, ctx)
        if not number.is_finite() or number < 0:
            self.fail(f"{value!r} must be a number of 0 or more", param, ctx)
        return number


@click.command("sandbox")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the generated store.")
@click.option(
    "--tickets",
    type=click.IntRange(min=0),
    default=300,
    show_default=True,
    help="Number of tickets to generate, late ones included.",
)
@click.option(
    "--customers",
    type=click.IntRange(min=1),
    default=None,
    help="Number of customers, walk-in included. Default: a quarter of the tickets, at least 12.",
)
@click.option(
    "--days",
    type=click.IntRange(min=1),
    default=30,
    show_default=True,
    help="Days of history before now that the tickets spread over.",
)
@click.option(
    "--go-live-days",
    type=click.IntRange(min=0),
    default=25,
    show_default=True,
    help="Days before now of the go-live date printed for the daemon's configuration; "
    "a few tickets are generated before it.",
)
@click.option(
    "--heartland-port",
    type=click.IntRange(0, 65535),
    default=8701,
    show_default=True,
    help="Port of the Heartland Retail emulator; 0 picks a free port.",
)
@click.option(
    "--yotpo-port",
    type=click.IntRange(0, 65535),
    default=8702,
    show_default=True,
    help="Port of the Yotpo Loyalty emulator; 0 picks a free port.",
)
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address both emulators bind to."
)
@click.option(
    "--allow-non-loopback",
    is_flag=True,
    help="Allow a --host that other machines can reach.",
)
@click.option(
    "--points-per-dollar",
    type=_DecimalType(),
    default="1",
    show_default=True,
    help="Points a Yotpo order awards per dollar, rounded down per order.",
)
@click.option(
    "--yotpo-rate-limit",
    type=click.FloatRange(min=0),
    default=0,
    show_default=True,
    help="Yotpo requests allowed per second before 429; 0 turns the limit off.",
)
@click.option(
    "--late-after",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SECONDS",
    help="Release the held-back late tickets after this many seconds. "
    "Default: only on POST /_sandbox/release-late.",
)
@click.option("--empty", is_flag=True, help="Start with no customers and no tickets.")
@click.option(
    "--faults",
    "faults_path",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="Fault plan to inject, a .json or .toml file (see docs/reliability.md). "
    "Rules can be switched at run time through /_sandbox/faults.",
)
def sandbox_command(
    seed: int,
    tickets: int,
    customers: int | None,
    days: int,
    go_live_days: int,
    heartland_port: int,
    yotpo_port: int,
    host: str,
    allow_non_loopback: bool,
    points_per_dollar: Decimal,
    yotpo_rate_limit: float,
    late_after: float | None,
    empty: bool,
    faults_path: Path | None,
) -> None:
    """Serve local emulators of Heartland Retail and Yotpo Loyalty with a generated store.

    Runs until SIGTERM or SIGINT (Ctrl-C). The printed credentials are sandbox values,
    not secrets.
    """
    if not allow_non_loopback and not is_loopback(host):
        raise click.BadParameter(
            f"refusing to bind the sandbox to {host!r}, which other machines can reach: use "
            "127.0.0.1, or add --allow-non-loopback to serve on it anyway",
            param_hint="--host",
        )
    if heartland_port == yotpo_port and yotpo_port != 0:
        raise click.BadParameter(
            f"{yotpo_port} is also the --heartland-port: give each emulator its own port, "
            "or 0 for any free port",
            param_hint="--yotpo-port",
        )
    faults = None
    if faults_path is not None:
        try:
            faults = load_fault_plan(faults_path)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--faults") from exc
    store = None
    if not empty:
        store = generate_store(
            seed, tickets, customers=customers, days=days, go_live_days=go_live_days
        )
    try:
        sandbox = Sandbox(
            store=store,
            heartland_port=heartland_port,
            yotpo_port=yotpo_port,
            host=host,
            points_per_dollar=points_per_dollar,
            vip_tiers=STANDARD_VIP_TIERS,
            redemption_options=STANDARD_REDEMPTION_OPTIONS,
            yotpo_rate_limit=yotpo_rate_limit,
            allow_non_loopback=allow_non_loopback,
            faults=faults,
        )
        sandbox.start()
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise click.ClickException(f"cannot start the sandbox: {exc}") from exc
        ports = {"--heartland-port": heartland_port, "--yotpo-port": yotpo_port}
        raise click.ClickException(_port_in_use_message(host, ports)) from exc
    except ValueError as exc:
        raise click.ClickException(f"cannot start the sandbox: {exc}") from exc

    # The generated store is millions of objects that live as long as the process. Freezing
    # them keeps the garbage collector's full passes from walking them again and again: a
    # 100,000-ticket store otherwise made every request slower as the run went on.
    gc.freeze()

    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    timer = None
    if late_after is not None and store is not None:
        timer = threading.Timer(late_after, sandbox.heartland.release_late)
        timer.daemon = True
        timer.start()
    try:
        if faults is not None:
            _print_faults(faults, faults_path)
        _print_banner(sandbox, store, seed, late_after)
        while not stop.wait(0.5):
            pass
    finally:
        if timer is not None:
            timer.cancel()
        sandbox.stop()
    click.echo("sandbox stopped")


def _port_in_use_message(host: str, ports: dict[str, int]) -> str:
    """Name the ports, with their options, that another program holds on `host`."""
    busy = {option: port for option, port in ports.items() if port and _is_taken(host, port)}
    if not busy:
        # The port was freed since the sandbox failed, so either option may have been it.
        busy = {option: port for option, port in ports.items() if port}
    in_use = " and ".join(f"{port} ({option})" for option, port in busy.items())
    subject = f"port {in_use} on {host} is" if len(busy) == 1 else f"ports {in_use} on {host} are"
    options = " or ".join(busy)
    return (
        f"cannot start the sandbox: {subject} already in use. Stop the program that uses it, "
        f"or choose another port with {options}, or 0 for any free port"
    )


def _is_taken(host: str, port: int) -> bool:
    """Tell whether binding `port` on `host` fails because it is in use, as the sandbox binds."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def _print_banner(
    sandbox: Sandbox, store: Store | None, seed: int, late_after: float | None
) -> None:
    click.echo(f"Heartland Retail API: {sandbox.heartland_url}")
    click.echo(f"  Authorization: Bearer {sandbox.heartland_token}")
    click.echo(f"Yotpo Loyalty API:    {sandbox.yotpo_url}")
    click.echo(f"  x-guid: {sandbox.yotpo_guid}")
    click.echo(f"  x-api-key: {sandbox.yotpo_api_key}")
    click.echo("These credentials are sandbox values, not secrets.")
    if store is None:
        click.echo("Store: empty (locations, stations and custom fields only)")
    else:
        late = len(store.late_tickets)
        click.echo(
            f"Store: seed {seed}, {len(store.tickets) + late} tickets, "
            f"{len(store.customers)} customers, go-live {format_utc(store.go_live)}"
        )
        if late_after is None:
            click.echo(f"  {late} late tickets held back until POST /_sandbox/release-late")
        else:
            click.echo(f"  {late} late tickets held back for {late_after:g} seconds")
    click.echo(f"SANDBOX READY heartland={sandbox.heartland_url} yotpo={sandbox.yotpo_url}")
    # Flush explicitly: a test or script reading this pipe waits for the READY line.
    sys.stdout.flush()


def _print_faults(faults: FaultPlan, path: Path | None) -> None:
    click.echo(f"Faults from {path} (seed {faults.seed}):")
    for rule in faults.rules:
        state = "on" if rule.enabled else "off"
        target = f"{rule.service} {rule.method} {rule.path}"
        click.echo(f"  {rule.name}: {rule.kind.value} on {target} ({state})")
    if faults.heartland_clock_skew_seconds:
        click.echo(
            f"  Heartland writes lag the clock by up to {faults.heartland_clock_skew_seconds} s"
        )
    click.echo("  Switch rules with POST /_sandbox/faults/enable or /disable on either port.")
