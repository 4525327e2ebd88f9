"""`yotposync explain` against the scripted store of scenario.py."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.ops.scenario import SECRETS, TOKEN, Scenario, run_cli
from yotposync.clients.yotpo import YotpoClient
from yotposync.errors import ApiError
from yotposync.ledger import Ledger
from yotposync.ops.explain import (
    Explanation,
    PushLine,
    TicketNotFoundError,
    add_balance,
    explain_ticket,
    find_ticket,
)


def explain(scenario: Scenario, name: str) -> Explanation:
    ledger = Ledger.open_read_only(scenario.ledger)
    try:
        return explain_ticket(ledger, scenario.ids[name])
    finally:
        ledger.close()


class FailingYotpo:
    def get_customer(self, *, email: str, with_history: bool) -> None:
        raise ApiError("yotpo", "GET", "/customers", 503, "Service Unavailable")


def test_sale_decision_and_amount(scenario: Scenario) -> None:
    ticket = explain(scenario, "T1").ticket
    assert ticket["kind"] == "sale"
    assert ticket["earn_cents"] == 5000


def test_sale_push_confirmed(scenario: Scenario) -> None:
    pushes = explain(scenario, "T1").pushes
    assert [(p.push_id, p.state, p.attempts, p.last_status) for p in pushes] == [
        (f"hl-{scenario.ids['T1']}", "confirmed", 1, 200)
    ]


def test_rejected_refund_shown_on_sale(scenario: Scenario) -> None:
    refunds = explain(scenario, "T1").refunds_from_returns
    assert [(r.push_id, r.state, r.last_status) for r in refunds] == [
        (f"hl-ret-{scenario.ids['R1']}", "rejected", 422)
    ]
    assert refunds[0].last_error == "refund currency USD does not match order currency EUR"


def test_excluded_ticket_names_rule(scenario: Scenario) -> None:
    ticket = explain(scenario, "T4").ticket
    assert (ticket["kind"], ticket["rule"]) == ("excluded", "ticket_custom:web_order_no present")


def test_versions_listed(scenario: Scenario) -> None:
    versions = explain(scenario, "T2").versions
    assert [(v["kind"], v["reason"]) for v in versions] == [
        ("no_customer", "no customer on the ticket")
    ]


def test_return_links_parent(scenario: Scenario) -> None:
    explanation = explain(scenario, "R2")
    assert explanation.parent is not None
    assert explanation.parent["id"] == scenario.ids["T6"]
    assert explanation.ticket["return_cents"] == 3000


def test_balance_after_each_push(scenario: Scenario) -> None:
    explanation = explain(scenario, "T6")
    with scenario_yotpo(scenario) as yotpo:
        add_balance(explanation, yotpo)
    assert explanation.balance == 50
    assert (explanation.pushes[0].points, explanation.pushes[0].balance_after) == (80, 80)
    refund = explanation.refunds_from_returns[0]
    assert (refund.points, refund.balance_after) == (-30, 50)


def test_balance_failure_says_why(scenario: Scenario) -> None:
    explanation = explain(scenario, "T6")
    add_balance(explanation, FailingYotpo())
    assert explanation.balance is None
    assert explanation.balance_note == (
        "cannot be read from Yotpo: yotpo GET /customers failed: HTTP 503: Service Unavailable"
    )


def test_balance_without_email_says_so(scenario: Scenario) -> None:
    explanation = explain(scenario, "T3")
    add_balance(explanation, FailingYotpo())
    assert explanation.balance_note == "no e-mail on the ticket, so no Yotpo customer to read"


def test_read_only_ledger_refuses_writes(scenario: Scenario) -> None:
    ledger = Ledger.open_read_only(scenario.ledger)
    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            ledger.db.execute("UPDATE tickets SET public_id = 'X' WHERE id = 1")
    finally:
        ledger.close()


def test_find_by_public_id(scenario: Scenario) -> None:
    ledger = Ledger.open_read_only(scenario.ledger)
    try:
        found = find_ticket(ledger, str(scenario.ids["T3"]))
    finally:
        ledger.close()
    assert found == (scenario.ids["T3"], None)


def test_unknown_ticket_raises(scenario: Scenario) -> None:
    ledger = Ledger.open_read_only(scenario.ledger)
    try:
        with pytest.raises(TicketNotFoundError, match="no ticket with id or public id"):
            find_ticket(ledger, "NOPE-1")
    finally:
        ledger.close()


@pytest.fixture(scope="module")
def explain_sale_output(scenario: Scenario) -> subprocess.CompletedProcess[str]:
    return scenario.cli("explain", str(scenario.ids["T6"]))


def test_cli_explain_text(
    scenario: Scenario, explain_sale_output: subprocess.CompletedProcess[str]
) -> None:
    output = explain_sale_output.stdout
    assert "Decision: sale" in output
    assert f"order hl-{scenario.ids['T6']}: 80.00, confirmed after 1 attempt" in output
    assert "+80 points, balance after 80" in output
    assert "-30 points, balance after 50" in output


def test_cli_explain_masks_email(explain_sale_output: subprocess.CompletedProcess[str]) -> None:
    assert "c***@example.com" in explain_sale_output.stdout
    assert "cat@example.com" not in explain_sale_output.stdout


def test_cli_explain_prints_no_secret(
    explain_sale_output: subprocess.CompletedProcess[str],
) -> None:
    for secret in SECRETS:
        assert secret not in explain_sale_output.stdout + explain_sale_output.stderr


def test_cli_explain_json_by_public_id(scenario: Scenario) -> None:
    # The sandbox numbers public ids like ids, so the public id names the same ticket.
    result = scenario.cli("explain", str(scenario.ids["R1"]), "--json", "--no-balance")
    data = json.loads(result.stdout)
    assert data["ticket"]["kind"] == "return"
    assert data["pushes"][0]["state"] == "rejected"
    assert data["balance_note"] is None


@contextmanager
def scenario_yotpo(scenario: Scenario) -> Iterator[YotpoClient]:
    """A YotpoClient for the scenario's sandbox, closed on exit."""
    sandbox = scenario.sandbox
    client = YotpoClient(sandbox.yotpo_url, sandbox.yotpo_guid, sandbox.yotpo_api_key)
    try:
        yield client
    finally:
        client.close()


