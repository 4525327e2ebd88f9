"""The delivery job: send queued pushes to Yotpo and record what happened to each.

Pushes go out in ledger order, and a customer's pushes never overtake each other: while one of
a customer's pushes waits for a retry, that customer's later pushes wait too, so a refund is
never sent before the order it refunds. Different customers' pushes are sent concurrently by
`performance.delivery_workers` threads, which share one Yotpo client and so its rate limiter.

Each push is marked `sent` in a committed transaction before its request goes out. A crash
between the request and the recorded outcome leaves it `sent`, and the next run sends it again
under the same id.

NOTE: Sending again is safe only if Yotpo ignores a repeated order `order_id` and a repeated
refund `id`. Yotpo does not document either; the sandbox behaves that way, and a real account
should be checked before relying on it.
"""

from __future__ import annotations

import heapq
import json
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog

from yotposync.config import Settings
from yotposync.errors import AuthError, DamagedPushError, RejectedError, RetriableError
from yotposync.ledger import Ledger, Push, customers
from yotposync.ledger.offers import POINTS_ADJUST, RESTORE_ROLE
from yotposync.logs import debug_enabled, mask_email
from yotposync.sync.delivery_pool import Outcome, SendPool
from yotposync.sync.plan import ORDER, REFUND
from yotposync.sync.points_push import send_points_adjustment

LOGGER = "yotposync.delivery"
log = structlog.get_logger(LOGGER)


class PushTarget(Protocol):
    """The part of the Yotpo client this job uses."""

    def create_order(self, payload: Mapping[str, Any] | str) -> None: ...

    def create_refund(self, payload: Mapping[str, Any] | str) -> None: ...

    def adjust_points(self, payload: dict[str, Any]) -> None: ...

    def get_customer(
        self, *, email: str | None = None, with_history: bool = False
    ) -> dict[str, Any] | None: ...


# How each push kind is sent: the sender gets the Yotpo client, the ledger and the push.
SENDERS: dict[str, Callable[[PushTarget, Ledger, Push], None]] = {
    ORDER: lambda yotpo, _ledger, push: yotpo.create_order(push.body),
    REFUND: lambda yotpo, _ledger, push: yotpo.create_refund(push.body),
    POINTS_ADJUST: send_points_adjustment,
}


# JSON's names for the types json.loads returns.
_JSON_TYPES = {dict: "object", list: "array", str: "string", int: "number", float: "number"}


def _expected_fields(push: Push) -> dict[str, object]:
    """Return the payload fields that repeat the push's own ledger columns, by push kind."""
    if push.kind == ORDER:
        return {
            "order_id": push.push_id,
            "customer_email": push.email,
            "total_amount_cents": push.amount_cents,
        }
    if push.kind == REFUND:
        return {
            "id": push.push_id,
            "order_id": push.target_order_id,
            "total_amount_cents": push.amount_cents,
        }
    return {}


def stored_payload_problem(push: Push) -> str | None:
    """Describe why `push.body` cannot be the payload planned for this push, or return None.

    The body is sent as stored, so it is checked first: JSON text of an object whose id,
    customer or target order and amount equal the push's own columns, from which it was
    built. Only an edited or damaged ledger row fails this check.
    """
    if not isinstance(push.body, str):
        return f"is {type(push.body).__name__}, not JSON text"
    try:
        payload = json.loads(push.body)
    except ValueError as exc:
        return f"is not valid JSON ({exc})"
    if not isinstance(payload, dict):
        kind = "null" if payload is None else _JSON_TYPES.get(type(payload), "boolean")
        return f"is a JSON {kind}, not an object"
    for name, expected in _expected_fields(push).items():
        if payload.get(name) != expected:
            return f"has {name} {payload.get(name)!r} where the ledger row has {expected!r}"
    return None


@dataclass
class DeliverySummary:
    """Counts for one run of the delivery job."""

    confirmed: int = 0
    rejected: int = 0
    retrying: int = 0
    failed: int = 0
    waiting: int = 0
    rejected_ids: list[str] = field(default_factory=list)
    # True when the run ended at its time limit with pushes still due, which the next run sends.
    time_limit_reached: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "confirmed": self.confirmed,
            "rejected": self.rejected,
            "retrying": self.retrying,
            "failed": self.failed,
            "waiting": self.waiting,
            "time_limit_reached": self.time_limit_reached,
        }


