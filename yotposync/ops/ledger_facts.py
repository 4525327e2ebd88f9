"""Figures that health checks and metrics read from the ledger at request time.

Each read opens the ledger read-only on a connection of its own, so a scrape never waits for
or blocks a job's write transaction for long, and reads only committed data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from yotposync.ledger import Cursor, Ledger
from yotposync.sync.transactions import CURSOR_NAME


@dataclass(frozen=True)
class LedgerFacts:
    """Counts and times from one read of the ledger."""

    last_success: dict[str, datetime]  # job name to the end of its latest successful run
    pushes: dict[tuple[str, str], int]  # (kind, state) to number of pushes
    oldest_unfinished_at: datetime | None  # queued time of the oldest unsettled push
    cursor: Cursor | None
    decisions: dict[tuple[str, str], int]  # (kind, rule or "") to number of tickets
    tickets: int
    ticket_versions: int

    @property
    def unfinished_pushes(self) -> int:
        """Pushes neither confirmed nor rejected: pending, sent or failed."""
        return sum(n for (_, state), n in self.pushes.items() if state not in _SETTLED)

    def pushes_in_state(self, state: str) -> int:
        return sum(n for (_, push_state), n in self.pushes.items() if push_state == state)


_SETTLED = frozenset({"confirmed", "rejected"})


def read_ledger_facts(path: Path) -> LedgerFacts:
    """Read the facts from the ledger at `path`; raises LedgerError when it cannot be read."""
    ledger = Ledger.open_read_only(path)
    try:
        db = ledger.db
        last_success = {
            str(job): datetime.fromisoformat(finished)
            for job, finished in db.execute(
                # A catch-up that left pushes waiting for a retry finished its work too.
                "SELECT job, max(finished_at) FROM runs "
                "WHERE outcome IN ('ok', 'waiting') GROUP BY job"
            )
            if finished
        }
        pushes = {
            (str(kind), str(state)): int(n)
            for kind, state, n in db.execute(
                "SELECT kind, state, count(*) FROM pushes GROUP BY kind, state"
            )
        }
        decisions = {
            (str(kind), str(rule or "")): int(n)
            for kind, rule, n in db.execute(
                "SELECT kind, rule, count(*) FROM tickets GROUP BY kind, rule"
            )
        }
        versions_row = db.execute("SELECT count(*) FROM ticket_versions").fetchone()
        return LedgerFacts(
            last_success=last_success,
            pushes=pushes,
            oldest_unfinished_at=ledger.oldest_unfinished_at(),
            cursor=ledger.get_cursor(CURSOR_NAME),
            decisions=decisions,
            tickets=sum(decisions.values()),
            ticket_versions=int(versions_row[0]),
        )
    finally:
        ledger.close()
