"""A ledger whose tables or columns were dropped or renamed by hand, on real files."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlite_utils

from yotposync.errors import LedgerError
from yotposync.ledger import Ledger
from yotposync.ledger.integrity import MOVED_ASIDE_ADVICE, damaged_ledger_error
from yotposync.ledger.schema import SCHEMA_VERSION, migrate

OPENERS: dict[str, Callable[[Path], Ledger]] = {
    "open": Ledger.open,
    "open_existing": Ledger.open_existing,
    "open_for_reading": Ledger.open_for_reading,
    "open_read_only": Ledger.open_read_only,
    "scratch_copy": Ledger.scratch_copy,
}


def edited_ledger(tmp_path: Path, *statements: str) -> Path:
    """Create a ledger at the current schema version and run `statements` on it."""
    path = tmp_path / "ledger.sqlite3"
    Ledger.open(path).close()
    with closing(sqlite3.connect(path, isolation_level=None)) as connection:
        for statement in statements:
            connection.execute(statement)
    return path


@pytest.mark.parametrize("opener", list(OPENERS))
def test_dropped_table_named_on_open(tmp_path: Path, opener: str) -> None:
    path = edited_ledger(tmp_path, "DROP TABLE pushes")

    with pytest.raises(LedgerError) as caught:
        OPENERS[opener](path)

    assert str(caught.value) == (
        f"the ledger {path} is missing the table pushes, so the ledger was edited or damaged: "
        f"{MOVED_ASIDE_ADVICE}"
    )


@pytest.mark.parametrize("opener", list(OPENERS))
def test_dropped_column_named_on_open(tmp_path: Path, opener: str) -> None:
    path = edited_ledger(tmp_path, "ALTER TABLE tickets DROP COLUMN rule")

    with pytest.raises(LedgerError, match=r"is missing the column tickets\.rule, so the ledger"):
        OPENERS[opener](path)


@pytest.mark.parametrize("opener", list(OPENERS))
def test_dropped_index_named_on_open(tmp_path: Path, opener: str) -> None:
    # The delivery query names this index with INDEXED BY, so without it every run fails.
    path = edited_ledger(tmp_path, "DROP INDEX idx_pushes_open_seq")

    with pytest.raises(LedgerError, match=r"is missing the index idx_pushes_open_seq, so the"):
        OPENERS[opener](path)


def test_lost_primary_key_named_on_open(tmp_path: Path) -> None:
    # Rebuilt by hand with the same columns: the cursor upsert needs the key.
    path = edited_ledger(
        tmp_path,
        "CREATE TABLE c2 AS SELECT * FROM cursors",
        "DROP TABLE cursors",
        "ALTER TABLE c2 RENAME TO cursors",
    )

    with pytest.raises(LedgerError, match=r"is missing the primary key of cursors \(name\), so"):
        Ledger.open(path)


def test_unique_index_made_plain_named_on_open(tmp_path: Path) -> None:
    # Without it nothing in the ledger stops a second push under the same id.
    path = edited_ledger(
        tmp_path,
        "DROP INDEX idx_pushes_push_id",
        "CREATE INDEX idx_pushes_push_id ON pushes (push_id)",
    )

    with pytest.raises(
        LedgerError, match=r"is missing the unique constraint on pushes \(push_id\), so"
    ):
        Ledger.open(path)


def test_dropped_table_indexes_not_listed_again(tmp_path: Path) -> None:
    path = edited_ledger(tmp_path, "DROP TABLE pushes")

    with pytest.raises(LedgerError) as caught:
        Ledger.open(path)

    assert "idx_pushes" not in str(caught.value)


def test_index_dropped_after_open_named(tmp_path: Path) -> None:
    path = edited_ledger(tmp_path)
    ledger = Ledger.open(path)
    try:
        with closing(sqlite3.connect(path, isolation_level=None)) as other:
            other.execute("DROP INDEX idx_pushes_open_seq")
        with pytest.raises(sqlite3.OperationalError, match="no such index") as caught:
            ledger.due_pushes(datetime.now(UTC), 10)
    finally:
        ledger.close()

    error = damaged_ledger_error(caught.value, path)

    assert error is not None
    assert "is missing the index idx_pushes_open_seq, so the ledger" in str(error)


def test_every_missing_part_named(tmp_path: Path) -> None:
    path = edited_ledger(
        tmp_path,
        "DROP TABLE runs",
        "ALTER TABLE pushes RENAME COLUMN payload TO body",
        "ALTER TABLE cursors DROP COLUMN saved_at",
    )

    with pytest.raises(LedgerError) as caught:
        Ledger.open(path)

    assert (
        "is missing the column cursors.saved_at, the column pushes.payload and the table runs, "
        in str(caught.value)
    )


def test_added_table_and_column_accepted(tmp_path: Path) -> None:
    path = edited_ledger(
        tmp_path,
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)",
        "ALTER TABLE tickets ADD COLUMN store_note TEXT",
    )

    Ledger.open(path).close()
    Ledger.open_read_only(path).close()


def test_added_index_accepted(tmp_path: Path) -> None:
    path = edited_ledger(tmp_path, "CREATE INDEX my_tickets_by_rule ON tickets (rule)")

    Ledger.open(path).close()


def test_column_renamed_in_other_case_accepted(tmp_path: Path) -> None:
    # SQLite matches names without regard to ASCII case, so every query still works.
    path = edited_ledger(tmp_path, "ALTER TABLE tickets RENAME COLUMN rule TO RULE")

    ledger = Ledger.open(path)
    try:
        assert ledger.parent_info(1) is None
    finally:
        ledger.close()


def test_older_version_checked_before_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    with closing(sqlite3.connect(path, isolation_level=None)) as connection:
        migrate(sqlite_utils.Database(connection), target=SCHEMA_VERSION - 1)
        connection.execute("DROP TABLE pushes")

    with pytest.raises(LedgerError, match="is missing the table pushes, so the ledger"):
        Ledger.open(path)

    with closing(sqlite3.connect(path)) as connection:
        version = connection.execute("PRAGMA user_version").fetchone()[0]
    assert version == SCHEMA_VERSION - 1


def test_table_dropped_after_open_named(tmp_path: Path) -> None:
    path = edited_ledger(tmp_path)
    ledger = Ledger.open(path)
    try:
        with closing(sqlite3.connect(path, isolation_level=None)) as other:
            other.execute("DROP TABLE pushes")
        with pytest.raises(sqlite3.OperationalError, match="no such table") as caught:
            ledger.push_counts()
    finally:
        ledger.close()

    error = damaged_ledger_error(caught.value, path)

    assert error is not None
    assert str(error).startswith(f"the ledger {path} is missing the table pushes, so the ledger")


def test_query_bug_not_taken_for_damage(tmp_path: Path) -> None:
    # A query that names a table no schema version has fails the same way on an intact
    # ledger, and must keep its traceback.
    path = edited_ledger(tmp_path)
    ledger = Ledger.open(path)
    try:
        with pytest.raises(sqlite3.OperationalError, match="no such table") as caught:
            ledger.db.execute("SELECT count(*) FROM pushes_archive")
    finally:
        ledger.close()

    assert damaged_ledger_error(caught.value, path) is None
    assert damaged_ledger_error(caught.value, None) is None
