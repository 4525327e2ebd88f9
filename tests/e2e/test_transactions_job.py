"""TransactionsJob in-process against the sandbox on loopback: the rules of the ticket cursor.

Pages hold two tickets, so five tickets make three pages. The sandbox's clock is set by hand,
which lets a test give a ticket any `updated_at`, even one earlier than tickets already seen.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from structlog.testing import capture_logs

from yotposync.clients.heartland import HeartlandClient, TicketPage
from yotposync.config import sandbox_settings
from yotposync.errors import RetriableError
from yotposync.ledger import Cursor, Ledger
from yotposync.sandbox import Sandbox
from yotposync.sandbox.faults import FaultPlan, FaultRule, RecordPatch
from yotposync.scheduler import Daemon
from yotposync.status import collect_status, format_status
from yotposync.sync.transactions import CURSOR_NAME, TransactionsJob, TransactionsSummary

ANCHOR = datetime(2025, 5, 1, 15, 0, tzinfo=UTC)
OVERLAP_SECONDS = 300
PAGE_SIZE = 2
TIMEOUT = 5


class StoreClock:
    """The sandbox's clock. Unlike ManualClock it can be set back, as a skewed server would be."""

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        with self._lock:
            return (self._now - ANCHOR).total_seconds()

    def set(self, moment: datetime) -> None:
        with self._lock:
            self._now = moment


@dataclass
class JobClock:
    """The job's clock, which sets the end of each walk."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Store:
    """An empty sandbox on loopback, with the register's writes used by these tests."""

    sandbox: Sandbox
    clock: StoreClock
    session: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        self.session.headers["Authorization"] = f"Bearer {self.sandbox.heartland_token}"

    def _send(self, method: str, path: str, body: dict[str, Any]) -> requests.Response:
        response = self.session.request(
            method, f"{self.sandbox.heartland_url}{path}", json=body, timeout=TIMEOUT
        )
        assert response.status_code in (200, 201), f"{method} {path}: {response.text}"
        return response

    def customer(self, email: str) -> int:
        body = {"first_name": "Pat", "last_name": "Lee", "email": email}
        response = self._send("POST", "/customers", body)
        return int(response.headers["Location"].rsplit("/", 1)[1])

    def sale(self, customer_id: int, at: datetime, dollars: int = 30) -> int:
        """Create a completed sale whose `updated_at` is `at`."""
        self.clock.set(at)
        body = {
            "station_id": 301,
            "customer_id": customer_id,
            "status": "complete",
            "lines": [{"type": "ItemLine", "qty": 1, "unit_price": dollars}],
        }
        response = self._send("POST", "/sales/tickets", body)
        return int(response.headers["Location"].rsplit("/", 1)[1])

    def void(self, ticket_id: int, at: datetime | None = None) -> None:
        """Void a ticket, at `at` or at the clock's current time."""
        if at is not None:
            self.clock.set(at)
        self._send("PUT", f"/sales/tickets/{ticket_id}", {"voided?": True})


@pytest.fixture
def store() -> Iterator[Store]:
    clock = StoreClock(ANCHOR)
    with Sandbox(store=None, clock=clock) as sandbox:
        yield Store(sandbox, clock)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    ledger = Ledger.open(tmp_path / "state" / "ledger.sqlite3")
    yield ledger
    ledger.close()


def make_job(store: Store, ledger: Ledger, clock: JobClock, source: Any = None) -> TransactionsJob:
    assert ledger.path is not None
    settings = sandbox_settings(
        store.sandbox.heartland_url,
        store.sandbox.yotpo_url,
        ledger.path,
        heartland={"page_size": PAGE_SIZE},
        sync={"overlap_seconds": OVERLAP_SECONDS, "go_live": (ANCHOR - timedelta(days=1))},
    )
    client = HeartlandClient(
        store.sandbox.heartland_url, store.sandbox.heartland_token, requests_per_second=0
    )
    return TransactionsJob(settings, ledger, source or client, clock=clock)


def five_sales(store: Store) -> list[int]:
    """Five sales of one customer, ten seconds apart from ANCHOR on."""
    pat = store.customer("pat@example.com")
    return [store.sale(pat, ANCHOR + timedelta(seconds=10 * n)) for n in range(5)]


