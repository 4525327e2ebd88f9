"""`yotposync explain TICKET`: everything the ledger stores about one ticket.

The ticket's versions and decisions, its pushes with their states, the refunds that later
returns sent against its orders, and, when Yotpo can be asked, the customer's points balance
after each of those pushes. Only the balance comes from an API; the rest is the ledger's.
Payloads are not shown, and e-mail addresses are shortened.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Protocol

from yotposync.errors import ApiError, YotposyncError
from yotposync.ledger import Ledger
from yotposync.ledger.offers import POINTS_ADJUST
from yotposync.logs import mask_email
from yotposync.money import format_stored_cents

_TICKET_QUERY = (
    "SELECT id, public_id, type, updated_at, completed_at, business_date, location_id, kind, "
    "reason, rule, customer_id, email, parent_id, earn_cents, return_cents, versions, "
    "first_seen_at, decided_at FROM tickets WHERE id = ?"
)
_PUSH_SELECT = (
    "SELECT seq, push_id, kind, role, ticket_id, email, target_order_id, amount_cents, state, "
    "attempts, last_status, last_error, created_at, updated_at, confirmed_at, next_attempt_at, "
    # 'points_adjust' is POINTS_ADJUST of yotposync.ledger.offers.
    "CASE WHEN kind = 'points_adjust' "
    "THEN json_extract(payload, '$.point_adjustment_amount') END AS adjust_points "
    "FROM pushes "
)


class TicketNotFoundError(YotposyncError):
    """No ticket in the ledger has the given id or public id."""


class CustomerLookup(Protocol):
    """The part of the Yotpo client that reads a customer's balance and history."""

    def get_customer(
        self, *, email: str | None = None, customer_id: str | None = None, with_history: bool
    ) -> dict[str, Any] | None: ...


@dataclass
class PushLine:
    """One push of, or against, the ticket, with what Yotpo's history shows for it."""

    push_id: str
    kind: str
    role: str
    ticket_id: int
    target_order_id: str | None
    amount_cents: int
    state: str
    attempts: int
    last_status: int | None
    last_error: str | None
    created_at: str | None
    updated_at: str | None
    confirmed_at: str | None
    next_attempt_at: str | None
    # The points a points adjustment moves; such a push moves no money.
    adjust_points: int | None = None
    points: int | None = None
    balance_after: int | None = None
    email: str | None = None  # the customer the push went to


@dataclass
class Explanation:
    """The facts `explain` shows for one ticket."""

    ticket: dict[str, Any]
    versions: list[dict[str, Any]]
    pushes: list[PushLine]
    refunds_from_returns: list[PushLine]
    parent: dict[str, Any] | None
    returns: list[dict[str, Any]]
    # Orders by which this sale's voided returns gave back what they had refunded.
    restores_from_returns: list[PushLine] = field(default_factory=list)
    # Points adjustments of this sale's returns: spent points given back, and taken again.
    points_from_returns: list[PushLine] = field(default_factory=list)
    note: str | None = None
    balance: int | None = None
    balance_customer: str | None = None  # whose balance, with the e-mail shortened
    balance_note: str | None = None
    history_matched: bool = False
    # Every push of the sale and its returns, matched against Yotpo's history together so
    # that each history item goes to one push. Not shown.
    related: list[PushLine] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        del data["related"]
        email = data["ticket"].get("email")
        data["ticket"]["email"] = mask_email(email) if email else None
        for name in _PUSH_LISTS:
            for push in data[name]:
                push["email"] = mask_email(push["email"]) if push["email"] else None
        return data


_PUSH_LISTS = ("pushes", "refunds_from_returns", "restores_from_returns", "points_from_returns")


