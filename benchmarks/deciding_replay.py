"""The daemon's own work per ticket: a catch-up's reading phase replayed without HTTP.

A catch-up's CPU is mostly HTTP, which the wire-limit client spends too, and the work only
the daemon does: parsing each ticket, deciding it, planning its pushes and writing the
ledger. This benchmark measures that second part alone. It reads a generated store's ticket
pages and customers from the sandbox once, then runs the transactions job over them
`repeat` times from memory, each time into a new ledger file, and reports the CPU time of
each replay. Runs of the same code vary much less than a whole catch-up does, so a change to
parsing or deciding shows here first.

Run: python -m benchmarks.deciding_replay --config PATH --since ISO [--repeat 3]
It prints one JSON object with its counts and timings. `benchmarks.deciding` starts the
sandbox, writes the configuration and runs this in its own process.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from yotposync.app import heartland_client, utc_now
from yotposync.clients.heartland import TicketPage
from yotposync.config import load_settings
from yotposync.ledger import Ledger
from yotposync.logs import configure_logging
from yotposync.sync.transactions import TransactionsJob


class StoredTickets:
    """A Heartland ticket source that serves pages and customers read earlier, from memory."""

    def __init__(self, pages: list[TicketPage], customers: dict[int, dict[str, Any]]) -> None:
        self.pages = pages
        self.customers = customers

    def ticket_pages(
        self,
        *,
        start: datetime,
        end: datetime | None,
        page_size: int,
        after: tuple[str, int] | None = None,
    ) -> Iterator[TicketPage]:
        return iter(self.pages)

    def get_ticket(self, ticket_id: int) -> dict[str, Any] | None:
        return None

    def ticket_lines(self, ticket_id: int) -> list[dict[str, Any]]:
        return []

    def customers_by_id(self, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        return {i: self.customers[i] for i in ids if i in self.customers}

    def get_customer(self, customer_id: int) -> dict[str, Any] | None:
        return self.customers.get(customer_id)


def read_store(config: Path, since: datetime) -> StoredTickets:
    """Read every ticket page of the window, and the customers the tickets name, over HTTP."""
    settings = load_settings(config)
    client = heartland_client(settings)
    pages: list[TicketPage] = []
    customers: dict[int, dict[str, Any]] = {}
    for page in client.ticket_pages(start=since, end=None, page_size=settings.heartland.page_size):
        pages.append(page)
        ids = {raw["customer_id"] for raw in page.results if raw.get("customer_id")}
        customers.update(client.customers_by_id(sorted(ids)))
    return StoredTickets(pages, customers)


def replay(config: Path, since: datetime, store: StoredTickets, folder: Path) -> dict[str, Any]:
    """Run the transactions job once over `store` into a new ledger; return its counts and CPU."""
    settings = load_settings(config)
    ledger = Ledger.open(folder / "ledger.sqlite3")
    try:
        job = TransactionsJob(settings, ledger, store, clock=utc_now)
        started = time.process_time()
        summary = job.run(since=since)
        cpu = time.process_time() - started
    finally:
        ledger.close()
    return {"tickets": summary.tickets, "pushes": len(summary.planned), "cpu_seconds": cpu}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, type=Path, help="daemon configuration")
    parser.add_argument("--since", required=True, help="window start, as the catch-up's")
    parser.add_argument("--repeat", type=int, default=3, help="replays to run")
    options = parser.parse_args(argv)
    since = datetime.fromisoformat(options.since)
    # The job's log lines go to stderr at the configured level, as in a catch-up, so that
    # standard output holds only the figures.
    settings = load_settings(options.config)
    configure_logging(settings.logging.level, settings.logging.format, stream=sys.stderr)

    store = read_store(options.config, since)
    replays = []
    for _ in range(options.repeat):
        with tempfile.TemporaryDirectory(prefix="yotposync-deciding-") as folder:
            replays.append(replay(options.config, since, store, Path(folder)))
    cpu = [run["cpu_seconds"] for run in replays]
    tickets = replays[0]["tickets"]
    json.dump(
        {
            "tickets": tickets,
            "pushes": replays[0]["pushes"],
            "replays": len(replays),
            "cpu_seconds": [round(value, 3) for value in cpu],
            "cpu_seconds_median": round(statistics.median(cpu), 3),
            "cpu_ms_per_ticket": round(1000 * statistics.median(cpu) / max(1, tickets), 3),
        },
        sys.stdout,
    )
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
