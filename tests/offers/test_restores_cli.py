"""Points given back on returns of sales that spent them, by each restore policy, via the CLI."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.offers.conftest import make_store
from tests.offers.helpers import FIVE_OFF, LoyaltyStore

pytestmark = pytest.mark.e2e

EMAIL = "pat@example.com"


def _store(tmp_path: Path, policy: str) -> Iterator[LoyaltyStore]:
    yield from make_store(tmp_path, f'[offers]\nrestore_policy = "{policy}"\n')


@pytest.fixture(params=["proportional", "full", "never"])
def policy_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LoyaltyStore]:
    yield from _store(tmp_path, request.param)


def _sale(store: LoyaltyStore) -> tuple[int, int]:
    store.set_options(FIVE_OFF)
    store.member(EMAIL, 1000)
    store.cli("offers", "sync")
    customer = store.customer(EMAIL)
    sale = store.ticket(customer_id=customer, coupon_code="LOYALTY3101", items=[(2, 20.0)])
    store.catch_up()
    return customer, sale


def _return(store: LoyaltyStore, customer: int, sale: int, qty: int) -> int:
    return store.ticket(
        customer_id=customer, coupon_code=None, items=[(-qty, 20.0)], paid=False, parent_id=sale
    )


def _restored(store: LoyaltyStore) -> list[int]:
    return [a["point_adjustment_amount"] for a in store.adjustments("Points given back")]


EXPECTED_PARTIAL = {"proportional": [250], "full": [], "never": []}
EXPECTED_WHOLE = {"proportional": [250, 250], "full": [500], "never": []}


def test_partial_return_restores_by_policy(policy_store: LoyaltyStore) -> None:
    policy = _policy(policy_store)
    customer, sale = _sale(policy_store)
    _return(policy_store, customer, sale, 1)
    policy_store.catch_up()
    assert _restored(policy_store) == EXPECTED_PARTIAL[policy]


def test_second_return_restores_rest_by_policy(policy_store: LoyaltyStore) -> None:
    policy = _policy(policy_store)
    customer, sale = _sale(policy_store)
    _return(policy_store, customer, sale, 1)
    policy_store.catch_up()
    _return(policy_store, customer, sale, 1)
    policy_store.catch_up()
    policy_store.catch_up()
    assert _restored(policy_store) == EXPECTED_WHOLE[policy]


def test_return_keeps_earned_refund_separate(tmp_path: Path) -> None:
    for store in _store(tmp_path, "proportional"):
        customer, sale = _sale(store)
        ret = _return(store, customer, sale, 2)
        store.catch_up()
        refunds = [e["body"] for e in store.records()["refunds"] if e["status"] == 200]
        restores = store.adjustments("Points given back")
        assert [r["id"] for r in refunds] == [f"hl-ret-{ret}"]
        assert [r["history_title"] for r in restores] == [
            f"Points given back, ticket {ret} [hl-restore-{ret}-1]"
        ]
        # 1000 - 500 spent + 35 earned - 35 refunded + 500 given back.
        assert store.balance(EMAIL) == 1000
        # The cashier's view lists the restore beside the deduction.
        shown = store.cli("customer", "show", EMAIL).stdout
        assert f"hl-restore-{ret}-1  points_adjust  +500 points  confirmed" in shown


def test_returns_never_restore_more_than_spent(tmp_path: Path) -> None:
    for store in _store(tmp_path, "proportional"):
        customer, sale = _sale(store)
        _return(store, customer, sale, 2)
        store.catch_up()
        _return(store, customer, sale, 1)
        store.catch_up()
        assert sum(_restored(store)) == 500


def test_voided_sale_restores_all(tmp_path: Path) -> None:
    for store in _store(tmp_path, "never"):
        _, sale = _sale(store)
        response = store.heartland("PUT", f"/sales/tickets/{sale}", {"voided?": True})
        assert response.status_code == 200
        store.catch_up()
        assert _restored(store) == [500]


def _policy(store: LoyaltyStore) -> str:
    text = store.config.read_text()
    return text.split('restore_policy = "', 1)[1].split('"', 1)[0]


def test_voided_return_takes_restore_back(tmp_path: Path) -> None:
    for store in _store(tmp_path, "proportional"):
        customer, sale = _sale(store)
        before_return = store.balance(EMAIL)
        ret = _return(store, customer, sale, 1)
        store.catch_up()
        response = store.heartland("PUT", f"/sales/tickets/{ret}", {"voided?": True})
        assert response.status_code < 300, response.text
        store.catch_up()
        store.catch_up()
        taken = [a["point_adjustment_amount"] for a in store.adjustments("Points taken back")]
        assert _restored(store) == [250]
        assert taken == [-250]
        # The void also undoes the return's refund of earned points, so the customer is
        # back where the sale left them.
        assert store.balance(EMAIL) == before_return


def test_voided_return_after_over_return_restores_once(tmp_path: Path) -> None:
    for store in _store(tmp_path, "proportional"):
        customer, sale = _sale(store)
        first = _return(store, customer, sale, 2)
        store.catch_up()
        # Both items returned again: the sale has nothing left, so nothing more comes back.
        _return(store, customer, sale, 2)
        store.catch_up()
        response = store.heartland("PUT", f"/sales/tickets/{first}", {"voided?": True})
        assert response.status_code < 300, response.text
        for _ in range(3):
            store.catch_up()

        # The second return still returns every item, so the 500 points stay given back:
        # voiding the first changes nothing, at any later read.
        assert _restored(store) == [500]
        assert store.adjustments("Points taken back") == []
        assert store.balance(EMAIL) == 1000


def test_return_voided_after_its_sale_keeps_restore(tmp_path: Path) -> None:
    for store in _store(tmp_path, "proportional"):
        customer, sale = _sale(store)
        ret = _return(store, customer, sale, 1)
        store.catch_up()
        for ticket in (sale, ret):
            response = store.heartland("PUT", f"/sales/tickets/{ticket}", {"voided?": True})
            assert response.status_code < 300, response.text
            store.catch_up()

        # The sale's void gave back what the return had not, so the return's restore stays:
        # everything spent is back, and nothing is taken again.
        assert _restored(store) == [250, 250]
        assert store.adjustments("Points taken back") == []
        assert store.balance(EMAIL) == 1000  # what the member had before the sale


def test_explain_sale_shows_points_of_its_returns(tmp_path: Path) -> None:
    for store in _store(tmp_path, "proportional"):
        customer, sale = _sale(store)
        ret = _return(store, customer, sale, 1)
        store.catch_up()
        response = store.heartland("PUT", f"/sales/tickets/{ret}", {"voided?": True})
        assert response.status_code < 300, response.text
        store.catch_up()

        explained = json.loads(store.cli("explain", str(sale), "--json").stdout)

        deduction = [p for p in explained["pushes"] if p["kind"] == "points_adjust"]
        assert [(p["adjust_points"], p["points"]) for p in deduction] == [(-500, -500)]
        by_return = [
            (p["ticket_id"], p["adjust_points"], p["points"])
            for p in explained["points_from_returns"]
        ]
        assert by_return == [(ret, 250, 250), (ret, -250, -250)]
        assert all(p["balance_after"] is not None for p in explained["points_from_returns"])
        assert explained["balance"] == store.balance(EMAIL)


def test_report_counts_points_spent_and_restored(tmp_path: Path) -> None:
    for store in _store(tmp_path, "proportional"):
        customer, sale = _sale(store)
        _return(store, customer, sale, 1)
        store.catch_up()
        since = (datetime.now(UTC) - timedelta(days=2)).date().isoformat()
        output = store.cli("report", "--since", since, "--format", "csv").stdout
        rows = list(csv.DictReader(io.StringIO(output)))
        assert sum(int(row["spent_points"]) for row in rows) == 500
        assert sum(int(row["restored_points"]) for row in rows) == 250
        table = store.cli("report", "--since", since).stdout
        assert "points spent" in table


def test_move_after_partial_return_moves_rest(tmp_path: Path) -> None:
    for store in _store(tmp_path, "proportional"):
        pat, sale = _sale(store)
        _return(store, pat, sale, 1)
        store.catch_up()
        sam = store.move_to_new_member(sale, "sam@example.com", 1000)
        store.catch_up()
        _return(store, sam, sale, 1)
        store.catch_up()
        store.catch_up()

        moved = store.adjusted("hl-redeem")
        # Pat paid 500 and got 250 back on the first return: the other 250 moves to Sam.
        assert moved == [(EMAIL, -500), (EMAIL, 250), ("sam@example.com", -250)]
        # The second return gives Sam back the rest, as it would have given Pat.
        assert store.adjusted("Points given back, ticket")[-1] == ("sam@example.com", 250)


def test_sale_moved_back_after_partial_return(tmp_path: Path) -> None:
    for store in _store(tmp_path, "proportional"):
        pat, sale = _sale(store)
        _return(store, pat, sale, 1)
        store.catch_up()
        store.move_to_new_member(sale, "sam@example.com", 1000)
        store.catch_up()
        response = store.heartland("PUT", f"/sales/tickets/{sale}", {"customer_id": pat})
        assert response.status_code == 200, response.text
        store.catch_up()
        store.catch_up()

        moved = store.adjusted("hl-redeem")
        # Pat's history still shows -500 and +250 under the sale's deduction ids, because the
        # first return's 250 came back under the return's id. Pat owes the 250 again.
        assert moved == [
            (EMAIL, -500),
            (EMAIL, 250),
            ("sam@example.com", -250),
            ("sam@example.com", 250),
            (EMAIL, -250),
        ]
        assert store.adjustments(f"hl-redeem-{sale}-4") != []


def _window_from_now() -> str:
    """Return a catch-up start after everything so far, as a poll's window after a change."""
    time.sleep(1.05)  # Heartland's times have whole seconds
    start = datetime.now(UTC).replace(microsecond=0).isoformat()
    time.sleep(1.05)
    return start


