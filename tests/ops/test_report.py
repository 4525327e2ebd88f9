"""`yotposync report` against the scripted store of scenario.py."""

from __future__ import annotations

import csv
import io
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from tests.ops.scenario import BUSINESS_DAY, SECRETS, Scenario, run_cli
from yotposync.ledger import Ledger, TicketAmountsRow
from yotposync.ops.explain import explain_ticket, format_explanation
from yotposync.ops.report import Report, ReportRow, build_report, format_table
from yotposync.sync.model import Decision, Kind
from yotposync.sync.plan import PlannedPush

DAY = date.fromisoformat(BUSINESS_DAY)


@pytest.fixture(scope="module")
def report(scenario: Scenario) -> Report:
    ledger = Ledger.open_read_only(scenario.ledger)
    try:
        return build_report(ledger, DAY, DAY)
    finally:
        ledger.close()


def row(report: Report, location_id: int) -> ReportRow:
    return next(r for r in report.rows if r.location_id == location_id)


def test_one_row_per_location(report: Report) -> None:
    assert [(r.business_date, r.location_id) for r in report.rows] == [
        (BUSINESS_DAY, 201),
        (BUSINESS_DAY, 202),
    ]


def test_tickets_counted(report: Report) -> None:
    assert (row(report, 201).tickets, row(report, 202).tickets) == (4, 4)


def test_earned_counts_confirmed_orders(report: Report) -> None:
    assert (row(report, 201).earned_cents, row(report, 202).earned_cents) == (5000, 8000)


def test_rejected_refund_takes_nothing(report: Report) -> None:
    assert row(report, 201).taken_back_cents == 0


def test_confirmed_refund_taken_back(report: Report) -> None:
    assert row(report, 202).taken_back_cents == 3000


def test_no_points_spent_without_loyalty_coupons(report: Report) -> None:
    assert {(r.spent_points, r.restored_points) for r in report.rows} == {(0, 0)}


def test_reasons_location_201(report: Report) -> None:
    assert dict(row(report, 201).nothing_earned) == {
        "no_customer": 1,
        "excluded:customer_custom:staff=yes": 1,
        "rejected": 1,
    }


def test_reasons_location_202(report: Report) -> None:
    assert dict(row(report, 202).nothing_earned) == {
        "no_email": 1,
        "excluded:ticket_custom:web_order_no present": 1,
    }


def test_days_outside_range_left_out(scenario: Scenario) -> None:
    ledger = Ledger.open_read_only(scenario.ledger)
    try:
        later = build_report(ledger, date(2025, 5, 2), None)
    finally:
        ledger.close()
    assert later.rows == []
    assert (
        format_table(later)
        == "No tickets with a business day from 2025-05-02 to now in the ledger."
    )


def test_table_lists_reasons_in_words(report: Report) -> None:
    table = format_table(report)
    assert "excluded by customer_custom:staff=yes" in table
    assert "rejected by Yotpo" in table
    assert "no e-mail" in table


@pytest.fixture(scope="module")
def csv_output(scenario: Scenario) -> subprocess.CompletedProcess[str]:
    return scenario.cli(
        "report", "--since", BUSINESS_DAY, "--until", BUSINESS_DAY, "--format", "csv"
    )


def test_cli_csv_amounts(csv_output: subprocess.CompletedProcess[str]) -> None:
    rows = list(csv.DictReader(io.StringIO(csv_output.stdout)))
    amounts = [(r["location_id"], r["earned_cents"], r["taken_back_cents"]) for r in rows]
    assert amounts == [("201", "5000", "0"), ("202", "8000", "3000")]


def test_cli_csv_reason_columns(csv_output: subprocess.CompletedProcess[str]) -> None:
    header = csv_output.stdout.splitlines()[0].split(",")
    assert header[8:] == [
        "nothing_earned:no_customer",
        "nothing_earned:no_email",
        "nothing_earned:rejected",
        "nothing_earned:excluded:customer_custom:staff=yes",
        "nothing_earned:excluded:ticket_custom:web_order_no present",
    ]


def test_cli_future_since_rejected(scenario: Scenario) -> None:
    result = scenario.cli("report", "--since", "9999-12-31", check=False)
    assert result.returncode == 2
    assert "is in the future" in result.stderr


def test_cli_report_needs_no_secrets(scenario: Scenario, tmp_path: Path) -> None:
    config = scenario.config_without(tmp_path / "no-secrets.toml", *SECRETS)
    result = run_cli(config, "report", "--since", BUSINESS_DAY, "--format", "csv", check=False)
    assert result.returncode == 0, result.stderr
    assert len(list(csv.DictReader(io.StringIO(result.stdout)))) == 2


def test_cli_timestamps_select_local_day(scenario: Scenario) -> None:
    # 21:00 at -05:00 is already 2025-05-02 in UTC, but its business day is 2025-05-01.
    result = scenario.cli(
        "report",
        "--since",
        f"{BUSINESS_DAY}T21:00:00-05:00",
        "--until",
        f"{BUSINESS_DAY}T08:00:00+02:00",
        "--format",
        "csv",
    )
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["business_date"], r["location_id"]) for r in rows] == [
        (BUSINESS_DAY, "201"),
        (BUSINESS_DAY, "202"),
    ]


@pytest.mark.parametrize("value", ["2025-05-01T09:00:00", "yesterday", "2025-13-01"])
def test_cli_bad_date_error_matches_catch_up(scenario: Scenario, value: str) -> None:
    report = scenario.cli("report", "--since", value, check=False)
    catch_up = scenario.cli("catch-up", "--since", value, check=False)
    assert report.returncode == 2
    assert report.stderr.splitlines()[-1] == catch_up.stderr.splitlines()[-1]
    assert repr(value) in report.stderr


def test_ticket_without_business_day_counted_as_unknown(tmp_path: Path) -> None:
    completed = datetime(2026, 3, 8, 23, 30, tzinfo=UTC)
    ledger = Ledger.open(tmp_path / "ledger.sqlite3")
    try:
        for ticket_id, business_date in ((1, "2026-03-08"), (2, None)):
            ledger.record_decision(
                Decision(ticket_id, Kind.SALE, "sale", customer_id=3, earn_cents=4800),
                public_id=str(ticket_id),
                ticket_type="Ticket",
                updated_at=completed,
                completed_at=completed,
                business_date=business_date,
                location_id=201,
                amounts=TicketAmountsRow(4800, 4800),
                now=completed,
            )
            push = PlannedPush(
                f"hl-{ticket_id}", "order", ticket_id, "a@example.com", 3, None, 4800
            )
            seq = ledger.add_push(push, {}, completed)
            ledger.mark_confirmed(seq, 200, completed)
        report = build_report(ledger, date(2026, 3, 8), date(2026, 3, 8))
        later = build_report(ledger, date(2026, 3, 9), None)
        explained = format_explanation(explain_ticket(ledger, 2))
    finally:
        ledger.close()

    assert [(r.business_date, r.tickets, r.earned_cents) for r in report.rows] == [
        ("2026-03-08", 1, 4800),
        ("unknown", 1, 4800),
    ]
    assert later.rows == []
    assert "Business day unknown: tickets whose local completion time" in format_table(report)
    assert "business day unknown (Heartland's local_completed_at could not be read)" in explained
