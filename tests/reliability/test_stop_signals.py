"""Stopping a catch-up: SIGTERM or Ctrl-C ends it after the page or batch under way.

The run is recorded as interrupted, the command prints that and exits 128 + the signal number,
and the next catch-up finishes the work with nothing lost or counted twice. A catch-up
killed outright leaves a run marked `running`, which `status` reports as interrupted once no
process holds the ledger, and which the next catch-up closes.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.support import Harness, Running, assert_settled, harness, wait_until
from yotposync.sandbox import Store, generate_store
from yotposync.sandbox.faults import FaultKind, FaultPlan, FaultRule

ANCHOR = datetime(2026, 8, 3, 18, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def store() -> Store:
    return generate_store(seed=43, tickets=150, anchor=ANCHOR)


@pytest.fixture
def h(tmp_path: Path, store: Store) -> Iterator[Harness]:
    # Small pages, so the walk is still under way when the signal arrives.
    with harness(tmp_path, store, heartland={"page_size": 5}) as made:
        yield made


def started_walking(h: Harness, running: Running) -> bool:
    """Wait until Heartland has served a few pages to the process; False if it ended first."""
    deadline = time.monotonic() + 60
    while running.returncode is None and time.monotonic() < deadline:
        if h.sandbox.faults.requests_seen().get("heartland", 0) >= 4:
            return True
        time.sleep(0.002)
    return False


def catch_up_outcomes(h: Harness) -> list[str]:
    rows = h.ledger_rows("SELECT outcome FROM runs WHERE job = 'catch-up' ORDER BY id")
    return [str(row[0]) for row in rows]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signal_stops_catch_up_after_the_page(h: Harness, signum: signal.Signals) -> None:
    running = h.popen("catch-up", "--since", h.since())
    assert started_walking(h, running)

    running.process.send_signal(signum)
    running.process.wait(timeout=60)
    _, stderr = running.output()

    assert running.returncode == 128 + signum
    assert f"Stopped by {signum.name} before the catch-up finished" in stderr
    assert "Traceback" not in stderr
    assert catch_up_outcomes(h) == ["interrupted"]
    assert "Last catch-up run: interrupted" in h.cli_ok("status").stdout

    h.cli_ok("catch-up", "--since", h.since())

    assert catch_up_outcomes(h) == ["interrupted", "ok"]
    assert_settled(h)


def test_second_signal_stops_catch_up_at_once(tmp_path: Path, store: Store) -> None:
    # Every push takes a second, so the delivery batch under way after the first signal is
    # still running when the second arrives.
    slow = FaultRule(
        name="slow-pushes", service="yotpo", kind=FaultKind.SLOW, path="*", delay_seconds=1.0
    )
    with harness(tmp_path, store, faults=FaultPlan(rules=(slow,))) as h:
        running = h.popen("catch-up", "--since", h.since())
        deadline = time.monotonic() + 60
        while not h.sandbox.faults.requests_seen().get("yotpo") and time.monotonic() < deadline:
            time.sleep(0.005)
        assert running.returncode is None

        running.process.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        running.process.send_signal(signal.SIGTERM)
        running.process.wait(timeout=60)
        _, stderr = running.output()
        status = h.cli_ok("status").stdout

        assert running.returncode == 128 + signal.SIGTERM
        assert "Stopped at once by a second SIGTERM" in stderr
        assert "Traceback" not in stderr
        assert catch_up_outcomes(h) == ["interrupted"]
        assert "(stopped at once by a second SIGTERM)" in status


def test_killed_catch_up_is_reported_interrupted(h: Harness) -> None:
    running = h.popen("catch-up", "--since", h.since())
    assert started_walking(h, running)
    running.kill()

    status = h.cli_ok("status").stdout

    assert "Last catch-up run: interrupted, finished -: the process stopped" in status
    assert catch_up_outcomes(h) == ["running"]  # status only reads the ledger

    h.cli_ok("catch-up", "--since", h.since())

    assert catch_up_outcomes(h) == ["interrupted", "ok"]
    assert_settled(h)


def wait_until_loaded(pid: int, library: str) -> None:
    """Wait until process `pid` has mapped a shared library whose path contains `library`.

    Python's own start-up, before `yotposync/__main__.py` takes SIGINT over, lasts a few
    tens of milliseconds, longer on a busy machine. A library that the command's imports
    load marks a moment after it, without a guessed delay.
    """
    maps = Path(f"/proc/{pid}/maps")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if library in maps.read_text():
                return
        except (FileNotFoundError, ProcessLookupError):
            return  # the process has ended; the test reads its exit code
        time.sleep(0.002)


@pytest.mark.parametrize("moment", ["imports under way", "0.2 s after start"])
def test_ctrl_c_while_starting_exits_130(h: Harness, moment: str) -> None:
    running = h.popen("status")
    if moment == "imports under way":
        # pydantic_core is loaded while the command line's modules are imported.
        wait_until_loaded(running.process.pid, "pydantic_core")
    else:
        time.sleep(0.2)
    running.process.send_signal(signal.SIGINT)
    running.process.wait(timeout=60)
    _, stderr = running.output()

    assert "Traceback" not in stderr
    if running.returncode == 0:
        return  # status finished before the signal came
    assert running.returncode == 128 + signal.SIGINT
    assert "Stopped by SIGINT" in stderr


def test_hang_up_stops_daemon_cleanly(h: Harness) -> None:
    daemon = h.popen("run")
    try:
        wait_until(lambda: finished_runs(h) >= 2, 60, "two finished runs")
        daemon.process.send_signal(signal.SIGHUP)
        daemon.process.wait(timeout=60)
    finally:
        if daemon.returncode is None:
            daemon.kill()
    events, requested, err = daemon_log(daemon)

    assert daemon.returncode == 0
    assert requested == ["SIGHUP"]
    assert events[-1]["event"] == "daemon_stopped"
    assert "Traceback" not in err
    assert "running" not in [row[0] for row in h.ledger_rows("SELECT outcome FROM runs")]


def daemon_log(daemon: Running) -> tuple[list[dict[str, Any]], list[str], str]:
    """Return a stopped daemon's JSON log events, the signals it logged, and its stderr."""
    out, err = daemon.output()
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    requested = [event["signal"] for event in events if event["event"] == "stop_requested"]
    return events, requested, err


