"""A running tally of the pushes one transactions run planned, in memory that does not grow.

A catch-up over a year of tickets plans tens of thousands of pushes. The ledger keeps every
one of them, so the run's summary keeps only counts, and the pushes of the page in progress
for callers that show them as they are planned (the dry run prints them page by page).
"""

from __future__ import annotations

from collections import Counter

from yotposync.sync.plan import PlannedPush


class PlannedTally:
    """How many pushes a run planned, by kind, and the pushes of the latest page only."""

    def __init__(self) -> None:
        self.count = 0
        self.by_kind: Counter[str] = Counter()
        self.page: list[PlannedPush] = []

    def __len__(self) -> int:
        return self.count

    def start_page(self) -> None:
        """Forget the previous page's pushes; the counts carry on."""
        self.page = []

    def add(self, push: PlannedPush) -> None:
        """Count one planned push and keep it until the next page starts."""
        self.count += 1
        self.by_kind[push.kind] += 1
        self.page.append(push)
