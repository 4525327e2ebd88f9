"""Recognise a damaged ledger file behind an SQLite error, and give the steps that fix it.

`Ledger.open` catches a file that is not a database at all. Damage inside a table (a torn
write by failing storage, a file restored halfway) only shows when a query reads the damaged
page, as a plain `sqlite3.DatabaseError` in the middle of a job. The command line and the
daemon turn such an error into a LedgerError with this advice instead of a traceback or a
job that fails again at every run.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from yotposync.errors import LedgerError

# SQLite result codes for a file whose content is damaged; extended codes such as
# SQLITE_CORRUPT_INDEX share the prefix.
_DAMAGE_CODES = ("SQLITE_CORRUPT", "SQLITE_NOTADB")


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
    return LedgerError(
        f"{where} is damaged ({exc}): stop yotposync, then restore the ledger from a backup, "
        "or move it aside so that the next run starts a new ledger, which looks at every "
        "ticket again and sends its orders and refunds under the same ids as before"
    )
