"""The rate-limit run: a catch-up while the sandbox enforces Yotpo's 10 requests per second.

The daemon runs with its default Yotpo pace (`yotpo.requests_per_second = 10`) and four
delivery workers. The figures come from its own log lines: the delivery phase's duration and
outcome counts, and every `http_retry` it logged for a 429. A ticket counts as lost when a push
the ledger planned never reached Yotpo.
"""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.catch_up import since
from benchmarks.harness import PYTHON, SandboxProcess, log_events, run_measured, write_config

YOTPO_LIMIT = 10.0


def run(tickets: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="yotposync-bench-") as folder:
        workdir = Path(folder)
        ledger = workdir / "ledger.sqlite3"
        config = workdir / "yotposync.toml"
        log = workdir / "catch-up.log"
        with SandboxProcess(tickets, yotpo_rate_limit=YOTPO_LIMIT) as sandbox:
            write_config(
                config,
                sandbox,
                ledger,
                yotpo_rate=YOTPO_LIMIT,
                extra="\n[performance]\ndelivery_workers = 4\n",
            )
            print(f"rate-limit run: {tickets} tickets at {YOTPO_LIMIT:g}/s ...", flush=True)
            command = [PYTHON, "-m", "yotposync", "--config", str(config), "catch-up"]
            figures = run_measured(
                [*command, "--since", since()],
                stdout=workdir / "catch-up.out",
                stderr=log,
            )
            records = sandbox.yotpo_records()
        planned = _planned_ids(ledger)
        events = list(log_events(log))

    delivered: set[str] = set()
    for kind, key in (("orders", "order_id"), ("refunds", "id")):
        for entry in records[kind]:
            if entry["status"] == 200:
                delivered.add(str(entry["body"][key]))
    too_many = 0
    delivery_seconds = None
    confirmed = 0
    for event in events:
        name = event.get("event")
        if _answered_429(event):
            too_many += 1
        elif name == "delivery_run":
            delivery_seconds = event.get("seconds")
            confirmed = event.get("confirmed", 0)
    yotpo_requests = confirmed + too_many
    rate = confirmed / delivery_seconds if delivery_seconds else 0.0
    return {
        "tickets": tickets,
        "exit_code": figures.exit_code,
        "pushes_planned": len(planned),
        "pushes_confirmed": confirmed,
        "pushes_lost": len(planned - delivered),
        "delivery_seconds": delivery_seconds,
        "requests_answered_429": too_many,
        "yotpo_requests": yotpo_requests,
        "share_429": round(too_many / yotpo_requests, 4) if yotpo_requests else 0.0,
        "sustained_per_second": round(rate, 3),
        "share_of_limit": round(rate / YOTPO_LIMIT, 3),
    }


def _planned_ids(ledger: Path) -> set[str]:
    conn = sqlite3.connect(ledger)
    try:
        return {row[0] for row in conn.execute("SELECT push_id FROM pushes")}
    finally:
        conn.close()


def _answered_429(event: dict[str, Any]) -> bool:
    """Tell whether a log line reports a Yotpo 429: a retried call, or a push left to retry."""
    name = event.get("event")
    if name == "http_retry":
        return event.get("service") == "yotpo" and event.get("status") == 429
    return name == "push_retry_scheduled" and "HTTP 429" in str(event.get("error", ""))
