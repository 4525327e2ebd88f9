"""Sales whose customer got an e-mail, or appeared in Heartland, after the sale earn then."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tests.customers.support import Jobs, Shop
from yotposync.clients.heartland import HeartlandClient


def ticket_kind(jobs: Jobs, ticket_id: int) -> str:
    row = jobs.ledger.db.execute("SELECT kind FROM tickets WHERE id = ?", [ticket_id]).fetchone()
    assert row is not None, f"ticket {ticket_id} is not in the ledger"
    return str(row[0])


def push_ids(jobs: Jobs) -> list[str]:
    return [str(r[0]) for r in jobs.ledger.db.execute("SELECT push_id FROM pushes ORDER BY seq")]


def test_sale_earns_after_email_added(shop: Shop, jobs: Jobs) -> None:
    pat = shop.customer(None, opt_in=None)
    sale = shop.sale(pat, 80)
    jobs.cycle()
    assert ticket_kind(jobs, sale) == "no_email"
    shop.edit(pat, email="pat@example.com")

    jobs.cycle()

    assert ticket_kind(jobs, sale) == "sale"
    assert push_ids(jobs) == [f"hl-{sale}"]
    account = shop.loyalty(customer_email="pat@example.com")
    assert account is not None
    assert account["points_balance"] == 80


def test_sale_earns_after_invalid_email_fixed(shop: Shop, jobs: Jobs) -> None:
    pat = shop.customer("pat at example.com")
    sale = shop.sale(pat, 25)
    jobs.cycle()
    shop.edit(pat, email="pat@example.com")

    jobs.cycle()

    assert ticket_kind(jobs, sale) == "sale"
    assert jobs.open_reviews() == []


def test_return_redecided_after_its_sale(shop: Shop, jobs: Jobs) -> None:
    pat = shop.customer(None, opt_in=None)
    sale = shop.sale(pat, 100)
    shop.tick()
    refund = shop.refund(sale, pat, 40)
    jobs.cycle()
    assert ticket_kind(jobs, refund) == "parent_not_earned"
    shop.edit(pat, email="pat@example.com")

    jobs.cycle()

    assert ticket_kind(jobs, sale) == "sale"
    assert ticket_kind(jobs, refund) == "return"
    assert push_ids(jobs) == [f"hl-{sale}", f"hl-ret-{refund}"]
    account = shop.loyalty(customer_email="pat@example.com")
    assert account is not None
    assert account["points_balance"] == 60


def test_redecision_runs_once_per_email(shop: Shop, jobs: Jobs) -> None:
    pat = shop.customer(None, opt_in=None)
    shop.sale(pat, 80)
    jobs.cycle()
    shop.edit(pat, email="pat@example.com")
    jobs.cycle()

    shop.tick(600)
    summary = jobs.customers()

    assert summary.redecided_tickets == 0


class HiddenCustomers:
    """Heartland as a poll reads it while a new customer is missing from the customer list."""

    def __init__(self, client: HeartlandClient, hidden: set[int]) -> None:
        self.client = client
        self.hidden = hidden

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def customers_by_id(self, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        found = self.client.customers_by_id(ids)
        return {key: value for key, value in found.items() if key not in self.hidden}

    def get_customer(self, customer_id: int) -> dict[str, Any] | None:
        return None if customer_id in self.hidden else self.client.get_customer(customer_id)


def test_sale_earns_when_customer_appears(shop: Shop, jobs: Jobs) -> None:
    pat = shop.customer("pat@example.com")
    sale = shop.sale(pat, 45)
    client = jobs.heartland
    jobs.heartland = HiddenCustomers(client, {pat})  # type: ignore[assignment]
    shop.tick()
    jobs.transactions()
    assert ticket_kind(jobs, sale) == "no_customer"
    jobs.heartland = client

    jobs.cycle()

    assert ticket_kind(jobs, sale) == "sale"
    account = shop.loyalty(customer_id=str(pat))
    assert account is not None
    assert account["points_balance"] == 45


def test_sale_of_customer_in_review_waits(shop: Shop, jobs: Jobs) -> None:
    fay = shop.customer("fay@example.com")
    jobs.cycle()
    ivy = shop.customer("ivy@example.com")
    jobs.cycle()
    # Ivy takes Fay's e-mail: she goes to review, and nothing may reach Fay's account.
    shop.edit(ivy, email="fay@example.com")
    jobs.cycle()
    sale = shop.sale(ivy, 60)

    jobs.cycle()

    assert ticket_kind(jobs, sale) == "no_email"
    reason = jobs.ledger.db.execute("SELECT reason FROM tickets WHERE id = ?", [sale]).fetchone()
    assert "waits for staff review" in reason[0]
    assert push_ids(jobs) == []
    account = shop.loyalty(customer_email="fay@example.com")
    assert account is not None
    assert account["points_balance"] == 0
    assert account["third_party_id"] == str(fay)

    # Ivy gets her own e-mail back: the review closes and the sale earns for her.
    shop.edit(ivy, email="ivy@example.com")
    jobs.cycle()

    assert ticket_kind(jobs, sale) == "sale"
    assert push_ids(jobs) == [f"hl-{sale}"]
    mine = shop.loyalty(customer_email="ivy@example.com")
    assert mine is not None
    assert mine["points_balance"] == 60


def test_sale_earns_when_other_customer_frees_email(shop: Shop, jobs: Jobs) -> None:
    fay = shop.customer("fay@example.com")
    jobs.cycle()
    ivy = shop.customer("fay@example.com")
    jobs.cycle()
    sale = shop.sale(ivy, 40)
    jobs.cycle()
    assert ticket_kind(jobs, sale) == "no_email"
    # A later sale moves the cursor on, so no walk reads Ivy's sale again by itself.
    shop.tick(7200)
    shop.sale(shop.customer("kim@example.com"), 10)
    jobs.cycle()

    # Fay moves to another address, so the one Ivy has is hers alone.
    shop.edit(fay, email="fay.new@example.com")
    jobs.cycle()
    jobs.cycle()

    assert ticket_kind(jobs, sale) == "sale"
    assert f"hl-{sale}" in push_ids(jobs)


def test_earned_sale_keeps_points_in_review(shop: Shop, jobs: Jobs) -> None:
    shop.customer("fay@example.com")
    jobs.cycle()
    bob = shop.customer("bob@example.com")
    sale = shop.sale(bob, 60)
    jobs.cycle()
    assert push_ids(jobs) == [f"hl-{sale}"]

    # Bob goes to review; his earned sale is read again in the overlap window.
    shop.edit(bob, email="fay@example.com")
    jobs.cycle()
    later = shop.sale(bob, 20)
    jobs.cycle()
    # Read again while Bob still waits: the new sale stays held.
    jobs.cycle()

    assert ticket_kind(jobs, sale) == "sale"
    assert ticket_kind(jobs, later) == "no_email"
    assert push_ids(jobs) == [f"hl-{sale}"]
