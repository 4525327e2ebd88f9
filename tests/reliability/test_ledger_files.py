"""The ledger file: private on disk, and a damaged, newer or older one handled on opening.

A damaged or newer-schema ledger stops the command with a message that names what to do, and
so does a table dropped while the daemon runs. A ledger written by an earlier schema version
upgrades, keeps what it knew, and sends nothing again.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlite_utils

from tests.reliability.support import FIGURES, Harness, assert_settled, harness, wait_until
from yotposync.ledger.schema import MIGRATIONS, SCHEMA_VERSION
from yotposync.sandbox import Store, generate_store

ANCHOR = datetime(2026, 10, 10, 15, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def store() -> Store:
    return generate_store(seed=61, tickets=50, anchor=ANCHOR)


@pytest.fixture
def h(tmp_path: Path, store: Store) -> Iterator[Harness]:
    with harness(tmp_path, store) as made:
        yield made


def caught_up(h: Harness) -> None:
    h.transactions(since=h.store.anchor - timedelta(days=366))
    h.delivery()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_ledger_files_private(h: Harness) -> None:
    previous = os.umask(0o022)
    try:
        result = h.invoke("catch-up", "--since", h.since())
        # A reader beside the daemon makes SQLite create the shared-memory file too.
        h.ledger_rows("SELECT count(*) FROM tickets")
    finally:
        os.umask(previous)

    assert result.exit_code == 0
    assert mode(h.ledger.parent) == 0o700
    files = sorted(h.ledger.parent.iterdir())
    assert h.ledger in files
    for path in files:
        assert mode(path) == 0o600, path.name


# Damage.


def checkpointed(h: Harness) -> bytes:
    with closing(sqlite3.connect(h.ledger)) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return h.ledger.read_bytes()


def table_page(h: Harness, table: str) -> tuple[int, int]:
    """Return the byte offset and size of a table's root page."""
    with closing(sqlite3.connect(h.ledger)) as connection:
        root = connection.execute(
            "SELECT rootpage FROM sqlite_master WHERE type = 'table' AND name = ?", [table]
        ).fetchone()[0]
        size = connection.execute("PRAGMA page_size").fetchone()[0]
    return (root - 1) * size, size


def scribble(data: bytes, offset: int, size: int) -> bytes:
    return data[:offset] + bytes((i * 37 + 11) % 256 for i in range(size)) + data[offset + size :]


