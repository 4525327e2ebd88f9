"""Fixtures for the sandbox tests: emulators on 127.0.0.1 ports chosen by the OS."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sandbox_api import ANCHOR, Api, heartland_api, yotpo_api

from yotposync.sandbox import ManualClock, Sandbox, Store, generate_store


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(ANCHOR)


@pytest.fixture
def empty_sandbox(clock: ManualClock) -> Iterator[Sandbox]:
    with Sandbox(store=None, clock=clock) as sandbox:
        yield sandbox


@pytest.fixture
def heartland(empty_sandbox: Sandbox) -> Api:
    """Heartland API of an empty store on a manual clock."""
    return heartland_api(empty_sandbox)


@pytest.fixture
def yotpo(empty_sandbox: Sandbox) -> Api:
    """Yotpo API with no customers, 1 point per dollar, no rate limit."""
    return yotpo_api(empty_sandbox)


@pytest.fixture(scope="module")
def small_store() -> Store:
    return generate_store(seed=7, tickets=60, anchor=ANCHOR)


@pytest.fixture(scope="module")
def store_sandbox(small_store: Store) -> Iterator[Sandbox]:
    """A read-only sandbox serving `small_store`; tests must not change its records."""
    with Sandbox(store=small_store, clock=ManualClock(ANCHOR)) as sandbox:
        yield sandbox


@pytest.fixture
def store_heartland(store_sandbox: Sandbox) -> Api:
    return heartland_api(store_sandbox)


@pytest.fixture
def connect() -> Callable[[Sandbox], tuple[Api, Api]]:
    """Factory for the (Heartland, Yotpo) clients of a sandbox a test starts itself."""

    def clients(sandbox: Sandbox) -> tuple[Api, Api]:
        return heartland_api(sandbox), yotpo_api(sandbox)

    return clients
