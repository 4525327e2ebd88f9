"""Offers end to end: the real `yotposync` process against the sandbox."""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.offers.conftest import make_store
from tests.offers.helpers import FIVE_OFF, POINTS_FOR_CASH, TEN_PERCENT, LoyaltyStore
from yotposync.config import load_settings
from yotposync.ledger import Ledger
from yotposync.ledger.offers import OfferLedger
from yotposync.offers_runtime import run_offers
from yotposync.sandbox.faults import FaultKind, FaultPlan, FaultRule
from yotposync.scheduler import Daemon

pytestmark = pytest.mark.e2e

EMAIL = "pat@example.com"


def test_offers_appear_as_coupons(store: LoyaltyStore) -> None:
    store.set_options(FIVE_OFF, TEN_PERCENT, POINTS_FOR_CASH)
    result = store.cli("offers", "sync")
    coupons = {c["code"]: c for c in store.coupons()}
    assert "2 coupons created" in result.stdout
    assert sorted(coupons) == ["LOYALTY3101", "LOYALTY3103"]
    assert coupons["LOYALTY3101"]["name"] == "$5 Off (500 points)"
    assert coupons["LOYALTY3101"]["amount"] == 5
    assert coupons["LOYALTY3103"]["percent"] == 10
    assert "offer_skipped" in result.stderr


def test_new_ledger_reuses_coupons_as_updated(store: LoyaltyStore) -> None:
    store.set_options(FIVE_OFF, TEN_PERCENT)
    store.cli("offers", "sync")
    for path in store.ledger.parent.glob(store.ledger.name + "*"):
        path.unlink()

    result = store.cli("offers", "sync")

    assert "0 coupons created, 2 updated" in result.stdout
    assert len(store.coupons()) == 2


def test_offers_rerun_changes_and_removals(store: LoyaltyStore) -> None:
    store.set_options(FIVE_OFF, TEN_PERCENT)
    store.cli("offers", "sync")
    store.cli("offers", "sync")
    store.set_options({**FIVE_OFF, "name": "$6 Off", "discount_amount_cents": 600})
    store.cli("offers", "sync")
    coupons = {c["code"]: c for c in store.coupons()}
    assert len(store.coupons()) == 2
    assert coupons["LOYALTY3101"]["name"] == "$6 Off (500 points)"
    assert coupons["LOYALTY3101"]["amount"] == 6
    assert coupons["LOYALTY3103"]["active"] is False


def test_option_listed_twice_written_once(store: LoyaltyStore) -> None:
    store.set_options(FIVE_OFF, {**FIVE_OFF, "name": "$5 Off again"})

    runs = [store.cli("offers", "sync").stdout for _ in range(3)]

    assert "1 coupons created" in runs[0]
    assert ["0 coupons created, 0 updated" in run for run in runs[1:]] == [True, True]
    assert "option 3101 '$5 Off': active" in store.cli("offers", "list").stdout


def test_type_change_renames_coupon(store: LoyaltyStore) -> None:
    store.set_options(FIVE_OFF)
    store.cli("offers", "sync")
    percent = {**FIVE_OFF, "discount_type": "percentage", "discount_percentage": 50}
    store.set_options(percent)
    result = store.cli("offers", "sync")
    coupons = store.coupons()
    listing = store.cli("offers", "list").stdout
    assert "1 updated" in result.stdout
    assert len(coupons) == 1
    assert coupons[0]["name"] == "Loyalty: 50% off, 500 points"
    assert coupons[0]["percent"] == 50
    assert coupons[0]["active"] is True
    assert "option 3101 '$5 Off': active" in listing
    assert "50% off for 500 points" in listing


def coupon_sale(store: LoyaltyStore) -> int:
    """Give EMAIL 1000 points, sync FIVE_OFF, and ring up a $40 sale with its coupon."""
    store.set_options(FIVE_OFF)
    store.member(EMAIL, 1000)
    store.cli("offers", "sync")
    customer = store.customer(EMAIL)
    return store.ticket(customer_id=customer, coupon_code="LOYALTY3101", items=[(2, 20.0)])


def test_catch_up_counts_deduction_as_queued(store: LoyaltyStore) -> None:
    coupon_sale(store)
    summary = store.catch_up().stdout
    assert "Queued 1 order or refund and 1 points adjustment." in summary
    assert "Delivered: 2 confirmed" in summary