def _net_for(store: LoyaltyStore, email: str) -> int:
    """Sum the confirmed points adjustments Yotpo applied to one customer."""
    return sum(
        entry["body"]["point_adjustment_amount"]
        for entry in store.records()["adjustments"]
        if entry["status"] == 200 and entry["body"].get("customer_email") == email
    )


def test_return_while_nobody_paid_counts_when_sale_moves(tmp_path: Path) -> None:
    for store in _store(tmp_path, "proportional"):
        _pat, sale = _sale(store)
        response = store.heartland("PUT", f"/sales/tickets/{sale}", {"customer_id": None})
        assert response.status_code == 200, response.text
        store.catch_up()
        _return(store, None, sale, 1)  # half the sale comes back while no customer pays
        store.catch_up()
        start = _window_from_now()
        store.move_to_new_member(sale, "sam@example.com", 1000)
        store.cli("catch-up", "--since", start)  # reads the moved sale only, as a poll does

        # Sam pays for the half that was kept: 500 less the 250 its return justifies.
        assert _net_for(store, "sam@example.com") == 1000 - 250


def test_return_after_rejected_deduction_counts_when_sale_moves(tmp_path: Path) -> None:
    for store in _store(tmp_path, "proportional"):
        store.set_options(FIVE_OFF)
        store.member(EMAIL, 100)  # too few points: Yotpo rejects the deduction
        store.cli("offers", "sync")
        pat = store.customer(EMAIL)
        sale = store.ticket(customer_id=pat, coupon_code="LOYALTY3101", items=[(2, 20.0)])
        store.catch_up_allowing_undelivered()
        _return(store, pat, sale, 1)
        store.catch_up_allowing_undelivered()
        start = _window_from_now()
        store.move_to_new_member(sale, "sam@example.com", 1000)
        store.cli("catch-up", "--since", start)

        assert _net_for(store, "sam@example.com") == 1000 - 250
        # Sam paid, so Pat's rejected deduction no longer needs anyone's attention.
        assert f"hl-redeem-{sale} (points_adjust" not in store.cli("status").stdout