@pytest.mark.parametrize("key", ["99999999999999999999999", "²"])
def test_find_ticket_odd_keys_not_found(tmp_path: Path, key: str) -> None:
    ledger = Ledger.open(tmp_path / "ledger.sqlite3")
    try:
        with pytest.raises(TicketNotFoundError):
            find_ticket(ledger, key)
    finally:
        ledger.close()


@pytest.mark.parametrize("key", ["", "  "])
def test_find_ticket_empty_key_names_the_fix(tmp_path: Path, key: str) -> None:
    # A ticket recorded without a public id must not be found by an empty key.
    ledger = Ledger.open(tmp_path / "ledger.sqlite3")
    try:
        with ledger.transaction():
            ledger.record_invalid(5304, "ticket 5304: total is missing", datetime.now(UTC))
        with pytest.raises(TicketNotFoundError, match="no ticket given: name a ticket by its"):
            find_ticket(ledger, key)
    finally:
        ledger.close()


def test_cli_explain_no_balance_needs_no_secrets(scenario: Scenario, tmp_path: Path) -> None:
    config = scenario.config_without(tmp_path / "no-secrets.toml", *SECRETS)
    result = run_cli(config, "explain", str(scenario.ids["T6"]), "--no-balance", check=False)
    assert result.returncode == 0, result.stderr
    assert "Decision: sale" in result.stdout


def test_cli_explain_balance_needs_yotpo_secrets(scenario: Scenario, tmp_path: Path) -> None:
    config = scenario.config_without(tmp_path / "no-secrets.toml", *SECRETS)
    result = run_cli(config, "explain", str(scenario.ids["T6"]), check=False)
    assert result.returncode == 2
    assert "yotpo.guid is missing: set the environment variable" in result.stderr
    assert result.stdout == ""


def test_cli_explain_balance_without_heartland_token(scenario: Scenario, tmp_path: Path) -> None:
    config = scenario.config_without(tmp_path / "no-token.toml", TOKEN)
    result = run_cli(config, "explain", str(scenario.ids["T6"]), check=False)
    assert result.returncode == 0, result.stderr
    assert "-30 points, balance after 50" in result.stdout


class HistoryYotpo:
    """A Yotpo customer whose history lists the sale's order, then a return, then an adjustment."""

    def get_customer(self, *, email: str, with_history: bool) -> dict[str, object]:
        return {
            "points_balance": 0,
            "history_items": [  # newest first, as Yotpo lists them
                {"points": -60, "order_ids": ["hl-10"]},
                {"points": -40, "order_ids": ["hl-10"]},
                {"points": 100, "order_ids": ["hl-10"]},
            ],
        }


