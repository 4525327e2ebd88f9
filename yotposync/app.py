"""Build the clients and jobs from settings, and run the one-shot catch-up.

The CLI and the scheduler both start here, so the wiring is written once.
"""

from __future__ import annotations

import hashlib
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from yotposync.clients.heartland import HeartlandClient
from yotposync.clients.http import RateLimiter, RetryPolicy
from yotposync.clients.yotpo import YotpoClient
from yotposync.config import Settings
from yotposync.errors import LedgerError, YotposyncError
from yotposync.ledger import Ledger, LedgerLock
from yotposync.ledger.offers import POINTS_ADJUST, OfferLedger
from yotposync.ledger.store import INTERRUPTED_ERROR, RUN_INTERRUPTED, Push
from yotposync.sync.delivery import DeliveryJob, DeliverySummary
from yotposync.sync.transactions import CURSOR_NAME, TransactionsJob, TransactionsSummary

log = structlog.get_logger("yotposync")


def utc_now() -> datetime:
    return datetime.now(UTC)


def stop_signals() -> tuple[signal.Signals, ...]:
    """Return the signals that ask the daemon or a catch-up to stop.

    A closing terminal or SSH session sends SIGHUP. A process started with SIGHUP ignored,
    as `nohup` starts it, is meant to outlive its terminal, so SIGHUP then stays ignored.
    """
    if signal.getsignal(signal.SIGHUP) is signal.SIG_IGN:
        return (signal.SIGINT, signal.SIGTERM)
    return (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(max_tries=settings.delivery.max_tries_per_call)


# One rate limiter per API account in this process. The daemon's jobs run in threads of
# their own, each with its own clients, and Yotpo's limit of 10 requests per second counts
# per account. With a limiter per client, the customers, delivery and refresh jobs together
# sent two or three times that and got 429 responses.
_LIMITERS: dict[tuple[str, str, str, float], RateLimiter] = {}
_LIMITERS_LOCK = threading.Lock()


def shared_limiter(service: str, base_url: str, account: str, rate: float) -> RateLimiter:
    """Return the limiter that every client of one account shares, made on first use.

    `account` identifies the credentials. Only its hash is kept as part of the key.
    """
    key = (service, base_url, hashlib.sha256(account.encode()).hexdigest(), rate)
    with _LIMITERS_LOCK:
        limiter = _LIMITERS.get(key)
        if limiter is None:
            limiter = _LIMITERS[key] = RateLimiter(rate)
        return limiter


def heartland_client(settings: Settings) -> HeartlandClient:
    base_url, token = settings.heartland.base_url, settings.heartland_token()
    rate = settings.heartland.requests_per_second
    return HeartlandClient(
        base_url,
        token,
        connect_timeout=settings.heartland.connect_timeout_seconds,
        read_timeout=settings.heartland.read_timeout_seconds,
        limiter=shared_limiter("heartland", base_url, token, rate),
        retry=retry_policy(settings),
    )


def yotpo_client(settings: Settings) -> YotpoClient:
    base_url, guid = settings.yotpo.base_url, settings.yotpo_guid()
    rate = settings.yotpo.requests_per_second
    return YotpoClient(
        base_url,
        guid,
        settings.yotpo_api_key(),
        connect_timeout=settings.yotpo.connect_timeout_seconds,
        read_timeout=settings.yotpo.read_timeout_seconds,
        limiter=shared_limiter("yotpo", base_url, guid, rate),
        retry=retry_policy(settings),
    )


@dataclass
class CatchUpResult:
    """The outcome of one catch-up."""

    transactions: TransactionsSummary
    delivery: DeliverySummary | None
    dry_run: bool
    seconds: float
    # True when the ledger had no ticket cursor before the run, as on a new ledger.
    first_run: bool = False
    # True when `should_stop` ended the run early; what it finished is kept in the ledger.
    interrupted: bool = False
    # Points adjustments (register deductions and restores) the run queued, besides the
    # orders and refunds that `transactions.planned` counts.
    points_adjustments: int = 0


# The outcomes a finished catch-up records in the ledger's runs, shown by `status`. They
# match the exit codes 0, 3 and 4 of `yotposync catch-up`.
RUN_OK = "ok"
RUN_WAITING = "waiting"  # some pushes wait for a retry, which the next run or the daemon sends
RUN_UNDELIVERED = "undelivered"  # Yotpo rejected some pushes, or they ran out of attempts


def catch_up_outcome(delivery: DeliverySummary) -> str:
    """Return the outcome a catch-up records for what its delivery left undone."""
    if delivery.rejected or delivery.failed:
        return RUN_UNDELIVERED
    if delivery.waiting:
        return RUN_WAITING
    return RUN_OK


def _dry_run_catch_up(
    settings: Settings,
    *,
    since: datetime,
    until: datetime | None,
    on_page: Callable[[TransactionsSummary, int], None] | None,
    clock: Callable[[], datetime],
    force: bool,
    should_stop: Callable[[], bool],
    on_points_adjustments: Callable[[list[Push]], None] | None,
    started: datetime,
) -> CatchUpResult:
    """Run the transactions job of a catch-up on an in-memory copy of the ledger."""
    scratch = Ledger.scratch_copy(settings.ledger.path)
    try:
        if _offers_missing(settings, scratch):
            log.warning(
                "offers_not_synced",
                detail="this ledger has no loyalty offers yet, so this dry run recognises no "
                "register discount; a catch-up without --dry-run runs the offers job first",
            )
        first_run = scratch.get_cursor(CURSOR_NAME) is None
        before = scratch.last_push_seq()
        # The transactions job reports orders and refunds page by page. Points adjustments
        # are queued beside them, so they are read back from the copy after each page.
        reported = before

        def report_adjustments() -> None:
            nonlocal reported
            if on_points_adjustments is None:
                return
            queued = scratch.pushes_after(reported, POINTS_ADJUST)
            if queued:
                reported = queued[-1].seq
                on_points_adjustments(queued)

        def after_page(summary: TransactionsSummary, count: int) -> None:
            if on_page is not None:
                on_page(summary, count)
            report_adjustments()

        job = TransactionsJob(settings, scratch, heartland_client(settings), clock=clock)
        transactions = job.run(
            since=since, until=until, on_page=after_page, force=force, should_stop=should_stop
        )
        report_adjustments()
    finally:
        scratch.close()
    seconds = (clock() - started).total_seconds()
    return CatchUpResult(
        transactions,
        None,
        True,
        seconds,
        first_run,
        interrupted=should_stop(),
        points_adjustments=transactions.points_adjustments,
    )


def _offers_missing(settings: Settings, ledger: Ledger) -> bool:
    """Tell whether register offers are on but this ledger has no offer recorded yet."""
    return settings.offers.enabled and not OfferLedger(ledger).offer_mappings()


def _sync_offers_first(
    settings: Settings,
    ledger: Ledger,
    clock: Callable[[], datetime],
    should_stop: Callable[[], bool],
) -> None:
    """Run the offers job before a catch-up on a ledger that has no offers yet.

    A register discount is recognised by its coupon, which the ledger records when the offers
    job writes it. A ledger moved aside and started again, or a first catch-up over a store
    that already has the coupons, would otherwise earn on those sales and deduct nothing.
    A failure is logged and the catch-up goes on, as it would without offers.
    """
    if not _offers_missing(settings, ledger):
        return
    # Imported here: the offers runtime builds its clients with this module's functions.
    from yotposync.offers_runtime import run_offers

    try:
        summary = run_offers(settings, ledger, clock, should_stop)
    except LedgerError:
        raise
    except YotposyncError as exc:
        log.warning(
            "offers_sync_failed",
            error=str(exc),
            detail="this ledger has no loyalty offers, so register discounts on these tickets "
            "deduct no points; run `yotposync offers sync`, then this catch-up again",
        )
        return
    log.info("offers_synced_before_catch_up", **summary)


def run_catch_up(
    settings: Settings,
    *,
    since: datetime,
    until: datetime | None,
    dry_run: bool = False,
    on_page: Callable[[TransactionsSummary, int], None] | None = None,
    clock: Callable[[], datetime] = utc_now,
    force: bool = False,
    should_stop: Callable[[], bool] = lambda: False,
    on_points_adjustments: Callable[[list[Push]], None] | None = None,
) -> CatchUpResult:
    """Walk tickets updated in [since, until], queue their pushes, then deliver them.

    A dry run works on an in-memory copy of the ledger and sends nothing to Yotpo; the
    planned pushes are in the result. `force` accepts a window in which Heartland lists no
    ticket although the ledger saw some (see `TransactionsJob.check_empty_window`).
    Once `should_stop` returns True, the run ends after the page or delivery batch under way,
    and is recorded as interrupted. A dry run passes the points adjustments of each page to
    `on_points_adjustments`, after `on_page`.
    """
    started = clock()
    if dry_run:
        return _dry_run_catch_up(
            settings,
            since=since,
            until=until,
            on_page=on_page,
            clock=clock,
            force=force,
            should_stop=should_stop,
            on_points_adjustments=on_points_adjustments,
            started=started,
        )
    with LedgerLock(settings.ledger.path):
        ledger = Ledger.open_for_writing(settings.ledger.path)
        try:
            run_id = ledger.start_run("catch-up", started)
            first_run = ledger.get_cursor(CURSOR_NAME) is None
            try:
                _sync_offers_first(settings, ledger, clock, should_stop)
                job = TransactionsJob(settings, ledger, heartland_client(settings), clock=clock)
                transactions = job.run(
                    since=since, until=until, on_page=on_page, force=force, should_stop=should_stop
                )
                deliver = DeliveryJob(settings, ledger, yotpo_client(settings), clock=clock)
                delivered = deliver.run(should_stop=should_stop)
            except Exception as exc:
                # Keep the failure in the ledger so that `status` shows it later.
                ledger.finish_run(run_id, "error", {}, clock(), error=str(exc))
                raise
            except BaseException as exc:  # a signal or SystemExit that stops at once
                detail = str(exc) or type(exc).__name__
                ledger.finish_run(
                    run_id, RUN_INTERRUPTED, {}, clock(), error=f"{INTERRUPTED_ERROR} ({detail})"
                )
                raise
            seconds = (clock() - started).total_seconds()
            interrupted = should_stop()
            summary = transactions.as_dict() | {"delivery": delivered.as_dict()}
            outcome = RUN_INTERRUPTED if interrupted else catch_up_outcome(delivered)
            ledger.finish_run(run_id, outcome, summary, clock())
            log.info(
                "catch_up_finished",
                tickets=transactions.tickets,
                pushes_planned=len(transactions.planned),
                confirmed=delivered.confirmed,
                rejected=delivered.rejected,
                failed=delivered.failed,
                waiting=delivered.waiting,
                seconds=round(seconds, 3),
                interrupted=interrupted,
            )
            return CatchUpResult(
                transactions,
                delivered,
                False,
                seconds,
                first_run,
                interrupted=interrupted,
                points_adjustments=transactions.points_adjustments,
            )
        finally:
            ledger.close()