class DeliveryJob:
    """Send pending outbox entries to Yotpo."""

    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        yotpo: PushTarget,
        *,
        clock: Callable[[], datetime],
    ) -> None:
        self.ledger = ledger
        self.yotpo = yotpo
        self.clock = clock
        self.batch_size = settings.delivery.batch_size
        self.max_attempts = settings.delivery.max_attempts
        self.retry_base = settings.delivery.retry_base_seconds
        self.retry_ceiling = settings.delivery.retry_ceiling_seconds
        self.workers = settings.performance.delivery_workers
        self._probing = True

    def run(
        self,
        *,
        should_stop: Callable[[], bool] = lambda: False,
        time_limit: timedelta | None = None,
    ) -> DeliverySummary:
        """Send every push that is due now, batch after batch, until none can go.

        Once the run has lasted `time_limit` on the job's clock, it ends after the batch under
        way. Without a time limit it goes on until no push can go.
        """
        summary = DeliverySummary()
        started = time.monotonic()
        cpu_started = time.process_time()
        deadline = None if time_limit is None else self.clock() + time_limit
        self.ledger.check_waiting_times(self.clock())
        # The run's first push goes alone: rejected credentials then cost one request, not one
        # per worker. Concurrency opens once it has an outcome.
        self._probing = True
        with SendPool(self.workers, self.ledger, self._send) as pool:
            while not should_stop():
                sent_any = self._run_batch(summary, should_stop, pool)
                if not sent_any:
                    break
                if deadline is not None and self.clock() >= deadline:
                    # A run that left no push to try has done all its work, limit or not.
                    summary.time_limit_reached = bool(self.ledger.due_pushes(self.clock(), 1))
                    break
        counts = self.ledger.push_counts()
        summary.waiting = counts["pending"] + counts["sent"]
        log.info(
            "delivery_run",
            **summary.as_dict(),
            seconds=round(time.monotonic() - started, 3),
            # CPU time of the whole process (every thread) during the run.
            cpu_seconds=round(time.process_time() - cpu_started, 3),
        )
        return summary

    def _send(self, ledger: Ledger, push: Push) -> None:
        problem = stored_payload_problem(push)
        if problem is not None:
            raise DamagedPushError(
                f"push {push.push_id}: the payload stored in the ledger {problem}"
            )
        SENDERS[push.kind](self.yotpo, ledger, push)

    def _run_batch(
        self, summary: DeliverySummary, should_stop: Callable[[], bool], pool: SendPool
    ) -> bool:
        """Send one batch of due pushes: customers in parallel, each customer's in order.

        Each customer's due pushes form a chain. Only a chain's head is sent, and the next
        push becomes the head once the API settled the one before (confirmed or rejected).
        A push that must wait for a retry ends its chain for this run.

        Ledger writes stay in this thread and are grouped: the pushes about to be submitted
        are marked `sent` in one transaction, committed before any of them is sent, and the
        same transaction records the outcomes that came back since the last one.
        """
        now = self.clock()
        due = self.ledger.due_pushes(now, self.batch_size)
        if not due:
            return False
        waiting = self.ledger.first_waiting_seq_by_customer(now)
        chains: dict[str | None, deque[Push]] = {}
        for push in due:
            first_waiting = waiting.get(push.email)
            if first_waiting is None or push.seq < first_waiting:
                chains.setdefault(push.email, deque()).append(push)
        # Heads of the chains, oldest first, as (seq, push).
        ready = [(chain[0].seq, chain.popleft()) for chain in chains.values()]
        heapq.heapify(ready)

        finished_any = False
        stop_error: BaseException | None = None
        unreachable = False
        outcomes: list[Outcome] = []
        while True:
            stopping = stop_error is not None or unreachable or should_stop()
            limit = 1 if self._probing else pool.capacity
            # Refill once half the room is free, so that each commit covers several pushes.
            room = limit - pool.in_flight if pool.in_flight <= limit // 2 else 0
            if ready and not stopping and room > 0:
                group = [heapq.heappop(ready)[1] for _ in range(min(len(ready), room))]
                with self.ledger.transaction():
                    self._record_outcomes(outcomes, summary)
                    self.ledger.mark_sent_many([push.seq for push in group], self.clock())
                outcomes = []
                for push in group:
                    pool.submit(push)
                continue
            if stopping:
                withdrawn = pool.cancel_queued()
                if withdrawn:
                    with self.ledger.transaction():
                        for push in withdrawn:
                            self.ledger.release_sent(push.seq, self.clock())
            if pool.in_flight == 0:
                break
            # Wake once enough have come back to refill, rather than for each one: waking this
            # thread per push cost about 7 % of the delivery phase (docs/performance.md).
            enough = pool.in_flight - limit // 2 if ready and not stopping else 1
            for outcome in pool.collect(enough):
                outcomes.append(outcome)
                error = outcome.error
                self._probing = isinstance(error, AuthError)
                if error is None or isinstance(error, RejectedError):
                    finished_any = True
                    chain = chains[outcome.push.email]
                    if chain:
                        heapq.heappush(ready, (chain[0].seq, chain.popleft()))
                elif isinstance(error, DamagedPushError):
                    # It is recorded as failed, so this customer's later pushes wait behind it.
                    continue
                elif isinstance(error, RetriableError) and error.status is None:
                    # Yotpo cannot be reached (after the client's own retries): trying every
                    # other customer's push now would only wait out one timeout after another.
                    unreachable = True
                elif not isinstance(error, RetriableError) and stop_error is None:
                    stop_error = error
        if outcomes:
            with self.ledger.transaction():
                self._record_outcomes(outcomes, summary)
        if stop_error is not None:
            raise stop_error
        if unreachable:
            log.warning(
                "delivery_paused",
                detail="Yotpo could not be reached; the remaining pushes wait for the next run",
            )
            return False
        return finished_any

    def _record_outcomes(self, outcomes: list[Outcome], summary: DeliverySummary) -> None:
        """Write each outcome to the ledger; the caller holds the transaction."""
        confirmed = [outcome.push for outcome in outcomes if outcome.error is None]
        if confirmed:
            self._record_confirmed(confirmed, summary)
        for outcome in outcomes:
            push, error = outcome.push, outcome.error
            if error is None:
                continue
            if isinstance(error, RejectedError):
                self._record_rejected(push, error, summary)
            elif isinstance(error, RetriableError):
                self._schedule_retry(push, error, summary)
            elif isinstance(error, DamagedPushError):
                self._record_damaged(push, error, summary)
            elif isinstance(error, AuthError):
                # Bad credentials say nothing about the push: it goes back, its attempt uncounted.
                self.ledger.release_sent(push.seq, self.clock())
            # Any other error stops the job; the push stays `sent` and is checked next run.

    def _record_confirmed(self, pushes: list[Push], summary: DeliverySummary) -> None:
        self.ledger.mark_confirmed_many([push.seq for push in pushes], 200, self.clock())
        summary.confirmed += len(pushes)
        for push in pushes:
            if push.role == RESTORE_ROLE and push.email:
                # A restore goes to the customer who spent the points, by address, so its row
                # names no customer id and the refresh job would miss it.
                customers.mark_refresh_due_by_email(self.ledger, push.email)
        if not debug_enabled(LOGGER):
            return
        for push in pushes:
            log.debug(
                "push_confirmed",
                push_id=push.push_id,
                kind=push.kind,
                ticket_id=push.ticket_id,
                amount_cents=push.amount_cents,
                customer=mask_email(push.email) if push.email else None,
            )

    def _record_rejected(self, push: Push, exc: RejectedError, summary: DeliverySummary) -> None:
        self.ledger.mark_rejected(push.seq, exc.status, exc.reason, self.clock())
        summary.rejected += 1
        summary.rejected_ids.append(push.push_id)
        log.warning(
            "push_rejected",
            push_id=push.push_id,
            ticket_id=push.ticket_id,
            status=exc.status,
            error=exc.reason,
        )

    def _record_damaged(self, push: Push, exc: DamagedPushError, summary: DeliverySummary) -> None:
        now = self.clock()
        self.ledger.mark_retry(push.seq, None, str(exc), now, now, failed=True)
        summary.failed += 1
        log.error(
            "push_damaged",
            push_id=push.push_id,
            ticket_id=push.ticket_id,
            error=str(exc),
            detail="nothing was sent; restore the ledger from a backup, or correct the stored "
            "payload and run `yotposync retry-failed`",
        )

    def _schedule_retry(self, push: Push, exc: RetriableError, summary: DeliverySummary) -> None:
        attempts = push.attempts + 1  # mark_sent counted this attempt in the ledger
        now = self.clock()
        wait = min(self.retry_ceiling, self.retry_base * 2 ** max(0, attempts - 1))
        if exc.retry_after is not None:
            wait = max(wait, min(exc.retry_after, self.retry_ceiling))
        failed = attempts >= self.max_attempts
        self.ledger.mark_retry(
            push.seq,
            exc.status,
            exc.reason,
            now + timedelta(seconds=wait),
            now,
            failed=failed,
        )
        if failed:
            summary.failed += 1
            log.error(
                "push_failed",
                push_id=push.push_id,
                ticket_id=push.ticket_id,
                attempts=attempts,
                error=str(exc),
                detail="run `yotposync retry-failed` once the cause is fixed",
            )
        else:
            summary.retrying += 1
            log.warning(
                "push_retry_scheduled",
                push_id=push.push_id,
                ticket_id=push.ticket_id,
                attempts=attempts,
                wait_seconds=round(wait, 1),
                error=str(exc),
            )
