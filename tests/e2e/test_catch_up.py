"""The real `yotposync` process against the sandbox: points match the generated store."""

from __future__ import annotations

import signal
import time
from collections import Counter
from typing import Any

import pytest
import requests

from tests.e2e.conftest import POINTS_PER_DOLLAR, TOKEN, Env

pytestmark = pytest.mark.e2e


def accepted(records: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """Return the bodies Yotpo applied: status 200 and not ignored as a repeat."""
    return [e["body"] for e in records[kind] if e["status"] == 200 and not e["duplicate"]]


def net_by_email(records: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """Per customer: total ordered and total refunded, in cents."""
    orders = accepted(records, "orders")
    owner = {o["order_id"]: o["customer_email"] for o in orders}
    totals: dict[str, list[int]] = {}
    for order in orders:
        totals.setdefault(order["customer_email"], [0, 0])[0] += order["total_amount_cents"]
    for refund in accepted(records, "refunds"):
        email = owner[refund["order_id"]]
        totals.setdefault(email, [0, 0])[1] += refund["total_amount_cents"]
    return {email: (o, r) for email, (o, r) in totals.items()}


def expected_net(env: Env, include_late: bool = False) -> dict[str, tuple[int, int]]:
    totals: dict[str, list[int]] = {}
    for push in env.store.expected_effects(env.store.go_live, include_late):
        slot = 0 if push.kind == "order" else 1
        totals.setdefault(push.email, [0, 0])[slot] += push.amount_cents
    return {email: (o, r) for email, (o, r) in totals.items()}


def assert_store_settled(env: Env, include_late: bool = False) -> None:
    expected = env.store.expected_balances(POINTS_PER_DOLLAR, env.store.go_live, include_late)
    actual = {email: env.balance(email) for email in expected}
    assert actual == expected
    records = env.records()
    assert net_by_email(records) == expected_net(env, include_late)
    ids = Counter(o["order_id"] for o in accepted(records, "orders"))
    assert [i for i, n in ids.items() if n > 1] == []
    refund_ids = Counter(r["id"] for r in accepted(records, "refunds"))
    assert [i for i, n in refund_ids.items() if n > 1] == []
    rejected = [e for kind in ("orders", "refunds") for e in records[kind] if e["status"] != 200]
    assert rejected == []


def test_catch_up_earns_expected_points(env: Env) -> None:
    result = env.cli("catch-up", "--since", env.since())
    assert "confirmed" in result.stdout
    assert_store_settled(env)


def test_second_catch_up_sends_nothing(env: Env) -> None:
    env.cli("catch-up", "--since", env.since())
    first = env.records()
    env.cli("catch-up", "--since", env.since())
    second = env.records()
    assert len(second["orders"]) == len(first["orders"])
    assert len(second["refunds"]) == len(first["refunds"])
    assert_store_settled(env)


def test_killed_catch_up_recovers(env: Env) -> None:
    # A slow Yotpo pace so that the kills land while pushes are in flight.
    text = env.config.read_text().replace(
        'api_key = "sandbox-api-key"\nrequests_per_second = 500',
        'api_key = "sandbox-api-key"\nrequests_per_second = 25',
    )
    env.config.write_text(text)
    expected_orders = sum(1 for p in env.store.expected_effects(env.store.go_live, False))
    for threshold in (5, expected_orders // 3, (2 * expected_orders) // 3):
        process = env.popen("catch-up", "--since", env.since())
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            records = env.records()
            if len(records["orders"]) + len(records["refunds"]) >= threshold:
                break
            if process.poll() is not None:
                break
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    env.cli("catch-up", "--since", env.since())
    assert_store_settled(env)


def test_late_tickets_earn_after_release(env: Env) -> None:
    env.cli("catch-up", "--since", env.since())
    response = requests.post(
        f"{env.sandbox.heartland_admin_url}/release-late",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    assert response.status_code == 200
    env.cli("catch-up", "--since", env.since())
    assert_store_settled(env, include_late=True)


def test_dry_run_sends_nothing(env: Env) -> None:
    result = env.cli("catch-up", "--since", env.since(), "--dry-run")
    assert "Would send" in result.stdout
    records = env.records()
    assert records["orders"] == []
    assert not env.ledger.exists()


def test_status_reports_without_secrets(env: Env) -> None:
    catch_up = env.cli("catch-up", "--since", env.since())
    status = env.cli("status")
    assert "confirmed" in status.stdout
    assert "Cursor:" in status.stdout
    for output in (catch_up.stdout, catch_up.stderr, status.stdout, status.stderr):
        for secret in ("sandbox-heartland-token", "sandbox-guid", "sandbox-api-key"):
            assert secret not in output


def test_daemon_delivers_then_stops_on_sigterm(env: Env) -> None:
    daemon = env.popen("run")
    try:
        expected = env.store.expected_balances(
            POINTS_PER_DOLLAR, env.store.go_live, include_late=False
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if {email: env.balance(email) for email in expected} == expected:
                break
            time.sleep(0.5)
        second = env.cli("run", check=False, timeout=30)
        assert second.returncode == 1
        assert "another yotposync process" in second.stderr
    finally:
        daemon.send_signal(signal.SIGTERM)
        out, err = daemon.communicate(timeout=30)
    assert daemon.returncode == 0, err
    assert "daemon_stopped" in out
    assert_store_settled(env)


def test_bad_token_stops_and_shows_in_status(env: Env) -> None:
    env.config.write_text(env.config.read_text().replace(TOKEN, "wrong-token"))
    result = env.cli("catch-up", "--since", env.since(), check=False)
    assert result.returncode == 1
    assert "401" in result.stderr
    assert "wrong-token" not in result.stderr
    status = env.cli("status")
    assert "Last catch-up run: error" in status.stdout


def test_status_needs_no_secrets(env: Env) -> None:
    env.cli("catch-up", "--since", env.since())
    text = env.config.read_text()
    for line in (f'token = "{TOKEN}"', 'guid = "sandbox-guid"', 'api_key = "sandbox-api-key"'):
        text = text.replace(line, "")
    env.config.write_text(text)
    status = env.cli("status")
    assert "confirmed" in status.stdout
    refused = env.cli("catch-up", "--since", env.since(), check=False)
    assert refused.returncode == 2