def find_ticket(ledger: Ledger, key: str) -> tuple[int, str | None]:
    """Find a ticket by id or public id; return its id and a note when the key is ambiguous.

    An id wins over a public id, because ids never change. Raises TicketNotFoundError.
    """
    text = key.strip()
    if not text:
        # Tickets without a public id store an empty one, which an empty key would find.
        raise TicketNotFoundError(
            "no ticket given: name a ticket by its Heartland id or public id, such as "
            "`yotposync explain 5001`"
        )
    by_id = None
    # isdigit() alone accepts digits such as "²", and SQLite integers stop at 2**63 - 1.
    if text.isascii() and text.isdigit() and len(text) <= 18:
        row = ledger.db.execute("SELECT id FROM tickets WHERE id = ?", [int(text)]).fetchone()
        by_id = int(row[0]) if row else None
    by_public = [
        int(row[0])
        for row in ledger.db.execute(
            "SELECT id FROM tickets WHERE public_id = ? ORDER BY id", [text]
        )
    ]
    if by_id is not None:
        others = [ticket_id for ticket_id in by_public if ticket_id != by_id]
        note = None
        if others:
            note = f"ticket {others[0]} has public id {text}: run `yotposync explain {others[0]}`"
        return by_id, note
    if not by_public:
        raise TicketNotFoundError(
            f"no ticket with id or public id {text!r} in the ledger: it has not been polled "
            "yet, or it was updated before the ledger's first run (see `yotposync catch-up`)"
        )
    note = None
    if len(by_public) > 1:
        note = f"public id {text} belongs to tickets {by_public}; showing the newest"
    return by_public[-1], note


def explain_ticket(ledger: Ledger, ticket_id: int) -> Explanation:
    """Collect what the ledger stores about one ticket."""
    db = ledger.db
    ticket = next(iter(db.query(_TICKET_QUERY, [ticket_id])), None)
    if ticket is None:
        raise TicketNotFoundError(f"no ticket {ticket_id} in the ledger")

    versions = list(
        db.query(
            "SELECT updated_at, seen_at, kind, reason, rule, customer_id, earn_cents, "
            "return_cents FROM ticket_versions WHERE ticket_id = ? ORDER BY id",
            [ticket_id],
        )
    )
    pushes, refunds, restores, points = _sale_pushes(ledger, ticket_id)
    if ticket["parent_id"] is not None:
        # A return's restore orders are its sale's credit, shown on the sale.
        restores, points = [], []
        refunds = [r for r in refunds if r.target_order_id not in _restore_ids(pushes)]

    parent = None
    if ticket["parent_id"] is not None:
        parent = next(
            iter(
                db.query(
                    "SELECT id, public_id, kind, earn_cents FROM tickets WHERE id = ?",
                    [ticket["parent_id"]],
                )
            ),
            {"id": ticket["parent_id"], "public_id": None, "kind": None, "earn_cents": None},
        )
    returns = list(
        db.query(
            "SELECT id, public_id, kind, return_cents FROM tickets WHERE parent_id = ? ORDER BY id",
            [ticket_id],
        )
    )
    explanation = Explanation(
        ticket, versions, pushes, refunds, parent, returns, restores, points_from_returns=points
    )
    explanation.related = _related_pushes(ledger, explanation)
    return explanation


def _sale_pushes(
    ledger: Ledger, ticket_id: int
) -> tuple[list[PushLine], list[PushLine], list[PushLine], list[PushLine]]:
    """Return a ticket's pushes, the refunds against its orders, and its returns' restores.

    The refunds are those that other tickets (returns) sent against the ticket's orders,
    including the orders that gave back what voided returns had taken. The restores come as
    two lists: the orders of voided returns, and the points adjustments of returns.
    """
    db = ledger.db
    pushes = [
        _push_line(row)
        for row in db.query(_PUSH_SELECT + "WHERE ticket_id = ? ORDER BY seq", [ticket_id])
    ]
    by_returns = [
        _push_line(row)
        for row in db.query(
            _PUSH_SELECT + "WHERE (role = 'restore' OR kind = 'points_adjust') "  # noqa: S608
            "AND ticket_id IN (SELECT id FROM tickets WHERE parent_id = ?) ORDER BY seq",
            [ticket_id],
        )
    ]
    restores = [push for push in by_returns if push.role == "restore"]
    points = [push for push in by_returns if push.role != "restore"]
    order_ids = [push.push_id for push in [*pushes, *restores] if push.kind == "order"]
    refunds: list[PushLine] = []
    if order_ids:
        marks = ",".join("?" * len(order_ids))
        refunds = [
            _push_line(row)
            for row in db.query(
                _PUSH_SELECT + f"WHERE target_order_id IN ({marks}) "
                "AND ticket_id != ? ORDER BY seq",
                [*order_ids, ticket_id],
            )
        ]
    return pushes, refunds, restores, points