def finished_runs(h: Harness) -> int:
    if not h.ledger.exists():
        return 0
    try:
        rows = h.ledger_rows("SELECT count(*) FROM runs WHERE finished_at IS NOT NULL")
    except sqlite3.OperationalError:
        return 0
    return int(rows[0][0])


@contextmanager
def hang_up_ignored() -> Iterator[None]:
    """Start processes with SIGHUP ignored, as `nohup` does, which they keep across exec."""
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_nohup_catch_up_ignores_hang_up(h: Harness) -> None:
    with hang_up_ignored():
        running = h.popen("catch-up", "--since", h.since())
    assert started_walking(h, running)

    running.process.send_signal(signal.SIGHUP)
    running.process.wait(timeout=120)
    _, stderr = running.output()

    assert running.returncode == 0
    assert "SIGHUP" not in stderr
    assert catch_up_outcomes(h) == ["ok"]


def test_nohup_daemon_ignores_hang_up(h: Harness) -> None:
    with hang_up_ignored():
        daemon = h.popen("run")
    try:
        wait_until(lambda: finished_runs(h) >= 2, 60, "two finished runs")
        daemon.process.send_signal(signal.SIGHUP)
        seen = finished_runs(h)
        wait_until(
            lambda: daemon.process.poll() is not None or finished_runs(h) >= seen + 2,
            60,
            "two more finished runs or the daemon's exit",
        )
        still_running = daemon.process.poll() is None
        daemon.process.send_signal(signal.SIGTERM)
        daemon.process.wait(timeout=60)
    finally:
        if daemon.returncode is None:
            daemon.kill()
    _, requested, err = daemon_log(daemon)

    assert still_running
    assert requested == ["SIGTERM"]
    assert daemon.returncode == 0
    assert "Traceback" not in err
