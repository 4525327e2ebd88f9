"""A change to the settings that decide what earns is named when tickets are read again."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.reliability.support import Harness, harness
from yotposync.sandbox import Store, generate_store

ANCHOR = datetime(2026, 5, 18, 15, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def store() -> Store:
    return generate_store(seed=43, tickets=40, anchor=ANCHOR)


@pytest.fixture
def h(tmp_path: Path, store: Store) -> Iterator[Harness]:
    with harness(tmp_path, store) as made:
        yield made


def warnings_of(output: str) -> list[dict[str, object]]:
    events = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return [event for event in events if event["event"] == "decision_settings_changed"]


def test_changed_setting_named_by_catch_up(h: Harness) -> None:
    first = h.cli_ok("catch-up", "--since", h.since())
    h.configure(sync={"include_tax": True}, rules={"exclude_location_ids": [999]})

    preview = h.cli_ok("catch-up", "--since", h.since(), "--dry-run")
    changed = h.cli_ok("catch-up", "--since", h.since())
    again = h.cli_ok("catch-up", "--since", h.since())

    named = "Changed since the last run: rules.exclude_location_ids, sync.include_tax."
    assert "Changed since the last run" not in first.stdout
    assert named in preview.stdout
    assert named in changed.stdout
    assert "Queued 0 orders and refunds" not in changed.stdout
    assert "Changed since the last run" not in again.stdout
    logged = warnings_of(changed.stdout + changed.stderr)
    assert [event["settings"] for event in logged] == [
        ["rules.exclude_location_ids", "sync.include_tax"]
    ]
    assert warnings_of(again.stdout + again.stderr) == []