def test_rejected_take_back_is_not_given_again(tmp_path: Path) -> None:
    for store in _store(tmp_path, "proportional"):
        pat, sale = _sale(store)
        first = _return(store, pat, sale, 2)
        store.catch_up()
        assert _restored(store) == [500]
        # The customer spends everything, so taking the restore back fails (422).
        spend = {"customer_email": EMAIL, "point_adjustment_amount": -store.balance(EMAIL)}
        assert store.yotpo("POST", "/points/adjust", spend).status_code == 200
        start = _window_from_now()
        response = store.heartland("PUT", f"/sales/tickets/{first}", {"voided?": True})
        assert response.status_code < 300, response.text
        store.cli("catch-up", "--since", start, check=False)
        start = _window_from_now()
        _return(store, pat, sale, 2)
        store.cli("catch-up", "--since", start, check=False)

        # The customer kept the first 500, so the second return gives nothing more.
        assert _restored(store) == [500]


def test_sale_moved_back_after_rejected_move(tmp_path: Path) -> None:
    for store in _store(tmp_path, "proportional"):
        pat, sale = _sale(store)
        _return(store, pat, sale, 1)
        store.catch_up()  # Pat: -500 paid, +250 given back
        start = _window_from_now()
        store.move_to_new_member(sale, "sam@example.com", 100)  # too few points for 250
        store.cli("catch-up", "--since", start, check=False)  # Pat +250, Sam's -250 rejected
        start = _window_from_now()
        response = store.heartland("PUT", f"/sales/tickets/{sale}", {"customer_id": pat})
        assert response.status_code == 200, response.text
        store.cli("catch-up", "--since", start, check=False)

        # Pat has half the sale again and pays for that half only. The return's 250 remain
        # given back although Sam's deduction was rejected.
        assert _net_for(store, EMAIL) == 1000 - 250
        assert _net_for(store, "sam@example.com") == 100