def _listed_pushes(explanation: Explanation) -> list[PushLine]:
    return [push for name in _PUSH_LISTS for push in getattr(explanation, name)]


def _restore_ids(pushes: list[PushLine]) -> set[str]:
    return {push.push_id for push in pushes if push.role == "restore"}


def _related_pushes(ledger: Ledger, explanation: Explanation) -> list[PushLine]:
    """Return every push of the ticket's sale and of that sale's returns, once each.

    The ticket's own lines take the place of the same pushes read for its sale, so that
    matching the history against this list sets the figures they show.
    """
    listed = _listed_pushes(explanation)
    family = list(listed)
    parent = explanation.parent
    if parent is not None and parent.get("kind") is not None:
        pushes, refunds, restores, points = _sale_pushes(ledger, int(parent["id"]))
        family = [*pushes, *refunds, *restores, *points]
    by_id = {push.push_id: push for push in family}
    for push in listed:
        by_id[push.push_id] = push
    return list(by_id.values())


def add_balance(explanation: Explanation, yotpo: CustomerLookup) -> None:
    """Read the customer's balance and history from Yotpo and match it to the pushes.

    Yotpo reports only the current balance, so the balance after a push is reconstructed:
    the current balance minus the points of every history item newer than the push's item.
    """
    email = _balance_email(explanation)
    if not email:
        explanation.balance_note = "no e-mail on the ticket, so no Yotpo customer to read"
        return
    explanation.balance_customer = mask_email(email)
    try:
        customer = yotpo.get_customer(email=email, with_history=True)
    except ApiError as exc:
        explanation.balance_note = f"cannot be read from Yotpo: {exc}"
        return
    if customer is None:
        customer = _account_after_email_change(explanation, email, yotpo)
    if customer is None:
        explanation.balance_note = f"Yotpo has no customer {mask_email(email)}"
        return
    balance = customer.get("points_balance")
    if not isinstance(balance, int) or isinstance(balance, bool):
        explanation.balance_note = "Yotpo returned no points_balance for the customer"
        return
    explanation.balance = balance
    history = customer.get("history_items")
    if not isinstance(history, list):
        explanation.balance_note = (
            "Yotpo returned no history, so the balance after each push is unknown"
        )
        return
    related = explanation.related or _listed_pushes(explanation)
    explanation.history_matched = _match_history(balance, history, _sent_to(related, email))
    # NOTE: history items that Yotpo keeps as pending would not be in the current balance,
    # and points that expired leave no item here. Either would make the reconstruction off.
    explanation.balance_note = "balance after each push reconstructed from Yotpo's history"

    # A sale that moved, or a return rung up under another customer, sent pushes to other
    # customers too. Their figures come from those customers' histories.
    recipients = {push.email for push in _listed_pushes(explanation) if push.email}
    for other in sorted(recipients - {email})[:_OTHER_CUSTOMERS_READ]:
        try:
            found = yotpo.get_customer(email=other, with_history=True)
        except ApiError:
            continue
        other_balance = found.get("points_balance") if found else None
        other_history = found.get("history_items") if found else None
        if isinstance(other_balance, bool) or not isinstance(other_balance, int):
            continue
        if isinstance(other_history, list):
            _match_history(other_balance, other_history, _sent_to(related, other))