def test_paid_ticket_deducts_once(store: LoyaltyStore) -> None:
    coupon_sale(store)
    store.catch_up()
    store.catch_up()
    deductions = store.adjustments("hl-redeem-")
    assert [d["point_adjustment_amount"] for d in deductions] == [-500]
    # 1000 - 500 spent + 35 earned on the $35 paid after the $5 discount.
    assert store.balance(EMAIL) == 535


def test_sale_points_not_spent_on_itself(store: LoyaltyStore) -> None:
    store.set_options(FIVE_OFF)
    store.member(EMAIL, 480)
    store.cli("offers", "sync")
    # The $35 paid earns 35 points, which would lift 480 above the 500 the coupon costs.
    store.ticket(customer_id=store.customer(EMAIL), coupon_code="LOYALTY3101", items=[(2, 20.0)])

    store.catch_up_allowing_undelivered()

    assert store.adjustments("hl-redeem-") == []
    assert store.balance(EMAIL) == 515
    assert "Deductions needing attention" in store.cli("status").stdout


def test_restore_alone_refreshes_cashier_balance(store: LoyaltyStore) -> None:
    free = {**TEN_PERCENT, "name": "100% Off", "discount_percentage": 100}
    store.set_options(free)
    store.member(EMAIL, 1000)
    store.cli("offers", "sync")
    customer = store.customer(EMAIL)
    opt_in = {"custom": {"loyalty_opt_in": "yes"}}
    assert store.heartland("PUT", f"/customers/{customer}", opt_in).status_code == 200
    store.cli("customers", "sync")

    sale = store.ticket(customer_id=customer, coupon_code="LOYALTY3103", items=[(2, 20.0)])
    store.catch_up()
    store.cli("customers", "sync")
    # The sale was free, so it earned nothing and its return refunds nothing: only the restore
    # of the 800 points spent changes the balance.
    store.ticket(customer_id=customer, coupon_code=None, items=[(-2, 20.0)], parent_id=sale)
    store.catch_up()
    store.cli("customers", "sync")

    custom = store.heartland("GET", f"/customers/{customer}").json()["custom"]
    assert store.balance(EMAIL) == 1000
    assert custom["loyalty_points"] == "1000"


def test_sale_deducts_cost_offer_had_when_completed(store: LoyaltyStore) -> None:
    coupon_sale(store)
    # Heartland's times are whole seconds, so each step waits for the next second.
    time.sleep(1.05)
    # The cost rises in Yotpo, and the offers job copies it before the sale is read.
    store.set_options({**FIVE_OFF, "amount": 800, "cost_text": "800 Points"})
    store.cli("offers", "sync")
    time.sleep(1.05)
    later = store.ticket(
        customer_id=store.customer("sam@example.com"), coupon_code="LOYALTY3101", items=[(1, 20.0)]
    )
    store.member("sam@example.com", 1000)
    store.catch_up()

    deductions = {
        d["history_title"]: d["point_adjustment_amount"] for d in store.adjustments("hl-redeem-")
    }
    assert sorted(deductions.values()) == [-800, -500]
    assert [v for k, v in deductions.items() if f"hl-redeem-{later}" in k] == [-800]
    assert store.balance(EMAIL) == 535


def test_deduction_follows_sale_moved_to_another_customer(store: LoyaltyStore) -> None:
    sale = coupon_sale(store)
    store.catch_up()
    store.move_to_new_member(sale, "sam@example.com", 1000)
    store.catch_up()
    store.catch_up()

    adjustments = store.adjusted("hl-redeem")
    assert adjustments == [(EMAIL, -500), (EMAIL, 500), ("sam@example.com", -500)]
    # Pat is back where the sale found them; Sam paid for the discount and earned on the sale.
    assert store.balance(EMAIL) == 1000
    assert store.balance("sam@example.com") == 535
    explained = store.cli("explain", str(sale), "--no-balance").stdout
    assert f"hl-redeem-back-{sale}-2" in explained
    assert f"hl-redeem-{sale}-2" in explained
    # The report counts the discount once: Pat's 500 came back, and Sam paid 500.
    assert _points_spent(store) == 500


