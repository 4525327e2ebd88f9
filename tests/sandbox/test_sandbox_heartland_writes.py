"""Heartland emulator writes over real HTTP: tickets in both shapes, edits, voids, customers."""

from __future__ import annotations

import threading
from typing import Any

from sandbox_api import ANCHOR, Api

from yotposync.sandbox import ManualClock, Sandbox, generate_store
from yotposync.sandbox.policies import format_utc

NOW = format_utc(ANCHOR)


def _customer(api: Api, **fields: Any) -> int:
    body = {"first_name": "Zoë", "last_name": "Núñez", "email": "zoe@example.com", **fields}
    response = api.post("/customers", body)
    assert response.status_code == 201, response.text
    return int(response.headers["Location"].rsplit("/", 1)[1])


def _nested_ticket(customer_id: int | None = None) -> dict[str, Any]:
    return {
        "station_id": 301,
        "customer_id": customer_id,
        "sales_rep": "Sam",
        "lines": [
            {
                "type": "ItemLine",
                "item_id": 4401,
                "description": "Canvas Tote",
                "qty": 2,
                "original_unit_price": 30,
                "price_adjustments": [{"delta_price": -3}],
            },
            {
                "type": "ItemLine",
                "item_id": 4402,
                "description": "Ceramic Mug",
                "qty": 1,
                "unit_price": 14.5,
            },
            {"type": "TaxLine", "description": "Sales Tax", "value": 5.24},
        ],
        "discounts": [{"description": "$5 off", "amount": 5}],
        "payments": [
            {"amount": 68.74, "status": "voided", "description": "declined card"},
            {"amount": 60, "payment_type_id": 2},
        ],
    }


