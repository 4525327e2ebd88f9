"""The daemon records a job run that a stop request cut short as interrupted."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from yotposync.config import sandbox_settings
from yotposync.errors import LedgerError
from yotposync.ledger import Ledger
from yotposync.scheduler import Daemon


def last_outcome(path: Path) -> str:
    ledger = Ledger.open(path)
    try:
        return str(ledger.last_runs()[0]["outcome"])
    finally:
        ledger.close()


def test_daemon_run_records_ok_and_interrupted(tmp_path: Path) -> None:
    settings = sandbox_settings(
        "http://127.0.0.1:1/api", "http://127.0.0.1:1/api/v2", tmp_path / "ledger.sqlite3"
    )
    Ledger.open(settings.ledger.path).close()
    daemon = Daemon(settings)

    daemon._run_in_ledger("delivery", lambda ledger: {})
    finished = last_outcome(settings.ledger.path)

    def stopped_midway(ledger: Ledger) -> dict[str, Any]:
        daemon.stopping.set()
        return {}

    daemon._run_in_ledger("delivery", stopped_midway)

    assert finished == "ok"
    assert last_outcome(settings.ledger.path) == "interrupted"


@pytest.mark.parametrize("change", ["emptied", "removed"])
def test_daemon_stops_on_ledger_lost_while_running(tmp_path: Path, change: str) -> None:
    settings = sandbox_settings(
        "http://127.0.0.1:1/api", "http://127.0.0.1:1/api/v2", tmp_path / "ledger.sqlite3"
    )
    Ledger.open(settings.ledger.path).close()
    daemon = Daemon(settings)
    daemon._run_in_ledger("delivery", lambda ledger: {})
    if change == "emptied":
        settings.ledger.path.write_bytes(b"")
    else:
        settings.ledger.path.unlink()

    with pytest.raises(LedgerError, match=f"was {change} while yotposync was using it") as caught:
        daemon._run_in_ledger("delivery", lambda ledger: {})

    assert daemon._fatal_error(caught.value) is caught.value
    assert not settings.ledger.path.exists() or settings.ledger.path.stat().st_size == 0


def daemon_with_ledger(tmp_path: Path) -> Daemon:
    """Create a ledger and a daemon for it whose API addresses refuse connections."""
    settings = sandbox_settings(
        "http://127.0.0.1:1/api", "http://127.0.0.1:1/api/v2", tmp_path / "ledger.sqlite3"
    )
    Ledger.open(settings.ledger.path).close()
    return Daemon(settings)


def edit_ledger(path: Path, statement: str) -> None:
    """Run `statement` on the ledger through a connection of its own, as another process would."""
    with closing(sqlite3.connect(path, isolation_level=None)) as connection:
        connection.execute(statement)


def test_daemon_stops_on_table_dropped_between_runs(tmp_path: Path) -> None:
    daemon = daemon_with_ledger(tmp_path)
    daemon._run_in_ledger("delivery", lambda ledger: {})
    edit_ledger(daemon.settings.ledger.path, "DROP TABLE pushes")

    with pytest.raises(LedgerError, match="is missing the table pushes, so the ledger") as caught:
        daemon._run_in_ledger("delivery", lambda ledger: {})

    assert daemon._fatal_error(caught.value) is caught.value


def test_daemon_stops_on_column_dropped_during_run(tmp_path: Path) -> None:
    daemon = daemon_with_ledger(tmp_path)
    path = daemon.settings.ledger.path

    def dropped_midway(ledger: Ledger) -> dict[str, Any]:
        edit_ledger(path, "ALTER TABLE pushes DROP COLUMN last_error")
        return {"problems": ledger.problem_pushes(10)}

    with pytest.raises(sqlite3.OperationalError, match="no such column") as caught:
        daemon._run_in_ledger("delivery", dropped_midway)
    fatal = daemon._fatal_error(caught.value)

    assert isinstance(fatal, LedgerError)
    assert str(fatal).startswith(
        f"the ledger {path} is missing the column pushes.last_error, so the ledger"
    )
    assert last_outcome_in_file(path) == "error"


def last_outcome_in_file(path: Path) -> str:
    """Read the last run's outcome with plain SQLite, because `Ledger.open` rejects the edit."""
    with closing(sqlite3.connect(path)) as connection:
        row = connection.execute("SELECT outcome FROM runs ORDER BY id DESC LIMIT 1").fetchone()
    return str(row[0])