def test_deduction_of_sale_left_without_customer(store: LoyaltyStore) -> None:
    sale = coupon_sale(store)
    store.catch_up()

    response = store.heartland("PUT", f"/sales/tickets/{sale}", {"customer_id": None})
    assert response.status_code == 200, response.text
    store.catch_up()
    store.catch_up()

    # Pat gets the points back, and staff see a discount no customer paid for.
    assert store.balance(EMAIL) == 1000
    assert _points_spent(store) == 0
    status = store.cli("status").stdout
    assert "Register deductions: no_customer 1" in status
    assert "Deductions needing attention" in status
    assert "nobody paid for it" in status

    # Given a customer again, the sale's new customer pays.
    store.move_to_new_member(sale, "sam@example.com", 1000)
    store.catch_up()
    store.catch_up()

    adjustments = store.adjusted("hl-redeem")
    assert adjustments == [(EMAIL, -500), (EMAIL, 500), ("sam@example.com", -500)]
    assert store.balance("sam@example.com") == 535
    assert "nobody paid for it" not in store.cli("status").stdout


def test_sale_moved_twice_after_no_customer(store: LoyaltyStore) -> None:
    sale = coupon_sale(store)
    store.catch_up()
    response = store.heartland("PUT", f"/sales/tickets/{sale}", {"customer_id": None})
    assert response.status_code == 200, response.text
    store.catch_up()
    store.move_to_new_member(sale, "sam@example.com", 1000)
    store.catch_up()

    # The move from no customer to Sam queued one push, so the next move needs new ids.
    store.move_to_new_member(sale, "kim@example.com", 1000)
    store.catch_up()

    adjustments = store.adjusted("hl-redeem")
    assert adjustments == [
        (EMAIL, -500),
        (EMAIL, 500),
        ("sam@example.com", -500),
        ("sam@example.com", 500),
        ("kim@example.com", -500),
    ]
    assert store.balance(EMAIL) == 1000
    assert store.balance("sam@example.com") == 1000
    assert store.balance("kim@example.com") == 535


def test_catch_up_on_new_ledger_syncs_offers_first(store: LoyaltyStore) -> None:
    sale = coupon_sale(store)
    # The ledger that wrote the coupons is gone; a new one starts with a catch-up.
    for path in store.ledger.parent.glob(store.ledger.name + "*"):
        path.unlink()

    store.catch_up()

    assert [d["point_adjustment_amount"] for d in store.adjustments(f"hl-redeem-{sale}")] == [-500]
    assert store.balance(EMAIL) == 535


def test_voided_sale_leaves_deductions_needing_attention(store: LoyaltyStore) -> None:
    store.set_options(FIVE_OFF)
    store.member(EMAIL, 100)
    store.cli("offers", "sync")
    ticket = store.ticket(
        customer_id=store.customer(EMAIL), coupon_code="LOYALTY3101", items=[(1, 30.0)]
    )
    store.catch_up_allowing_undelivered()
    listed = f"hl-redeem-{ticket} (points_adjust, ticket {ticket}) rejected"
    status = store.cli("status").stdout
    assert f"ticket {ticket} deduction_rejected" in status
    assert listed in status

    response = store.heartland("PUT", f"/sales/tickets/{ticket}", {"voided?": True})
    assert response.status_code == 200, response.text
    store.catch_up_allowing_undelivered()

    # The voided sale gave no discount, so no one has to collect its points by hand.
    status = store.cli("status").stdout
    assert "Register deductions: sale_voided 1" in status
    assert f"ticket {ticket} deduction_rejected" not in status
    assert listed not in status
    # The rejected deduction reads as points, not as an amount of money.
    shown = store.cli("customer", "show", EMAIL).stdout
    assert f"hl-redeem-{ticket}  points_adjust  -500 points  rejected" in shown


def test_unpaid_ticket_deducts_when_paid(store: LoyaltyStore) -> None:
    store.set_options(FIVE_OFF)
    store.member(EMAIL, 1000)
    store.cli("offers", "sync")
    customer = store.customer(EMAIL)
    ticket = store.ticket(
        customer_id=customer, coupon_code="LOYALTY3101", items=[(1, 30.0)], paid=False
    )
    store.catch_up()
    assert store.adjustments("hl-redeem-") == []
    store.pay(ticket)
    store.catch_up()
    assert len(store.adjustments(f"hl-redeem-{ticket}")) == 1


