"""Time: cursors, filters and business dates stay UTC-correct whatever the host's time zone.

Every test here runs under several process time zones, set with `TZ` and `time.tzset()`;
two of them have daylight saving time. The tests cover both 2026 daylight saving changes of
the sandbox's Chicago store. On 8 March the clocks go forward at 02:00 local (08:00 UTC). On
1 November they go back at 02:00 local (07:00 UTC), so 01:00 to 02:00 happens twice.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
import responses

from tests.reliability.support import Harness, Register, accepted, harness, invoke
from yotposync.clients.heartland import HeartlandClient
from yotposync.config import load_settings
from yotposync.sandbox import ManualClock, StoreBuilder

STORE_ZONE = ZoneInfo("America/Chicago")
SPRING_FORWARD = datetime(2026, 3, 8, 8, 0, tzinfo=UTC)
FALL_BACK = datetime(2026, 11, 1, 7, 0, tzinfo=UTC)
PROCESS_ZONES = ["UTC", "America/Chicago", "Australia/Lord_Howe"]


def set_process_zone(zone: str) -> Iterator[str]:
    """Run a test with the process's local time zone set to `zone`."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = zone
    time.tzset()
    try:
        yield zone
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()


@pytest.fixture(params=PROCESS_ZONES)
def process_zone(request: pytest.FixtureRequest) -> Iterator[str]:
    yield from set_process_zone(request.param)


@pytest.fixture(params=PROCESS_ZONES[:2])
def daemon_zone(request: pytest.FixtureRequest) -> Iterator[str]:
    """The zones for the longer runs: UTC and one with daylight saving time."""
    yield from set_process_zone(request.param)


def test_process_zone_applies(process_zone: str) -> None:
    # Guards the fixture itself: local time follows TZ while a test runs.
    local = datetime.fromtimestamp(SPRING_FORWARD.timestamp()).astimezone()
    expected = SPRING_FORWARD.astimezone(ZoneInfo(process_zone)).utcoffset()
    assert local.utcoffset() == expected


def as_utc(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    assert moment.utcoffset() == timedelta(0), text
    return moment


@pytest.mark.parametrize("change", [SPRING_FORWARD, FALL_BACK], ids=["spring", "fall"])
def test_polls_across_dst_change(tmp_path: Path, daemon_zone: str, change: datetime) -> None:
    start = change - timedelta(hours=2)
    clock = ManualClock(start)
    store = StoreBuilder(start, go_live=start - timedelta(days=1)).build()
    with harness(tmp_path, store, clock=clock, heartland={"page_size": 2}) as h:
        register = Register(h)
        customer = register.customer("dst@example.com")
        for step in range(8):
            register.sale(customer, "dst@example.com", 10 + step)
            clock.advance(20 * 60)
            if step % 2:
                h.transactions(clock=clock.now)
        h.delivery(clock=clock.now)
        orders = accepted(h.records(), "orders")
        tickets = h.ledger_rows("SELECT id, updated_at, completed_at, business_date FROM tickets")
        cursor = h.cursor()
        stamps = h.ledger_rows(
            "SELECT created_at, updated_at, confirmed_at FROM pushes "
            "UNION ALL SELECT saved_at, updated_at, updated_at FROM cursors"
        )

    assert sorted(o["order_id"] for o in orders) == sorted(f"hl-{t}" for t in register.sales)
    assert len(tickets) == 8
    for ticket_id, updated_at, completed_at, business_date in tickets:
        local_date = as_utc(completed_at).astimezone(STORE_ZONE).date().isoformat()
        assert business_date == local_date, ticket_id
        assert as_utc(updated_at) <= clock.now()
    assert cursor is not None
    assert as_utc(cursor[0]) == max(as_utc(row[1]) for row in tickets)
    for row in stamps:
        for stamp in row:
            as_utc(stamp)


@pytest.fixture(scope="module")
def quiet_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    """A sandbox with an empty store, shared by the tests that only read windows."""
    with harness(tmp_path_factory.mktemp("quiet"), StoreBuilder(FALL_BACK).build()) as made:
        yield made


@pytest.mark.parametrize(
    ("since", "until", "shown"),
    [
        ("2026-03-08", "2026-03-09", "2026-03-08T00:00:00+00:00 to 2026-03-09T00:00:00+00:00"),
        (
            "2026-11-01T01:30:00-05:00",
            "2026-11-01T01:30:00-06:00",
            "2026-11-01T06:30:00+00:00 to 2026-11-01T07:30:00+00:00",
        ),
        ("2026-03-08T02:30:00Z", "2026-03-08T03:30:00+00:00", "02:30:00+00:00 to 2026-03-08T03"),
    ],
)
def test_catch_up_window_is_utc(
    quiet_store: Harness, process_zone: str, since: str, until: str, shown: str
) -> None:
    result = quiet_store.invoke("catch-up", "--since", since, "--until", until, "--dry-run")

    assert result.exit_code == 0, result.stderr
    assert shown in result.stdout


def test_catch_up_rejects_local_time(process_zone: str) -> None:
    result = invoke("--config", "/nonexistent.toml", "catch-up", "--since", "2026-11-01T01:30:00")

    assert result.exit_code == 2
    assert "has no UTC offset" in result.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("go_live = 2026-03-08", datetime(2026, 3, 8, tzinfo=UTC)),
        ("go_live = 2026-11-01T01:30:00-05:00", datetime(2026, 11, 1, 6, 30, tzinfo=UTC)),
        ('go_live = "2026-11-01T01:30:00-06:00"', datetime(2026, 11, 1, 7, 30, tzinfo=UTC)),
    ],
)
def test_go_live_is_utc(tmp_path: Path, process_zone: str, text: str, expected: datetime) -> None:
    path = tmp_path / "yotposync.toml"
    path.write_text(
        f'[heartland]\nbase_url = "https://shop.example.com/api"\ntoken = "t"\n'
        f'[yotpo]\nguid = "g"\napi_key = "k"\n[sync]\n{text}\n'
    )

    settings = load_settings(path, environ={})

    assert settings.sync.go_live == expected
    assert settings.sync.go_live is not None
    assert settings.sync.go_live.utcoffset() == timedelta(0)


def sent_filter(mocked: responses.RequestsMock) -> Any:
    query = parse_qs(urlsplit(mocked.calls[0].request.url).query)
    return query["_filter"][0]


@pytest.mark.parametrize("change", [SPRING_FORWARD, FALL_BACK], ids=["spring", "fall"])
def test_listing_filter_bounds_are_utc(process_zone: str, change: datetime) -> None:
    base = "http://127.0.0.1:8799/api"
    client = HeartlandClient(base, "token-0123", requests_per_second=0)
    local_start = (change - timedelta(minutes=30)).astimezone(STORE_ZONE)
    with responses.RequestsMock() as mocked:
        mocked.add(responses.GET, f"{base}/sales/tickets", json={"results": [], "total": 0})
        list(client.ticket_pages(start=local_start, end=change, page_size=10))
        sent = sent_filter(mocked)

    start_text = (change - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    assert f'"$gte": "{start_text}"' in sent
    assert f'"$lte": "{change.strftime("%Y-%m-%dT%H:%M:%S+00:00")}"' in sent
