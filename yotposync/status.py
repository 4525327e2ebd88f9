"""The report behind `yotposync status`: cursor, lag, outbox, last runs and recent problems.

Built only from the ledger and the settings' safe description, so it contains no secret.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from yotposync.app import RUN_UNDELIVERED, RUN_WAITING
from yotposync.ledger import Cursor, Ledger
from yotposync.ledger.customers import list_reviews
from yotposync.ledger.integrity import edited_value_error
from yotposync.ledger.offers import OfferLedger
from yotposync.ledger.store import INTERRUPTED_ERROR, RUN_INTERRUPTED, RUN_RUNNING
from yotposync.offers_cli import format_offer_status
from yotposync.sync.customer_job import CURSOR_NAME as CUSTOMERS_CURSOR
from yotposync.sync.transactions import CURSOR_NAME


def collect_status(
    ledger: Ledger, now: datetime, problem_limit: int = 10, *, ledger_in_use: bool = True
) -> dict[str, Any]:
    """Gather the status report. `ledger_in_use` False means no process holds the lock.

    A run still marked `running` when no process holds the ledger's lock was cut short by
    a signal or a crash, and is reported as interrupted.
    """
    cursor = ledger.get_cursor(CURSOR_NAME)
    customers_cursor = ledger.get_cursor(CUSTOMERS_CURSOR)
    oldest = ledger.oldest_unfinished_at()
    next_due = ledger.next_due_at()
    runs = []
    for run in ledger.last_runs():
        outcome, error = run["outcome"], run["error"]
        if outcome == RUN_RUNNING and not ledger_in_use:
            outcome, error = RUN_INTERRUPTED, INTERRUPTED_ERROR
        runs.append(
            {
                "job": run["job"],
                "started_at": run["started_at"],
                "finished_at": run["finished_at"],
                "outcome": outcome,
                "summary": _run_summary(run),
                "error": error,
            }
        )
    return {
        "ledger": str(ledger.path) if ledger.path else None,
        "cursor": _cursor_facts(cursor, now),
        "customers_cursor": _cursor_facts(customers_cursor, now),
        "tickets": ledger.decision_counts(),
        "outbox": ledger.push_counts(),
        "outbox_oldest_unfinished_age_seconds": (
            round((now - oldest).total_seconds()) if oldest else None
        ),
        "outbox_next_retry_at": next_due.isoformat() if next_due else None,
        "outbox_held_behind_failed": ledger.held_behind_failed_count(),
        "last_runs": runs,
        "problem_pushes": ledger.problem_pushes(problem_limit),
        "invalid_tickets": ledger.invalid_tickets(problem_limit),
        "invalid_tickets_total": ledger.invalid_ticket_count(),
        "run_errors": ledger.recent_run_errors(problem_limit),
        "offers": OfferLedger(ledger).status(problem_limit),
        "open_customer_reviews": len(list_reviews(ledger)),
    }


def _cursor_facts(cursor: Cursor | None, now: datetime) -> dict[str, Any]:
    """Describe a cursor for the report; a negative lag means a cursor in the future."""
    return {
        "updated_at": cursor.updated_at.isoformat() if cursor else None,
        "last_id": cursor.last_id if cursor else None,
        "lag_seconds": round((now - cursor.updated_at).total_seconds()) if cursor else None,
    }


def _lag_text(lag: int | None, next_run: str) -> str:
    """Render a cursor's lag, or how far it is in the future and what the next run does."""
    if lag is None or lag >= 0:
        return f"lag {_duration(lag)}"
    return f"{_duration(-lag)} in the future: check this machine's clock. The next {next_run}"


def _outcome_text(run: dict[str, Any]) -> str:
    """Return a run's outcome, with what it left for the next run.

    A waiting catch-up names the pushes left for a retry. A daemon run that ended at its time
    limit is marked as such, with how far its walk got.
    """
    outcome = str(run["outcome"])
    summary = run["summary"] or {}
    if summary.get("time_limit_reached") is True:
        cursor = summary.get("cursor")
        records = "tickets" if run["job"] == "transactions" else "customers"
        reached = f" after reading {records} updated up to {cursor}" if cursor else ""
        return f"{outcome} (stopped at its time limit{reached}; the next run goes on from there)"
    delivery = summary.get("delivery") or {}
    waiting = delivery.get("waiting")
    if outcome == RUN_WAITING and isinstance(waiting, int) and waiting > 0:
        # Past tense: the outbox counts above give the pushes that wait now.
        noun = "push was" if waiting == 1 else "pushes were"
        return f"{outcome} ({waiting} {noun} left for a retry by the next run or the daemon)"
    if outcome == RUN_UNDELIVERED:
        rejected, failed = delivery.get("rejected"), delivery.get("failed")
        if isinstance(rejected, int) and isinstance(failed, int) and rejected + failed > 0:
            return (
                f"{outcome} (Yotpo rejected {rejected} and {failed} ran out of attempts; "
                "they are listed below)"
            )
    return outcome


