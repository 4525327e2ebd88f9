"""A ledger whose file system is full: one clear error per command or run, and nothing lost.

A real SQLITE_FULL comes from `PRAGMA max_page_count`: every ledger connection is capped at
the pages its file has when it opens, so any write that needs a new page fails as a full file
system would make it fail.
"""

from __future__ import annotations

import logging
import signal
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest
import structlog

from tests.reliability.support import Harness, harness
from yotposync.errors import LedgerFullError
from yotposync.ledger import Ledger
from yotposync.ledger.integrity import full_ledger_error
from yotposync.sandbox import Store, generate_store
from yotposync.scheduler import EXECUTOR_LOGGER, Daemon

ANCHOR = datetime(2026, 6, 1, 15, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def store() -> Store:
    return generate_store(seed=83, tickets=60, anchor=ANCHOR)


@pytest.fixture
def h(tmp_path: Path, store: Store) -> Iterator[Harness]:
    with harness(tmp_path, store) as made:
        Ledger.open(made.ledger).close()
        yield made


@pytest.fixture
def full(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cap every ledger opened from now on at the pages it has."""
    opened = Ledger.open.__func__  # type: ignore[attr-defined]

    def open_capped(cls: type[Ledger], path: Path) -> Ledger:
        ledger: Ledger = opened(cls, path)
        pages = ledger.db.execute("PRAGMA page_count").fetchone()[0]
        ledger.db.execute(f"PRAGMA max_page_count = {pages}")
        return ledger

    monkeypatch.setattr(Ledger, "open", classmethod(open_capped))


def ticket_count(path: Path) -> int:
    with closing(sqlite3.connect(path)) as connection:
        return int(connection.execute("SELECT count(*) FROM tickets").fetchone()[0])


def test_catch_up_names_full_ledger(
    h: Harness, monkeypatch: pytest.MonkeyPatch, full: None
) -> None:
    result = h.invoke("catch-up", "--since", h.since())
    monkeypatch.undo()
    again = h.invoke("catch-up", "--since", h.since())

    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert f"error: the ledger {h.ledger} cannot grow because its file system is full" in (
        result.stderr
    )
    assert f"free space on the file system of {h.ledger.parent}" in result.stderr
    assert "set ledger.path" in result.stderr
    assert "Traceback" not in result.stderr
    # The message promises that the next run goes on once there is room.
    assert again.exit_code == 0, again.output
    assert ticket_count(h.ledger) == len(h.store.tickets)


def test_daemon_logs_full_ledger_per_run(
    h: Harness, full: None, caplog: pytest.LogCaptureFixture
) -> None:
    daemon = Daemon(h.settings())
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    stopper = threading.Timer(2.5, daemon.stop)
    stopper.start()
    try:
        with (
            structlog.testing.capture_logs() as events,
            caplog.at_level(logging.INFO, logger=EXECUTOR_LOGGER),
        ):
            exit_code = daemon.run()
    finally:
        stopper.cancel()
        for sig, handler in handlers.items():
            signal.signal(sig, handler)

    failed = [event for event in events if event["event"] == "job_failed"]
    executor_errors = [
        record
        for record in caplog.records
        if record.name == EXECUTOR_LOGGER and record.levelno >= logging.WARNING
    ]
    # The daemon keeps running, so each poll fails alone until space is freed.
    assert exit_code == 0
    assert [event for event in events if event["event"] == "job_fatal"] == []
    assert len([event for event in failed if event["job"] == "transactions"]) >= 2
    for event in failed:
        assert event["error_type"] == "LedgerFullError"
        assert f"the ledger {h.ledger} cannot grow" in event["error"]
    assert executor_errors == []


def test_full_ledger_error_only_for_sqlite_full(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    with closing(sqlite3.connect(path)) as connection:
        connection.execute("CREATE TABLE t (x)")
        connection.execute("PRAGMA max_page_count = 2")
        with pytest.raises(sqlite3.OperationalError) as full:
            connection.execute("INSERT INTO t VALUES (zeroblob(100000))")
        with pytest.raises(sqlite3.OperationalError) as other:
            connection.execute("SELECT * FROM missing")

    error = full_ledger_error(full.value, path)

    assert isinstance(error, LedgerFullError)
    assert "database or disk is full" in str(error)
    assert full_ledger_error(other.value, path) is None
    assert full_ledger_error(ValueError("database or disk is full"), path) is None
