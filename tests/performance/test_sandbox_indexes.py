"""Indexed list requests of the Heartland emulator return what a full scan returns."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from werkzeug.datastructures import MultiDict

from yotposync.sandbox.clock import ManualClock
from yotposync.sandbox.generator import generate_store
from yotposync.sandbox.heartland_state import HeartlandState
from yotposync.sandbox.indexes import IndexedRecords, plan_lookup
from yotposync.sandbox.listing import apply_only, page_envelope, parse_list_query
from yotposync.sandbox.records import TICKET_INCLUDES

START = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def state() -> HeartlandState:
    return HeartlandState(generate_store(seed=4, tickets=400), ManualClock(START))


def envelopes(state: HeartlandState, args: list[tuple[str, str]]) -> tuple[Any, Any]:
    """List tickets through the indexes and through a plain scan of the same records."""
    snapshot = state.ticket_snapshot()
    assert isinstance(snapshot, IndexedRecords)
    query = parse_list_query(MultiDict(args), state.ticket_fields(), TICKET_INCLUDES)
    fields = state.ticket_fields()

    def shape(record: Any, _query: Any) -> dict[str, Any]:
        return apply_only(record, None)

    indexed = page_envelope(snapshot, query, fields, shape)
    scanned = page_envelope(list(snapshot), query, fields, shape)
    return indexed, scanned


def keyset_args(after: dict[str, Any], per_page: int = 25, page: int = 1) -> list[tuple[str, str]]:
    condition = {
        "$or": [
            {"updated_at": {"$gt": after["updated_at"]}},
            {"updated_at": after["updated_at"], "id": {"$gt": after["id"]}},
        ]
    }
    return [
        ("sort[]", "updated_at"),
        ("sort[]", "id"),
        ("_filter", json.dumps([condition])),
        ("page", str(page)),
        ("per_page", str(per_page)),
    ]


def test_keyset_walk_matches_scan(state: HeartlandState) -> None:
    snapshot = state.ticket_snapshot()
    for after in (snapshot[0], snapshot[57], snapshot[len(snapshot) // 2], snapshot[-2]):
        indexed, scanned = envelopes(state, keyset_args(after))
        assert indexed == scanned


def test_window_bounds_match_scan(state: HeartlandState) -> None:
    snapshot = state.ticket_snapshot()
    low, high = snapshot[40]["updated_at"], snapshot[300]["updated_at"]
    for spec in (
        [{"updated_at": {"$gte": low}}, {"updated_at": {"$lte": high}}],
        [{"updated_at": {"$gt": low, "$lt": high}}],
        [{"updated_at": low}],
    ):
        for page in ("1", "3"):
            args = [
                ("sort[]", "updated_at"),
                ("_filter", json.dumps(spec)),
                ("page", page),
                ("per_page", "40"),
            ]
            indexed, scanned = envelopes(state, args)
            assert indexed == scanned


def test_other_conditions_still_applied(state: HeartlandState) -> None:
    snapshot = state.ticket_snapshot()
    spec = [{"updated_at": {"$gte": snapshot[10]["updated_at"]}}, {"type": "Return"}]
    args = [("sort[]", "updated_at"), ("_filter", json.dumps(spec)), ("per_page", "all")]

    indexed, scanned = envelopes(state, args)

    assert indexed == scanned
    assert {record["type"] for record in indexed["results"]} == {"Return"}


def test_id_lookup_matches_scan(state: HeartlandState) -> None:
    ids = [record["id"] for record in state.ticket_snapshot()[::37]] + [999_999, "7.5"]
    for spec in ({"id": {"$in": ids}}, {"id": ids[3]}, {"id": {"$eq": str(ids[1])}}):
        args = [("_filter", json.dumps(spec)), ("per_page", "100")]
        indexed, scanned = envelopes(state, args)
        assert indexed == scanned


def test_descending_sort_falls_back_to_scan(state: HeartlandState) -> None:
    snapshot = state.ticket_snapshot()
    args = [*keyset_args(snapshot[5])[2:], ("sort[]", "updated_at,desc")]

    indexed, scanned = envelopes(state, args)

    assert indexed == scanned


def test_snapshot_rebuilt_after_write() -> None:
    clock = ManualClock(START)
    state = HeartlandState(generate_store(seed=2, tickets=60), clock)
    before = state.ticket_snapshot()
    clock.advance(3600)

    ticket_id = state.create_ticket(
        {"station_id": 301, "item_lines": [{"item_id": 1, "unit_price": 5, "qty": 1}]}
    )
    after = state.ticket_snapshot()

    assert after is not before
    assert after[after.positions[ticket_id]]["id"] == ticket_id
    assert after.keys == sorted(after.keys or [])
    assert state.ticket_snapshot() is after


def test_plan_reads_keyset_bound() -> None:
    moment = "2025-05-01T12:00:00+00:00"
    spec = {"$or": [{"updated_at": {"$gt": moment}}, {"updated_at": moment, "id": {"$gt": 41}}]}

    plan = plan_lookup([[spec]], "updated_at")

    assert plan.lower is not None
    assert plan.lower[1] == 42
    assert plan.upper is None
    assert plan.covers_filter


def test_plan_leaves_unknown_condition_to_filter() -> None:
    plan = plan_lookup([{"updated_at": {"$neq": "2025-05-01"}}], "updated_at")

    assert not plan.bounded
    assert not plan.covers_filter