def _create(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post("/sales/tickets", body)
    assert response.status_code == 201, response.text
    assert response.content == b""
    ticket = api.follow(response)
    assert ticket.status_code == 200
    result: dict[str, Any] = ticket.json()
    return result


# Creating tickets.


def test_create_nested_shape_answers_201(heartland: Api) -> None:
    response = heartland.post("/sales/tickets", _nested_ticket())
    assert response.status_code == 201
    assert response.headers["Location"].startswith("/api/sales/tickets/")
    assert response.content == b""


def test_create_nested_shape_computes_money(heartland: Api) -> None:
    ticket = _create(heartland, _nested_ticket())
    assert ticket["original_subtotal"] == 74.5
    assert ticket["total_discounts"] == 11
    assert ticket["total_tax"] == 5.24
    assert ticket["total"] == 68.74
    assert ticket["total_paid"] == 60
    assert ticket["balance"] == 8.74
    assert ticket["total_item_qty"] == 3


def test_create_money_types(heartland: Api) -> None:
    ticket = _create(heartland, _nested_ticket())
    assert type(ticket["total_paid"]) is int
    assert type(ticket["total"]) is float


def test_create_subtotal_after_discount(heartland: Api) -> None:
    ticket_id = _create(heartland, _nested_ticket())["id"]
    ticket = heartland.get(f"/sales/tickets/{ticket_id}", {"_include[]": "subtotal"}).json()
    assert ticket["subtotal"] == 63.5


def test_create_line_markdown_fields(heartland: Api) -> None:
    ticket_id = _create(heartland, _nested_ticket())["id"]
    lines = heartland.get(f"/sales/tickets/{ticket_id}/lines").json()["results"]
    tote, mug, tax = lines
    assert tote["adjusted_unit_price"] == 27
    assert tote["unit_price"] == 27
    assert tote["value"] == 54
    assert [a["delta_price"] for a in tote["price_adjustments"]] == [-3]
    assert mug["adjusted_unit_price"] is None
    assert mug["price_adjustments"] == []
    assert tax["item_id"] is None
    assert tax["qty"] == 0


def test_create_keeps_failed_payment(heartland: Api) -> None:
    ticket_id = _create(heartland, _nested_ticket())["id"]
    payments = heartland.get(f"/sales/tickets/{ticket_id}/payments").json()["results"]
    assert [p["status"] for p in payments] == ["voided", "complete"]


def test_create_open_by_default(heartland: Api) -> None:
    ticket = _create(heartland, _nested_ticket())
    assert ticket["status"] == "incomplete"
    assert ticket["completed?"] is False
    assert ticket["completed_at"] is None
    assert ticket["local_completed_at"] is None
    assert ticket["type"] == "Ticket"


def test_create_derives_location_from_station(heartland: Api) -> None:
    body = _nested_ticket()
    body["station_id"] = 303
    assert _create(heartland, body)["source_location_id"] == 202


def test_create_public_id_defaults_to_id(heartland: Api) -> None:
    ticket = _create(heartland, _nested_ticket())
    assert ticket["public_id"] == str(ticket["id"])


def test_create_customer_name_from_customer(heartland: Api) -> None:
    customer_id = _customer(heartland)
    assert _create(heartland, _nested_ticket(customer_id))["customer_name"] == "Zoë Núñez"


def test_create_importer_shape(heartland: Api) -> None:
    _customer(heartland, public_id="C-77")
    body = {
        "public_id": "H-1001",
        "station_id": 305,
        "customer_public_id": "C-77",
        "created_at": "2025-03-02T15:00:00Z",
        "local_created_at": "2025-03-02T08:00:00",
        "completed_at": "2025-03-02T15:00:00Z",
        "local_completed_at": "2025-03-02T08:00:00",
        "sales_rep": "Unknown(Jordan)",
        "item_lines": [
            {"type": "ItemLine", "item_id": 4406, "unit_price": 80.0, "qty": 1,
             "original_unit_price": 89.0, "description": "Wool Throw"},
        ],
        "tax_lines": [{"type": "TaxLine", "description": "Sales Tax", "value": 2.32}],
        "shipping_lines": [{"description": "Shipping", "value": 7.95}],
        "payments": [
            {"type": "Payments::ExternalPayment", "description": "External", "deposit": False,
             "payment_type_id": 1, "amount": 90.27, "completed_at": "2025-03-02T15:00:00Z",
             "updated_at": "2025-03-02T15:00:00Z"},
        ],
        "affect_inventory": False,
        "recalculate": False,
        "status": "complete",
        "custom@web_order_no": "W-55",
    }  # fmt: skip

    ticket = _create(heartland, body)

    assert ticket["public_id"] == "H-1001"
    assert ticket["status"] == "complete"
    assert ticket["completed?"] is True
    assert ticket["completed_at"] == "2025-03-02T15:00:00+00:00"
    assert ticket["local_completed_at"] == "2025-03-02T08:00:00+00:00"
    assert ticket["updated_at"] == NOW
    assert ticket["source_location_id"] == 203
    assert ticket["custom"]["web_order_no"] == "W-55"
    assert ticket["total"] == 90.27
    assert ticket["balance"] == 0


def test_create_importer_line_marked_down(heartland: Api) -> None:
    body = {
        "station_id": 301,
        "item_lines": [{"item_id": 4406, "unit_price": 80, "qty": 1, "original_unit_price": 89}],
    }
    ticket_id = _create(heartland, body)["id"]
    line = heartland.get(f"/sales/tickets/{ticket_id}/lines").json()["results"][0]
    assert line["adjusted_unit_price"] == 80
    assert line["original_unit_price"] == 89
    assert [a["delta_price"] for a in line["price_adjustments"]] == [-9]


def test_create_without_recalculate_keeps_value(heartland: Api) -> None:
    body = {
        "station_id": 301,
        "recalculate": False,
        "item_lines": [{"item_id": 1, "unit_price": 6, "qty": 2, "value": 10}],
    }
    assert _create(heartland, body)["total"] == 10


def test_create_with_recalculate_ignores_value(heartland: Api) -> None:
    body = {
        "station_id": 301,
        "item_lines": [{"item_id": 1, "unit_price": 6, "qty": 2, "value": 10}],
    }
    assert _create(heartland, body)["total"] == 12


def test_create_complete_sets_local_time(heartland: Api) -> None:
    body = {**_nested_ticket(), "status": "complete"}
    ticket = _create(heartland, body)
    assert ticket["completed_at"] == NOW
    # Station 301 is in Chicago, five hours behind UTC on 2025-05-01.
    assert ticket["local_completed_at"] == "2025-05-01T07:00:00+00:00"


def test_create_return_with_parent(heartland: Api) -> None:
    parent = _create(heartland, {**_nested_ticket(), "status": "complete"})
    body = {
        "type": "Return",
        "station_id": 301,
        "parent_transaction_id": parent["id"],
        "lines": [{"type": "ItemLine", "item_id": 4401, "qty": -1, "original_unit_price": 30,
                   "adjusted_unit_price": 27}],
    }  # fmt: skip
    ticket = _create(heartland, body)
    assert ticket["type"] == "Return"
    assert ticket["parent_transaction_id"] == parent["id"]
    assert ticket["total"] == -27


def test_create_missing_station_is_422(heartland: Api) -> None:
    body = _nested_ticket()
    del body["station_id"]
    response = heartland.post("/sales/tickets", body)
    assert response.status_code == 422
    assert response.json()["error"] == "validation_error"
    assert "station_id" in response.json()["details"]


def test_create_lists_every_problem(heartland: Api) -> None:
    body = {
        "station_id": 999,
        "customer_id": 1,
        "lines": [{"type": "DiscountLine", "value": 1}, {"type": "ItemLine", "qty": "two"}],
    }
    details = heartland.post("/sales/tickets", body).json()["details"]
    assert "station_id" in details
    assert "customer_id" in details
    assert "lines[0].type" in details
    assert "lines[1].qty" in details


def test_create_unknown_key_is_422(heartland: Api) -> None:
    response = heartland.post("/sales/tickets", {**_nested_ticket(), "totl": 5})
    assert response.status_code == 422
    assert "totl" in response.json()["details"]


def test_create_unknown_custom_field_is_422(heartland: Api) -> None:
    response = heartland.post("/sales/tickets", {**_nested_ticket(), "custom@colour": "red"})
    assert response.status_code == 422
    assert "custom@colour" in response.json()["details"]


def test_create_duplicate_public_id_is_422(heartland: Api) -> None:
    _create(heartland, {**_nested_ticket(), "public_id": "A-1"})
    response = heartland.post("/sales/tickets", {**_nested_ticket(), "public_id": "A-1"})
    assert response.status_code == 422


def test_create_invalid_json_is_400(heartland: Api) -> None:
    response = heartland.session.post(
        heartland.base_url + "/sales/tickets", data=b"{not json", timeout=5
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


# Updating tickets.


def test_complete_moves_updated_at(heartland: Api, clock: ManualClock) -> None:
    ticket_id = _create(heartland, _nested_ticket())["id"]
    clock.advance(90)
    ticket = heartland.put(f"/sales/tickets/{ticket_id}", {"status": "complete"}).json()
    later = format_utc(clock.now())
    assert ticket["status"] == "complete"
    assert ticket["completed?"] is True
    assert ticket["completed_at"] == later
    assert ticket["updated_at"] == later
    assert ticket["created_at"] == NOW


def test_edit_customer_and_custom(heartland: Api, clock: ManualClock) -> None:
    customer_id = _customer(heartland)
    ticket_id = _create(heartland, _nested_ticket())["id"]
    clock.advance(5)
    body = {"customer_id": customer_id, "custom@web_order_no": "W-1"}
    ticket = heartland.put(f"/sales/tickets/{ticket_id}", body).json()
    assert ticket["customer_id"] == customer_id
    assert ticket["custom"]["web_order_no"] == "W-1"
    assert ticket["updated_at"] == format_utc(clock.now())


def test_edit_without_change_keeps_updated_at(heartland: Api, clock: ManualClock) -> None:
    ticket_id = _create(heartland, _nested_ticket())["id"]
    clock.advance(5)
    ticket = heartland.put(f"/sales/tickets/{ticket_id}", {"sales_rep": "Sam"}).json()
    assert ticket["updated_at"] == NOW


def test_void_completed_keeps_status(heartland: Api, clock: ManualClock) -> None:
    ticket_id = _create(heartland, {**_nested_ticket(), "status": "complete"})["id"]
    clock.advance(60)
    ticket = heartland.put(f"/sales/tickets/{ticket_id}", {"voided?": True}).json()
    assert ticket["status"] == "complete"
    assert ticket["voided?"] is True
    assert ticket["completed?"] is True
    assert ticket["updated_at"] == format_utc(clock.now())


def test_void_open_sets_status_voided(heartland: Api) -> None:
    ticket_id = _create(heartland, _nested_ticket())["id"]
    ticket = heartland.put(f"/sales/tickets/{ticket_id}", {"status": "voided"}).json()
    assert ticket["status"] == "voided"
    assert ticket["voided?"] is True


def test_voided_ticket_rejects_changes(heartland: Api) -> None:
    ticket_id = _create(heartland, _nested_ticket())["id"]
    heartland.put(f"/sales/tickets/{ticket_id}", {"voided?": True})
    complete = heartland.put(f"/sales/tickets/{ticket_id}", {"status": "complete"})
    rep = heartland.put(f"/sales/tickets/{ticket_id}", {"voided?": True, "sales_rep": "Al"})
    line = heartland.post(f"/sales/tickets/{ticket_id}/lines", {"type": "TaxLine", "value": 1})
    again = heartland.put(f"/sales/tickets/{ticket_id}", {"voided?": True})
    assert complete.status_code == 422
    assert rep.status_code == 422
    assert "sales_rep" in rep.json()["details"]
    assert line.status_code == 422
    assert again.status_code == 200


def test_reopen_completed_is_422(heartland: Api) -> None:
    ticket_id = _create(heartland, {**_nested_ticket(), "status": "complete"})["id"]
    response = heartland.put(f"/sales/tickets/{ticket_id}", {"status": "incomplete"})
    assert response.status_code == 422


def test_update_read_only_field_is_422(heartland: Api) -> None:
    ticket_id = _create(heartland, _nested_ticket())["id"]
    response = heartland.put(f"/sales/tickets/{ticket_id}", {"total": 1})
    assert response.status_code == 422
    assert "total" in response.json()["details"]


def test_update_unknown_ticket_is_404(heartland: Api) -> None:
    assert heartland.put("/sales/tickets/424242", {"status": "complete"}).status_code == 404


def test_add_line_moves_updated_at(heartland: Api, clock: ManualClock) -> None:
    ticket_id = _create(heartland, _nested_ticket())["id"]
    clock.advance(30)
    body = {"type": "ItemLine", "item_id": 4407, "qty": 1, "unit_price": 7.99}
    response = heartland.post(f"/sales/tickets/{ticket_id}/lines", body)
    line = heartland.follow(response).json()
    ticket = heartland.get(f"/sales/tickets/{ticket_id}").json()
    assert response.status_code == 201
    assert line["value"] == 7.99
    assert ticket["updated_at"] == format_utc(clock.now())
    assert ticket["total"] == 76.73


def test_add_payment_moves_updated_at(heartland: Api, clock: ManualClock) -> None:
    ticket_id = _create(heartland, _nested_ticket())["id"]
    clock.advance(30)
    response = heartland.post(f"/sales/tickets/{ticket_id}/payments", {"amount": 8.74})
    payment = heartland.follow(response).json()
    ticket = heartland.get(f"/sales/tickets/{ticket_id}").json()
    assert payment["status"] == "complete"
    assert ticket["balance"] == 0
    assert ticket["updated_at"] == format_utc(clock.now())


def test_concurrent_creates_get_unique_ids(heartland: Api) -> None:
    locations: list[str] = []
    lock = threading.Lock()

    def create_many() -> None:
        for _ in range(10):
            response = heartland.post("/sales/tickets", _nested_ticket())
            with lock:
                locations.append(response.headers.get("Location", ""))

    threads = [threading.Thread(target=create_many) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(locations)) == 60
    assert heartland.get("/sales/tickets", {"per_page": 1}).json()["total"] == 60


# Customers, custom fields, late tickets.


def test_customer_create_and_read(heartland: Api) -> None:
    customer = heartland.get(f"/customers/{_customer(heartland)}").json()
    assert customer["first_name"] == "Zoë"
    assert customer["email"] == "zoe@example.com"
    assert customer["active"] is True
    assert customer["public_id"] == f"C-{customer['id']}"
    assert customer["custom"]["staff"] is None
    assert customer["deleted_at"] is None
    assert customer["created_at"] == NOW


def test_customer_without_email(heartland: Api) -> None:
    customer_id = _customer(heartland, email=None)
    assert heartland.get(f"/customers/{customer_id}").json()["email"] is None


def test_customer_missing_name_is_422(heartland: Api) -> None:
    response = heartland.post("/customers", {"last_name": "Lee"})
    assert response.status_code == 422
    assert "first_name" in response.json()["details"]


def test_customer_update_moves_updated_at(heartland: Api, clock: ManualClock) -> None:
    customer_id = _customer(heartland)
    clock.advance(10)
    body = {"email": "zoe.n@example.com", "custom@loyalty_points": "120"}
    customer = heartland.put(f"/customers/{customer_id}", body).json()
    assert customer["email"] == "zoe.n@example.com"
    assert customer["custom"]["loyalty_points"] == "120"
    assert customer["updated_at"] == format_utc(clock.now())


def test_customer_rename_shows_on_tickets(heartland: Api) -> None:
    customer_id = _customer(heartland)
    ticket_id = _create(heartland, _nested_ticket(customer_id))["id"]
    heartland.put(f"/customers/{customer_id}", {"first_name": "Zoe"})
    assert heartland.get(f"/sales/tickets/{ticket_id}").json()["customer_name"] == "Zoe Núñez"


def test_custom_field_create_then_use(heartland: Api) -> None:
    response = heartland.post(
        "/custom_fields", {"group_id": "customer", "name": "Loyalty Tier Name"}
    )
    definition = heartland.follow(response).json()
    customer_id = _customer(heartland, **{"custom@loyalty_tier_name": "Gold"})
    assert definition["key"] == "loyalty_tier_name"
    assert (
        heartland.get(f"/customers/{customer_id}").json()["custom"]["loyalty_tier_name"] == "Gold"
    )


def test_release_late_inserts_held_tickets(connect: Any) -> None:
    clock = ManualClock(ANCHOR)
    store = generate_store(seed=3, tickets=150, anchor=ANCHOR)
    assert store.late_tickets, "the seeded store should hold late tickets back"
    with Sandbox(store=store, clock=clock) as sandbox:
        heartland, _ = connect(sandbox)
        before = heartland.get("/sales/tickets", {"per_page": 1}).json()["total"]
        held_back = heartland.admin("GET", "/health").json()["late_tickets_held"]
        clock.advance(3600)
        released = heartland.admin("POST", "/release-late").json()["released"]
        after = heartland.get("/sales/tickets", {"per_page": 1}).json()["total"]
        late = heartland.get(f"/sales/tickets/{store.late_tickets[0].id}").json()
    assert held_back == len(store.late_tickets)
    assert released == held_back
    assert after == before + released
    assert late["updated_at"] == format_utc(clock.now())
    assert late["completed_at"] < format_utc(ANCHOR)
