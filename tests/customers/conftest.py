"""Fixtures for the customer tests: a shop on a manual clock, and the jobs over a fresh ledger."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.customers.support import ANCHOR, Jobs, Shop, make_jobs, start_sandbox
from yotposync.sandbox import ManualClock


@pytest.fixture
def shop() -> Iterator[Shop]:
    clock = ManualClock(ANCHOR)
    sandbox = start_sandbox(clock)
    shop = Shop(sandbox, clock)
    try:
        yield shop
    finally:
        shop.close()
        sandbox.stop()


@pytest.fixture
def jobs(shop: Shop, tmp_path: Path) -> Iterator[Jobs]:
    jobs = make_jobs(shop, tmp_path / "state" / "ledger.sqlite3")
    try:
        yield jobs
    finally:
        jobs.close()