def committed_cursor(ledger: Ledger) -> Cursor | None:
    """Read the cursor through a connection of its own, so only committed data shows."""
    assert ledger.path is not None
    with closing(Ledger.open(ledger.path)) as reader:
        return reader.get_cursor(CURSOR_NAME)


def committed_ticket_ids(ledger: Ledger) -> set[int]:
    assert ledger.path is not None
    with closing(Ledger.open(ledger.path)) as reader:
        return {int(row[0]) for row in reader.db.execute("SELECT id FROM tickets")}


def push_ids(ledger: Ledger) -> list[str]:
    return [str(row[0]) for row in ledger.db.execute("SELECT push_id FROM pushes ORDER BY seq")]


def decided_kind(ledger: Ledger, ticket_id: int) -> str:
    info = ledger.parent_info(ticket_id)
    assert info is not None, f"ticket {ticket_id} is not in the ledger"
    return info.kind.value


def after_anchor(seconds: int) -> datetime:
    return ANCHOR + timedelta(seconds=seconds)


# Where the cursor is saved


def test_cursor_committed_with_its_page(store: Store, ledger: Ledger) -> None:
    sales = five_sales(store)
    snapshots: list[tuple[Cursor | None, set[int]]] = []

    def after_page(summary: TransactionsSummary, count: int) -> None:
        snapshots.append((committed_cursor(ledger), committed_ticket_ids(ledger)))

    make_job(store, ledger, JobClock(after_anchor(3600))).run(on_page=after_page)

    assert snapshots == [
        (Cursor(after_anchor(10), sales[1]), set(sales[:2])),
        (Cursor(after_anchor(30), sales[3]), set(sales[:4])),
        (Cursor(after_anchor(40), sales[4]), set(sales)),
    ]


def test_cursor_stops_at_newest_ticket(store: Store, ledger: Ledger) -> None:
    sales = five_sales(store)
    # The job's clock is a day ahead of the newest ticket.
    job = make_job(store, ledger, JobClock(after_anchor(86400)))

    job.run()

    assert ledger.get_cursor(CURSOR_NAME) == Cursor(after_anchor(40), sales[4])

    job.clock = JobClock(after_anchor(2 * 86400))
    job.run()

    assert ledger.get_cursor(CURSOR_NAME) == Cursor(after_anchor(40), sales[4])


def test_stopped_walk_keeps_cursor_at_page(store: Store, ledger: Ledger) -> None:
    sales = five_sales(store)

    summary = make_job(store, ledger, JobClock(after_anchor(3600))).run(should_stop=lambda: True)

    assert summary.pages == 1
    assert ledger.get_cursor(CURSOR_NAME) == Cursor(after_anchor(10), sales[1])


def test_bounded_walk_leaves_cursor(store: Store, ledger: Ledger) -> None:
    five_sales(store)

    summary = make_job(store, ledger, JobClock(after_anchor(3600))).run(
        since=after_anchor(0), until=after_anchor(20)
    )

    assert summary.tickets == 3
    assert ledger.get_cursor(CURSOR_NAME) is None


# Tickets that change or arrive during and between walks


def test_edit_between_pages_seen_eventually(store: Store, ledger: Ledger) -> None:
    sales = five_sales(store)
    walked, ahead = sales[0], sales[3]

    def void_two(summary: TransactionsSummary, count: int) -> None:
        if summary.pages == 1:
            store.void(walked, after_anchor(100))
            store.void(ahead)

    job = make_job(store, ledger, JobClock(after_anchor(3600)))
    first = job.run(on_page=void_two)
    # The pages after the first may already have been read ahead when the edits were made,
    # so this walk may or may not list the edited tickets again at its end. The next walk,
    # which starts from the cursor minus the overlap, lists them in either case.
    assert 5 <= first.tickets <= 7
    job.run()

    assert decided_kind(ledger, walked) == "void"
    assert decided_kind(ledger, ahead) == "void"
    expected = [
        f"hl-{sales[0]}",
        f"hl-{sales[1]}",
        f"hl-{sales[2]}",
        f"hl-{sales[4]}",
        f"hl-adj-{sales[0]}-1",
    ]
    if f"hl-{ahead}" in push_ids(ledger):
        # Read before its void: its order went out, and a refund of all of it follows.
        expected += [f"hl-{ahead}", f"hl-adj-{ahead}-1"]
    assert sorted(push_ids(ledger)) == sorted(expected)


