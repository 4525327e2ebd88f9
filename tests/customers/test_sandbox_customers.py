"""The sandbox's customer side: addresses, deletions, merges, tiers, offers and accounts."""

from __future__ import annotations

import pytest

from tests.customers.support import Shop


def test_address_phone_served(shop: Shop) -> None:
    pat = shop.customer("pat@example.com", phone="512-555-0147")

    addresses = shop.send("GET", f"/customers/{pat}/addresses").json()

    assert [a["phone"] for a in addresses["results"]] == ["512-555-0147"]
    assert addresses["results"][0]["customer_id"] == pat


def test_address_change_moves_customer_updated_at(shop: Shop) -> None:
    pat = shop.customer("pat@example.com", phone="512-555-0147")
    address_id = shop.send("GET", f"/customers/{pat}/addresses").json()["results"][0]["id"]
    before = shop.heartland_customer(pat)["updated_at"]
    shop.tick()

    shop.send("PUT", f"/customers/{pat}/addresses/{address_id}", {"phone": "512-555-0199"})

    assert shop.heartland_customer(pat)["updated_at"] != before
    address = shop.send("GET", f"/customers/{pat}/addresses/{address_id}").json()
    assert address["phone"] == "512-555-0199"


def test_address_rejects_unknown_key(shop: Shop) -> None:
    pat = shop.customer("pat@example.com")

    response = shop.heartland_session.post(
        f"{shop.sandbox.heartland_url}/customers/{pat}/addresses", json={"fax": "1"}, timeout=5
    )

    assert response.status_code == 422
    assert "fax" in response.json()["details"]


def test_addresses_of_unknown_customer(shop: Shop) -> None:
    response = shop.heartland_session.get(
        f"{shop.sandbox.heartland_url}/customers/999/addresses", timeout=5
    )

    assert response.status_code == 404


def test_deleted_customer_listed_with_deleted_at(shop: Shop) -> None:
    pat = shop.customer("pat@example.com")
    shop.tick()

    shop.delete(pat)

    listed = shop.send("GET", "/customers").json()["results"]
    assert [c["deleted_at"] for c in listed] == ["2025-05-01T15:01:00+00:00"]
    assert listed[0]["updated_at"] == "2025-05-01T15:01:00+00:00"


def test_deleted_customer_rejects_writes(shop: Shop) -> None:
    pat = shop.customer("pat@example.com")
    shop.delete(pat)

    response = shop.heartland_session.put(
        f"{shop.sandbox.heartland_url}/customers/{pat}", json={"first_name": "X"}, timeout=5
    )

    assert response.status_code == 404


def test_merge_moves_tickets(shop: Shop) -> None:
    old = shop.customer("old@example.com")
    new = shop.customer("new@example.com")
    sale = shop.sale(old, 10)
    shop.tick()

    shop.merge(old, new)

    ticket = shop.send("GET", f"/sales/tickets/{sale}").json()
    assert ticket["customer_id"] == new
    assert ticket["updated_at"] == "2025-05-01T15:01:00+00:00"
    assert shop.heartland_customer(old)["deleted_at"] is not None


def test_merge_into_itself_rejected(shop: Shop) -> None:
    pat = shop.customer("pat@example.com")

    response = shop.heartland_session.post(
        f"{shop.sandbox.heartland_admin_url}/customers/{pat}/merge", json={"into": pat}, timeout=5
    )

    assert response.status_code == 422


def test_custom_field_filter_on_customers(shop: Shop) -> None:
    shop.customer("pat@example.com", opt_in="yes")
    shop.customer("sam@example.com", opt_in=None)

    listed = shop.heartland_session.get(
        f"{shop.sandbox.heartland_url}/customers",
        params={"_filter": '{"custom@loyalty_opt_in": "yes"}'},
        timeout=5,
    ).json()["results"]

    assert [c["email"] for c in listed] == ["pat@example.com"]


# Yotpo


def test_unknown_customer_is_404(shop: Shop) -> None:
    assert shop.loyalty(customer_id="404") is None
    assert shop.loyalty(pos_account_id="C-404") is None


def test_upsert_with_pos_account_found_by_it(shop: Shop) -> None:
    body = {"email": "pat@example.com", "id": "9100", "pos_account_id": "C-9100"}
    assert shop.yotpo_write("/customers", body).status_code == 200

    account = shop.loyalty(pos_account_id="C-9100")

    assert account is not None
    assert account["third_party_id"] == "9100"


def test_upsert_logged(shop: Shop) -> None:
    shop.yotpo_write("/customers", {"email": "pat@example.com", "id": "1"})
    shop.yotpo_write("/customers", {"email": "nope"})

    writes = shop.records()["customers"]

    assert [entry["status"] for entry in writes] == [200, 422]


