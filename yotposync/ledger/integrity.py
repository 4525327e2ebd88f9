"""Recognise a damaged ledger file behind an SQLite error, and give the steps that fix it.

`Ledger.open` catches a file that is not a database at all. Damage inside a table (a torn
write by failing storage, a file restored halfway) only shows when a query reads the damaged
page, as a plain `sqlite3.DatabaseError` in the middle of a job. The command line and the
daemon turn such an error into a LedgerError with this advice instead of a traceback or a
job that fails again at every run.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

from yotposync.errors import LedgerError

# SQLite result codes for a file whose content is damaged; extended codes such as
# SQLITE_CORRUPT_INDEX share the prefix.
_DAMAGE_CODES = ("SQLITE_CORRUPT", "SQLITE_NOTADB")

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

    Returns None for any other error, including a busy or locked database.
    """
    if not isinstance(exc, sqlite3.DatabaseError):
        return None
    name = getattr(exc, "sqlite_errorname", "")
    if not isinstance(name, str) or not name.startswith(_DAMAGE_CODES):
        return None
    where = f"the ledger {path}" if path is not None else "the ledger"
    return LedgerError(f"{where} is damaged ({exc}): {MOVED_ASIDE_ADVICE}")


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
