"""The Heartland Retail API: tickets and customers by keyset, customer fields and addresses."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from yotposync.clients.http import DEFAULT_RETRY, HttpService, RateLimiter, RetryPolicy
from yotposync.errors import GuardError, NotFoundError, RetriableError

SERVICE = "heartland"

# Related data embedded in every ticket read, so a ticket needs one request.
TICKET_INCLUDES = ("lines", "subtotal", "tax_total")

# Maximum number of customer ids in one `$in` filter.
CUSTOMER_CHUNK_SIZE = 100


@dataclass(frozen=True)
class KeysetPage:
    """One page of a keyset walk. `total` is the window's record count, on the first page only."""

    results: list[dict[str, Any]]
    total: int | None


# The name the transactions job uses for the pages of the ticket walk.
TicketPage = KeysetPage


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
        limiter: RateLimiter | None = None,
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
            # `limiter`, when given, is shared with the other clients of the same account and
            # replaces `requests_per_second`.
            limiter=limiter or RateLimiter(requests_per_second, sleep=sleep),
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
        with the same keyset condition. The walk stops after a short page whose `total` counts
        no more tickets than it holds, or after an empty page that is still empty when asked
        for again. An empty page whose `total` is above 0 is retried like a 5xx instead, and
        raises RetriableError when the retries run out.

        Raises GuardError when a page does not end after the previous one, because the next
        request would then return the same page forever.

        NOTE: the walk finds a changed ticket only if the change moved its `updated_at`. The
        sandbox moves it for line and payment changes too, as a real account is assumed to.
        A change that does not move it is missed once it is older than the overlap window.
        """
        yield from self._keyset_pages(
            "/sales/tickets",
            "ticket",
            {"_include[]": list(TICKET_INCLUDES)},
            start=start,
            end=end,
            page_size=page_size,
            after=after,
        )

    def customer_pages(
        self,
        *,
        start: datetime,
        end: datetime | None,
        page_size: int,
        after: tuple[str, int] | None = None,
    ) -> Iterator[KeysetPage]:
        """Walk the customers updated in [start, end] by keyset, as `ticket_pages` walks tickets.

        Deleted customers are included: they carry a `deleted_at` timestamp.
        """
        yield from self._keyset_pages(
            "/customers", "customer", {}, start=start, end=end, page_size=page_size, after=after
        )

    def _keyset_pages(
        self,
        path: str,
        record: str,
        extra_params: dict[str, Any],
        *,
        start: datetime,
        end: datetime | None,
        page_size: int,
        after: tuple[str, int] | None,
    ) -> Iterator[KeysetPage]:
        """Walk one collection in `(updated_at, id)` order; `record` names a row in errors."""
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
        asked_again = False
        # Page 1 of the rows after `lower`, unless a whole page lay past the window's end.
        page_number = 1
        skipped_ids: list[object] = []

        while True:
            conditions = [lower] if end_condition is None else [lower, end_condition]
            body = self.http.get_json(
                path,
                {
                    "sort[]": ["updated_at", "id"],
                    **extra_params,
                    "_filter": json.dumps(conditions),
                    "page": page_number,
                    "per_page": page_size,
                },
                check=_keyset_page_problem,
            )
            results: list[dict[str, Any]] = body["results"]
            total = body.get("total") if first else None
            page = KeysetPage(results, total if isinstance(total, int) else None)
            if not results:
                # An empty page ends the walk, so it is requested a second time first. A
                # page that comes back empty by mistake would otherwise end a catch-up
                # early without a word.
                if not asked_again:
                    asked_again = True
                    continue
                yield page
                return
            asked_again = False

            page_end = _page_end(results, record, end)
            if page_end is None:
                if len(results) < page_size:
                    yield page
                    return
                if _page_end(results, record, None) is not None:
                    # A full page whose usable rows are all listed past the window's end gives
                    # no key to go on from, so the next page is asked for by number.
                    ids = [row.get("id") for row in results]
                    if ids == skipped_ids:
                        raise GuardError(
                            f"Heartland returned the same full {record} page for page "
                            f"{page_number - 1} and page {page_number}, all of it listed after "
                            "the window's end; the walk stopped"
                        )
                    skipped_ids = ids
                    yield page
                    page_number += 1
                    first = False
                    continue
                raise GuardError(
                    f"Heartland returned a full {record} page in which no record has a usable "
                    "updated_at and id, so the next page cannot be requested; the walk stopped"
                )
            last, last_key = page_end
            if previous_key is not None and last_key <= previous_key:
                raise GuardError(
                    f"Heartland returned a {record} page ending at (updated_at={last[0]}, "
                    f"id={last[1]}), which is not after the previous page's end. The walk "
                    "stopped because the next request would return the same page again"
                )
            yield page
            if len(results) < page_size and not _lists_more(body, len(results)):
                return
            lower = _keyset_condition(last)
            previous_key = last_key
            page_number = 1
            skipped_ids = []
            first = False

    def get_ticket(self, ticket_id: int) -> dict[str, Any] | None:
        """Return one raw ticket with its lines, subtotal and tax total, or None when unknown."""
        path = f"/sales/tickets/{ticket_id}"
        try:
            ticket: dict[str, Any] = self.http.get_json(
                path, {"_include[]": list(TICKET_INCLUDES)}, check=_record_problem
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

    def get_customer(self, customer_id: int) -> dict[str, Any] | None:
        """Return one raw customer, a deleted one included, or None when Heartland has none."""
        try:
            customer: dict[str, Any] = self.http.get_json(
                f"/customers/{customer_id}", check=_record_problem
            )
        except NotFoundError:
            return None
        return customer

    def customer_addresses(self, customer_id: int) -> list[dict[str, Any]] | None:
        """Return every raw address of one customer, or None when the customer is unknown.

        Heartland keeps phone numbers on addresses, not on the customer record.
        """
        try:
            body = self.http.get_json(
                f"/customers/{customer_id}/addresses",
                {"per_page": "all"},
                check=_envelope_problem,
            )
        except NotFoundError:
            return None
        addresses: list[dict[str, Any]] = body["results"]
        return addresses

    def custom_fields(self) -> list[dict[str, Any]]:
        """Return every custom field definition, of every group."""
        body = self.http.get_json("/custom_fields", {"per_page": "all"}, check=_envelope_problem)
        definitions: list[dict[str, Any]] = body["results"]
        return definitions

    def create_custom_field(self, definition: Mapping[str, Any]) -> dict[str, Any]:
        """Create a custom field definition and return it as stored, with its `key`.

        Heartland assigns the key itself, so the caller reads it from the result. The POST
        is not repeated after a timeout, since a second one could create a second field.
        """
        response = self.http.request(
            "POST", "/custom_fields", json=dict(definition), idempotent=False
        )
        location = response.headers.get("Location")
        if not location:
            created: Any = response.json() if response.content else None
            if isinstance(created, dict) and created.get("key"):
                return created
            raise RetriableError(
                SERVICE,
                "POST",
                "/custom_fields",
                response.status_code,
                "the response has neither a Location header nor the created field",
            )
        stored: dict[str, Any] = self.http.get_json(
            _location_path(location, self.http.base_url), check=_object_problem
        )
        return stored

    def update_customer(self, customer_id: int, *, custom: Mapping[str, str | None]) -> None:
        """Write custom field values of one customer with `PUT /customers/{id}`.

        Values go as top-level `custom@<key>` members, the form Heartland's own import tool
        writes. Raises NotFoundError when the customer is unknown or deleted.
        """
        body = {f"custom@{key}": value for key, value in custom.items()}
        self.http.request("PUT", f"/customers/{customer_id}", json=body, idempotent=True)

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


def _page_end(
    rows: list[dict[str, Any]], record: str, end: datetime | None
) -> tuple[tuple[str, int], tuple[datetime, int]] | None:
    """Return the raw and parsed `(updated_at, id)` of the last row that has a usable one.

    Rows after it on the page are listed again by the next page, whose keyset starts after
    this row, and the caller records them as invalid. One malformed record therefore does
    not stop the walk. A row listed as updated after `end`, outside the filter asked for,
    is passed over too: a key in 2030 would end the walk before the rows listed after it.
    Returns None when no row on the page has a usable key.
    """
    for row in reversed(rows):
        try:
            raw = _raw_key(row, record)
            parsed = _parse_key(raw, f"{record} {raw[1]}")
        except GuardError:
            continue
        if end is None or parsed[0] <= end:
            return raw, parsed
    return None


def _raw_key(row: dict[str, Any], record: str = "ticket") -> tuple[str, int]:
    """Return a row's `(updated_at, id)` as sent, for the next page's keyset condition."""
    updated_at = row.get("updated_at")
    ticket_id = row.get("id")
    if (
        not isinstance(updated_at, str)
        or not isinstance(ticket_id, int)
        or isinstance(ticket_id, bool)
    ):
        raise GuardError(
            f"Heartland returned a {record} page whose last record has no usable updated_at "
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
            "offset; the walk cannot order it"
        )
    return moment, ticket_id


def _location_path(location: str, base_url: str) -> str:
    """Turn a `Location` header (a URL or an absolute path) into a path under `base_url`."""
    path = urlsplit(location).path
    base_path = urlsplit(base_url).path.rstrip("/")
    if base_path and path.startswith(base_path + "/"):
        return path[len(base_path) :]
    if not base_path:
        return path
    raise GuardError(
        f"Heartland responded to a create with Location {path!r}, which is not under the API "
        f"path {base_path!r}; the created record cannot be read back"
    )


def _envelope_problem(body: Any) -> str | None:
    """Describe what is wrong with a list envelope, or return None when it is usable."""
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, list):
        return "no results list"
    if not all(isinstance(item, dict) for item in results):
        return "results list holds something other than objects"
    return None


def _keyset_page_problem(body: Any) -> str | None:
    """Describe what is wrong with a keyset page, or return None when it is usable.

    Every keyset request is for page 1 of the records after the previous page, so `total`
    counts the records still to come. An empty page whose `total` is above 0 contradicts
    itself. It is retried like a 5xx, because ending the walk there would skip those records.
    """
    problem = _envelope_problem(body)
    if problem is not None:
        return problem
    total = body.get("total")
    if not body["results"] and isinstance(total, int) and not isinstance(total, bool) and total > 0:
        return f"an empty results list, but total is {total}"
    return None


def _lists_more(body: dict[str, Any], count: int) -> bool:
    """Tell whether a keyset page's `total` counts more records than the page's `count`.

    Each keyset request is for page 1 of the records still to come, so such a page is short
    because the server sends fewer records per page than asked for, not because the walk
    reached its end. Heartland documents no maximum page size.
    """
    total = body.get("total")
    return isinstance(total, int) and not isinstance(total, bool) and total > count


def _object_problem(body: Any) -> str | None:
    return None if isinstance(body, dict) else "not a JSON object"


def _record_problem(body: Any) -> str | None:
    """Describe a single-record response that is not a record, or return None.

    A list envelope (`results` and no `id`) is a wrong response rather than a record with bad
    data, so it is retried like a 5xx. Taken as the record, it would make the ticket's
    customer unusable and could take back points already earned. A record whose fields are
    odd, its `id` included, is passed on to be parsed and reported as usual.
    """
    if not isinstance(body, dict):
        return "not a JSON object"
    if "results" in body and "id" not in body:
        return "a list envelope instead of one record"
    return None
