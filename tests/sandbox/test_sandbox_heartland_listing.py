"""Heartland emulator reads over real HTTP: auth, paging, filters, sorting, field selection."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import requests
from sandbox_api import ANCHOR, TIMEOUT, Api

from yotposync.sandbox import Sandbox, Store
from yotposync.sandbox.policies import format_utc

# Auth.


def test_auth_missing_header_is_401(store_sandbox: Sandbox) -> None:
    response = requests.get(store_sandbox.heartland_url + "/sales/tickets", timeout=TIMEOUT)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"


def test_auth_wrong_token_is_401(store_sandbox: Sandbox) -> None:
    response = requests.get(
        store_sandbox.heartland_url + "/customers",
        headers={"Authorization": "Bearer wrong"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 401


def test_auth_wrong_scheme_is_401(store_sandbox: Sandbox) -> None:
    response = requests.get(
        store_sandbox.heartland_url + "/locations",
        headers={"Authorization": f"Token {store_sandbox.heartland_token}"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 401


def test_auth_needed_on_admin_paths(store_sandbox: Sandbox) -> None:
    response = requests.get(store_sandbox.heartland_admin_url + "/health", timeout=TIMEOUT)
    assert response.status_code == 401


def test_responses_use_http_1_1(store_heartland: Api) -> None:
    response = store_heartland.get("/sales/tickets")
    assert response.raw.version == 11


# Paging and envelope.


def test_paging_default_is_20(store_heartland: Api, small_store: Store) -> None:
    body = store_heartland.get("/sales/tickets").json()
    assert set(body) == {"results", "total", "pages"}
    assert body["total"] == len(small_store.tickets)
    assert len(body["results"]) == 20
    assert body["pages"] == -(-len(small_store.tickets) // 20)


def test_paging_walk_covers_every_ticket_once(store_heartland: Api, small_store: Store) -> None:
    seen: list[int] = []
    first = store_heartland.get("/sales/tickets", {"per_page": 7}).json()
    for page in range(1, first["pages"] + 1):
        body = store_heartland.get("/sales/tickets", {"per_page": 7, "page": page}).json()
        seen += [ticket["id"] for ticket in body["results"]]
    assert sorted(seen) == sorted(ticket.id for ticket in small_store.tickets)
    assert len(seen) == len(set(seen))


def test_paging_past_last_page_is_empty(store_heartland: Api) -> None:
    body = store_heartland.get("/sales/tickets", {"per_page": 50, "page": 99}).json()
    assert body["results"] == []
    assert body["total"] > 0


def test_paging_per_page_all(store_heartland: Api, small_store: Store) -> None:
    body = store_heartland.get("/sales/tickets", {"per_page": "all"}).json()
    assert len(body["results"]) == len(small_store.tickets)
    assert body["pages"] == 1


def test_paging_bad_values_are_400(store_heartland: Api) -> None:
    for params in ({"per_page": 1001}, {"per_page": 0}, {"per_page": "x"}, {"page": 0}):
        response = store_heartland.get("/sales/tickets", params)
        assert response.status_code == 400, params
        assert response.json()["error"] == "invalid_request", params


# Filters: each spelling.


def _ids(response: requests.Response) -> list[int]:
    assert response.status_code == 200, response.text
    return [ticket["id"] for ticket in response.json()["results"]]


def _all(api: Api, params: list[tuple[str, str]]) -> list[int]:
    return _ids(api.get("/sales/tickets", [("per_page", "all"), *params]))


def test_filter_json_object(store_heartland: Api, small_store: Store) -> None:
    returns = [t.id for t in small_store.tickets if t.type == "Return"]
    assert returns, "the seeded store should contain returns"
    found = _all(store_heartland, [("_filter", json.dumps({"type": "Return"}))])
    assert found == returns


def test_filter_json_array_means_and(store_heartland: Api, small_store: Store) -> None:
    expected = [t.id for t in small_store.tickets if t.type == "Ticket" and t.station_id == 301]
    spec = [{"type": "Ticket"}, {"station_id": 301}]
    assert _all(store_heartland, [("_filter", json.dumps(spec))]) == expected


def test_filter_bracket_eq(store_heartland: Api, small_store: Store) -> None:
    returns = [t.id for t in small_store.tickets if t.type == "Return"]
    assert _all(store_heartland, [("_filter[type][$eq]", "Return")]) == returns


def test_filter_bracket_plain_value(store_heartland: Api, small_store: Store) -> None:
    expected = [t.id for t in small_store.tickets if t.status == "incomplete"]
    assert expected, "the seeded store should contain open tickets"
    assert _all(store_heartland, [("_filter[status]", "incomplete")]) == expected


def test_filter_bracket_in_list(store_heartland: Api, small_store: Store) -> None:
    expected = [t.id for t in small_store.tickets if t.source_location_id in (201, 203)]
    params = [
        ("_filter[source_location_id][$in][]", "201"),
        ("_filter[source_location_id][$in][]", "203"),
    ]
    assert _all(store_heartland, params) == expected


def test_filter_repeated_json_entries(store_heartland: Api, small_store: Store) -> None:
    expected = [
        t.id for t in small_store.tickets if t.type == "Return" and t.source_location_id == 202
    ]
    params = [
        ("_filter[]", json.dumps({"type": "Return"})),
        ("_filter[]", json.dumps({"source_location_id": 202})),
    ]
    assert _all(store_heartland, params) == expected


def test_filter_tilde_plain_value(store_heartland: Api, small_store: Store) -> None:
    target = small_store.tickets[3]
    assert _all(store_heartland, [("~[public_id]", target.public_id)]) == [target.id]


def test_filter_tilde_operator_with_date(store_heartland: Api, small_store: Store) -> None:
    day = (ANCHOR - timedelta(days=10)).date()
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    expected = [t.id for t in small_store.tickets if t.created_at >= midnight]
    assert 0 < len(expected) < len(small_store.tickets)
    assert _all(store_heartland, [("~[created_at][$gte]", day.isoformat())]) == expected


def test_filter_timestamp_against_date(store_heartland: Api, small_store: Store) -> None:
    day = (ANCHOR - timedelta(days=20)).date().isoformat()
    limit = datetime.fromisoformat(day).replace(tzinfo=UTC)
    expected = [t.id for t in small_store.tickets if t.completed_at and t.completed_at < limit]
    assert expected
    spec = {"completed_at": {"$lt": day}}
    assert _all(store_heartland, [("_filter", json.dumps(spec))]) == expected


def test_filter_local_time_without_offset(store_heartland: Api, small_store: Store) -> None:
    limit = datetime(2025, 4, 20, 9, 0, 0)
    expected = [
        t.id
        for t in small_store.tickets
        if t.local_completed_at is not None and t.local_completed_at >= limit
    ]
    assert 0 < len(expected) < len(small_store.tickets)
    spec = {"local_completed_at": {"$gte": "2025-04-20T09:00:00"}}
    assert _all(store_heartland, [("_filter", json.dumps(spec))]) == expected


def test_filter_neq_null(store_heartland: Api, small_store: Store) -> None:
    expected = [t.id for t in small_store.tickets if t.customer_id is not None]
    spec = {"customer_id": {"$neq": None}}
    assert _all(store_heartland, [("_filter", json.dumps(spec))]) == expected


def test_filter_eq_null(store_heartland: Api, small_store: Store) -> None:
    expected = [t.id for t in small_store.tickets if t.customer_id is None]
    assert expected, "the seeded store should contain tickets without customer"
    assert _all(store_heartland, [("_filter[customer_id]", "null")]) == expected


def test_filter_boolean_from_text(store_heartland: Api, small_store: Store) -> None:
    expected = [t.id for t in small_store.tickets if t.voided]
    assert expected, "the seeded store should contain voided tickets"
    assert _all(store_heartland, [("_filter[voided?]", "true")]) == expected


def test_filter_money_range(store_heartland: Api, small_store: Store) -> None:
    rendered = store_heartland.get("/sales/tickets", {"per_page": "all"}).json()["results"]
    expected = [
        t["id"] for t in rendered if Decimal("20") < Decimal(str(t["total"])) <= Decimal("100")
    ]
    spec = {"total": {"$gt": 20, "$lte": "100"}}
    assert expected
    assert _all(store_heartland, [("_filter", json.dumps(spec))]) == expected


def test_filter_or_and(store_heartland: Api, small_store: Store) -> None:
    expected = [
        t.id
        for t in small_store.tickets
        if t.station_id == 301 or (t.type == "Return" and t.station_id == 302)
    ]
    spec = {"$or": [{"station_id": 301}, {"$and": [{"type": "Return"}, {"station_id": 302}]}]}
    assert _all(store_heartland, [("_filter", json.dumps(spec))]) == expected


def test_filter_custom_field(store_heartland: Api, small_store: Store) -> None:
    expected = [t.id for t in small_store.tickets if t.custom.get("web_order_no")]
    assert expected, "the seeded store should contain web orders"
    spec = {"custom@web_order_no": {"$neq": None}}
    assert _all(store_heartland, [("_filter", json.dumps(spec))]) == expected


def test_filter_unknown_field_is_400(store_heartland: Api) -> None:
    response = store_heartland.get("/sales/tickets", {"_filter": json.dumps({"colour": "red"})})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert "colour" in response.json()["message"]


def test_filter_unknown_custom_field_is_400(store_heartland: Api) -> None:
    response = store_heartland.get("/sales/tickets", {"~[custom@colour]": "red"})
    assert response.status_code == 400
    assert "colour" in response.json()["message"]


def test_filter_unknown_operator_is_400(store_heartland: Api) -> None:
    response = store_heartland.get("/sales/tickets", {"_filter[id][$like]": "5"})
    assert response.status_code == 400
    assert "$like" in response.json()["message"]


def test_filter_invalid_json_is_400(store_heartland: Api) -> None:
    response = store_heartland.get("/sales/tickets", {"_filter": "{type: Return"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_filter_on_customers_by_id_list(store_heartland: Api, small_store: Store) -> None:
    chosen = [small_store.customers[1].id, small_store.customers[4].id]
    spec = {"id": {"$in": chosen}}
    response = store_heartland.get("/customers", {"_filter": json.dumps(spec)})
    assert [customer["id"] for customer in response.json()["results"]] == chosen


def test_filter_customers_by_staff_field(store_heartland: Api, small_store: Store) -> None:
    staff = [c.id for c in small_store.customers if c.custom.get("staff") == "yes"]
    assert staff
    response = store_heartland.get("/customers", {"_filter[custom@staff]": "yes"})
    assert [customer["id"] for customer in response.json()["results"]] == staff


# Keyset walk on updated_at + id, as the daemon polls.


def _keyset_walk(api: Api, spelling: str, per_page: int) -> list[int]:
    seen: list[int] = []
    last: dict[str, object] | None = None
    while True:
        params: list[tuple[str, str]] = [
            ("sort[]", "updated_at"),
            ("sort[]", "id"),
            ("per_page", str(per_page)),
        ]
        if last is not None and spelling == "json":
            spec = {
                "$or": [
                    {"updated_at": {"$gt": last["updated_at"]}},
                    {"updated_at": last["updated_at"], "id": {"$gt": last["id"]}},
                ]
            }
            params.append(("_filter", json.dumps(spec)))
        elif last is not None:
            params += [
                ("_filter[$or][0][updated_at][$gt]", str(last["updated_at"])),
                ("_filter[$or][1][updated_at]", str(last["updated_at"])),
                ("_filter[$or][1][id][$gt]", str(last["id"])),
            ]
        results = api.get("/sales/tickets", params).json()["results"]
        if not results:
            return seen
        seen += [ticket["id"] for ticket in results]
        last = results[-1]


def test_keyset_walk_json_or(store_heartland: Api, small_store: Store) -> None:
    ordered = sorted(small_store.tickets, key=lambda t: (t.updated_at, t.id))
    ties = len(ordered) - len({t.updated_at for t in ordered})
    assert ties > 0, "the seeded store should contain same-second updates"
    assert _keyset_walk(store_heartland, "json", 4) == [t.id for t in ordered]


def test_keyset_walk_bracket_or(store_heartland: Api, small_store: Store) -> None:
    ordered = sorted(small_store.tickets, key=lambda t: (t.updated_at, t.id))
    assert _keyset_walk(store_heartland, "bracket", 5) == [t.id for t in ordered]


# Sorting.


def test_sort_descending_money(store_heartland: Api) -> None:
    results = store_heartland.get("/sales/tickets", {"sort[]": "total,desc", "per_page": "all"})
    totals = [Decimal(str(t["total"])) for t in results.json()["results"]]
    assert totals == sorted(totals, reverse=True)


def test_sort_plain_parameter(store_heartland: Api, small_store: Store) -> None:
    results = store_heartland.get("/sales/tickets", {"sort": "updated_at,desc", "per_page": 1})
    newest = max(small_store.tickets, key=lambda t: (t.updated_at, -t.id))
    assert results.json()["results"][0]["updated_at"] == format_utc(newest.updated_at)


def test_sort_two_keys(store_heartland: Api, small_store: Store) -> None:
    params = [("sort[]", "station_id,desc"), ("sort[]", "id"), ("per_page", "all")]
    expected = sorted(small_store.tickets, key=lambda t: (-t.station_id, t.id))
    assert _ids(store_heartland.get("/sales/tickets", params)) == [t.id for t in expected]


def test_sort_custom_field(store_heartland: Api) -> None:
    params = {"sort[]": "custom@web_order_no,desc", "per_page": "all"}
    results = store_heartland.get("/sales/tickets", params).json()["results"]
    values = [t["custom"]["web_order_no"] for t in results]
    present = [value for value in values if value is not None]
    assert values[: len(present)] == sorted(present, reverse=True)
    assert all(value is None for value in values[len(present) :])


def test_sort_unknown_field_is_400(store_heartland: Api) -> None:
    response = store_heartland.get("/sales/tickets", {"sort[]": "colour"})
    assert response.status_code == 400


def test_sort_bad_direction_is_400(store_heartland: Api) -> None:
    response = store_heartland.get("/sales/tickets", {"sort[]": "id,sideways"})
    assert response.status_code == 400


# Field selection and embedding.


def test_include_absent_by_default(store_heartland: Api) -> None:
    ticket = store_heartland.get("/sales/tickets", {"per_page": 1}).json()["results"][0]
    for key in ("lines", "payments", "subtotal", "tax_total"):
        assert key not in ticket, key
    assert "total_tax" in ticket


def test_include_lines_and_subtotal(store_heartland: Api) -> None:
    params = [("_include[]", "lines"), ("_include[]", "subtotal"), ("per_page", "1")]
    ticket = store_heartland.get("/sales/tickets", params).json()["results"][0]
    assert isinstance(ticket["lines"], list)
    assert "subtotal" in ticket
    assert "payments" not in ticket


def test_include_on_single_ticket(store_heartland: Api, small_store: Store) -> None:
    ticket_id = small_store.tickets[0].id
    params = [("_include[]", "payments"), ("_include[]", "tax_total")]
    ticket = store_heartland.get(f"/sales/tickets/{ticket_id}", params).json()
    assert "payments" in ticket
    assert ticket["tax_total"] == ticket["total_tax"]


def test_include_unknown_is_400(store_heartland: Api) -> None:
    response = store_heartland.get("/sales/tickets", {"_include[]": "coupons"})
    assert response.status_code == 400


def test_only_limits_fields(store_heartland: Api) -> None:
    params = [("_only[]", "id"), ("_only[]", "public_id"), ("per_page", "3")]
    results = store_heartland.get("/sales/tickets", params).json()["results"]
    assert [set(ticket) for ticket in results] == [{"id", "public_id"}] * 3


def test_only_keeps_included_relations(store_heartland: Api) -> None:
    params = [("_only[]", "id"), ("_include[]", "lines"), ("per_page", "1")]
    ticket = store_heartland.get("/sales/tickets", params).json()["results"][0]
    assert set(ticket) == {"id", "lines"}


def test_lines_envelope_per_page_all(store_heartland: Api, small_store: Store) -> None:
    ticket = small_store.tickets[0]
    body = store_heartland.get(f"/sales/tickets/{ticket.id}/lines", {"per_page": "all"}).json()
    assert body["total"] == len(ticket.lines)
    assert [line["id"] for line in body["results"]] == [line.id for line in ticket.lines]


def test_locations_include_stations(store_heartland: Api) -> None:
    plain = store_heartland.get("/locations").json()["results"]
    embedded = store_heartland.get("/locations", {"_include[]": "stations"}).json()["results"]
    assert len(plain) == 3
    assert "stations" not in plain[0]
    assert [len(location["stations"]) for location in embedded] == [2, 2, 2]


def test_custom_fields_listed(store_heartland: Api) -> None:
    fields = store_heartland.get("/custom_fields", {"per_page": "all"}).json()["results"]
    keys = {(field["group_id"], field["key"]) for field in fields}
    assert ("sales.transaction", "web_order_no") in keys
    assert ("customer", "staff") in keys


def test_unknown_ticket_is_404(store_heartland: Api) -> None:
    response = store_heartland.get("/sales/tickets/1")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_unknown_path_is_404_json(store_heartland: Api) -> None:
    response = store_heartland.get("/sales/orders")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
