"""Fixtures for the offer tests: an empty sandbox on 127.0.0.1 and a config for the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.offers.helpers import LoyaltyStore, restored_logging, write_offer_config
from yotposync.sandbox.server import Sandbox


def make_store(tmp_path: Path, extra: str = "") -> Iterator[LoyaltyStore]:
    """Start an empty sandbox and write a config for it; logging is set back afterwards."""
    with restored_logging(), Sandbox(store=None, points_per_dollar=Decimal(1)) as sandbox:
        ledger = tmp_path / "state" / "ledger.sqlite3"
        config = tmp_path / "yotposync.toml"
        write_offer_config(config, sandbox, ledger, extra)
        yield LoyaltyStore(sandbox, config, ledger)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LoyaltyStore]:
    yield from make_store(tmp_path)
