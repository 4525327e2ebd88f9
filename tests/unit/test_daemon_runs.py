"""The daemon records a job run that a stop request cut short as interrupted."""

from __future__ import annotations

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
