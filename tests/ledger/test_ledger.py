"""The SQLite ledger on real files."""

from __future__ import annotations

import os
import sqlite3
import stat
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from yotposync.errors import LedgerError, LockedError
from yotposync.ledger import Cursor, Ledger, LedgerLock, TicketAmountsRow
from yotposync.ledger.schema import SCHEMA_VERSION
from yotposync.ledger.store import DUE_PUSHES_SQL, _iso, read_only_open_error
from yotposync.sync.model import Decision, Kind
from yotposync.sync.plan import PlannedPush

NOW = datetime(2026, 3, 8, 6, 30, tzinfo=UTC)


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    opened = Ledger.open(tmp_path / "state" / "ledger.sqlite3")
    yield opened
    opened.close()


def record(ledger: Ledger, decision: Decision, updated: datetime = NOW) -> bool:
    return ledger.record_decision(
        decision,
        public_id=str(decision.ticket_id),
        ticket_type="Ticket",
        updated_at=updated,
        completed_at=updated,
        business_date="2026-03-08",
        location_id=1,
        amounts=TicketAmountsRow(decision.earn_cents, decision.earn_cents),
        now=NOW,
    )


def test_new_ledger_is_private(tmp_path: Path) -> None:
    path = tmp_path / "state" / "ledger.sqlite3"
    Ledger.open(path).close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700


def test_new_ledger_is_announced_once(tmp_path: Path) -> None:
    path = tmp_path / "mistyped" / "ledger.sqlite3"
    with capture_logs() as first:
        Ledger.open(path).close()
    with capture_logs() as again:
        Ledger.open(path).close()

    created = [entry for entry in first if entry["event"] == "ledger_created"]
    assert [(entry["log_level"], entry["ledger"]) for entry in created] == [("warning", str(path))]
    assert "set ledger.path to it" in created[0]["detail"]
    assert not [entry for entry in again if entry["event"] == "ledger_created"]


def test_new_ledger_under_lock_is_announced(tmp_path: Path) -> None:
    # `run`, `catch-up` and the other writing commands take the lock first, and the lock
    # creates the empty ledger file before the ledger is opened.
    path = tmp_path / "mistyped" / "ledger.sqlite3"
    with capture_logs() as logs, LedgerLock(path):
        Ledger.open_for_writing(path).close()

    created = [entry for entry in logs if entry["event"] == "ledger_created"]
    assert [entry["ledger"] for entry in created] == [str(path)]