# At most this many other customers' histories are read for one ticket.
_OTHER_CUSTOMERS_READ = 3


def _sent_to(pushes: list[PushLine], email: str) -> list[PushLine]:
    """Return the pushes sent to one customer, in the order Yotpo applied them.

    Yotpo's history is in the order it applied the pushes, so they are matched in the order
    they were confirmed: a return's refund can come before an adjustment of the sale itself.
    """
    return sorted(
        [push for push in pushes if push.email == email],
        key=lambda push: (push.confirmed_at or "", push.created_at or ""),
    )


def _account_after_email_change(
    explanation: Explanation, email: str, yotpo: CustomerLookup
) -> dict[str, Any] | None:
    """Find the account of the ticket's customer by its Heartland id, after an e-mail change.

    The customers job moves a customer's Yotpo account to a new e-mail address, so the address
    stored with an older ticket finds no account. Only the ticket's own customer is looked up:
    a return's pushes go to its sale's customer, whose id the ticket does not carry.
    """
    customer_id = explanation.ticket.get("customer_id")
    if email != explanation.ticket.get("email") or not isinstance(customer_id, int):
        return None
    try:
        customer = yotpo.get_customer(customer_id=str(customer_id), with_history=True)
    except ApiError:
        return None
    if customer is None:
        return None
    now_under = customer.get("email")
    if isinstance(now_under, str) and now_under:
        explanation.balance_customer = (
            f"{mask_email(now_under)} (customer {customer_id}, whose e-mail was "
            f"{mask_email(email)} on this ticket)"
        )
    return customer


def _balance_email(explanation: Explanation) -> str | None:
    """Return the customer whose balance explains the ticket: the one its pushes went to.

    That is the ticket's own customer when any of its pushes went there, or when it has
    none. A return refunds the sale's customer, so then it is the customer of its last push.
    """
    ticket_email: str | None = explanation.ticket.get("email")
    sent_to = [push.email for push in explanation.pushes if push.email]
    if not sent_to or ticket_email in sent_to:
        return ticket_email
    return sent_to[-1]


def _match_history(balance: int, history: list[Any], pushes: list[PushLine]) -> bool:
    """Set `points` and `balance_after` on the confirmed pushes that history items name.

    Items come newest first. Orders are matched by their id. Refunds name the order they
    refund, so the n-th confirmed refund of an order matches the n-th refund item of it.
    A points adjustment carries its push id in brackets in the item's `action`.
    """
    # (points, balance after, order ids, action)
    items: list[tuple[int, int, list[str], str]] = []
    running = balance
    for item in history:
        if not isinstance(item, dict):
            continue
        points = item.get("points")
        points = points if isinstance(points, int) and not isinstance(points, bool) else 0
        order_ids = [str(value) for value in item.get("order_ids") or []]
        items.append((points, running, order_ids, str(item.get("action") or "")))
        running -= points
    items.reverse()  # oldest first, as pushes are

    matched = False
    used: set[int] = set()
    for push in pushes:
        if push.state != "confirmed":
            continue
        is_order = push.kind == "order"
        target = push.push_id if is_order else push.target_order_id
        marker = f"[{push.push_id}]" if push.kind == POINTS_ADJUST else None
        for index, (points, after, order_ids, action) in enumerate(items):
            if index in used:
                continue
            if marker is not None:
                if marker not in action:
                    continue
            # An order adds points and a refund removes them; either may be 0.
            elif target not in order_ids or not (points >= 0 if is_order else points <= 0):
                continue
            used.add(index)
            push.points, push.balance_after = points, after
            matched = True
            break
    return matched