def test_new_member_in_lowest_tier(shop: Shop) -> None:
    shop.yotpo_write("/customers", {"email": "pat@example.com", "id": "1"})

    account = shop.loyalty(customer_id="1")

    assert account is not None
    assert account["vip_tier_name"] == "Bronze"
    assert account["vip_tier_upgrade_requirements"]["points_needed"] == 500
    assert account["vip_tier_entry_date"] == "2025-05-01T15:00:00.000Z"


def order(
    order_id: str, email: str, cents: int, customer_id: str | None = None
) -> dict[str, object]:
    body: dict[str, object] = {
        "order_id": order_id,
        "customer_email": email,
        "total_amount_cents": cents,
    }
    if customer_id is not None:
        body["customer_id"] = customer_id
    return body


def test_tier_follows_points_earned(shop: Shop) -> None:
    shop.yotpo_write("/orders", order("o-1", "pat@example.com", 60000))

    account = shop.loyalty(customer_email="pat@example.com")

    assert account is not None
    assert account["vip_tier_name"] == "Silver"
    assert account["vip_tier_upgrade_requirements"] == {
        "points_needed": 900,
        "amount_cents_needed": 0,
        "purchases_needed": 0,
        "referrals_needed": 0,
    }
    assert account["vip_tier_actions_completed"]["points_earned"] == 600


def test_refund_can_lower_tier(shop: Shop) -> None:
    shop.yotpo_write("/orders", order("o-1", "pat@example.com", 60000))
    shop.yotpo_write("/refunds", {"id": "r-1", "order_id": "o-1", "total_amount_cents": 20000})

    account = shop.loyalty(customer_email="pat@example.com")

    assert account is not None
    assert account["vip_tier_name"] == "Bronze"
    assert account["vip_tier_upgrade_requirements"]["points_needed"] == 100


def test_top_tier_requirements_null(shop: Shop) -> None:
    shop.yotpo_write("/orders", order("o-1", "pat@example.com", 200000))

    account = shop.loyalty(customer_email="pat@example.com")

    assert account is not None
    assert account["vip_tier_name"] == "Gold"
    assert account["vip_tier_upgrade_requirements"]["points_needed"] is None


def test_tiers_listed(shop: Shop) -> None:
    tiers = shop.yotpo_session.get(f"{shop.sandbox.yotpo_url}/vip_tiers", timeout=5).json()

    assert [(t["name"], t["points_earned"]) for t in tiers] == [
        ("Bronze", 0),
        ("Silver", 500),
        ("Gold", 1500),
    ]


def options_for(shop: Shop, **params: str) -> list[str]:
    response = shop.yotpo_session.get(
        f"{shop.sandbox.yotpo_url}/redemption_options", params=params, timeout=5
    )
    assert response.status_code == 200, response.text
    return [option["name"] for option in response.json()]


def test_options_customer_can_afford(shop: Shop) -> None:
    shop.yotpo_write("/orders", order("o-1", "pat@example.com", 95000, customer_id="7"))

    assert options_for(shop, customer_id="7") == ["$5 Off", "$10 Off"]
    assert options_for(shop) == ["$5 Off", "$10 Off", "15% Off"]


def test_options_none_when_opted_out(shop: Shop) -> None:
    shop.yotpo_write("/orders", order("o-1", "pat@example.com", 95000))
    shop.yotpo_write("/customers", {"email": "pat@example.com", "opted_in": False})

    assert options_for(shop, customer_email="pat@example.com") == []


def test_options_unknown_customer_404(shop: Shop) -> None:
    response = shop.yotpo_session.get(
        f"{shop.sandbox.yotpo_url}/redemption_options", params={"customer_id": "9"}, timeout=5
    )

    assert response.status_code == 404


def test_order_credits_account_linked_by_id(shop: Shop) -> None:
    shop.yotpo_write("/customers", {"email": "pat@example.com", "id": "7"})

    shop.yotpo_write("/orders", order("o-1", "pat.new@example.com", 1000, customer_id="7"))

    account = shop.loyalty(customer_id="7")
    assert account is not None
    assert account["points_balance"] == 10
    assert shop.loyalty(customer_email="pat.new@example.com") is None


@pytest.mark.parametrize("new_email", ["pat.new@example.com", "PAT.NEW@example.com"])
def test_refund_after_email_change(shop: Shop, new_email: str) -> None:
    shop.yotpo_write("/orders", order("o-1", "pat@example.com", 1000, customer_id="7"))
    shop.yotpo_write("/customers", {"email": new_email, "id": "7"})

    response = shop.yotpo_write(
        "/refunds", {"id": "r-1", "order_id": "o-1", "total_amount_cents": 500}
    )

    assert response.status_code == 200
    account = shop.loyalty(customer_id="7")
    assert account is not None
    assert account["points_balance"] == 5
