"""Commands on a ledger edited by hand: one error naming the edit and the fix, no traceback."""

from __future__ import annotations

import sqlite3
from contextlib import closing
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


SCHEMA_EDITS = {
    "dropped table": ("DROP TABLE pushes", "is missing the table pushes"),
    "dropped column": (
        "ALTER TABLE tickets DROP COLUMN rule",
        "is missing the column tickets.rule",
    ),
    "renamed column": (
        "ALTER TABLE tickets RENAME COLUMN kind TO ticket_kind",
        "is missing the column tickets.kind",
    ),
}

SCHEMA_COMMANDS: dict[str, tuple[str, ...]] = {
    "catch-up": ("catch-up", "--since", "2000-01-01"),
    "dry run": ("catch-up", "--since", "2000-01-01", "--dry-run"),
    "explain": ("explain", "{T1}", "--no-balance"),
    "status": ("status",),
    "report": ("report", "--since", "2000-01-01"),
}


def ledger_content(path: Path) -> dict[str, list[tuple[object, ...]]]:
    with closing(sqlite3.connect(path)) as connection:
        tables = [
            str(row[0])
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
        ]
        return {
            table: list(connection.execute(f'SELECT * FROM "{table}" ORDER BY rowid'))
            for table in tables
        }


@pytest.mark.parametrize("command", list(SCHEMA_COMMANDS))
@pytest.mark.parametrize("edit", ["dropped table", "dropped column"])
def test_edited_schema_named_with_fix(
    scenario: Scenario, tmp_path: Path, edit: str, command: str
) -> None:
    statement, missing = SCHEMA_EDITS[edit]
    config = scenario.edited_copy(tmp_path, statement)
    arguments = [part.format(**scenario.ids) for part in SCHEMA_COMMANDS[command]]

    result = run_cli(config, *arguments, check=False)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    copy = tmp_path / "edited.sqlite3"
    assert f"error: the ledger {copy} {missing}, so the ledger was edited or damaged" in (
        result.stderr
    )
    assert "restore the ledger from a backup" in result.stderr


def test_renamed_column_named_with_fix(scenario: Scenario, tmp_path: Path) -> None:
    statement, missing = SCHEMA_EDITS["renamed column"]
    config = scenario.edited_copy(tmp_path, statement)

    result = run_cli(config, "status", check=False)

    assert result.returncode == 1
    assert f"{missing}, so the ledger was edited or damaged" in result.stderr


def test_edited_schema_catch_up_changes_nothing(scenario: Scenario, tmp_path: Path) -> None:
    config = scenario.edited_copy(tmp_path, SCHEMA_EDITS["dropped table"][0])
    copy = tmp_path / "edited.sqlite3"
    before = ledger_content(copy)

    result = run_cli(config, "catch-up", "--since", "2000-01-01", check=False)

    assert result.returncode == 1
    assert ledger_content(copy) == before


@pytest.mark.parametrize("edit", ["dropped table", "dropped column"])
def test_check_reports_edited_schema(scenario: Scenario, tmp_path: Path, edit: str) -> None:
    statement, missing = SCHEMA_EDITS[edit]
    config = scenario.edited_copy(tmp_path, statement)

    result = run_cli(config, "check", check=False)

    copy = tmp_path / "edited.sqlite3"
    assert result.returncode == 1
    assert (
        f"PROBLEM  ledger: the ledger {copy} {missing}, so the ledger was edited or damaged\n"
        in result.stdout
    )
    assert "fix: stop yotposync, then restore the ledger from a backup" in result.stdout
