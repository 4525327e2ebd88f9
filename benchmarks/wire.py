"""The wire-limit client: the HTTP requests of a catch-up, with nothing else.

It walks the same Heartland ticket pages as the daemon (same filter, sort, includes and page
size, one keep-alive session), requests each page's customers in the same chunks, then sends
the same pushes, whose bodies it reads from the ledger of a daemon run made beforehand, from
`workers` threads, each with its own session. Each customer's pushes go in order from one
thread, as in the daemon, and a thread takes the next customer's pushes as soon as it is
free. It keeps no ledger and decides nothing, so its rate is the most the sandbox and the
wire allow for this work.

Run: python -m benchmarks.wire --heartland URL --yotpo URL --ledger PATH --since ISO
It prints one JSON object with its counts and timings.
"""

from __future__ import annotations

import argparse
import json
import queue
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import requests

from benchmarks.harness import API_KEY, GUID, TOKEN

TICKET_INCLUDES = ("lines", "subtotal", "tax_total")
CUSTOMER_CHUNK = 100
TIMEOUT = (5.0, 30.0)


def walk_pages(
    session: requests.Session, base: str, since: str, until: str, page_size: int
) -> Iterator[list[dict[str, Any]]]:
    """Yield each page of the keyset walk over tickets updated in [since, until]."""
    lower: dict[str, Any] = {"updated_at": {"$gte": since}}
    end = {"updated_at": {"$lte": until}}
    while True:
        response = send(
            session,
            "GET",
            f"{base}/sales/tickets",
            params={
                "sort[]": ["updated_at", "id"],
                "_include[]": list(TICKET_INCLUDES),
                "_filter": json.dumps([lower, end]),
                "page": 1,
                "per_page": page_size,
            },
        )
        response.raise_for_status()
        results: list[dict[str, Any]] = response.json()["results"]
        yield results
        if len(results) < page_size:
            return
        last = results[-1]
        lower = {
            "$or": [
                {"updated_at": {"$gt": last["updated_at"]}},
                {"updated_at": last["updated_at"], "id": {"$gt": last["id"]}},
            ]
        }


def fetch_customers(session: requests.Session, base: str, page: list[dict[str, Any]]) -> int:
    """Request the page's customers in chunks, as the daemon does; return the request count."""
    ids = sorted({t["customer_id"] for t in page if isinstance(t.get("customer_id"), int)})
    requests_made = 0
    for offset in range(0, len(ids), CUSTOMER_CHUNK):
        chunk = ids[offset : offset + CUSTOMER_CHUNK]
        response = send(
            session,
            "GET",
            f"{base}/customers",
            params={
                "_filter": json.dumps({"id": {"$in": chunk}}),
                "page": 1,
                "per_page": len(chunk),
            },
        )
        response.raise_for_status()
        response.json()
        requests_made += 1
    return requests_made


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    params: dict[str, Any] | None = None,
    body: dict[str, Any] | None = None,
) -> requests.Response:
    """Send one request the cheapest way requests offers, as the daemon does.

    A prepared request handed to `Session.send` skips what `Session.request` merges on every
    call (cookies, netrc, proxy variables), which would cost this client more CPU per request
    than the daemon spends.
    """
    prepared = requests.PreparedRequest()
    prepared.prepare(
        method=method, url=url, headers=dict(session.headers), params=params, json=body
    )
    return session.send(prepared, timeout=TIMEOUT, allow_redirects=False, proxies={})


def load_pushes(ledger: str) -> list[tuple[str, str, dict[str, Any]]]:
    """Read `(customer e-mail, kind, body)` of every push in the ledger, in delivery order."""
    conn = sqlite3.connect(ledger)
    try:
        rows = conn.execute("SELECT email, kind, payload FROM pushes ORDER BY seq").fetchall()
    finally:
        conn.close()
    return [(email or "", kind, json.loads(payload)) for email, kind, payload in rows]


def send_pushes(
    base: str, pushes: list[tuple[str, str, dict[str, Any]]], workers: int
) -> tuple[int, int]:
    """Send every push from `workers` threads; return (sent, failed).

    Each customer's pushes form a chain sent in order by one thread. Threads take the next
    chain from a shared queue, oldest first, so none sits idle while chains are left.
    """
    chains: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for email, kind, body in pushes:
        chains.setdefault(email, []).append((kind, body))
    waiting: queue.SimpleQueue[list[tuple[str, dict[str, Any]]]] = queue.SimpleQueue()
    for chain in chains.values():
        waiting.put(chain)
    counts = [0, 0]
    lock = threading.Lock()

    def work() -> None:
        session = requests.Session()
        session.headers.update({"x-guid": GUID, "x-api-key": API_KEY})
        sent = failed = 0
        while True:
            try:
                chain = waiting.get_nowait()
            except queue.Empty:
                break
            for kind, body in chain:
                path = "/orders" if kind == "order" else "/refunds"
                response = send(session, "POST", f"{base}{path}", body=body)
                if response.status_code == 200:
                    sent += 1
                else:
                    failed += 1
        session.close()
        with lock:
            counts[0] += sent
            counts[1] += failed

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return counts[0], counts[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heartland", required=True, help="Heartland API base URL")
    parser.add_argument("--yotpo", required=True, help="Yotpo API base URL")
    parser.add_argument("--ledger", required=True, help="ledger of the daemon run to replay")
    parser.add_argument("--since", required=True, help="window start, as the daemon's")
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--workers", type=int, default=4)
    options = parser.parse_args(argv)

    pushes = load_pushes(options.ledger)
    until = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    started = time.monotonic()
    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {TOKEN}"})
    pages = tickets = customer_requests = 0
    for page in walk_pages(session, options.heartland, options.since, until, options.page_size):
        pages += 1
        tickets += len(page)
        customer_requests += fetch_customers(session, options.heartland, page)
    read_seconds = time.monotonic() - started
    sent, failed = send_pushes(options.yotpo, pushes, options.workers)
    seconds = time.monotonic() - started
    json.dump(
        {
            "pages": pages,
            "tickets": tickets,
            "customer_requests": customer_requests,
            "pushes": sent,
            "push_failures": failed,
            "read_seconds": round(read_seconds, 3),
            "push_seconds": round(seconds - read_seconds, 3),
            "seconds": round(seconds, 3),
        },
        sys.stdout,
    )
    print()
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
