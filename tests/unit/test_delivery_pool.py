"""The delivery job's worker pool: outcomes come back in groups, and none is lost."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from yotposync.ledger import Ledger, Push
from yotposync.sync.delivery_pool import Outcome, SendPool

WAIT = 10.0  # seconds; only reached when the pool hangs


def push(seq: int) -> Push:
    return Push(
        seq=seq,
        push_id=f"hl-{seq}",
        kind="order",
        role="order",
        ticket_id=seq,
        email=f"c{seq}@example.com",
        target_order_id=None,
        amount_cents=100,
        body="{}",
        state="sent",
        attempts=0,
    )


class GatedSender:
    """Sends push N only once gate N is opened; push 13 fails."""

    def __init__(self) -> None:
        self.gates = {seq: threading.Event() for seq in range(1, 20)}

    def __call__(self, _ledger: Ledger, sent: Push) -> None:
        assert self.gates[sent.seq].wait(WAIT), f"gate {sent.seq} never opened"
        if sent.seq == 13:
            raise RuntimeError("push 13 failed")

    def open(self, *seqs: int) -> None:
        for seq in seqs:
            self.gates[seq].set()


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    opened = Ledger.open(tmp_path / "ledger.sqlite3")
    yield opened
    opened.close()


def collect_in_thread(
    pool: SendPool, count: int, patience: float
) -> tuple[threading.Thread, list[Outcome]]:
    got: list[Outcome] = []
    thread = threading.Thread(target=lambda: got.extend(pool.collect(count, patience)))
    thread.start()
    return thread, got


def test_collect_waits_for_count(ledger: Ledger) -> None:
    sender = GatedSender()
    with SendPool(4, ledger, sender) as pool:
        for seq in (1, 2, 3, 4):
            pool.submit(push(seq))
        thread, got = collect_in_thread(pool, count=3, patience=WAIT)
        sender.open(1)
        thread.join(0.3)
        assert thread.is_alive(), "collect returned before three outcomes were ready"

        sender.open(2, 3)
        thread.join(WAIT)
        assert not thread.is_alive()
        assert sorted(o.push.seq for o in got) == [1, 2, 3]
        assert pool.in_flight == 1

        sender.open(4)
        assert [o.push.seq for o in pool.collect()] == [4]
        assert pool.in_flight == 0


def test_collect_returns_ready_after_patience(ledger: Ledger) -> None:
    sender = GatedSender()
    with SendPool(4, ledger, sender) as pool:
        for seq in (1, 2, 3):
            pool.submit(push(seq))
        sender.open(2)
        # Three are expected but only one comes: it is returned once the patience has passed.
        thread, got = collect_in_thread(pool, count=3, patience=0.05)
        thread.join(WAIT)
        assert not thread.is_alive()
        assert [o.push.seq for o in got] == [2]
        sender.open(1, 3)
        rest = pool.collect(2)
        rest += pool.collect() if pool.in_flight else []
        assert sorted(o.push.seq for o in rest) == [1, 3]


def test_errors_come_back_as_outcomes(ledger: Ledger) -> None:
    sender = GatedSender()
    with SendPool(4, ledger, sender) as pool:
        for seq in (12, 13, 14):
            pool.submit(push(seq))
        sender.open(12, 13, 14)
        outcomes: list[Outcome] = []
        while pool.in_flight:
            outcomes += pool.collect(pool.in_flight)
        errors = {o.push.seq: str(o.error) for o in outcomes if o.error is not None}
        assert errors == {13: "push 13 failed"}
        assert sorted(o.push.seq for o in outcomes) == [12, 13, 14]
