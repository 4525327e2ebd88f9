"""The empty-window guard: Heartland suddenly lists nothing where the ledger saw tickets.

The job stops with a message that names the window and `--force`, and the cursor stays
where it was. `catch-up --force` and `run --force` accept the empty window.
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.reliability.support import Harness, harness, wait_until
from yotposync.errors import GuardError
from yotposync.sandbox import Store, generate_store
from yotposync.sandbox.faults import FaultPlan, FaultRule

ANCHOR = datetime(2026, 4, 20, 16, 0, tzinfo=UTC)
OVERLAP = timedelta(seconds=300)

EMPTY_LISTING = FaultPlan(
    rules=(
        FaultRule(
            name="empty",
            service="heartland",
            kind="empty_page",
            method="GET",
            path="/api/sales/tickets",
            empty_total="zero",
            enabled=False,
        ),
    )
)


@pytest.fixture(scope="module")
def store() -> Store:
    return generate_store(seed=31, tickets=40, anchor=ANCHOR)


@pytest.fixture
def h(tmp_path: Path, store: Store) -> Iterator[Harness]:
    with harness(tmp_path, store, faults=EMPTY_LISTING) as made:
        made.transactions(since=store.anchor - timedelta(days=366))
        yield made


def cursor_time(h: Harness) -> datetime:
    cursor = h.cursor()
    assert cursor is not None
    return datetime.fromisoformat(cursor[0])


def test_empty_window_stops_job(h: Harness) -> None:
    before = h.cursor()
    start = cursor_time(h) - OVERLAP
    h.sandbox.faults.enable("empty")

    with pytest.raises(GuardError) as caught:
        h.transactions()

    message = str(caught.value)
    assert f"from {start.isoformat()} to " in message
    assert "--force" in message
    assert h.cursor() == before


def test_force_accepts_empty_window(h: Harness) -> None:
    before = h.cursor()
    h.sandbox.faults.enable("empty")

    summary = h.transactions(force=True)

    assert summary.tickets == 0
    assert h.cursor() == before


def test_quiet_store_passes_guard(h: Harness) -> None:
    summary = h.transactions()

    assert summary.tickets > 0
    assert summary.changed == 0


def test_fresh_ledger_allows_empty_window(tmp_path: Path, store: Store) -> None:
    with harness(tmp_path, store, faults=EMPTY_LISTING) as fresh:
        fresh.sandbox.faults.enable("empty")

        summary = fresh.transactions(since=store.anchor - timedelta(days=30))

        assert summary.tickets == 0


def test_window_in_past_checks_only_that_window(h: Harness, store: Store) -> None:
    h.sandbox.faults.enable("empty")
    long_ago = store.anchor - timedelta(days=900)

    summary = h.transactions(since=long_ago, until=long_ago + timedelta(days=1))

    assert summary.tickets == 0


# The commands.


def test_catch_up_stops_then_force_accepts(h: Harness) -> None:
    h.sandbox.faults.enable("empty")

    stopped = h.invoke("catch-up", "--since", h.since())
    forced = h.invoke("catch-up", "--since", h.since(), "--force")

    assert stopped.exit_code == 1
    assert f"from {h.since()}T00:00:00+00:00 to " in stopped.stderr
    assert "--force" in stopped.stderr
    assert forced.exit_code == 0
    assert "0 ticket versions" in forced.stdout


def test_first_catch_up_reading_nothing_warns(tmp_path: Path, store: Store) -> None:
    with harness(tmp_path, store, faults=EMPTY_LISTING) as fresh:
        fresh.sandbox.faults.enable("empty")

        result = fresh.invoke("catch-up", "--since", fresh.since())

    assert result.exit_code == 0
    assert "0 ticket versions" in result.stdout
    warning = result.stderr
    assert f"warning: Heartland listed no tickets updated from {fresh.since()}T00:00" in warning
    assert "heartland.base_url" in warning
    assert "API token" in warning
    assert "--since" in warning


def test_first_catch_up_with_tickets_silent(tmp_path: Path, store: Store) -> None:
    with harness(tmp_path, store) as fresh:
        result = fresh.invoke("catch-up", "--since", fresh.since())

    assert result.exit_code == 0
    assert "warning:" not in result.stderr


def test_later_empty_catch_up_silent(h: Harness, store: Store) -> None:
    long_ago = store.anchor - timedelta(days=900)

    result = h.invoke(
        "catch-up",
        "--since",
        long_ago.date().isoformat(),
        "--until",
        (long_ago + timedelta(days=1)).date().isoformat(),
    )

    assert result.exit_code == 0
    assert "0 ticket versions" in result.stdout
    assert "warning:" not in result.stderr


def log_events(output: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_daemon_stops_on_empty_window(h: Harness) -> None:
    h.sandbox.faults.enable("empty")

    result = h.invoke("run")

    events = log_events(result.stdout)
    fatal = [e for e in events if e["event"] == "job_fatal"]
    assert result.exit_code == 1
    assert len(fatal) == 1
    assert "--force" in str(fatal[0]["error"])


def test_daemon_with_force_keeps_polling(h: Harness) -> None:
    h.sandbox.faults.enable("empty")

    def stop_after_two_polls() -> None:
        wait_until(
            # Each poll requests the empty page twice before it accepts it.
            lambda: h.sandbox.faults.report()["injected"].get("empty", 0) >= 4,
            30,
            "two polls of the empty window",
        )
        # The daemon's own SIGTERM handler stops it, as the service manager would.
        signal.raise_signal(signal.SIGTERM)

    stopper = threading.Thread(target=stop_after_two_polls, daemon=True)
    stopper.start()
    result = h.invoke("run", "--force")
    stopper.join(timeout=30)

    events = [e["event"] for e in log_events(result.stdout)]
    assert result.exit_code == 0
    assert "empty_window_guard_off" in events
    assert events.count("empty_window_accepted") >= 2
    assert "job_fatal" not in events


def test_catch_up_ending_on_empty_pages_warns(tmp_path: Path, store: Store) -> None:
    # Pages after the first come back empty twice, with a total of 0, so the walk ends
    # early. The first page's total still shows how many tickets the window holds.
    short = FaultPlan(
        rules=(
            FaultRule(
                name="empty-later",
                service="heartland",
                kind="empty_page",
                method="GET",
                path="/api/sales/tickets",
                empty_total="zero",
                after=1,
                times=2,
            ),
        )
    )
    with harness(tmp_path, store, faults=short, heartland={"page_size": 10}) as fresh:
        result = fresh.invoke("catch-up", "--since", fresh.since())

    assert result.exit_code == 0
    assert "10 ticket versions" in result.stdout
    assert "warning: Heartland's first page counted" in result.stderr
    assert "but the walk read 10" in result.stderr
    assert "run the same catch-up again" in result.stderr
