"""Steady-state latency: from a ticket's completion in the sandbox to its order in Yotpo.

`yotposync run` polls an empty sandbox every `poll_seconds`. The benchmark completes one sale
for a customer with an e-mail address at a random moment within each poll interval, then
reads from the Yotpo emulator's record when the order `hl-<ticket id>` arrived. The figure
is the spread of those delays; the target is at most the poll interval plus 2 seconds (p99).
"""

from __future__ import annotations

import random
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from benchmarks.harness import (
    PYTHON,
    ROOT,
    TOKEN,
    SandboxProcess,
    clean_environment,
    write_config,
)

STATION_ID = 301
SETTLE_SECONDS = 3.0


def run(samples: int, poll_seconds: int, seed: int = 5) -> dict[str, Any]:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="yotposync-bench-") as folder:
        workdir = Path(folder)
        config = workdir / "yotposync.toml"
        with SandboxProcess(0, empty=True) as sandbox:
            sandbox.go_live = "2025-01-01T00:00:00+00:00"
            write_config(
                config,
                sandbox,
                workdir / "ledger.sqlite3",
                yotpo_rate=10,
                heartland_rate=5,
                extra=f"\n[schedule]\ntransactions_seconds = {poll_seconds}\n",
            )
            session = requests.Session()
            session.headers["Authorization"] = f"Bearer {TOKEN}"
            customer = _create_customer(session, sandbox.heartland_url)
            print(
                f"latency run: {samples} sales, one per {poll_seconds} s poll interval ...",
                flush=True,
            )
            with (workdir / "daemon.log").open("w") as log:
                daemon = subprocess.Popen(
                    [PYTHON, "-m", "yotposync", "--config", str(config), "run"],
                    cwd=ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=clean_environment(),
                )
                try:
                    time.sleep(SETTLE_SECONDS)
                    completed = {}
                    for _ in range(samples):
                        time.sleep(rng.uniform(0, poll_seconds))
                        ticket_id = _complete_sale(session, sandbox.heartland_url, customer)
                        completed[f"hl-{ticket_id}"] = datetime.now(UTC)
                    time.sleep(poll_seconds + SETTLE_SECONDS)
                    records = sandbox.yotpo_records()
                finally:
                    daemon.terminate()
                    daemon.wait(timeout=60)

    arrived = {
        entry["body"]["order_id"]: datetime.fromisoformat(entry["received_at"])
        for entry in records["orders"]
        if entry["status"] == 200 and not entry["duplicate"]
    }
    delays = sorted(
        (arrived[order_id] - done).total_seconds()
        for order_id, done in completed.items()
        if order_id in arrived
    )
    missing = len(completed) - len(delays)
    return {
        "poll_seconds": poll_seconds,
        "samples": len(completed),
        "orders_missing": missing,
        "p50_seconds": round(statistics.median(delays), 3) if delays else None,
        "p99_seconds": round(_percentile(delays, 0.99), 3) if delays else None,
        "max_seconds": round(delays[-1], 3) if delays else None,
        "target_p99_seconds": poll_seconds + 2,
    }


def _percentile(ordered: list[float], share: float) -> float:
    """Return the nearest-rank percentile of an ascending list."""
    rank = max(1, round(share * len(ordered) + 0.5))
    return ordered[min(rank, len(ordered)) - 1]


def _create_customer(session: requests.Session, base: str) -> int:
    response = session.post(
        f"{base}/customers",
        json={"first_name": "Bench", "last_name": "Mark", "email": "bench@example.com"},
        timeout=10,
    )
    response.raise_for_status()
    return int(response.headers["Location"].rsplit("/", 1)[1])


def _complete_sale(session: requests.Session, base: str, customer_id: int) -> int:
    response = session.post(
        f"{base}/sales/tickets",
        json={
            "station_id": STATION_ID,
            "customer_id": customer_id,
            "status": "complete",
            "item_lines": [{"item_id": 4401, "unit_price": 30, "qty": 1}],
            "payments": [{"amount": 30}],
        },
        timeout=10,
    )
    response.raise_for_status()
    return int(response.headers["Location"].rsplit("/", 1)[1])
