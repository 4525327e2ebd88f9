"""`yotposync retry-failed`: requeues failed pushes, except beside a daemon or with no ledger."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.reliability.support import Harness, harness, invoke
from yotposync.ledger import Ledger, LedgerLock
from yotposync.sandbox import Store, generate_store
from yotposync.sync.plan import PlannedPush

ANCHOR = datetime(2026, 5, 4, 15, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def store() -> Store:
    return generate_store(seed=41, tickets=10, anchor=ANCHOR)


@pytest.fixture
def h(tmp_path: Path, store: Store) -> Iterator[Harness]:
    with harness(tmp_path, store) as made:
        yield made


def add_failed_push(path: Path) -> None:
    ledger = Ledger.open(path)
    try:
        push = PlannedPush("hl-1", "order", 1, "a@example.com", 3, None, 900)
        seq = ledger.add_push(push, {}, ANCHOR)
        ledger.mark_retry(seq, 500, "server error", ANCHOR, ANCHOR, failed=True)
    finally:
        ledger.close()


def push_counts(path: Path) -> dict[str, int]:
    ledger = Ledger.open(path)
    try:
        return ledger.push_counts()
    finally:
        ledger.close()


def test_retry_failed_requeues_failed_push(h: Harness) -> None:
    add_failed_push(h.ledger)

    result = h.invoke("retry-failed")

    assert result.exit_code == 0
    assert "1 failed push queued again" in result.stdout
    counts = push_counts(h.ledger)
    assert counts["failed"] == 0
    assert counts["pending"] == 1


def test_retry_failed_refuses_held_ledger(h: Harness) -> None:
    add_failed_push(h.ledger)

    # A separate process, as the daemon would be, so the lock is held by another pid.
    with LedgerLock(h.ledger):
        locked_out = h.cli("retry-failed")
        customers = h.cli("customers", "sync")

    assert locked_out.returncode == 1
    assert "another yotposync process (pid " in locked_out.stderr
    assert f"is using the ledger {h.ledger}" in locked_out.stderr
    assert locked_out.stderr.strip() == customers.stderr.strip()
    assert push_counts(h.ledger)["failed"] == 1


def test_retry_failed_without_ledger_fails(h: Harness) -> None:
    assert not h.ledger.parent.exists()

    result = h.invoke("retry-failed")

    # As `status` does: a mistyped ledger.path must not read as "no failed pushes".
    assert result.exit_code == 1
    assert f"error: no ledger at {h.ledger} yet" in result.stderr
    assert not h.ledger.exists()
    assert not h.ledger.parent.exists()


def test_retry_failed_needs_no_api_secrets(h: Harness, tmp_path: Path) -> None:
    add_failed_push(h.ledger)
    # The configuration as a service keeps it: every secret is left to the environment.
    bare = tmp_path / "no-secrets.toml"
    bare.write_text(
        f'[heartland]\nbase_url = "{h.sandbox.heartland_url}"\n'
        f'[yotpo]\nbase_url = "{h.sandbox.yotpo_url}"\n'
        f'[ledger]\npath = "{h.ledger}"\n',
        encoding="utf-8",
    )

    result = invoke("--config", str(bare), "retry-failed")

    assert result.exit_code == 0, result.output
    assert "1 failed push queued again" in result.stdout
    assert push_counts(h.ledger)["pending"] == 1


def test_retry_failed_with_none_says_so(h: Harness) -> None:
    Ledger.open(h.ledger).close()

    result = h.invoke("retry-failed")

    assert result.exit_code == 0
    assert result.stdout == "No failed pushes to queue again.\n"


def test_next_writer_closes_killed_run(h: Harness) -> None:
    # A catch-up killed with SIGKILL leaves its run marked running. The next process to take
    # the lock closes it, so `status` beside a new daemon does not show it as still running.
    ledger = Ledger.open(h.ledger)
    try:
        ledger.start_run("catch-up", ANCHOR)
    finally:
        ledger.close()

    assert h.invoke("retry-failed").exit_code == 0

    ledger = Ledger.open(h.ledger)
    try:
        runs = {run["job"]: run for run in ledger.last_runs()}
    finally:
        ledger.close()
    assert runs["catch-up"]["outcome"] == "interrupted"
    assert "the process stopped before the run finished" in runs["catch-up"]["error"]