def test_open_ticket_deducts_when_completed(store: LoyaltyStore) -> None:
    store.set_options(FIVE_OFF)
    store.member(EMAIL, 1000)
    store.cli("offers", "sync")
    customer = store.customer(EMAIL)
    ticket = store.ticket(
        customer_id=customer, coupon_code="LOYALTY3101", items=[(1, 30.0)], complete=False
    )
    store.catch_up()
    assert store.adjustments("hl-redeem-") == []
    store.complete(ticket)
    store.catch_up()
    assert len(store.adjustments(f"hl-redeem-{ticket}")) == 1


def test_voided_open_ticket_deducts_nothing(store: LoyaltyStore) -> None:
    store.set_options(FIVE_OFF)
    store.member(EMAIL, 1000)
    store.cli("offers", "sync")
    customer = store.customer(EMAIL)
    ticket = store.ticket(
        customer_id=customer, coupon_code="LOYALTY3101", items=[(1, 30.0)], complete=False
    )
    response = store.heartland("PUT", f"/sales/tickets/{ticket}", {"status": "voided"})
    assert response.status_code == 200
    store.catch_up()
    assert store.adjustments("hl-redeem-") == []
    assert store.balance(EMAIL) == 1000


def test_overdraw_is_reported(store: LoyaltyStore) -> None:
    store.set_options(FIVE_OFF)
    store.member(EMAIL, 100)
    store.cli("offers", "sync")
    customer = store.customer(EMAIL)
    ticket = store.ticket(customer_id=customer, coupon_code="LOYALTY3101", items=[(1, 30.0)])
    first = store.catch_up_allowing_undelivered()
    first_status = store.cli("status").stdout
    second = store.catch_up_allowing_undelivered()
    assert first.returncode == 4
    assert "Last catch-up run: undelivered (Yotpo rejected 1 and 0 ran out of attempts" in (
        first_status
    )
    assert first_status.index("Last catch-up run") < first_status.index("HTTP 422")
    assert second.returncode == 0
    status = json.loads(store.cli("status", "--json").stdout)
    problems = status["offers"]["deduction_problems"]
    text = store.cli("status").stdout
    assert [p["ticket_id"] for p in problems] == [ticket]
    assert problems[0]["state"] == "deduction_rejected"
    assert f"ticket {ticket} deduction_rejected: HTTP 422" in text
    overdraws = [e for e in store.records()["adjustments"] if e["status"] == 422]
    assert len(overdraws) == 1
    # The sale still earned: the report does not count it among the tickets that earned nothing.
    since = (datetime.now(UTC) - timedelta(days=2)).date().isoformat()
    report = store.cli("report", "--since", since, "--format", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(report)))
    assert sum(int(row.get("nothing_earned:rejected") or 0) for row in rows) == 0
    assert sum(int(row["earned_cents"]) for row in rows) == 2500  # 30.00 less the 5.00 off


def test_ticket_without_customer_is_reported(store: LoyaltyStore) -> None:
    store.set_options(FIVE_OFF)
    store.cli("offers", "sync")
    ticket = store.ticket(customer_id=None, coupon_code="LOYALTY3101", items=[(1, 30.0)])
    result = store.catch_up()
    status = json.loads(store.cli("status", "--json").stdout)
    problems = status["offers"]["deduction_problems"]
    assert [(p["ticket_id"], p["state"]) for p in problems] == [(ticket, "no_customer")]
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    warnings = [e for e in events if e["event"] == "deduction_not_possible"]
    assert [e["ticket_id"] for e in warnings] == [ticket]


def test_empty_option_list_needs_allow_empty(store: LoyaltyStore) -> None:
    store.set_options(FIVE_OFF)
    store.cli("offers", "sync")
    store.set_options()
    guarded = store.cli("offers", "sync", check=False)
    still_active = store.coupons()[0]["active"]
    store.cli("offers", "sync", "--allow-empty")
    assert guarded.returncode == 1
    assert "no coupon was switched off" in guarded.stdout
    assert still_active is True
    assert store.coupons()[0]["active"] is False


