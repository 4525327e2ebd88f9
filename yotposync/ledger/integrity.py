"""Recognise a damaged or full ledger file behind an SQLite error, and give the steps that fix it.

`Ledger.open` catches a file that is not a database at all, and a schema that lacks a table or
column of its version (dropped or renamed by hand). Damage inside a table (a torn write by
failing storage, a file restored halfway) only shows when a query reads the damaged page, as a
plain `sqlite3.DatabaseError` in the middle of a job. The command line and the daemon turn such
an error into a LedgerError with this advice instead of a traceback or a job that fails again
at every run.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import sqlite_utils

from yotposync.errors import LedgerError, LedgerFullError
from yotposync.ledger.schema import SCHEMA_VERSION, migrate

# SQLite result codes for a file whose content is damaged; extended codes such as
# SQLITE_CORRUPT_INDEX share the prefix.
_DAMAGE_CODES = ("SQLITE_CORRUPT", "SQLITE_NOTADB")

# The start of SQLite's message for a statement that names a table, column or index the
# database lacks.
_MISSING_SCHEMA_MESSAGES = ("no such table", "no such column", "no such index")

# A new ledger starts reading tickets at sync.go_live, or at the current time when that is
# unset, so moving a ledger aside alone would skip the tickets since the last good run.
MOVED_ASIDE_ADVICE = (
    "stop yotposync, then restore the ledger from a backup. Or move it aside, and before the "
    "daemon starts again run `yotposync catch-up --since DATE`, with DATE the day before the "
    "last good run or the go-live date, or set sync.go_live. A new ledger starts reading "
    "tickets at sync.go_live, or from now when it is not set. Orders and refunds are sent "
    "again under the same ids, so Yotpo does not count them twice"
)


def damaged_ledger_error(exc: BaseException, path: Path | None) -> LedgerError | None:
    """Return a LedgerError with the steps to take when `exc` reports a damaged ledger.

    A query that names a missing table, column or index counts when the ledger file at `path` lacks
    part of its schema version, as `missing_schema_error` finds. Returns None for any other
    error, including a busy or locked database.
    """
    if not isinstance(exc, sqlite3.DatabaseError):
        return None
    if isinstance(exc, sqlite3.OperationalError) and str(exc).startswith(_MISSING_SCHEMA_MESSAGES):
        return _file_schema_error(path)
    name = getattr(exc, "sqlite_errorname", "")
    if not isinstance(name, str) or not name.startswith(_DAMAGE_CODES):
        return None
    where = f"the ledger {path}" if path is not None else "the ledger"
    return LedgerError(f"{where} is damaged ({exc}): {MOVED_ASIDE_ADVICE}")


def full_ledger_error(exc: BaseException, path: Path | None) -> LedgerFullError | None:
    """Return a LedgerFullError with the fix when `exc` is SQLite's SQLITE_FULL, or else None.

    SQLite reports SQLITE_FULL ("database or disk is full") when the file system has no room
    for the ledger or its -wal file to grow. It rolls back the statement or transaction that
    failed, so what was committed before stays, and a later run repeats the rest.
    """
    if not isinstance(exc, sqlite3.DatabaseError):
        return None
    if getattr(exc, "sqlite_errorname", "") != "SQLITE_FULL":
        return None
    where = f"the ledger {path}" if path is not None else "the ledger"
    folder = (
        f"the file system of {path.absolute().parent}" if path is not None else "its file system"
    )
    return LedgerFullError(
        f"{where} cannot grow because its file system is full ({exc}): free space on {folder}, "
        "or stop yotposync, move the ledger with its -wal file to a file system with room and "
        "set ledger.path to the new place. Nothing committed was lost: SQLite rolled back the "
        "write that failed, and the next run goes on from the last commit"
    )


def known_ledger_error(exc: BaseException, path: Path | None) -> LedgerError | None:
    """Return the LedgerError for a damaged or full ledger behind `exc`, or else None."""
    return damaged_ledger_error(exc, path) or full_ledger_error(exc, path)


def missing_schema_error(
    conn: sqlite3.Connection, version: int, path: Path | None
) -> LedgerError | None:
    """Return a LedgerError naming what the ledger lacks of schema `version`, or else None."""
    missing = missing_schema(conn, version)
    if not missing:
        return None
    return LedgerError(f"{missing_schema_text(path, missing)}: {MOVED_ASIDE_ADVICE}")


def missing_schema(conn: sqlite3.Connection, version: int) -> list[str]:
    """List the tables, columns and indexes of schema `version` that the database lacks.

    Each entry reads "the table pushes", "the column tickets.rule" or "the index
    idx_pushes_open_seq". Indexes count because the delivery queries name theirs with
    INDEXED BY. Tables, columns and indexes that a user added are not an error. A version
    newer than this code's has a schema unknown here, so nothing is listed for it.
    """
    if version > SCHEMA_VERSION:
        return []
    found = _table_columns(conn)
    expected_columns, expected_indexes, expected_keys = _expected_schema(version)
    missing: list[str] = []
    for table, columns in sorted(expected_columns.items()):
        if table not in found:
            missing.append(f"the table {table}")
            continue
        missing += [f"the column {table}.{name}" for name in sorted(columns - found[table])]
    # An index goes with its table, so a missing table's indexes are not listed again.
    indexes = _index_names(conn)
    missing += [
        f"the index {name}"
        for name, table in sorted(expected_indexes.items())
        if table in found and name not in indexes
    ]
    # A table rebuilt by hand can keep its columns and lose a key that the upserts and the
    # one-push-per-id rule rest on.
    for table, keys in sorted(expected_keys.items()):
        if table in found and set(expected_columns[table]) <= found[table]:
            missing += [_key_text(table, key) for key in sorted(keys - _table_keys(conn, table))]
    return missing


def _key_text(table: str, key: tuple[str, tuple[str, ...]]) -> str:
    kind, columns = key
    column_list = ", ".join(columns)
    if kind == "primary":
        return f"the primary key of {table} ({column_list})"
    return f"the unique constraint on {table} ({column_list})"


def _table_keys(conn: sqlite3.Connection, table: str) -> set[tuple[str, tuple[str, ...]]]:
    """Return the primary key and each unique index of `table`, as (kind, columns)."""
    keys: set[tuple[str, tuple[str, ...]]] = set()
    info = conn.execute(
        "SELECT name, pk FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk", [table]
    ).fetchall()
    primary = tuple(str(name).lower() for name, _ in info)
    if primary:
        keys.add(("primary", primary))
    for (index,) in conn.execute(
        'SELECT name FROM pragma_index_list(?) WHERE "unique" = 1 AND partial = 0', [table]
    ).fetchall():
        columns = conn.execute(
            "SELECT name FROM pragma_index_info(?) ORDER BY seqno", [index]
        ).fetchall()
        unique = tuple(str(name).lower() for (name,) in columns)
        if unique != primary:  # the index SQLite makes for a primary key that is not a rowid
            keys.add(("unique", unique))
    return keys


def missing_schema_text(path: Path | None, missing: list[str]) -> str:
    """Describe a ledger that lacks the tables and columns in `missing`, without the fix."""
    where = f"the ledger {path}" if path is not None else "the ledger"
    named = missing[0] if len(missing) == 1 else f"{', '.join(missing[:-1])} and {missing[-1]}"
    return f"{where} is missing {named}, so the ledger was edited or damaged"


def _table_columns(conn: sqlite3.Connection) -> dict[str, set[str]]:
    """Return the column names of each of the database's own tables, in lower case.

    SQLite matches table and column names without regard to ASCII case.
    """
    rows = conn.execute(
        "SELECT m.name, c.name FROM sqlite_master AS m, pragma_table_info(m.name) AS c "
        "WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'"
    )
    columns: dict[str, set[str]] = {}
    for table, column in rows:
        columns.setdefault(str(table).lower(), set()).add(str(column).lower())
    return columns


def _index_names(conn: sqlite3.Connection) -> set[str]:
    """Return the names of the indexes the schema creates, in lower case.

    SQLite's own indexes for UNIQUE and PRIMARY KEY constraints have no SQL text.
    """
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
    return {str(name).lower() for (name,) in rows}


@functools.cache
def _expected_schema(
    version: int,
) -> tuple[
    Mapping[str, frozenset[str]],
    Mapping[str, str],
    Mapping[str, frozenset[tuple[str, tuple[str, ...]]]],
]:
    """Return the columns, keys (see `_table_keys`) and index names of schema `version`.

    The first mapping gives each table's column names, the second each index's table, and
    the third each table's primary key and unique indexes.

    They are read from a new in-memory ledger that the real migrations build, so they cannot
    drift from the schema. Cached, because the daemon opens the ledger for every job run.
    """
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        migrate(sqlite_utils.Database(conn), target=version)
        columns = {table: frozenset(names) for table, names in _table_columns(conn).items()}
        rows = conn.execute(
            "SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        )
        indexes = {str(name).lower(): str(table).lower() for name, table in rows}
        keys = {table: frozenset(_table_keys(conn, table)) for table in columns}
        return columns, indexes, keys
    finally:
        conn.close()


def _file_schema_error(path: Path | None) -> LedgerError | None:
    """Check the ledger file at `path` against its schema version after a query failed.

    The query named a missing table, column or index. A bug in a query of yotposync fails with the
    same message, so the error counts as a damaged ledger only when the file lacks part of
    its schema. Returns None otherwise, or when the file cannot be read.
    """
    if path is None:
        return None
    try:
        conn = sqlite3.connect(f"{path.expanduser().resolve().as_uri()}?mode=ro", uri=True)
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            return missing_schema_error(conn, version, path)
        finally:
            conn.close()
    except sqlite3.Error:
        return None


def file_in_folder_path(path: Path) -> Path | None:
    """Return the nearest existing ancestor of `path` when it is a file instead of a folder.

    Creating the ledger's folder under a file fails with "File exists" or "Not a directory",
    which names neither the file nor the fix.
    """
    for parent in path.parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def file_in_folder_error(path: Path, blocker: Path) -> LedgerError:
    """Build the error for a ledger path that runs through the file `blocker`."""
    return LedgerError(
        f"ledger.path {str(path)!r} runs through {blocker}, which is a file, not a folder: set "
        "ledger.path to a file in a folder, such as /var/lib/yotposync/ledger.sqlite3"
    )


def not_regular_file_error(path: Path) -> LedgerError | None:
    """Return a LedgerError when `path` exists but is not a regular file, or else None.

    Callers check this before creating anything: SQLite would write its journal beside a
    device, and opening a FIFO waits for a writer.
    """
    if not path.exists() or path.is_file():
        return None
    return LedgerError(
        f"the ledger {path} is not a regular file: set ledger.path to a file path, such as "
        "/var/lib/yotposync/ledger.sqlite3"
    )


def stored_time(value: object, where: str) -> datetime:
    """Parse a timestamp that the ledger stored as ISO 8601 text.

    yotposync writes every one, so a value that does not parse was edited by hand or damaged.
    Raises LedgerError naming `where` (table, column and row) and the value.
    """
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            # Every time is written with its offset, and compared with times that have one.
            if parsed.tzinfo is not None:
                return parsed
    raise edited_value_error(
        where, value, "a timestamp with its UTC offset, such as 2026-12-01T10:00:00+00:00"
    )


def stored_int(value: object, where: str) -> int:
    """Return a whole number that the ledger stored, or raise LedgerError as `stored_time` does."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise edited_value_error(where, value, "a whole number")


def edited_value_error(where: str, value: object, expected: str) -> LedgerError:
    """Describe a ledger value that yotposync cannot have written, with the ways to fix it."""
    return LedgerError(
        f"the ledger's {where} is {value!r}, not {expected}, so the ledger was edited or "
        f"damaged. Put back the value it had, or {MOVED_ASIDE_ADVICE}"
    )
