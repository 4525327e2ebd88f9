"""`yotposync demo`: the whole main job against the sandbox, in one command.

It starts both emulators on free loopback ports with a generated store, runs a catch-up into a
fresh ledger, prints what happened and checks every customer's Yotpo balance against the
store's own expected figures, then stops the emulators.
"""

from __future__ import annotations

import logging
import sys
import tempfile
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import click

from yotposync.app import run_catch_up, utc_now, yotpo_client
from yotposync.config import sandbox_settings
from yotposync.ledger import Ledger
from yotposync.logs import configure_logging
from yotposync.sandbox.generator import generate_store
from yotposync.sandbox.server import Sandbox

POINTS_PER_DOLLAR = Decimal(1)


def run_demo(*, tickets: int, seed: int, ledger_path: Path | None) -> int:
    """Run the demo and return the exit code: 0 when every balance matches."""
    configure_logging("warning", "auto", stream=sys.stderr)
    store = generate_store(seed=seed, tickets=tickets)
    with tempfile.TemporaryDirectory(prefix="yotposync-demo-") as workdir:
        path = ledger_path or Path(workdir) / "ledger.sqlite3"
        with Sandbox(store=store, points_per_dollar=POINTS_PER_DOLLAR) as sandbox:
            click.echo(f"Sandbox: Heartland {sandbox.heartland_url}, Yotpo {sandbox.yotpo_url}")
            click.echo(
                f"Generated store: seed {seed}, {len(store.customers)} customers, "
                f"{len(store.tickets)} tickets; go-live {store.go_live.date()}"
            )
            settings = sandbox_settings(
                sandbox.heartland_url,
                sandbox.yotpo_url,
                path,
                sync={"go_live": store.go_live.isoformat()},
                yotpo={"requests_per_second": 200},
                heartland={"requests_per_second": 200},
            )
            if ledger_path is None:
                _create_quietly(path)
            # Every generated ticket was updated within the year before the store's anchor.
            since = store.anchor - timedelta(days=366)
            result = run_catch_up(settings, since=since, until=None)
            t = result.transactions
            click.echo(
                f"\nCatch-up into {path}: {t.tickets} tickets read in {t.pages} pages, "
                f"{result.seconds:.1f}s"
            )
            click.echo("Decisions:")
            for kind, count in sorted(t.decisions.items(), key=lambda item: -item[1]):
                click.echo(f"  {kind:<18} {count}")
            kinds = t.planned.by_kind
            delivery = result.delivery
            click.echo(
                f"Pushes: {kinds['order']} orders and {kinds['refund']} refunds queued; "
                f"{delivery.confirmed if delivery else 0} confirmed by Yotpo"
            )

            expected = store.expected_balances(POINTS_PER_DOLLAR, store.go_live, False)
            yotpo = yotpo_client(settings)
            mismatches = []
            for email, points in sorted(expected.items()):
                found = yotpo.get_customer(email=email)
                balance = int(found["points_balance"]) if found else 0
                if balance != points:
                    mismatches.append((email, points, balance))
            top = sorted(expected.items(), key=lambda item: -item[1])[:5]
            click.echo("\nTop customers by points (expected from the generated store):")
            for email, points in top:
                click.echo(f"  {email:<40} {points:>6} points")
            click.echo(
                f"\nYotpo balances match the expected figures for "
                f"{len(expected) - len(mismatches)} of {len(expected)} customers."
            )
            for email, want, got in mismatches[:10]:
                click.echo(f"  MISMATCH {email}: expected {want}, Yotpo has {got}")
            click.echo(f"Finished at {utc_now().isoformat(timespec='seconds')}.")
    return 1 if mismatches else 0


def _create_quietly(path: Path) -> None:
    """Create the demo's scratch ledger without the warning that a new ledger gets.

    That warning is for a mistyped `ledger.path`; a scratch ledger is new by design.
    """
    ledger_log = logging.getLogger("yotposync.ledger")
    level = ledger_log.level
    ledger_log.setLevel(logging.ERROR)
    try:
        Ledger.open(path).close()
    finally:
        ledger_log.setLevel(level)
