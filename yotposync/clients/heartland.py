"""The Heartland Retail API: ticket pages by keyset, single tickets, their lines, customers."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests

from yotposync.clients.http import DEFAULT_RETRY, HttpService, RateLimiter, RetryPolicy
from yotposync.errors import GuardError, NotFoundError

SERVICE = "heartland"

# Related data embedded in every ticket read, so a ticket needs one request.
TICKET_INCLUDES = ("lines", "subtotal", "tax_total")

# Maximum number of customer ids in one `$in` filter.
CUSTOMER_CHUNK_SIZE = 100


@dataclass(frozen=True)
class TicketPage:
    """One page of raw tickets. `total` is the window's ticket count, on the first page only."""

    results: list[dict[str, Any]]
    total: int | None


class HeartlandClient:
    """Calls to one Heartland Retail account, authenticated with an API token."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        requests_per_second: float = 5.0,
        retry: RetryPolicy = DEFAULT_RETRY,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.http = HttpService(
            SERVICE,
            base_url,
            headers={"Authorization": f"Bearer {token}"},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            limiter=RateLimiter(requests_per_second, sleep=sleep),
            retry=retry,
            session=session,
            auth_hint="check the API token (heartland.token) and the permissions of its user",
            sleep=sleep,
        )

    def close(self) -> None:
        """Close the keep-alive connections."""
        self.http.close()

    def ticket_pages(
        self,
        *,
        start: datetime,
        end: datetime | None,
        page_size: int,
        after: tuple[str, int] | None = None,
    ) -> Iterator[TicketPage]:
        """Walk the tickets updated in [start, end] in `(updated_at, id)` order, page by page.

        Each next page is requested by keyset: `updated_at` after the last one seen, or equal
        with a greater `id`. A ticket edited during the walk therefore moves to the end
        instead of shifting a page. `after`, when given, replaces `start` as the lower bound
        with the same keyset condition. The walk stops after a short page.

        Raises GuardError when a page does not end after the previous one, because the next
        request would then return the same page forever.
        """
        if page_size < 1:
            raise ValueError(f"page_size must be at least 1, got {page_size}")
        end_condition = None if end is None else {"updated_at": {"$lte": _iso_utc(end)}}
        lower: dict[str, Any]
        if after is None:
            lower = {"updated_at": {"$gte": _iso_utc(start)}}
            previous_key = None
        else:
            lower = _keyset_condition(after)
            previous_key = _parse_key(after, "the after key")
        first = True

        while True:
            conditions = [lower] if end_condition is None else [lower, end_condition]
            body = self.http.get_json(
                "/sales/tickets",
                {
                    "sort[]": ["updated_at", "id"],
                    "_include[]": list(TICKET_INCLUDES),
                    "_filter": json.dumps(conditions),
                    "page": 1,
                    "per_page": page_size,
                },
                check=_envelope_problem,
            )
            results: list[dict[str, Any]] = body["results"]
            total = body.get("total") if first else None
            page = TicketPage(results, total if isinstance(total, int) else None)
            if not results:
                yield page
                return

            last = _raw_key(results[-1])
            last_key = _parse_key(last, f"ticket {last[1]}")
            if previous_key is not None and last_key <= previous_key:
                raise GuardError(
                    f"Heartland returned a ticket page ending at (updated_at={last[0]}, "
                    f"id={last[1]}), which is not after the previous page's end. The walk "
                    "stopped because the next request would return the same page again"
                )
            yield page
            if len(results) < page_size:
                return
            lower = _keyset_condition(last)
            previous_key = last_key
            first = False

    def get_ticket(self, ticket_id: int) -> dict[str, Any] | None:
        """Return one raw ticket with its lines, subtotal and tax total, or None when unknown."""
        path = f"/sales/tickets/{ticket_id}"
        try:
            ticket: dict[str, Any] = self.http.get_json(
                path, {"_include[]": list(TICKET_INCLUDES)}, check=_object_problem
            )
        except NotFoundError:
            return None
        return ticket

    def ticket_lines(self, ticket_id: int) -> list[dict[str, Any]]:
        """Return every raw line of one ticket."""
        body = self.http.get_json(
            f"/sales/tickets/{ticket_id}/lines", {"per_page": "all"}, check=_envelope_problem
        )
        lines: list[dict[str, Any]] = body["results"]
        return lines

    def customers_by_id(self, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """Return the raw customers with the given ids, keyed by id. Unknown ids are left out."""
        unique = list(dict.fromkeys(ids))
        found: dict[int, dict[str, Any]] = {}
        for offset in range(0, len(unique), CUSTOMER_CHUNK_SIZE):
            chunk = unique[offset : offset + CUSTOMER_CHUNK_SIZE]
            body = self.http.get_json(
                "/customers",
                {
                    "_filter": json.dumps({"id": {"$in": chunk}}),
                    "page": 1,
                    "per_page": len(chunk),
                },
                check=_envelope_problem,
            )
            for customer in body["results"]:
                customer_id = customer.get("id")
                if isinstance(customer_id, int) and not isinstance(customer_id, bool):
                    found[customer_id] = customer
        return found

    def check(self) -> None:
        """Read one location, which fails with AuthError when the token is not accepted."""
        self.http.get_json("/locations", {"per_page": 1})


def _iso_utc(moment: datetime) -> str:
    """Format a timestamp as Heartland writes them: UTC, whole seconds, `+00:00`."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"timestamp {moment.isoformat()} has no UTC offset")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _keyset_condition(key: tuple[str, int]) -> dict[str, Any]:
    updated_at, ticket_id = key
    return {
        "$or": [
            {"updated_at": {"$gt": updated_at}},
            {"updated_at": updated_at, "id": {"$gt": ticket_id}},
        ]
    }


def _raw_key(ticket: dict[str, Any]) -> tuple[str, int]:
    """Return a ticket's `(updated_at, id)` as sent, for the next page's keyset condition."""
    updated_at = ticket.get("updated_at")
    ticket_id = ticket.get("id")
    if (
        not isinstance(updated_at, str)
        or not isinstance(ticket_id, int)
        or isinstance(ticket_id, bool)
    ):
        raise GuardError(
            f"Heartland returned a ticket page whose last record has no usable updated_at "
            f"and id (updated_at={updated_at!r}, id={ticket_id!r}); the walk cannot go on"
        )
    return updated_at, ticket_id


def _parse_key(key: tuple[str, int], label: str) -> tuple[datetime, int]:
    updated_at, ticket_id = key
    try:
        moment = datetime.fromisoformat(updated_at)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise GuardError(
            f"{label} has updated_at {updated_at!r}, which is not a timestamp with a UTC "
            "offset; the ticket walk cannot order it"
        )
    return moment, ticket_id


def _envelope_problem(body: Any) -> str | None:
    """Describe what is wrong with a list envelope, or return None when it is usable."""
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, list):
        return "no results list"
    if not all(isinstance(item, dict) for item in results):
        return "results list holds something other than objects"
    return None


def _object_problem(body: Any) -> str | None:
    return None if isinstance(body, dict) else "not a JSON object"