def push_line(push_id: str, kind: str, role: str, target: str | None, confirmed: str) -> PushLine:
    return PushLine(
        push_id=push_id,
        kind=kind,
        role=role,
        ticket_id=10,
        target_order_id=target,
        amount_cents=0,
        state="confirmed",
        attempts=1,
        last_status=200,
        last_error=None,
        created_at=confirmed,
        updated_at=confirmed,
        confirmed_at=confirmed,
        next_attempt_at=None,
        email="pat@example.com",
    )


def test_balance_matches_refunds_in_confirmed_order() -> None:
    order = push_line("hl-10", "order", "order", None, "2026-05-01T10:00:00+00:00")
    adjust = push_line("hl-adj-10-1", "refund", "adjust", "hl-10", "2026-05-01T12:00:00+00:00")
    returned = push_line("hl-ret-20", "refund", "return", "hl-10", "2026-05-01T11:00:00+00:00")
    explanation = Explanation(
        ticket={"email": "pat@example.com"},
        versions=[],
        pushes=[order, adjust],
        refunds_from_returns=[returned],
        parent=None,
        returns=[],
    )

    add_balance(explanation, HistoryYotpo())

    assert (order.points, order.balance_after) == (100, 100)
    assert (returned.points, returned.balance_after) == (-40, 60)
    assert (adjust.points, adjust.balance_after) == (-60, 0)


class MovedYotpo:
    """A Yotpo account that the customers job moved from old@ to new@example.com."""

    def __init__(self) -> None:
        self.asked: list[dict[str, object]] = []

    def get_customer(
        self, *, email: str | None = None, customer_id: str | None = None, with_history: bool
    ) -> dict[str, object] | None:
        self.asked.append({"email": email, "customer_id": customer_id})
        if customer_id != "9082":
            return None
        return {
            "email": "new@example.com",
            "points_balance": 100,
            "history_items": [{"points": 100, "order_ids": ["hl-10"]}],
        }


def test_balance_found_after_email_change() -> None:
    order = push_line("hl-10", "order", "order", None, "2026-05-01T10:00:00+00:00")
    order.email = "old@example.com"
    explanation = Explanation(
        ticket={"email": "old@example.com", "customer_id": 9082},
        versions=[],
        pushes=[order],
        refunds_from_returns=[],
        parent=None,
        returns=[],
    )
    yotpo = MovedYotpo()

    add_balance(explanation, yotpo)

    assert yotpo.asked == [
        {"email": "old@example.com", "customer_id": None},
        {"email": None, "customer_id": "9082"},
    ]
    assert explanation.balance == 100
    assert (order.points, order.balance_after) == (100, 100)
    assert explanation.balance_customer == (
        "n***@example.com (customer 9082, whose e-mail was o***@example.com on this ticket)"
    )


def test_cli_explain_edited_amount(scenario: Scenario, tmp_path: Path) -> None:
    sale = scenario.ids["T6"]
    config = scenario.edited_copy(
        tmp_path,
        f"UPDATE pushes SET amount_cents = '80 dollars' WHERE push_id = 'hl-{sale}'",
    )
    result = run_cli(config, "explain", str(sale), "--no-balance", check=False)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert f"order hl-{sale}: '80 dollars' (not whole cents: edited in the ledger)" in (
        result.stdout
    )


def test_cli_customer_show_edited_amount(scenario: Scenario, tmp_path: Path) -> None:
    sale = scenario.ids["T6"]
    config = scenario.edited_copy(
        tmp_path,
        f"UPDATE pushes SET amount_cents = 80.5 WHERE push_id = 'hl-{sale}'",
    )
    result = run_cli(config, "customer", "show", "cat@example.com", check=False)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "80.5 (not whole cents: edited in the ledger)" in result.stdout


@pytest.mark.parametrize("command", ["explain", "customer show"])
def test_cli_balance_with_unreadable_heartland_token(
    scenario: Scenario, tmp_path: Path, command: str
) -> None:
    # Both read only Yotpo, so a token file the service reads through LoadCredential= and
    # this shell cannot read is a warning, not an error.
    config = scenario.config_without(tmp_path / "token-file.toml", TOKEN)
    text = config.read_text(encoding="utf-8")
    missing = tmp_path / "credentials" / "heartland-token"
    config.write_text(text.replace("[heartland]\n", f'[heartland]\ntoken_file = "{missing}"\n'))
    arguments = (
        ["explain", str(scenario.ids["T6"])]
        if command == "explain"
        else ["customer", "show", "cat@example.com"]
    )

    result = run_cli(config, *arguments, check=False)

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert f'warning: heartland.token_file = "{missing}": file not found' in result.stderr
    if command == "explain":
        assert "-30 points, balance after 50" in result.stdout
