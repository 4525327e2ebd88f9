"""Crash safety: SIGKILL the real `yotposync catch-up` at random points of its work.

Each round starts a fresh sandbox and ledger, then runs catch-ups one after another and
kills each one with SIGKILL once the emulators have served a randomly drawn number of
requests, so the kills land while tickets are walked, while decisions commit, while pushes
are in flight and between them. A last catch-up runs to its end. Afterwards every
customer's Yotpo balance equals the store's expected balance, and no order or refund was
applied twice or is missing.

The default suite runs one short round; `make test-slow` runs the long campaign.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.reliability.support import FIGURES, Harness, Running, assert_settled, harness
from yotposync.sandbox import Store, generate_store

ANCHOR = datetime(2026, 7, 15, 19, 0, tzinfo=UTC)
# How often the test looks at the request counts while a catch-up runs.
POLL_SECONDS = 0.002


def full_run_requests(tmp: Path, store: Store) -> int:
    """Count the requests one uninterrupted catch-up of `store` sends to both emulators."""
    with harness(tmp, store) as h:
        h.transactions(since=store.anchor - timedelta(days=366))
        h.delivery()
        return sum(h.sandbox.faults.requests_seen().values())


def served(h: Harness) -> tuple[int, int]:
    seen = h.sandbox.faults.requests_seen()
    return seen.get("heartland", 0), seen.get("yotpo", 0)


def kill_at(h: Harness, running: Running, threshold: int) -> bool:
    """SIGKILL a process once the emulators served `threshold` requests in all.

    Returns False when the process ended before that.
    """
    while running.returncode is None:
        if sum(served(h)) >= threshold:
            running.kill()
            return True
        time.sleep(POLL_SECONDS)
    return False


def run_round(h: Harness, rng: random.Random, kills: int, full: int, command: list[str]) -> None:
    """Kill `kills` runs of `command` at sorted random request counts, then finish cleanly."""
    thresholds = sorted(rng.randint(0, full) for _ in range(kills))
    for threshold in thresholds:
        heartland_before, yotpo_before = served(h)
        running = h.popen(*command)
        killed = kill_at(h, running, threshold)
        heartland_after, yotpo_after = served(h)
        if not killed:
            FIGURES["catch-ups that ended before their kill point"] += 1
            continue
        FIGURES["kills survived"] += 1
        if yotpo_after == yotpo_before:
            FIGURES["kills during the ticket walk"] += 1
        else:
            FIGURES["kills during delivery"] += 1
        assert heartland_after >= heartland_before
    h.cli_ok("catch-up", "--since", h.since())


def confirmed_pushes(h: Harness) -> tuple[int, int]:
    rows = h.ledger_rows("SELECT count(*), sum(state = 'confirmed') FROM pushes")
    return int(rows[0][0]), int(rows[0][1] or 0)


def crash_round(tmp: Path, seed: int, tickets: int, kills: int) -> None:
    store = generate_store(seed=seed, tickets=tickets, anchor=ANCHOR)
    full = full_run_requests(tmp / "measure", store)
    with harness(tmp / "round", store) as h:
        run_round(h, random.Random(seed), kills, full, ["catch-up", "--since", h.since()])
        total, confirmed = confirmed_pushes(h)

        assert confirmed == total
        assert total == len(store.expected_effects(store.go_live, include_late=False))
        assert_settled(h)


def test_killed_catch_ups_lose_nothing(tmp_path: Path) -> None:
    crash_round(tmp_path, seed=51, tickets=70, kills=5)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(101, 111))
def test_crash_campaign(tmp_path: Path, seed: int) -> None:
    crash_round(tmp_path, seed=seed, tickets=150, kills=6)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [201, 202])
def test_killed_daemons_lose_nothing(tmp_path: Path, seed: int) -> None:
    store = generate_store(seed=seed, tickets=150, anchor=ANCHOR)
    full = full_run_requests(tmp_path / "measure", store)
    with harness(tmp_path / "round", store) as h:
        run_round(h, random.Random(seed), 6, full, ["run"])
        status = h.cli("status")

        assert status.returncode == 0
        assert_settled(h)