def format_status(status: dict[str, Any]) -> str:
    """Render the status for a person at a terminal."""
    lines = [f"Ledger: {status['ledger']}"]
    cursor = status["cursor"]
    if cursor["updated_at"]:
        # The first run of a ledger without sync.go_live stores a cursor with ticket id 0.
        ticket = (
            f"ticket {cursor['last_id']}"
            if cursor["last_id"]
            else "set by the first run, no later ticket yet"
        )
        lag = _lag_text(cursor["lag_seconds"], "transactions run moves the cursor back")
        lines.append(f"Cursor: {cursor['updated_at']} ({ticket}), {lag}")
    else:
        lines.append("Cursor: not set yet (no transactions run has finished a page)")
    customers = status["customers_cursor"]
    if customers["updated_at"]:
        lag = _lag_text(
            customers["lag_seconds"], "customers run walks from the first customer again"
        )
        lines.append(
            f"Customers cursor: {customers['updated_at']} (customer {customers['last_id']}), {lag}"
        )
    tickets = status["tickets"]
    shown = ", ".join(f"{kind} {n}" for kind, n in tickets.items()) or "none yet"
    lines.append(f"Tickets by decision: {shown}")
    outbox = status["outbox"]
    lines.append("Outbox: " + ", ".join(f"{state} {n}" for state, n in outbox.items()))
    if status["outbox_oldest_unfinished_age_seconds"] is not None:
        lines.append(
            "  oldest unfinished push: "
            f"{_duration(status['outbox_oldest_unfinished_age_seconds'])} old"
        )
    if status["outbox_next_retry_at"]:
        lines.append(f"  next attempt due: {status['outbox_next_retry_at']}")
    blocked = status["outbox_held_behind_failed"]
    if blocked:
        verb = "push waits" if blocked == 1 else "pushes wait"
        lines.append(
            f"  {blocked} pending {verb} behind a failed "
            "push of the same customer: fix the cause listed below, then run "
            "`yotposync retry-failed`"
        )
    for run in status["last_runs"]:
        lines.append(
            f"Last {run['job']} run: {_outcome_text(run)}, finished {run['finished_at'] or '-'}"
            + (f": {run['error']}" if run["error"] else "")
        )
    problems = status["problem_pushes"]
    if problems:
        lines.append("Pushes needing attention:")
        for push in problems:
            lines.append(
                f"  {push['push_id']} ({push['kind']}, ticket {push['ticket_id']}) "
                f"{push['state']}: "
                + (f"HTTP {push['last_status']}: " if push["last_status"] is not None else "")
                + f"{push['last_error']}"
            )
    invalid = status["invalid_tickets"]
    if invalid:
        total = status["invalid_tickets_total"]
        latest = f" (the latest {len(invalid)} of {total})" if total > len(invalid) else ""
        lines.append(f"Tickets that could not be read{latest}:")
        for ticket in invalid:
            # The parser's reason already starts with "ticket N: ".
            lines.append(f"  {ticket['reason']}")
    lines.extend(format_offer_status(status["offers"]))
    reviews = status["open_customer_reviews"]
    if reviews:
        lines.append(
            f"Customer reviews waiting for staff: {reviews} (see `yotposync customers review`)"
        )
    return "\n".join(lines)


def _duration(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 0:
        return "0s"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def _run_summary(run: dict[str, Any]) -> dict[str, Any] | None:
    """Decode the summary that a run stored as a JSON object, if it has one."""
    text = run["summary"]
    if not text:
        return None
    try:
        summary = json.loads(text)
    except (TypeError, ValueError):
        summary = None
    if not isinstance(summary, dict):
        raise edited_value_error(f"runs.summary of run {run['id']}", text, "a JSON object")
    return summary
