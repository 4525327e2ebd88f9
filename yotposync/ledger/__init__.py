"""The local SQLite ledger of cursors, decisions and pushes."""

from yotposync.ledger.lock import LedgerLock
from yotposync.ledger.store import Cursor, Ledger, Push, TicketAmountsRow

__all__ = ["Cursor", "Ledger", "LedgerLock", "Push", "TicketAmountsRow"]
