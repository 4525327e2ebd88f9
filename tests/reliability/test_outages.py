"""Outages: Yotpo down for a while then back, and Heartland down.

While Yotpo is down the outbox queues and the daemon keeps polling Heartland; once Yotpo is
back every push arrives once, in order per customer. While Heartland is down the cursor
stays where it was and nothing is lost.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.reliability.support import (
    TOKEN,
    Harness,
    Waits,
    assert_settled,
    harness,
    ledger_sequence,
    wait_until,
    yotpo_sequence,
)
from yotposync.errors import RetriableError
from yotposync.ops.ledger_facts import read_ledger_facts
from yotposync.sandbox import Store, generate_store
from yotposync.sandbox.faults import FaultPlan, FaultRule

ANCHOR = datetime(2026, 5, 10, 17, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def store() -> Store:
    return generate_store(seed=41, tickets=70, anchor=ANCHOR)


def down(service: str, path: str, kind: str = "server_error", **options: Any) -> FaultRule:
    return FaultRule(name=f"{service}-down", service=service, kind=kind, path=path, **options)  # type: ignore[arg-type]


def pushes_in(h: Harness, state: str) -> int:
    return int(h.ledger_rows("SELECT count(*) FROM pushes WHERE state = ?", state)[0][0])


def transactions_runs(h: Harness) -> int:
    """Count the transactions runs that finished well; 0 while the daemon creates the ledger."""
    try:
        rows = h.ledger_rows(
            "SELECT count(*) FROM runs WHERE job = 'transactions' AND outcome = 'ok'"
        )
    except sqlite3.OperationalError:
        return 0
    return int(rows[0][0])


def release_late(h: Harness) -> None:
    response = requests.post(
        f"{h.sandbox.heartland_admin_url}/release-late",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    response.raise_for_status()


def test_yotpo_down_then_back(tmp_path: Path, store: Store) -> None:
    plan = FaultPlan(rules=(down("yotpo", "/api/v2/*"),))
    expected = len(store.expected_effects(store.go_live, include_late=True))
    with harness(
        tmp_path,
        store,
        faults=plan,
        delivery={"max_attempts": 1000, "max_tries_per_call": 1},
    ) as h:
        daemon = h.popen("run")
        try:
            wait_until(lambda: h.ledger.exists() and transactions_runs(h) >= 1, 60, "a first poll")
            release_late(h)
            polls_before = transactions_runs(h)
            wait_until(
                lambda: pushes_in(h, "pending") + pushes_in(h, "sent") == expected,
                60,
                "every push, late tickets included, to queue while Yotpo is down",
            )
            wait_until(lambda: transactions_runs(h) >= polls_before + 2, 60, "more polls")
            confirmed_while_down = pushes_in(h, "confirmed")

            h.admin("yotpo", "POST", "disable", {"rules": ["yotpo-down"]})
            wait_until(lambda: pushes_in(h, "confirmed") == expected, 60, "every push confirmed")
        finally:
            _, err = daemon.stop()

        sequence = ledger_sequence(h)
        assert daemon.returncode == 0, err
        assert confirmed_while_down == 0
        assert_settled(h, include_late=True)
        for email, pushes in sequence.items():
            assert yotpo_sequence(h, email) == pushes, email


def test_yotpo_resets_then_back(tmp_path: Path, store: Store) -> None:
    plan = FaultPlan(rules=(down("yotpo", "/api/v2/*", kind="reset"),))
    later = datetime.now(UTC) + timedelta(hours=1)
    with harness(tmp_path, store, faults=plan) as h:
        h.transactions(since=store.anchor - timedelta(days=366))
        during = h.delivery(waits=Waits())
        h.sandbox.faults.disable()
        after = h.delivery(clock=lambda: later)

        assert during.confirmed == 0
        assert during.retrying > 0
        assert after.waiting == 0
        assert_settled(h)


def test_heartland_down_keeps_cursor(tmp_path: Path, store: Store) -> None:
    plan = FaultPlan(rules=(down("heartland", "/api/*", enabled=False),))
    with harness(tmp_path, store, faults=plan) as h:
        h.transactions(since=store.anchor - timedelta(days=366))
        cursor = h.cursor()
        decided = h.ledger_rows("SELECT count(*) FROM tickets")
        release_late(h)
        h.sandbox.faults.enable()
        waits = Waits()

        with pytest.raises(RetriableError):
            h.transactions(waits=waits)

        assert h.cursor() == cursor
        assert h.ledger_rows("SELECT count(*) FROM tickets") == decided
        assert len(waits.seconds) == 3
        h.sandbox.faults.disable()
        h.transactions()
        h.delivery()
        assert_settled(h, include_late=True)


def test_heartland_down_mid_walk(tmp_path: Path, store: Store) -> None:
    plan = FaultPlan(rules=(down("heartland", "/api/sales/tickets", method="GET", after=3),))
    listing = sorted(store.tickets, key=lambda t: (t.updated_at, t.id))
    with harness(tmp_path, store, faults=plan, heartland={"page_size": 10}) as h:
        with pytest.raises(RetriableError):
            h.transactions(since=store.anchor - timedelta(days=366), waits=Waits())
        cursor = h.cursor()
        decided = {row[0] for row in h.ledger_rows("SELECT id FROM tickets")}

        assert cursor is not None
        assert cursor[1] == listing[29].id
        assert {t.id for t in listing[:30]} <= decided
        h.sandbox.faults.disable()
        h.transactions()
        h.delivery()
        assert_settled(h)


def test_catch_up_with_yotpo_down_records_waiting(tmp_path: Path, store: Store) -> None:
    plan = FaultPlan(rules=(down("yotpo", "/api/v2/*"),))
    with harness(
        tmp_path,
        store,
        faults=plan,
        delivery={"max_attempts": 1000, "max_tries_per_call": 1},
    ) as h:
        catch_up = h.invoke("catch-up", "--since", h.since())
        status = h.invoke("status")
        report = json.loads(h.invoke("status", "--json").stdout)
        facts = read_ledger_facts(h.ledger)

    waiting = pushes_in(h, "pending") + pushes_in(h, "sent")
    assert catch_up.exit_code == 3
    assert waiting > 0
    assert f"Last catch-up run: waiting ({waiting} pushes were left for a retry" in status.stdout
    assert [run["outcome"] for run in report["last_runs"]] == ["waiting"]
    # The catch-up itself finished, so the metrics still count it as the job's last success.
    assert "catch-up" in facts.last_success
