"""Fixtures for the operations tests: a scripted store synced into a ledger."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.ops.scenario import Scenario, build_scenario


@pytest.fixture(scope="session")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    """The store of `tests/ops/scenario.py` after two catch-ups; tests must not change it."""
    built, sandbox = build_scenario(tmp_path_factory.mktemp("scenario"))
    try:
        yield built
    finally:
        sandbox.stop()
