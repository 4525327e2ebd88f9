"""The delivery job: send queued pushes to Yotpo and record what happened to each.

Pushes go out in ledger order, and a customer's pushes never overtake each other: while one of
a customer's pushes waits for a retry, that customer's later pushes wait too, so a refund is
never sent before the order it refunds.

Each push is marked `sent` in its own committed transaction before the request goes out. A
crash between the request and the answer leaves it `sent`, and the next run sends it again
under the same id.

NOTE: Sending again is safe only if Yotpo ignores a repeated order `order_id` and a repeated
refund `id`. Yotpo does not document either; the sandbox behaves that way, and a real account
should be checked before relying on it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog

from yotposync.config import Settings
from yotposync.errors import AuthError, RejectedError, RetriableError
from yotposync.ledger import Ledger, Push
from yotposync.logs import mask_email
from yotposync.sync.plan import ORDER

log = structlog.get_logger("yotposync.delivery")


class PushTarget(Protocol):
    """The part of the Yotpo client this job uses."""

    def create_order(self, payload: dict[str, Any]) -> None: ...

    def create_refund(self, payload: dict[str, Any]) -> None: ...


@dataclass
class DeliverySummary:
    """Counts for one run of the delivery job."""

    confirmed: int = 0
    rejected: int = 0
    retrying: int = 0
    failed: int = 0
    waiting: int = 0
    rejected_ids: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "confirmed": self.confirmed,
            "rejected": self.rejected,
            "retrying": self.retrying,
            "failed": self.failed,
            "waiting": self.waiting,
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

    def run(self, *, should_stop: Callable[[], bool] = lambda: False) -> DeliverySummary:
        """Send every push that is due now, batch after batch, until none can go."""
        summary = DeliverySummary()
        started = time.monotonic()
        while not should_stop():
            sent_any = self._run_batch(summary, should_stop)
            if not sent_any:
                break
        counts = self.ledger.push_counts()
        summary.waiting = counts["pending"] + counts["sent"]
        log.info(
            "delivery_run",
            **summary.as_dict(),
            seconds=round(time.monotonic() - started, 3),
        )
        return summary

    def _run_batch(self, summary: DeliverySummary, should_stop: Callable[[], bool]) -> bool:
        now = self.clock()
        due = self.ledger.due_pushes(now, self.batch_size)
        first_unfinished = self.ledger.first_unfinished_seq_by_customer()
        blocked: set[str | None] = set()
        finished_any = False
        for push in due:
            if should_stop():
                break
            if push.email in blocked or first_unfinished.get(push.email, push.seq) < push.seq:
                # An older push of this customer is not settled yet.
                blocked.add(push.email)
                continue
            if self._deliver(push, summary):
                finished_any = True
                first_unfinished = self.ledger.first_unfinished_seq_by_customer()
            else:
                blocked.add(push.email)
        return finished_any

    def _deliver(self, push: Push, summary: DeliverySummary) -> bool:
        """Send one push; return True when it is settled (confirmed or rejected)."""
        with self.ledger.transaction():
            self.ledger.mark_sent(push.seq, self.clock())
        try:
            if push.kind == ORDER:
                self.yotpo.create_order(push.payload)
            else:
                self.yotpo.create_refund(push.payload)
        except AuthError:
            with self.ledger.transaction():
                self.ledger.release_sent(push.seq, self.clock())
            raise
        except RejectedError as exc:
            with self.ledger.transaction():
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
            return True
        except RetriableError as exc:
            self._schedule_retry(push, exc, summary)
            return False
        with self.ledger.transaction():
            self.ledger.mark_confirmed(push.seq, 200, self.clock())
        summary.confirmed += 1
        log.info(
            "push_confirmed",
            push_id=push.push_id,
            kind=push.kind,
            ticket_id=push.ticket_id,
            amount_cents=push.amount_cents,
            customer=mask_email(push.email) if push.email else None,
        )
        return True

    def _schedule_retry(self, push: Push, exc: RetriableError, summary: DeliverySummary) -> None:
        attempts = push.attempts + 1  # mark_sent counted this attempt in the ledger
        now = self.clock()
        wait = min(self.retry_ceiling, self.retry_base * 2 ** max(0, attempts - 1))
        if exc.retry_after is not None:
            wait = max(wait, min(exc.retry_after, self.retry_ceiling))
        failed = attempts >= self.max_attempts
        with self.ledger.transaction():
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