def test_edit_after_walk_end_seen_next_run(store: Store, ledger: Ledger) -> None:
    sales = five_sales(store)
    clock = JobClock(after_anchor(40))
    job = make_job(store, ledger, clock)

    def void_first(summary: TransactionsSummary, count: int) -> None:
        if summary.pages == 1:
            store.void(sales[0], after_anchor(45))

    first = job.run(on_page=void_first)

    assert first.tickets == 5
    assert decided_kind(ledger, sales[0]) == "sale"

    clock.now = after_anchor(60)
    second = job.run()

    assert second.decisions["void"] == 1
    assert decided_kind(ledger, sales[0]) == "void"
    assert ledger.get_cursor(CURSOR_NAME) == Cursor(after_anchor(45), sales[0])


def test_late_commit_inside_overlap_picked_up(store: Store, ledger: Ledger) -> None:
    pat = store.customer("pat@example.com")
    store.sale(pat, after_anchor(0))
    newest = store.sale(pat, after_anchor(100))
    job = make_job(store, ledger, JobClock(after_anchor(200)))
    job.run()
    assert ledger.get_cursor(CURSOR_NAME) == Cursor(after_anchor(100), newest)

    # Committed after the walk, stamped before the cursor, as from a lagging server.
    late = store.sale(pat, after_anchor(100 - OVERLAP_SECONDS + 10))
    job.run()

    assert decided_kind(ledger, late) == "sale"
    assert f"hl-{late}" in push_ids(ledger)
    assert ledger.get_cursor(CURSOR_NAME) == Cursor(after_anchor(100), newest)


