"""The refresh job against the sandbox: the cashier's fields in Heartland follow Yotpo."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.customers.support import Jobs, Shop, make_jobs
from yotposync.sandbox.vip_tiers import STANDARD_REDEMPTION_OPTIONS


def loyalty_fields(shop: Shop, customer_id: int) -> dict[str, Any]:
    custom: dict[str, Any] = shop.heartland_customer(customer_id)["custom"]
    return {key: value for key, value in custom.items() if key != "loyalty_opt_in"}


def expected_fields(account: dict[str, Any]) -> dict[str, str]:
    needed = account["vip_tier_upgrade_requirements"]["points_needed"]
    return {
        "loyalty_points": str(account["points_balance"]),
        "loyalty_tier": account["vip_tier_name"] or "",
        "loyalty_points_to_next_tier": "" if needed is None else str(needed),
    }


def test_missing_fields_created(shop: Shop, jobs: Jobs) -> None:
    pat = shop.customer("pat@example.com")
    shop.sale(pat, 10)

    jobs.cycle()

    names = shop.custom_field_names()
    assert names["loyalty_points_to_next_tier"] == "Loyalty Points To Next Tier"
    assert names["loyalty_updated"] == "Loyalty Updated"
    assert names["loyalty_points"] == "Loyalty Points"


def test_fields_match_yotpo_after_sale(shop: Shop, jobs: Jobs) -> None:
    pat = shop.customer("pat@example.com")
    shop.sale(pat, 600)

    jobs.cycle()

    account = shop.loyalty(customer_id=str(pat))
    assert account is not None
    fields = loyalty_fields(shop, pat)
    assert {key: fields[key] for key in expected_fields(account)} == expected_fields(account)
    assert fields["loyalty_points"] == "600"
    assert fields["loyalty_tier"] == "Silver"
    assert fields["loyalty_points_to_next_tier"] == "900"
    assert fields["loyalty_offers"] == "$5 Off (500 points)"
    assert fields["loyalty_updated"] == "2025-05-01 15:05 UTC"


def test_fields_match_yotpo_after_return(shop: Shop, jobs: Jobs) -> None:
    pat = shop.customer("pat@example.com")
    sale = shop.sale(pat, 600)
    jobs.cycle()
    shop.refund(sale, pat, 200)

    jobs.cycle()

    account = shop.loyalty(customer_id=str(pat))
    assert account is not None
    fields = loyalty_fields(shop, pat)
    assert {key: fields[key] for key in expected_fields(account)} == expected_fields(account)
    assert fields["loyalty_points"] == "400"
    assert fields["loyalty_tier"] == "Bronze"
    assert fields["loyalty_points_to_next_tier"] == "100"
    assert fields["loyalty_offers"] == ""


def test_top_tier_has_no_next_tier(shop: Shop, jobs: Jobs) -> None:
    pat = shop.customer("pat@example.com")
    shop.sale(pat, 1600)

    jobs.cycle()

    fields = loyalty_fields(shop, pat)
    assert fields["loyalty_tier"] == "Gold"
    # Empty text equals the field's null, so nothing is written to it.
    assert fields["loyalty_points_to_next_tier"] is None
    assert (
        fields["loyalty_offers"]
        == "$5 Off (500 points); $10 Off (900 points); 15% Off (1500 points)"
    )


def test_enrolment_makes_refresh_due(shop: Shop, jobs: Jobs) -> None:
    pat = shop.customer("pat@example.com")
    jobs.customers()
    shop.tick()

    summary = jobs.refresh()

    assert summary.written == 1
    assert loyalty_fields(shop, pat)["loyalty_points"] == "0"


def test_nothing_due_writes_nothing(shop: Shop, jobs: Jobs) -> None:
    pat = shop.customer("pat@example.com")
    shop.sale(pat, 50)
    jobs.cycle()
    updated_at = shop.heartland_customer(pat)["updated_at"]
    shop.tick()

    summary = jobs.refresh()

    assert summary.due == 0
    assert shop.heartland_customer(pat)["updated_at"] == updated_at


def test_unchanged_values_not_written(shop: Shop, jobs: Jobs) -> None:
    pat = shop.customer("pat@example.com")
    shop.sale(pat, 50)
    jobs.cycle()
    before = shop.heartland_customer(pat)
    from yotposync.ledger import customers as book

    with jobs.ledger.transaction():
        book.mark_refresh_due(jobs.ledger, pat)
    shop.tick()

    summary = jobs.refresh()

    assert summary.due == 1
    assert summary.unchanged == 1
    assert shop.heartland_customer(pat)["updated_at"] == before["updated_at"]


def test_second_sale_refreshes_again(shop: Shop, jobs: Jobs) -> None:
    pat = shop.customer("pat@example.com")
    shop.sale(pat, 50)
    jobs.cycle()
    shop.sale(pat, 20)

    jobs.cycle()

    assert loyalty_fields(shop, pat)["loyalty_points"] == "70"


def test_active_customer_refreshed_periodically(shop: Shop, jobs: Jobs) -> None:
    pat = shop.customer("pat@example.com")
    shop.sale(pat, 50)
    jobs.cycle()
    # Points arrive from elsewhere (an online order), unknown to the ledger.
    shop.yotpo_write("/points/adjust", {"customer_email": "pat@example.com",
                                        "point_adjustment_amount": 500})  # fmt: skip
    shop.tick(3600)
    assert jobs.refresh().due == 0
    shop.tick(24 * 3600)

    summary = jobs.refresh()

    assert summary.written == 1
    assert loyalty_fields(shop, pat)["loyalty_points"] == "550"


def test_inactive_customer_not_refreshed(shop: Shop, tmp_path: Path) -> None:
    jobs = make_jobs(shop, tmp_path / "ledger.sqlite3", customers={"refresh_active_days": 1})
    pat = shop.customer("pat@example.com")
    shop.sale(pat, 50)
    jobs.cycle()
    shop.tick(3 * 24 * 3600)

    summary = jobs.refresh()

    assert summary.due == 0


def test_customer_without_account_not_written(shop: Shop, jobs: Jobs) -> None:
    sam = shop.customer(None, opt_in=None)
    shop.sale(sam, 50)

    jobs.cycle()

    assert loyalty_fields(shop, sam)["loyalty_points"] is None


def test_write_fields_off(shop: Shop, tmp_path: Path) -> None:
    jobs = make_jobs(shop, tmp_path / "ledger.sqlite3", customers={"write_fields": False})
    pat = shop.customer("pat@example.com")
    shop.sale(pat, 50)

    jobs.cycle()

    assert loyalty_fields(shop, pat)["loyalty_points"] is None
    assert "loyalty_updated" not in shop.custom_field_names()


def test_configured_time_zone_used(shop: Shop, tmp_path: Path) -> None:
    zone = {"field_time_zone": "America/Chicago"}
    jobs = make_jobs(shop, tmp_path / "ledger.sqlite3", customers=zone)
    pat = shop.customer("pat@example.com")
    shop.sale(pat, 50)

    jobs.cycle()

    assert loyalty_fields(shop, pat)["loyalty_updated"] == "2025-05-01 10:05 CDT"


def test_reaching_top_tier_clears_next_tier(shop: Shop, jobs: Jobs) -> None:
    pat = shop.customer("pat@example.com")
    shop.sale(pat, 600)
    jobs.cycle()
    shop.sale(pat, 1000)

    jobs.cycle()

    fields = loyalty_fields(shop, pat)
    assert fields["loyalty_tier"] == "Gold"
    assert fields["loyalty_points_to_next_tier"] == ""


def _set_options(shop: Shop, *options: dict[str, Any]) -> None:
    response = shop.yotpo_session.put(
        f"{shop.sandbox.yotpo_admin_url}/redemption_options",
        json={"options": list(options)},
        timeout=5,
    )
    assert response.status_code == 200, response.text


def test_offers_field_lists_register_coupons_only(shop: Shop, jobs: Jobs) -> None:
    five, _, fifteen = STANDARD_REDEMPTION_OPTIONS
    messy = {**five, "id": 3201, "name": "$1 Off spring\nreward; 1", "amount": 100}
    messy["discount_amount_cents"] = 100
    huge = {**fifteen, "id": 3202, "name": "Half", "amount": 10, "discount_percentage": 250}
    cash = {
        "id": 3203,
        "name": "Points for cash",
        "type": "Coupon",
        "amount": 1,
        "discount_type": "generic_variable",
        "discount_rate_cents": 1,
    }
    _set_options(shop, five, messy, huge, cash)
    pat = shop.customer("pat@example.com")
    shop.sale(pat, 600)

    jobs.cycle()

    # The 250 % offer and the points-for-cash offer have no coupon, so the cashier does not
    # see them. The other name is put on one line, without the separator.
    assert loyalty_fields(shop, pat)["loyalty_offers"] == (
        "$1 Off spring reward, 1 (100 points); $5 Off (500 points)"
    )


def test_offers_field_without_register_offers(shop: Shop, tmp_path: Path) -> None:
    jobs = make_jobs(shop, tmp_path / "ledger.sqlite3", offers={"enabled": False})
    try:
        pat = shop.customer("pat@example.com")
        shop.sale(pat, 600)
        jobs.cycle()
    finally:
        jobs.close()

    assert loyalty_fields(shop, pat)["loyalty_offers"] == "$5 Off (500 points)"


def test_online_redemption_refreshes_balance(shop: Shop, jobs: Jobs) -> None:
    pat = shop.customer("pat@example.com")
    shop.sale(pat, 600)
    jobs.cycle()
    redeem = {"customer_email": "pat@example.com", "redemption_option_id": 3101}
    assert shop.yotpo_write("/redemptions", redeem).status_code == 200

    jobs.codes()
    jobs.refresh()

    fields = loyalty_fields(shop, pat)
    assert fields["loyalty_points"] == "100"
    assert fields["loyalty_offers"] == ""


def test_offers_change_refreshes_active_customers(shop: Shop, jobs: Jobs) -> None:
    five = STANDARD_REDEMPTION_OPTIONS[0]
    pat = shop.customer("pat@example.com")
    shop.sale(pat, 600)
    jobs.cycle()
    dollar_off = {**five, "id": 3201, "name": "$1 Off", "amount": 100}
    dollar_off["discount_amount_cents"] = 100
    _set_options(shop, dollar_off)

    jobs.cycle()

    # No push changed Pat's balance, but the register's offers did.
    assert loyalty_fields(shop, pat)["loyalty_offers"] == "$1 Off (100 points)"