def test_offers_list_shows_skipped(store: LoyaltyStore) -> None:
    store.set_options(FIVE_OFF, POINTS_FOR_CASH)
    store.cli("offers", "sync")
    listing = store.cli("offers", "list").stdout
    assert "option 3101 '$5 Off': active, coupon" in listing
    assert "option 3102 'Points for cash': skipped, no coupon: variable-points" in listing


def test_dropped_skipped_offer_inactive(store: LoyaltyStore) -> None:
    store.set_options(FIVE_OFF, POINTS_FOR_CASH)
    store.cli("offers", "sync")
    store.set_options(FIVE_OFF)
    result = store.cli("offers", "sync")
    listing = store.cli("offers", "list").stdout
    assert "offer_removed" in result.stderr
    assert "option 3101 '$5 Off': active, coupon" in listing
    assert "variable-points" not in listing
    assert "option 3102 'Points for cash': inactive" in listing
    assert "no longer offered by Yotpo (removed or disabled)" in listing
    assert "switched off" not in listing


def test_amount_above_ceiling_gets_no_coupon(store: LoyaltyStore) -> None:
    store.set_options({**FIVE_OFF, "discount_amount_cents": 10000000000000}, TEN_PERCENT)
    result = store.cli("offers", "sync")
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    warnings = [e for e in events if e["event"] == "offer_skipped"]
    listing = store.cli("offers", "list").stdout
    status = store.cli("status").stdout
    assert [c["code"] for c in store.coupons()] == ["LOYALTY3103"]
    assert [(w["option_id"], w["name"], w["level"]) for w in warnings] == [
        (3101, "$5 Off", "warning")
    ]
    assert "discount_amount_cents 10000000000000" in warnings[0]["reason"]
    assert "offers.max_discount_cents 50000" in warnings[0]["reason"]
    assert "option 3101 '$5 Off': skipped, no coupon: discount_amount_cents" in listing
    assert "offer 3101 '$5 Off' skipped: discount_amount_cents 10000000000000" in status


def test_amount_raised_above_ceiling_deactivates(store: LoyaltyStore) -> None:
    store.set_options(FIVE_OFF)
    store.cli("offers", "sync")
    store.set_options({**FIVE_OFF, "discount_amount_cents": 5000000})
    result = store.cli("offers", "sync")
    coupon = store.coupons()[0]
    listing = store.cli("offers", "list").stdout
    assert "1 switched off" in result.stdout
    assert coupon["active"] is False
    assert coupon["amount"] == 5
    assert "option 3101 '$5 Off': skipped, coupon" in listing
    assert "discount_amount_cents 5000000 (50000.00 off) is above" in listing


def test_failed_switch_off_retried(store: LoyaltyStore) -> None:
    # The first run fails to switch the coupon off, so the next run must switch it off and
    # only then record the option as skipped.
    store.set_options(FIVE_OFF)
    store.cli("offers", "sync")
    store.set_options({**FIVE_OFF, "discount_amount_cents": 5000000})
    down = FaultRule(
        name="coupon-put-503",
        service="heartland",
        kind=FaultKind.SERVER_ERROR,
        method="PUT",
        path="/api/coupons/*",
        times=1,
    )
    store.sandbox.faults.set_plan(FaultPlan(rules=(down,)))
    failed = store.cli("offers", "sync", check=False)
    still_active = store.coupons()[0]["active"]
    store.cli("offers", "sync")
    listing = store.cli("offers", "list").stdout
    assert failed.returncode != 0
    assert still_active is True
    assert store.coupons()[0]["active"] is False
    assert "option 3101 '$5 Off': skipped, coupon" in listing


def test_raised_ceiling_allows_amount(tmp_path: Path) -> None:
    for store in make_store(tmp_path, "[offers]\nmax_discount_cents = 5000000\n"):
        store.set_options({**FIVE_OFF, "discount_amount_cents": 5000000})
        store.cli("offers", "sync")
        coupons = store.coupons()
        assert [(c["code"], c["amount"], c["active"]) for c in coupons] == [
            ("LOYALTY3101", 50000, True)
        ]


def test_explain_deduction_points(store: LoyaltyStore) -> None:
    ticket = coupon_sale(store)
    store.catch_up()
    explained = store.cli("explain", str(ticket), "--no-balance").stdout
    assert f"points_adjust hl-redeem-{ticket} (redeem): -500 points, confirmed" in explained