DAMAGE: dict[str, Callable[[Harness, bytes], bytes]] = {
    "random bytes": lambda h, data: bytes((i * 7) % 251 for i in range(len(data))),
    "cut in half": lambda h, data: data[: len(data) // 2],
    "pushes page scribbled": lambda h, data: scribble(data, *table_page(h, "pushes")),
    "tickets page scribbled": lambda h, data: scribble(data, *table_page(h, "tickets")),
    "cursors page scribbled": lambda h, data: scribble(data, *table_page(h, "cursors")),
}


@pytest.mark.parametrize("damage", list(DAMAGE), ids=list(DAMAGE))
@pytest.mark.parametrize("command", ["catch-up", "run"])
def test_damaged_ledger_stops_with_advice(h: Harness, damage: str, command: str) -> None:
    caught_up(h)
    damaged = DAMAGE[damage](h, checkpointed(h))
    h.ledger.write_bytes(damaged)
    arguments = ["catch-up", "--since", h.since()] if command == "catch-up" else ["run"]

    result = h.invoke(*arguments)

    output = result.stdout + result.stderr
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert "restore" in output
    assert "move it aside" in output
    FIGURES["damaged ledgers tried"] += 1


@pytest.mark.parametrize(
    ("command", "damage"),
    [
        (["status"], "cursors page scribbled"),
        (["report", "--since", "2020-01-01"], "pushes page scribbled"),
    ],
)
def test_damaged_ledger_named_by_reading_commands(
    h: Harness, command: list[str], damage: str
) -> None:
    caught_up(h)
    h.ledger.write_bytes(DAMAGE[damage](h, checkpointed(h)))

    result = h.invoke(*command)

    assert result.exit_code == 1
    assert f"the ledger {h.ledger} " in result.stderr
    assert "move it aside" in result.stderr


@pytest.mark.parametrize(
    "damage", ["random bytes", "cut in half", "pushes page scribbled", "cursors page scribbled"]
)
def test_damaged_ledger_advice_names_catch_up(h: Harness, damage: str) -> None:
    # A new ledger without sync.go_live starts from now, so moving the old one aside alone
    # would skip every ticket since the last good run.
    caught_up(h)
    h.ledger.write_bytes(DAMAGE[damage](h, checkpointed(h)))

    result = h.invoke("catch-up", "--since", h.since())

    assert result.exit_code == 1
    assert "move it aside" in result.stderr
    assert "run `yotposync catch-up --since DATE`" in result.stderr
    assert "the day before the last good run or the go-live date" in result.stderr
    assert "set sync.go_live" in result.stderr
    assert "looks at every ticket again" not in result.stderr


@pytest.mark.parametrize("command", ["catch-up", "run", "status"])
def test_emptied_ledger_stops_with_advice(h: Harness, command: str) -> None:
    assert h.invoke("catch-up", "--since", h.since()).exit_code == 0
    h.ledger.write_bytes(b"")
    by_command = {"catch-up": ["catch-up", "--since", h.since()], "run": ["run"]}
    arguments = by_command.get(command, [command])

    result = h.invoke(*arguments)

    assert result.exit_code == 1
    assert f"the ledger {h.ledger} is an empty file, but yotposync ran with it" in result.stderr
    assert "restore the ledger from a backup" in result.stderr
    assert "to start it" not in result.stderr
    assert h.ledger.stat().st_size == 0


def test_first_run_fills_empty_ledger(h: Harness) -> None:
    h.ledger.parent.mkdir(parents=True, exist_ok=True)
    h.ledger.write_bytes(b"")

    result = h.invoke("catch-up", "--since", h.since())

    assert result.exit_code == 0, result.stderr
    assert h.ledger_rows("SELECT count(*) FROM tickets")[0][0] > 0


def test_directory_at_ledger_path(h: Harness) -> None:
    h.ledger.mkdir(parents=True)

    result = h.invoke("catch-up", "--since", h.since())

    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert str(h.ledger) in result.stderr


def test_newer_schema_stops_with_advice(h: Harness) -> None:
    caught_up(h)
    with closing(sqlite3.connect(h.ledger)) as connection:
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")

    result = h.invoke("catch-up", "--since", h.since())

    assert result.exit_code == 1
    assert "upgrade yotposync" in result.stderr
    assert f"schema version {SCHEMA_VERSION + 1}" in result.stderr


def finished_runs(h: Harness) -> int:
    try:
        rows = h.ledger_rows("SELECT count(*) FROM runs WHERE finished_at IS NOT NULL")
    except sqlite3.OperationalError:
        return 0
    return int(rows[0][0])


def test_table_dropped_while_daemon_runs(h: Harness) -> None:
    daemon = h.popen("run")
    try:
        wait_until(lambda: h.ledger.exists() and finished_runs(h) >= 2, 60, "two finished runs")
        with closing(sqlite3.connect(h.ledger, timeout=10, isolation_level=None)) as connection:
            connection.execute("DROP TABLE pushes")
        wait_until(lambda: daemon.returncode is not None, 30, "the daemon to stop")
    finally:
        out, err = daemon.stop()

    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    fatal = [event for event in events if event["event"] == "job_fatal"]
    assert daemon.returncode == 1
    assert fatal != []
    for event in fatal:
        assert f"the ledger {h.ledger} is missing the table pushes," in str(event["error"])
    assert [event for event in events if event["event"] == "job_failed"] == []
    assert [event for event in events if "exception" in event] == []
    assert "Traceback" not in err


# Upgrades.


def build_old_ledger(path: Path, version: int, source: Path) -> None:
    """Write a ledger at schema `version` holding the rows of `source` that version has."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    connection = sqlite3.connect(path, isolation_level=None)
    db = sqlite_utils.Database(connection)
    for number, migration in enumerate(MIGRATIONS[:version], start=1):
        with db.atomic():
            migration(db)
            db.execute(f"PRAGMA user_version = {number}")
    connection.execute("ATTACH DATABASE ? AS source", [str(source)])
    for table in db.table_names():
        columns = ", ".join(f'"{c.name}"' for c in db.table(table).columns)
        connection.execute(
            f'INSERT INTO main."{table}" ({columns}) SELECT {columns} FROM source."{table}"'
        )
    connection.execute("DETACH DATABASE source")
    connection.close()
    path.chmod(0o600)


@pytest.mark.parametrize("version", range(1, SCHEMA_VERSION))
def test_previous_schema_upgrades(h: Harness, version: int) -> None:
    caught_up(h)
    checkpointed(h)
    source = h.ledger.with_name("current.sqlite3")
    h.ledger.rename(source)
    build_old_ledger(h.ledger, version, source)
    sent_before = {kind: len(entries) for kind, entries in h.records().items()}
    cursor_before = h.cursor()

    result = h.invoke("catch-up", "--since", h.since())
    status = h.invoke("status")

    with closing(sqlite3.connect(h.ledger)) as connection:
        upgraded = connection.execute("PRAGMA user_version").fetchone()[0]
    assert result.exit_code == 0, result.stderr
    assert status.exit_code == 0, status.stderr
    assert upgraded == SCHEMA_VERSION
    assert h.cursor() == cursor_before
    assert {kind: len(entries) for kind, entries in h.records().items()} == sent_before
    assert_settled(h)


def test_status_says_when_it_upgrades_the_schema(h: Harness) -> None:
    caught_up(h)
    checkpointed(h)
    source = h.ledger.with_name("current.sqlite3")
    h.ledger.rename(source)
    build_old_ledger(h.ledger, SCHEMA_VERSION - 1, source)

    first = h.invoke("status")
    second = h.invoke("status")

    assert first.exit_code == 0, first.stderr
    output = first.stdout + first.stderr
    assert "ledger_schema_upgraded" in output
    assert "earlier versions of yotposync can no longer open this ledger" in output
    assert "ledger_schema_upgraded" not in second.stdout + second.stderr