def _push_line(row: dict[str, Any]) -> PushLine:
    return PushLine(
        push_id=row["push_id"],
        kind=row["kind"],
        role=row["role"],
        ticket_id=row["ticket_id"],
        target_order_id=row["target_order_id"],
        amount_cents=row["amount_cents"],
        state=row["state"],
        attempts=row["attempts"] or 0,
        last_status=row["last_status"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        confirmed_at=row["confirmed_at"],
        next_attempt_at=row["next_attempt_at"],
        adjust_points=row["adjust_points"],
        email=row["email"],
    )


def format_explanation(explanation: Explanation) -> str:
    """Render an explanation for a person at a terminal."""
    t = explanation.ticket
    lines = [
        f"Ticket {t['id']} (public id {t['public_id'] or '-'}): {t['type'] or 'unknown type'}, "
        f"location {_or_dash(t['location_id'])}, business day {_business_day(t)}",
        f"  completed {_time(t['completed_at'])}, last updated {_time(t['updated_at'])}",
    ]
    if t["customer_id"] is not None:
        email = mask_email(t["email"]) if t["email"] else "no e-mail"
        lines.append(f"  customer {t['customer_id']} ({email})")
    else:
        lines.append("  no customer")
    if explanation.parent is not None:
        parent = explanation.parent
        known = f": {parent['kind']}" if parent["kind"] else " (not in the ledger)"
        lines.append(f"  return of ticket {parent['id']}{known}")
    if explanation.note:
        lines.append(f"Note: {explanation.note}")

    lines += [
        f"Decision: {t['kind']}" + (f" (rule {t['rule']})" if t["rule"] else ""),
        f"  {t['reason']}",
        f"  eligible amount: {_eligible(t)}",
    ]
    capped = _capped_refunds(t, explanation.pushes)
    if capped == 0:
        lines.append(_nothing_taken_back(t))
    elif capped is not None:
        lines.append(
            f"  refunds so far: {format_stored_cents(capped)}, capped at what the sale had "
            "left to take back; a later void of another return of it can top them up"
        )
    lines.append(f"Versions seen ({len(explanation.versions)}):")
    for number, version in enumerate(explanation.versions, start=1):
        rule = f" (rule {version['rule']})" if version["rule"] else ""
        updated, seen = _time(version["updated_at"]), _time(version["seen_at"])
        customer = version["customer_id"]
        named = f"customer {customer}" if customer is not None else "no customer"
        lines.append(
            f"  {number}. updated {updated}, seen {seen}, {named}: {version['kind']}{rule}: "
            f"{version['reason']}"
        )

    lines.append(f"Pushes ({len(explanation.pushes)}):" if explanation.pushes else "Pushes: none")
    lines += [f"  {_format_push(push, t['email'])}" for push in explanation.pushes]
    refunded = "this sale" if t["parent_id"] is None else "this ticket's orders"
    for title, pushes in (
        (f"Refunds against {refunded} from other tickets", explanation.refunds_from_returns),
        ("Given back to this sale by voided returns", explanation.restores_from_returns),
        ("Points adjustments by returns of this sale", explanation.points_from_returns),
    ):
        if pushes:
            lines.append(f"{title} ({len(pushes)}):")
            lines += [
                f"  {_format_push(push, t['email'])} (ticket {push.ticket_id})" for push in pushes
            ]
    if explanation.returns:
        shown = ", ".join(
            f"ticket {r['id']} ({r['kind']}, {format_stored_cents(r['return_cents'] or 0)})"
            for r in explanation.returns
        )
        lines.append(f"Returns of this ticket: {shown}")

    lines += _format_balance(explanation)
    return "\n".join(lines)


def _eligible(ticket: dict[str, Any]) -> str:
    """Describe the eligible amounts of a ticket's decision: earned, taken back, or both."""
    earned = f"{format_stored_cents(ticket['earn_cents'] or 0)} earned"
    taken_back = f"{format_stored_cents(ticket['return_cents'] or 0)} taken back"
    if ticket["parent_id"] is None:
        return earned
    return f"{earned}, {taken_back}" if ticket["earn_cents"] else taken_back


def _capped_refunds(ticket: dict[str, Any], pushes: list[PushLine]) -> int | None:
    """Return the total of a return's refunds when it is below the amount the return takes back.

    Refunds stop at what the sale still has, so a return of a sale that earlier returns
    already took back sends less than its own amount, or no refund at all (a total of 0).
    Rejected refunds do not count, and a return whose refunds were all rejected gets None.
    """
    taken_back = ticket["return_cents"]
    if ticket["parent_id"] is None or not isinstance(taken_back, int):
        return None
    refunds = [push for push in pushes if push.kind == "refund"]
    if not refunds:
        return 0 if taken_back > 0 else None
    amounts = [push.amount_cents for push in refunds if push.state != "rejected"]
    if not amounts or not all(isinstance(amount, int) for amount in amounts):
        return None
    total = sum(amounts)
    return total if total < taken_back else None


def _nothing_taken_back(ticket: dict[str, Any]) -> str:
    """Explain why a return with an amount to take back sent no refund."""
    decided = format_stored_cents(ticket["return_cents"])
    return (
        f"  took back nothing: the return was decided at {decided}, but sale "
        f"{ticket['parent_id']} had nothing left to take back. A later void of another "
        "return of the sale lets it take back then"
    )


def _business_day(ticket: dict[str, Any]) -> str:
    """Return the ticket's business day, or why a completed ticket has none."""
    if ticket["business_date"]:
        return str(ticket["business_date"])
    if ticket["completed_at"]:
        return "unknown (Heartland's local_completed_at could not be read)"
    return "-"


def _format_push(push: PushLine, ticket_email: str | None) -> str:
    role = f" ({push.role})" if push.role != push.kind else ""
    target = f" against {push.target_order_id}" if push.target_order_id else ""
    if push.email and push.email != ticket_email:
        # Sent to another customer than the ticket names now: a sale that moved, a return.
        target += f" to {mask_email(push.email)}"
    if push.adjust_points is None:
        moved = format_stored_cents(push.amount_cents)
    elif isinstance(push.adjust_points, int):
        moved = f"{push.adjust_points:+d} points"
    else:
        moved = f"{push.adjust_points!r} points (not a whole number: edited in the ledger)"
    text = (
        f"{push.kind} {push.push_id}{role}{target}: {moved}, "
        f"{push.state} after {push.attempts} attempt{'s' if push.attempts != 1 else ''}"
    )
    if push.last_status is not None:
        text += f", last HTTP {push.last_status}"
    if push.last_error:
        text += f": {push.last_error}"
    text += f"; queued {_time(push.created_at)}"
    if push.confirmed_at:
        text += f", confirmed {_time(push.confirmed_at)}"
    elif push.state == "pending" and push.next_attempt_at:
        text += f", next attempt {_time(push.next_attempt_at)}"
    if push.balance_after is not None:
        text += f"; Yotpo: {push.points:+d} points, balance after {push.balance_after}"
    return text


def _format_balance(explanation: Explanation) -> list[str]:
    if explanation.balance is None:
        if explanation.balance_note is None:
            return ["Yotpo balance: not requested"]
        return [f"Yotpo balance: not available: {explanation.balance_note}"]
    lines = [f"Yotpo balance of {explanation.balance_customer} now: {explanation.balance} points"]
    if explanation.balance_note:
        lines.append(f"  {explanation.balance_note}")
    if not explanation.history_matched:
        lines.append("  no history item matches this ticket's confirmed pushes")
    return lines


def _or_dash(value: Any) -> str:
    return "-" if value is None or value == "" else str(value)


def _time(value: str | None) -> str:
    """Show a ledger timestamp to the second."""
    if not value:
        return "-"
    try:
        return datetime.fromisoformat(value).replace(microsecond=0).isoformat()
    except ValueError:
        return value