def test_rejected_coupon_writes_exit_1(store: LoyaltyStore) -> None:
    store.set_options(FIVE_OFF, TEN_PERCENT)
    rejected = FaultRule(
        name="coupons-400",
        service="heartland",
        kind=FaultKind.CLIENT_ERROR,
        path="/api/coupons*",
        status=400,
    )
    store.sandbox.faults.set_plan(FaultPlan(rules=(rejected,)))
    result = store.cli("offers", "sync", check=False)
    assert result.returncode == 1
    assert result.stdout.count("Failed: option") == 2


def test_offers_list_prints_plain_percent(store: LoyaltyStore) -> None:
    whole = {**TEN_PERCENT, "id": 3104, "name": "Free order", "discount_percentage": 100}
    eighth = {**TEN_PERCENT, "id": 3105, "name": "Eighth off", "discount_percentage": "12.50"}
    store.set_options(TEN_PERCENT, whole, eighth)
    result = store.cli("offers", "sync")
    listing = store.cli("offers", "list").stdout
    rows = json.loads(store.cli("offers", "list", "--json").stdout)["offers"]
    assert "10% off for 800 points" in listing
    assert "100% off for 800 points" in listing
    assert "12.5% off for 800 points" in listing
    assert "E+" not in listing
    assert [row["reason"] for row in rows] == [
        "10% off for 800 points",
        "100% off for 800 points",
        "12.5% off for 800 points",
    ]
    assert "100% off for 800 points" in result.stderr
    assert "E+" not in result.stderr


def test_dry_run_lists_points_adjustments(store: LoyaltyStore) -> None:
    sale = coupon_sale(store)
    customer = store.customer(EMAIL)
    returned = store.ticket(
        customer_id=customer, coupon_code=None, items=[(-2, 20.0)], paid=False, parent_id=sale
    )
    since = (datetime.now(UTC) - timedelta(days=2)).date().isoformat()
    result = store.cli("catch-up", "--since", since, "--dry-run")
    lines = result.stdout.splitlines()
    deduction = f"  points_adjust hl-redeem-{sale} (redeem) to p***@example.com: -500 points"
    restore = (
        f"  points_adjust hl-restore-{returned}-1 (restore_points) to p***@example.com: +500 points"
    )
    assert f"{deduction} (ticket {sale})" in lines
    assert f"{restore} (ticket {returned})" in lines
    assert "and 2 points adjustments. They are listed above." in result.stdout
    assert EMAIL not in result.stdout
    assert store.balance(EMAIL) == 1000


def test_daemon_on_new_ledger_reads_tickets_after_offers(store: LoyaltyStore) -> None:
    sale = coupon_sale(store)
    for path in store.ledger.parent.glob(store.ledger.name + "*"):
        path.unlink()
    Ledger.open(store.ledger).close()  # a new ledger, as the daemon creates at start
    settings = load_settings(store.config)
    daemon = Daemon(settings, clock=lambda: datetime.now(UTC))

    daemon.run_transactions()  # before the first offers run: held back
    held = _last_summary(store, "transactions")
    ledger = Ledger.open_for_writing(store.ledger)
    try:
        run_offers(settings, ledger, lambda: datetime.now(UTC))
    finally:
        ledger.close()
    daemon.offers.first_run_done.set()
    daemon.run_transactions()

    assert held == {"waiting_for_offers": True}
    assert _last_summary(store, "transactions")["points_adjustments"] == 1
    ledger = Ledger.open_for_reading(store.ledger)
    try:
        assert OfferLedger(ledger).redemption(sale) is not None
    finally:
        ledger.close()


def _last_summary(store: LoyaltyStore, job: str) -> dict[str, Any]:
    ledger = Ledger.open_for_reading(store.ledger)
    try:
        runs = {run["job"]: run for run in ledger.last_runs()}
    finally:
        ledger.close()
    summary: dict[str, Any] = json.loads(runs[job]["summary"])
    return summary


def _points_spent(store: LoyaltyStore) -> int:
    """Sum the report's points spent over the last two days."""
    since = (datetime.now(UTC) - timedelta(days=2)).date().isoformat()
    output = store.cli("report", "--since", since, "--format", "csv").stdout
    rows = csv.DictReader(io.StringIO(output))
    return sum(int(row["spent_points"]) for row in rows if row["spent_points"])