class FilterIgnoringSource:
    """The real Heartland client, asked without the walk's end: a listing that ignores it."""

    def __init__(self, client: HeartlandClient) -> None:
        self.client = client

    def ticket_pages(self, **options: Any) -> Iterable[TicketPage]:
        return self.client.ticket_pages(**{**options, "end": None})

    def get_ticket(self, ticket_id: int) -> dict[str, Any] | None:
        return self.client.get_ticket(ticket_id)

    def customers_by_id(self, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        return self.client.customers_by_id(ids)


def test_ticket_listed_after_window_end_leaves_cursor(store: Store, ledger: Ledger) -> None:
    pat = store.customer("pat@example.com")
    first = store.sale(pat, after_anchor(0))
    future = store.sale(pat, datetime(2030, 1, 1, tzinfo=UTC))
    source = FilterIgnoringSource(
        HeartlandClient(
            store.sandbox.heartland_url, store.sandbox.heartland_token, requests_per_second=0
        )
    )
    clock = JobClock(after_anchor(3600))
    job = make_job(store, ledger, clock, source)

    with capture_logs() as logs:
        job.run()

    # The ticket is decided, but the cursor does not jump to 2030.
    assert decided_kind(ledger, future) == "sale"
    assert ledger.get_cursor(CURSOR_NAME) == Cursor(after_anchor(0), first)
    warned = [entry for entry in logs if entry["event"] == "ticket_updated_after_window"]
    assert [(entry["ticket_id"], entry["updated_at"]) for entry in warned] == [
        (future, "2030-01-01T00:00:00+00:00")
    ]

    # A sale made after that run is read by the next one.
    later = store.sale(pat, after_anchor(4000))
    clock.now = after_anchor(4100)
    with capture_logs() as logs:
        job.run()

    assert decided_kind(ledger, later) == "sale"
    assert ledger.get_cursor(CURSOR_NAME) == Cursor(after_anchor(4000), later)
    # The future ticket is listed again, but warned about only once.
    again = [entry for entry in logs if entry["event"] == "ticket_updated_after_window"]
    assert [(entry["ticket_id"], entry["log_level"]) for entry in again] == [(future, "debug")]


def list_in_2030(store: Store, ticket_ids: list[int]) -> None:
    """Make the sandbox list these tickets as updated in 2030, in their true place."""
    future = RecordPatch(set={"updated_at": "2030-01-01T00:00:00Z"})
    rule = FaultRule(
        name="future",
        service="heartland",
        kind="patch_records",
        method="GET",
        path="/api/sales/tickets*",
        patches={str(ticket_id): future for ticket_id in ticket_ids},
    )
    store.sandbox.faults.set_plan(FaultPlan(rules=(rule,)))


def test_future_ticket_ending_page_does_not_end_walk(store: Store, ledger: Ledger) -> None:
    # The sandbox lists tickets in their true order, with one labelled 2030 at the end of the
    # first page. The next page must start after the last row inside the window, or every
    # walk would end on that row and never read the sales after it.
    sales = five_sales(store)
    list_in_2030(store, [sales[1]])
    job = make_job(store, ledger, JobClock(after_anchor(3600)))

    summary = job.run()

    assert committed_ticket_ids(ledger) == set(sales)
    assert summary.tickets >= 5
    assert ledger.get_cursor(CURSOR_NAME) == Cursor(after_anchor(40), sales[4])


def test_whole_page_of_future_tickets_skipped(store: Store, ledger: Ledger) -> None:
    # The second page holds only rows labelled 2030, so it gives no key inside the window to
    # go on from. The walk requests the page after it by number instead of ending there.
    sales = five_sales(store)
    list_in_2030(store, [sales[2], sales[3]])
    job = make_job(store, ledger, JobClock(after_anchor(3600)))

    job.run()

    assert committed_ticket_ids(ledger) == set(sales)
    assert ledger.get_cursor(CURSOR_NAME) == Cursor(after_anchor(40), sales[4])


def test_cursor_after_now_moved_back(store: Store, ledger: Ledger) -> None:
    # A cursor later than the clock, from a clock set back or an older yotposync, would make
    # every walk start after the sales made until then.
    pat = store.customer("pat@example.com")
    first = store.sale(pat, after_anchor(0))
    clock = JobClock(after_anchor(60))
    job = make_job(store, ledger, clock)
    job.run()
    with ledger.transaction():
        ledger.save_cursor(CURSOR_NAME, Cursor(datetime(2030, 1, 1, tzinfo=UTC), first), clock.now)
    later = store.sale(pat, after_anchor(3000))
    clock.now = after_anchor(3100)

    with capture_logs() as logs:
        job.run()

    assert decided_kind(ledger, later) == "sale"
    assert ledger.get_cursor(CURSOR_NAME) == Cursor(after_anchor(3000), later)
    warned = [entry for entry in logs if entry["event"] == "cursor_after_now"]
    assert [(entry["cursor"], entry["moved_to"]) for entry in warned] == [
        ("2030-01-01T00:00:00+00:00", after_anchor(0).isoformat())
    ]


def test_new_ledger_without_go_live_keeps_its_start(store: Store, ledger: Ledger) -> None:
    # Until the store's first sale, a new ledger without sync.go_live had no cursor, so each
    # start began at "now" and missed the sales of a stop longer than the overlap.
    job = make_job(store, ledger, JobClock(after_anchor(0)))
    job.go_live = None
    job.run()

    assert ledger.get_cursor(CURSOR_NAME) == Cursor(after_anchor(0), 0)

    pat = store.customer("pat@example.com")
    during_stop = store.sale(pat, after_anchor(60))
    job.clock = JobClock(after_anchor(60 + 4 * OVERLAP_SECONDS))
    job.run()

    assert decided_kind(ledger, during_stop) == "sale"
    assert ledger.get_cursor(CURSOR_NAME) == Cursor(after_anchor(60), during_stop)


class SteppingClock:
    """The job's clock: each reading is a minute after the one before."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


def test_time_limit_ends_walk_after_page(store: Store, ledger: Ledger) -> None:
    # The daemon's first poll from a go-live date months back outlasts the job timeout in one
    # run, so a run ends after the page that passes its limit, and the next goes on.
    sales = five_sales(store)
    job = make_job(store, ledger, JobClock(after_anchor(3600)))
    job.clock = SteppingClock(after_anchor(3600))
    limit = timedelta(seconds=30)

    first = job.run(time_limit=limit)
    second = job.run(time_limit=limit)
    third = job.run(time_limit=limit)

    assert (first.pages, first.time_limit_reached) == (1, True)
    assert first.cursor == Cursor(after_anchor(10), sales[1])
    assert second.time_limit_reached is True
    assert second.cursor == Cursor(after_anchor(30), sales[3])
    assert third.time_limit_reached is False
    assert ledger.get_cursor(CURSOR_NAME) == Cursor(after_anchor(40), sales[4])
    assert push_ids(ledger) == [f"hl-{ticket}" for ticket in sales]
    assert first.as_dict()["time_limit_reached"] is True


def test_daemon_poll_stops_at_time_limit(store: Store, ledger: Ledger) -> None:
    five_sales(store)
    assert ledger.path is not None
    settings = sandbox_settings(
        store.sandbox.heartland_url,
        store.sandbox.yotpo_url,
        ledger.path,
        heartland={"page_size": PAGE_SIZE, "requests_per_second": 1000},
        sync={"overlap_seconds": OVERLAP_SECONDS, "go_live": (ANCHOR - timedelta(days=1))},
        ops={"job_timeout_seconds": 60},
        # Without offers, the poll does not wait for a first offers run (see OffersRuntime).
        offers={"enabled": False},
    )
    daemon = Daemon(settings, clock=SteppingClock(after_anchor(3600)))

    daemon.run_transactions()

    runs = {run["job"]: run for run in ledger.last_runs()}
    summary = json.loads(runs["transactions"]["summary"])
    status = format_status(collect_status(ledger, after_anchor(7200)))
    assert runs["transactions"]["outcome"] == "ok"
    assert (summary["pages"], summary["time_limit_reached"]) == (1, True)
    assert (
        "Last transactions run: ok (stopped at its time limit after reading tickets updated "
        f"up to {summary['cursor']}; the next run goes on from there)"
    ) in status


class DownSource(FilterIgnoringSource):
    """A Heartland source that fails every ticket listing with HTTP 503."""

    def ticket_pages(self, **options: Any) -> Iterable[TicketPage]:
        raise RetriableError("heartland", "GET", "/sales/tickets", 503, "Service Unavailable")


def test_failed_first_walk_keeps_its_start(store: Store, ledger: Ledger) -> None:
    # A new ledger without go-live whose first poll fails (Heartland down, a wrong token)
    # must not begin again at "now" next time, or the sales of the outage are never read.
    client = HeartlandClient(
        store.sandbox.heartland_url, store.sandbox.heartland_token, requests_per_second=0
    )
    down = make_job(store, ledger, JobClock(after_anchor(0)), DownSource(client))
    down.go_live = None
    with pytest.raises(RetriableError):
        down.run()

    pat = store.customer("pat@example.com")
    during_outage = store.sale(pat, after_anchor(60))
    job = make_job(store, ledger, JobClock(after_anchor(60 + 4 * OVERLAP_SECONDS)))
    job.go_live = None
    job.run()

    assert decided_kind(ledger, during_outage) == "sale"
    assert ledger.get_cursor(CURSOR_NAME) == Cursor(after_anchor(60), during_outage)


# Crashes


def test_crash_after_page_keeps_whole_pages(store: Store, ledger: Ledger) -> None:
    sales = five_sales(store)
    job = make_job(store, ledger, JobClock(after_anchor(3600)))

    def crash_after_second(summary: TransactionsSummary, count: int) -> None:
        if summary.pages == 2:
            raise RuntimeError("killed after the second page")

    with pytest.raises(RuntimeError):
        job.run(on_page=crash_after_second)

    assert committed_ticket_ids(ledger) == set(sales[:4])
    assert committed_cursor(ledger) == Cursor(after_anchor(30), sales[3])
    assert push_ids(ledger) == [f"hl-{ticket}" for ticket in sales[:4]]

    job.run()

    assert push_ids(ledger) == [f"hl-{ticket}" for ticket in sales]


class CrashingSource:
    """The real Heartland client, failing on its n-th customer lookup (inside a page)."""

    def __init__(self, client: HeartlandClient, fail_on_call: int) -> None:
        self.client = client
        self.calls = 0
        self.fail_on_call = fail_on_call

    def ticket_pages(self, **options: Any) -> Iterable[TicketPage]:
        return self.client.ticket_pages(**options)

    def get_ticket(self, ticket_id: int) -> dict[str, Any] | None:
        return self.client.get_ticket(ticket_id)

    def ticket_lines(self, ticket_id: int) -> list[dict[str, Any]]:
        return self.client.ticket_lines(ticket_id)

    def customers_by_id(self, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise RuntimeError("killed while reading the page's customers")
        return self.client.customers_by_id(ids)


def test_crash_inside_page_keeps_whole_pages(store: Store, ledger: Ledger) -> None:
    sales = five_sales(store)
    client = HeartlandClient(
        store.sandbox.heartland_url, store.sandbox.heartland_token, requests_per_second=0
    )
    job = make_job(
        store, ledger, JobClock(after_anchor(3600)), CrashingSource(client, fail_on_call=3)
    )

    with pytest.raises(RuntimeError):
        job.run()

    assert committed_ticket_ids(ledger) == set(sales[:4])
    assert committed_cursor(ledger) == Cursor(after_anchor(30), sales[3])
    assert push_ids(ledger) == [f"hl-{ticket}" for ticket in sales[:4]]


class ListingSource(CrashingSource):
    """Counts the customer requests and where they run; leaves `hidden` out of every list."""

    def __init__(self, client: HeartlandClient, hidden: frozenset[int] = frozenset()) -> None:
        super().__init__(client, fail_on_call=0)
        self.hidden = hidden
        self.list_threads: list[str] = []
        self.singles: list[int] = []

    def customers_by_id(self, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        self.list_threads.append(threading.current_thread().name)
        found = super().customers_by_id(ids)
        return {i: raw for i, raw in found.items() if i not in self.hidden}

    def get_customer(self, customer_id: int) -> dict[str, Any] | None:
        self.singles.append(customer_id)
        return self.client.get_customer(customer_id)


def test_customers_read_ahead_once_per_page(store: Store, ledger: Ledger) -> None:
    sales = five_sales(store)
    source = ListingSource(
        HeartlandClient(
            store.sandbox.heartland_url, store.sandbox.heartland_token, requests_per_second=0
        )
    )
    summary = make_job(store, ledger, JobClock(after_anchor(3600)), source).run()

    # Three pages of at most two tickets: one list request each, made by the reading thread.
    assert summary.pages == 3
    assert source.list_threads == ["ticket-pages"] * 3
    assert source.singles == []
    assert all(decided_kind(ledger, sale) == "sale" for sale in sales)


def test_unlisted_customer_fetched_alone(store: Store, ledger: Ledger) -> None:
    sales = five_sales(store)
    client = HeartlandClient(
        store.sandbox.heartland_url, store.sandbox.heartland_token, requests_per_second=0
    )
    ticket = client.get_ticket(sales[0])
    assert ticket is not None
    customer_id = int(ticket["customer_id"])
    source = ListingSource(client, hidden=frozenset({customer_id}))

    make_job(store, ledger, JobClock(after_anchor(3600)), source).run()

    # Not listed again by the job's thread: asked for on its own, once per page.
    assert source.list_threads == ["ticket-pages"] * 3
    assert source.singles == [customer_id] * 3
    assert all(decided_kind(ledger, sale) == "sale" for sale in sales)


class UnreadableCustomers(ListingSource):
    """Lists every customer with a `custom` member that is not an object, which cannot be read."""

    def customers_by_id(self, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        found = super().customers_by_id(ids)
        return {i: raw | {"custom": "not an object"} for i, raw in found.items()}


def test_unreadable_customer_keeps_earlier_decision(store: Store, ledger: Ledger) -> None:
    sales = five_sales(store)
    client = HeartlandClient(
        store.sandbox.heartland_url, store.sandbox.heartland_token, requests_per_second=0
    )
    make_job(store, ledger, JobClock(after_anchor(60))).run()
    earned = push_ids(ledger)

    # The next walk lists the same tickets again (the cursor overlap), while their customer
    # record cannot be read: no sale may lose its points over that.
    again = make_job(store, ledger, JobClock(after_anchor(120)), UnreadableCustomers(client))
    summary = again.run()

    assert summary.tickets == 5
    assert push_ids(ledger) == earned
    assert all(decided_kind(ledger, sale) == "sale" for sale in sales)
    assert all("unusable customer record" in problem for problem in summary.invalid)


def test_unreadable_customer_first_seen_is_invalid(store: Store, ledger: Ledger) -> None:
    sales = five_sales(store)
    client = HeartlandClient(
        store.sandbox.heartland_url, store.sandbox.heartland_token, requests_per_second=0
    )
    summary = make_job(store, ledger, JobClock(after_anchor(60)), UnreadableCustomers(client)).run()

    assert push_ids(ledger) == []
    assert all(decided_kind(ledger, sale) == "invalid" for sale in sales)
    assert len(summary.invalid) == 5
    assert all("unusable customer record" in problem for problem in summary.invalid)

    # Once the customer can be read again, the next walk over the same tickets earns them.
    make_job(store, ledger, JobClock(after_anchor(120))).run()

    assert all(decided_kind(ledger, sale) == "sale" for sale in sales)
    assert len(push_ids(ledger)) == 5