def test_rejected_take_back_stays_with_first_payer(tmp_path: Path) -> None:
    for store in _store(tmp_path, "proportional"):
        pat, sale = _sale(store)
        first = _return(store, pat, sale, 2)
        store.catch_up()  # Pat: -500 paid, +500 given back
        spend = {"customer_email": EMAIL, "point_adjustment_amount": -store.balance(EMAIL)}
        assert store.yotpo("POST", "/points/adjust", spend).status_code == 200
        start = _window_from_now()
        response = store.heartland("PUT", f"/sales/tickets/{first}", {"voided?": True})
        assert response.status_code < 300, response.text
        store.cli("catch-up", "--since", start, check=False)  # the take-back of 500 fails
        start = _window_from_now()
        sam = store.move_to_new_member(sale, "sam@example.com", 1000)
        store.cli("catch-up", "--since", start, check=False)
        start = _window_from_now()
        _return(store, sam, sale, 2)
        store.cli("catch-up", "--since", start, check=False)

        # Pat already kept the 500 the failed take-back meant to remove, so the move gives
        # Pat nothing more: 1000 given, 1000 spent elsewhere, and the sale nets to 0.
        assert _net_for(store, EMAIL) == 0
        # Sam paid 500 for the sale and returned all of it, so Sam gets the 500 back.
        assert _net_for(store, "sam@example.com") == 1000


def test_return_before_first_deduction_counts(tmp_path: Path) -> None:
    for store in _store(tmp_path, "proportional"):
        store.set_options(FIVE_OFF)
        store.cli("offers", "sync")
        # Rung up without a customer: no one can pay for the discount yet.
        sale = store.ticket(customer_id=None, coupon_code="LOYALTY3101", items=[(2, 20.0)])
        store.catch_up()
        _return(store, None, sale, 1)
        store.catch_up()
        start = _window_from_now()
        store.move_to_new_member(sale, "sam@example.com", 1000)
        store.cli("catch-up", "--since", start)

        # Sam pays for the half that was kept.
        assert _net_for(store, "sam@example.com") == 1000 - 250