def test_symlink_to_missing_ledger_creates_target(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    target = tmp_path / "data" / "ledger.sqlite3"
    link = tmp_path / "ledger.sqlite3"
    link.symlink_to(target)

    with capture_logs() as logs:
        Ledger.open(link).close()

    assert target.is_file()
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert [entry["event"] for entry in logs].count("ledger_created") == 1


def test_corrupt_ledger_raises_ledger_error(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(LedgerError, match="restore the ledger from a backup"):
        Ledger.open(path)


def test_foreign_database_rejected(tmp_path: Path) -> None:
    path = tmp_path / "inventory.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE products (sku TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(LedgerError, match=r"not a yotposync ledger \(it has the tables products\)"):
        Ledger.open(path)
    # Nothing of the ledger was added to the other database.
    conn = sqlite3.connect(path)
    tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    conn.close()
    assert tables == ["products"]


def test_empty_existing_file_becomes_a_ledger(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    path.touch(mode=0o600)
    Ledger.open(path).close()
    Ledger.open(path).close()  # a second open finds the ledger's own tables


def test_ledger_readable_by_others_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ledger.sqlite3"
    Ledger.open(path).close()
    private = capsys.readouterr()
    assert "ledger_file_shared" not in private.out + private.err
    path.chmod(0o644)
    Ledger.open(path).close()
    logged = capsys.readouterr()
    assert "ledger_file_shared" in logged.out + logged.err
    assert "chmod 600" in logged.out + logged.err


def test_read_only_folder_explained(tmp_path: Path) -> None:
    path = tmp_path / "backup" / "ledger.sqlite3"
    error = read_only_open_error(
        sqlite3.OperationalError("attempt to write a readonly database"), path
    )
    assert f"the ledger {path} is readable, but SQLite must also create ledger.sqlite3-shm" in str(
        error
    )
    assert f"cannot write in {path.parent}" in str(error)
    other = read_only_open_error(sqlite3.OperationalError("disk I/O error"), path)
    assert str(other) == f"the ledger {path} cannot be read (disk I/O error)"


def test_newer_schema_raises_ledger_error(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(LedgerError, match="upgrade yotposync"):
        Ledger.open(path)


def test_cursor_never_moves_back(ledger: Ledger) -> None:
    later = Cursor(NOW, 5)
    ledger.save_cursor("tickets", later, NOW)
    ledger.save_cursor("tickets", Cursor(NOW - timedelta(minutes=1), 9), NOW)
    assert ledger.get_cursor("tickets") == later


def test_cursor_tie_broken_by_id(ledger: Ledger) -> None:
    ledger.save_cursor("tickets", Cursor(NOW, 5), NOW)
    ledger.save_cursor("tickets", Cursor(NOW, 6), NOW)
    assert ledger.get_cursor("tickets") == Cursor(NOW, 6)


def test_rolled_back_transaction_keeps_cursor(ledger: Ledger) -> None:
    with pytest.raises(RuntimeError), ledger.transaction():
        ledger.save_cursor("tickets", Cursor(NOW, 1), NOW)
        raise RuntimeError("crash mid-page")
    assert ledger.get_cursor("tickets") is None


def test_same_version_recorded_once(ledger: Ledger) -> None:
    decision = Decision(1, Kind.SALE, "sale", customer_id=3, email="a@example.com", earn_cents=900)
    assert record(ledger, decision) is True
    assert record(ledger, decision) is False
    versions = ledger.db.execute("SELECT count(*) FROM ticket_versions").fetchone()[0]
    assert versions == 1


def test_parent_info_after_decision(ledger: Ledger) -> None:
    decision = Decision(1, Kind.SALE, "sale", customer_id=3, email="a@example.com", earn_cents=900)
    record(ledger, decision)
    parent = ledger.parent_info(1)
    assert parent is not None
    assert parent.kind is Kind.SALE
    assert parent.earn_cents == 900


def record_return(
    ledger: Ledger, ticket_id: int, kind: Kind, completed_at: datetime, returned: int
) -> None:
    ledger.record_decision(
        Decision(ticket_id, kind, "return", return_cents=1, parent_id=1),
        public_id=str(ticket_id),
        ticket_type="Return",
        updated_at=completed_at,
        completed_at=completed_at,
        business_date="2026-03-08",
        location_id=1,
        amounts=TicketAmountsRow(0, 0, returned),
        now=NOW,
    )


def test_items_returned_before_follow_completion_times(ledger: Ledger) -> None:
    # Ticket 4 was completed first, though its offset makes its text sort after ticket 3's.
    record_return(ledger, 3, Kind.RETURN, NOW, 1000)
    record_return(
        ledger,
        4,
        Kind.RETURN,
        NOW.astimezone(timezone(timedelta(hours=5))) - timedelta(minutes=1),
        700,
    )
    record_return(ledger, 5, Kind.NOT_COMPLETED, NOW - timedelta(hours=1), 5000)

    assert ledger.items_returned_before(1, 4, NOW - timedelta(minutes=1)) == 0
    assert ledger.items_returned_before(1, 3, NOW) == 700
    # At the same time, the lower id comes first.
    assert ledger.items_returned_before(1, 6, NOW) == 1700
    assert ledger.items_returned_before(1, 2, NOW) == 700
    assert ledger.items_returned_before(1, 6, None) == 0


def test_items_returned_before_unknown_for_older_decisions(ledger: Ledger) -> None:
    record_return(ledger, 3, Kind.RETURN, NOW, 1000)
    ledger.db.execute("UPDATE tickets SET returned_item_cents = NULL WHERE id = 3")
    assert ledger.items_returned_before(1, 6, NOW + timedelta(hours=1)) == 0

    # Read again unchanged, the ticket gets its amount without a new version.
    record_return(ledger, 3, Kind.RETURN, NOW, 1000)
    assert ledger.items_returned_before(1, 6, NOW + timedelta(hours=1)) == 1000
    versions = ledger.db.execute("SELECT count(*) FROM ticket_versions WHERE ticket_id = 3")
    assert versions.fetchone()[0] == 1


def test_order_balance_counts_refunds(ledger: Ledger) -> None:
    order = PlannedPush("hl-1", "order", 1, "a@example.com", 3, None, 900)
    refund = PlannedPush("hl-ret-2", "return", 2, "a@example.com", 3, "hl-1", 300)
    ledger.add_push(order, {"order_id": "hl-1"}, NOW)
    ledger.add_push(refund, {"id": "hl-ret-2"}, NOW)
    [balance] = ledger.order_balances(1)
    assert balance.remaining_cents == 600


def test_push_id_is_unique(ledger: Ledger) -> None:
    order = PlannedPush("hl-1", "order", 1, "a@example.com", 3, None, 900)
    ledger.add_push(order, {}, NOW)
    with pytest.raises(sqlite3.IntegrityError):
        ledger.add_push(order, {}, NOW)


def test_due_pushes_include_sent_and_due_pending(ledger: Ledger) -> None:
    first = ledger.add_push(PlannedPush("hl-1", "order", 1, "a@x.com", 3, None, 900), {}, NOW)
    second = ledger.add_push(PlannedPush("hl-2", "order", 2, "b@x.com", 4, None, 500), {}, NOW)
    ledger.mark_sent(first, NOW)
    ledger.mark_retry(second, 503, "unavailable", NOW + timedelta(minutes=5), NOW, failed=False)
    assert [p.push_id for p in ledger.due_pushes(NOW, 10)] == ["hl-1"]
    assert [p.push_id for p in ledger.due_pushes(NOW + timedelta(minutes=6), 10)] == [
        "hl-1",
        "hl-2",
    ]


def test_due_pushes_include_pending_without_time(ledger: Ledger) -> None:
    # Only an edited ledger has such a push. It goes now instead of waiting for good.
    first = ledger.add_push(PlannedPush("hl-1", "order", 1, "a@x.com", 3, None, 900), {}, NOW)
    ledger.add_push(PlannedPush("hl-2", "order", 2, "a@x.com", 4, None, 500), {}, NOW)
    ledger.db.execute("UPDATE pushes SET next_attempt_at = NULL WHERE seq = ?", [first])

    assert [p.push_id for p in ledger.due_pushes(NOW, 10)] == ["hl-1", "hl-2"]


def test_next_due_waits_for_customer_first_push(ledger: Ledger) -> None:
    blocker = ledger.add_push(PlannedPush("hl-1", "order", 1, "a@x.com", 3, None, 900), {}, NOW)
    ledger.add_push(PlannedPush("hl-2", "order", 2, "a@x.com", 3, None, 500), {}, NOW)
    ledger.mark_retry(blocker, 503, "unavailable", NOW + timedelta(minutes=5), NOW, failed=False)

    assert ledger.next_due_at() == NOW + timedelta(minutes=5)


def test_next_due_skips_customer_behind_failed(ledger: Ledger) -> None:
    failed = ledger.add_push(PlannedPush("hl-1", "order", 1, "a@x.com", 3, None, 900), {}, NOW)
    ledger.add_push(PlannedPush("hl-2", "order", 2, "a@x.com", 3, None, 500), {}, NOW)
    ledger.mark_retry(failed, 500, "boom", NOW, NOW, failed=True)
    assert ledger.next_due_at() is None

    later = NOW + timedelta(minutes=1)
    ledger.add_push(PlannedPush("hl-3", "order", 3, "b@x.com", 4, None, 700), {}, later)
    assert ledger.next_due_at() == later


def test_retry_failed_requeues(ledger: Ledger) -> None:
    seq = ledger.add_push(PlannedPush("hl-1", "order", 1, "a@x.com", 3, None, 900), {}, NOW)
    ledger.mark_retry(seq, 500, "boom", NOW, NOW, failed=True)
    assert ledger.retry_failed(NOW) == 1
    assert ledger.push_counts()["pending"] == 1


def test_second_lock_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    with LedgerLock(path), pytest.raises(LockedError, match="another yotposync process"):
        LedgerLock(path).acquire()


def test_lock_is_shared_through_a_symlinked_file(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    Ledger.open(path).close()
    alias = tmp_path / "alias.sqlite3"
    alias.symlink_to(path)
    with LedgerLock(path), pytest.raises(LockedError, match=f"the ledger {path}:"):
        LedgerLock(alias).acquire()
    with LedgerLock(alias), pytest.raises(LockedError, match="another yotposync process"):
        LedgerLock(path).acquire()


def test_new_run_closes_stale_run(ledger: Ledger) -> None:
    stale = ledger.start_run("catch-up", NOW)
    other = ledger.start_run("delivery", NOW)
    ledger.start_run("catch-up", NOW + timedelta(minutes=5))
    runs = {
        row[0]: (row[1], row[2])
        for row in ledger.db.execute("SELECT id, outcome, error FROM runs").fetchall()
    }
    assert runs[stale][0] == "interrupted"
    assert "stopped before the run finished" in runs[stale][1]
    assert runs[other] == ("running", None)


def test_lock_covers_a_hard_link(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    Ledger.open(path).close()
    other = tmp_path / "elsewhere"
    other.mkdir()
    alias = other / "same-ledger.sqlite3"
    os.link(path, alias)
    with LedgerLock(path), pytest.raises(LockedError, match="under another name"):
        LedgerLock(alias).acquire()
    # The refused lock left nothing held: the alias can be locked once the first is gone.
    with LedgerLock(alias):
        pass


def test_lock_refuses_ledger_path_not_file(tmp_path: Path) -> None:
    fifo = tmp_path / "ledger.sqlite3"
    os.mkfifo(fifo)

    with pytest.raises(LedgerError, match=f"the ledger {fifo} is not a regular file: set"):
        LedgerLock(fifo).acquire()

    # Nothing is created beside it: no lock file, no journal.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ledger.sqlite3"]


def test_reading_refuses_ledger_path_not_file(tmp_path: Path) -> None:
    fifo = tmp_path / "ledger.sqlite3"
    os.mkfifo(fifo)

    with pytest.raises(LedgerError, match=f"the ledger {fifo} is not a regular file: set"):
        Ledger.open_for_reading(fifo)
    with pytest.raises(LedgerError, match=f"the ledger {fifo} is not a regular file: set"):
        Ledger.open(fifo)


def test_lock_refuses_lock_path_fifo(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    os.mkfifo(tmp_path / "ledger.sqlite3.lock")

    with pytest.raises(LedgerError, match=r"ledger\.sqlite3\.lock is not a regular file"):
        LedgerLock(path).acquire()
    with pytest.raises(OSError, match=r"ledger\.sqlite3\.lock is not a regular file"):
        LedgerLock(path).is_held()


def test_dry_run_copy_refuses_ledger_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "ledger.sqlite3"
    os.mkfifo(fifo)

    with pytest.raises(LedgerError, match=f"the ledger {fifo} is not a regular file"):
        Ledger.scratch_copy(fifo)


def test_lock_refuses_lock_path_folder(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    (tmp_path / "ledger.sqlite3.lock").mkdir()

    with pytest.raises(LedgerError, match=r"ledger\.sqlite3\.lock is a folder: remove it"):
        LedgerLock(path).acquire()

    assert not path.exists()


def test_lock_creates_a_private_ledger_file(tmp_path: Path) -> None:
    path = tmp_path / "state" / "ledger.sqlite3"
    with LedgerLock(path):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        Ledger.open(path).close()


def test_lock_released_after_exit(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    with LedgerLock(path):
        pass
    with LedgerLock(path):
        pass


def test_writer_closes_runs_left_running(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    ledger = Ledger.open(path)
    finished = ledger.start_run("delivery", NOW)
    ledger.finish_run(finished, "ok", {}, NOW)
    ledger.start_run("catch-up", NOW)
    ledger.start_run("transactions", NOW)
    ledger.close()

    reader = Ledger.open(path)
    assert {run["job"]: run["outcome"] for run in reader.last_runs()}["catch-up"] == "running"
    reader.close()
    writer = Ledger.open_for_writing(path)
    outcomes = {run["job"]: run["outcome"] for run in writer.last_runs()}
    writer.close()

    assert outcomes == {"delivery": "ok", "catch-up": "interrupted", "transactions": "interrupted"}


def test_lock_removes_ledger_it_left_empty(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    with LedgerLock(path):
        assert path.exists()

    assert not path.exists()


def test_lock_keeps_written_ledger(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    with LedgerLock(path):
        Ledger.open(path).close()

    assert path.stat().st_size > 0


def test_lock_rejects_emptied_ledger(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    with LedgerLock(path):
        Ledger.open(path).close()
    path.write_bytes(b"")

    with pytest.raises(LedgerError, match="is an empty file, but yotposync ran with it before"):
        LedgerLock(path).acquire()

    assert path.stat().st_size == 0
    # The failed attempt released its locks, so the next one reaches the same check.
    with pytest.raises(LedgerError, match="is an empty file"):
        LedgerLock(path).acquire()


def test_lock_is_held_while_locked(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    probe = LedgerLock(path)
    assert probe.is_held() is False
    assert not probe.path.exists()
    with LedgerLock(path):
        assert probe.is_held() is True
        assert probe.holder_pid() == os.getpid()
    assert probe.is_held() is False
    # The probe released the lock it took, so a daemon can still start.
    with LedgerLock(path):
        pass


def test_invalid_version_keeps_earlier_decision(ledger: Ledger) -> None:
    decision = Decision(1, Kind.SALE, "sale", customer_id=3, email="a@example.com", earn_cents=900)
    record(ledger, decision)
    ledger.record_invalid(1, "ticket 1: invalid value 'abc'", NOW)
    parent = ledger.parent_info(1)
    assert parent is not None
    assert parent.kind is Kind.SALE
    assert [t["id"] for t in ledger.invalid_tickets(5)] == [1]


def test_invalid_unknown_ticket_is_recorded(ledger: Ledger) -> None:
    ledger.record_invalid(2, "ticket 2: missing updated_at", NOW)
    parent = ledger.parent_info(2)
    assert parent is not None
    assert parent.kind is Kind.INVALID


def test_ledger_path_that_is_a_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="is a folder, not a file"):
        Ledger.open(tmp_path)
    with pytest.raises(LedgerError, match="is a folder, not a file"):
        LedgerLock(tmp_path)


@pytest.mark.parametrize("below", ["ledger.sqlite3", "sub/ledger.sqlite3"])
def test_file_in_ledger_folder_named(tmp_path: Path, below: str) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the ledger folder should be")
    expected = f"runs through {blocker}, which is a file, not a folder"
    with pytest.raises(LedgerError, match=expected):
        LedgerLock(blocker / below).acquire()
    with pytest.raises(LedgerError, match=expected):
        Ledger.open(blocker / below)


def test_due_pushes_skip_customer_behind_waiting_push(ledger: Ledger) -> None:
    def add(push_id: str, email: str) -> int:
        return ledger.add_push(PlannedPush(push_id, "order", 1, email, 3, None, 900), {}, NOW)

    waiting = add("hl-1", "a@x.com")
    add("hl-2", "a@x.com")
    failed = add("hl-3", "b@x.com")
    add("hl-4", "b@x.com")
    add("hl-5", "c@x.com")
    add("hl-6", "c@x.com")
    ledger.mark_retry(waiting, 503, "unavailable", NOW + timedelta(minutes=5), NOW, failed=False)
    ledger.mark_retry(failed, 500, "boom", NOW, NOW, failed=True)

    assert [p.push_id for p in ledger.due_pushes(NOW, 10)] == ["hl-5", "hl-6"]
    assert [p.push_id for p in ledger.due_pushes(NOW, 1)] == ["hl-5"]
    later = NOW + timedelta(minutes=6)
    assert [p.push_id for p in ledger.due_pushes(later, 10)] == ["hl-1", "hl-2", "hl-5", "hl-6"]


def test_due_pushes_query_walks_open_pushes_in_order(ledger: Ledger) -> None:
    # Reading every due push and sorting it, once per batch, made a long catch-up quadratic.
    plan = " / ".join(
        str(row[3])
        for row in ledger.db.execute("EXPLAIN QUERY PLAN " + DUE_PUSHES_SQL, [_iso(NOW), 200])
    )
    assert "SCAN p USING INDEX idx_pushes_open_seq" in plan
    assert "SEARCH e USING INDEX idx_pushes_waiting_email" in plan
    assert "TEMP B-TREE" not in plan
