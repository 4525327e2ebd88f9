"""Commands on a ledger edited by hand: one error naming the value and the fix, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ops.scenario import Scenario, run_cli
from yotposync.errors import LedgerError
from yotposync.ledger.integrity import stored_int, stored_time


@pytest.mark.parametrize(
    ("statement", "command", "named"),
    [
        (
            "UPDATE cursors SET updated_at = 'garbage'",
            ("status",),
            "the ledger's cursors.updated_at of cursor 'tickets' is 'garbage', not a timestamp",
        ),
        (
            "UPDATE cursors SET last_id = 'x'",
            ("catch-up", "--since", "2000-01-01", "--dry-run"),
            "the ledger's cursors.last_id of cursor 'tickets' is 'x', not a whole number",
        ),
        (
            "UPDATE runs SET summary = '{bad'",
            ("status",),
            "is '{bad', not a JSON object",
        ),
        (
            "UPDATE pushes SET state = 'pending', next_attempt_at = 'soon' WHERE seq = 1",
            ("catch-up", "--since", "2000-01-01"),
            "the ledger's pushes.next_attempt_at of push hl-",
        ),
        (
            "UPDATE pushes SET state = 'pending', next_attempt_at = 'soon' WHERE seq = 1",
            ("status",),
            "the ledger's pushes.next_attempt_at of push hl-",
        ),
        (
            "UPDATE pushes SET amount_cents = 'abc' WHERE state = 'confirmed'",
            ("report", "--since", "2000-01-01"),
            "the ledger's pushes.amount_cents of push hl-",
        ),
        (
            "UPDATE cursors SET updated_at = '2026-12-05T09:00:00'",
            ("status",),
            "is '2026-12-05T09:00:00', not a timestamp with its UTC offset",
        ),
        (
            "UPDATE tickets SET versions = 'two', updated_at = '2000-01-01T00:00:00+00:00'",
            ("catch-up", "--since", "2000-01-01", "--dry-run"),
            "tickets.versions of ticket",
        ),
        (
            # A lower amount would make the next walk send the difference again.
            "UPDATE pushes SET amount_cents = amount_cents - 1000 WHERE kind = 'order'",
            ("catch-up", "--since", "2000-01-01", "--dry-run"),
            "the amount in the payload stored with it",
        ),
    ],
)
def test_edited_value_named_with_fix(
    scenario: Scenario, tmp_path: Path, statement: str, command: tuple[str, ...], named: str
) -> None:
    config = scenario.edited_copy(tmp_path, statement)

    result = run_cli(config, *command, check=False)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert named in result.stderr
    assert "Put back the value it had, or stop yotposync" in result.stderr


def test_stored_time_parses_written_values() -> None:
    parsed = stored_time("2026-12-01T10:00:00+00:00", "cursors.updated_at")

    assert parsed.isoformat() == "2026-12-01T10:00:00+00:00"


@pytest.mark.parametrize("value", [None, 5, "12/01/2026", b"2026-12-01"])
def test_stored_time_rejects_other_values(value: object) -> None:
    with pytest.raises(LedgerError, match=r"the ledger's a\.b is"):
        stored_time(value, "a.b")


@pytest.mark.parametrize("value", ["7", 7.0, True, None])
def test_stored_int_rejects_other_values(value: object) -> None:
    with pytest.raises(LedgerError, match="not a whole number"):
        stored_int(value, "a.b")
