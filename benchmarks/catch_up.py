"""The catch-up benchmark: a whole store caught up, against the wire limit for the same work.

For each store size, a fresh sandbox serves a generated store and `yotposync catch-up` runs
as its own process over the whole history. Then a second fresh sandbox serves the same store
and the wire-limit client (`benchmarks.wire`) replays the same requests. The ratio of the two
wall times is the share of the wire limit the daemon reaches.
"""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    HISTORY_DAYS,
    PYTHON,
    SandboxProcess,
    log_events,
    run_measured,
    write_config,
)

DELIVERY_WORKERS = 4


def since() -> str:
    """Return the start of the catch-up window: two days before the oldest generated ticket."""
    start = datetime.now(UTC) - timedelta(days=HISTORY_DAYS + 2)
    return start.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def measure_size(tickets: int, workdir: Path) -> dict[str, Any]:
    """Catch up a store of `tickets` tickets, then replay it with the wire client."""
    window_start = since()
    ledger = workdir / f"ledger-{tickets}.sqlite3"
    config = workdir / f"yotposync-{tickets}.toml"
    daemon_out = workdir / f"catch-up-{tickets}.out"
    daemon_log = workdir / f"catch-up-{tickets}.log"

    with SandboxProcess(tickets, log_path=workdir / f"sandbox-{tickets}.log") as sandbox:
        write_config(
            config,
            sandbox,
            ledger,
            extra=f"\n[performance]\ndelivery_workers = {DELIVERY_WORKERS}\n",
        )
        sandbox_cpu_before = sandbox.cpu_seconds()
        daemon = run_measured(
            [PYTHON, "-m", "yotposync", "--config", str(config), "catch-up", "--since", since()],
            stdout=daemon_out,
            stderr=daemon_log,
        )
        sandbox_cpu = sandbox.cpu_seconds() - sandbox_cpu_before
        sandbox_rss = sandbox.rss_mib()
    if daemon.exit_code != 0:
        raise RuntimeError(
            f"catch-up of {tickets} tickets exited {daemon.exit_code}; see {daemon_log}"
        )
    phases = _phases(daemon_log)

    wire_out = workdir / f"wire-{tickets}.json"
    with SandboxProcess(tickets) as sandbox:
        wire = run_measured(
            [
                PYTHON,
                "-m",
                "benchmarks.wire",
                "--heartland",
                sandbox.heartland_url,
                "--yotpo",
                sandbox.yotpo_url,
                "--ledger",
                str(ledger),
                "--since",
                window_start,
                "--workers",
                str(DELIVERY_WORKERS),
            ],
            stdout=wire_out,
            stderr=workdir / f"wire-{tickets}.log",
        )
    wire_counts = json.loads(wire_out.read_text())
    if wire.exit_code != 0:
        raise RuntimeError(f"the wire client exited {wire.exit_code}: {wire_counts}")

    requests_made = wire_counts["pages"] + wire_counts["customer_requests"] + wire_counts["pushes"]
    ticket_count = phases["tickets"]
    return {
        "tickets": ticket_count,
        "pushes": phases["confirmed"],
        "requests": requests_made,
        "daemon_wall_seconds": round(daemon.wall_seconds, 3),
        "daemon_cpu_seconds": round(daemon.cpu_seconds, 3),
        "daemon_peak_rss_mib": round(daemon.peak_rss_mib, 1),
        "daemon_transactions_seconds": phases["transactions_seconds"],
        "daemon_delivery_seconds": phases["delivery_seconds"],
        "daemon_transactions_cpu_seconds": phases["transactions_cpu_seconds"],
        "daemon_delivery_cpu_seconds": phases["delivery_cpu_seconds"],
        "cpu_ms_per_ticket": round(1000 * daemon.cpu_seconds / max(1, ticket_count), 3),
        "tickets_per_second": round(ticket_count / daemon.wall_seconds, 1),
        "requests_per_second": round(requests_made / daemon.wall_seconds, 1),
        "sandbox_cpu_seconds": round(sandbox_cpu, 3),
        "sandbox_rss_mib": round(sandbox_rss, 1),
        "wire_wall_seconds": round(wire.wall_seconds, 3),
        "wire_cpu_seconds": round(wire.cpu_seconds, 3),
        "wire_read_seconds": wire_counts["read_seconds"],
        "wire_push_seconds": wire_counts["push_seconds"],
        "wire_requests_per_second": round(requests_made / wire.wall_seconds, 1),
        "ratio_to_wire": round(wire.wall_seconds / daemon.wall_seconds, 3),
    }


def _phases(log: Path) -> dict[str, Any]:
    """Read ticket counts and phase durations from the catch-up's own log lines."""
    found: dict[str, Any] = {
        "tickets": 0,
        "confirmed": 0,
        "transactions_seconds": None,
        "delivery_seconds": None,
        "transactions_cpu_seconds": None,
        "delivery_cpu_seconds": None,
    }
    for event in log_events(log):
        name = event.get("event")
        if name == "transactions_run":
            found["tickets"] = event.get("tickets", 0)
            found["transactions_seconds"] = event.get("seconds")
            found["transactions_cpu_seconds"] = event.get("cpu_seconds")
        elif name == "delivery_run":
            found["confirmed"] = event.get("confirmed", 0)
            found["delivery_seconds"] = event.get("seconds")
            found["delivery_cpu_seconds"] = event.get("cpu_seconds")
    return found


# The memory target compares the largest store with one of this many tickets.
RSS_BASE_TICKETS = 10_000


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the run with the median ratio, with every run's ratio and the highest peak RSS.

    The ratio of one catch-up to one wire-client run varied by up to 0.05 between runs of
    the same code, so repeated runs report their median. The memory figure is the highest
    peak of all runs, so that repeating never hides a peak.
    """
    counts = {(run["tickets"], run["pushes"], run["requests"]) for run in runs}
    if len(counts) > 1:
        raise RuntimeError(
            "runs of one store read and sent different amounts (tickets, pushes, requests): "
            f"{sorted(counts)}; each run must start from an empty ledger"
        )
    ordered = sorted(runs, key=lambda run: run["ratio_to_wire"])
    row = dict(ordered[(len(ordered) - 1) // 2])
    row["ratio_to_wire_runs"] = [run["ratio_to_wire"] for run in runs]
    row["daemon_peak_rss_mib"] = max(run["daemon_peak_rss_mib"] for run in runs)
    return row


def run(sizes: list[int], repeat: int = 1) -> dict[str, Any]:
    """Measure every size `repeat` times, and the memory growth from 10,000 tickets up.

    Each size reports the run with the median ratio (see `median_run`); with an even
    `repeat`, the lower of the two middle runs. Without a 10,000-ticket size, growth is taken
    from the smallest size instead.
    """
    if repeat < 1:
        raise ValueError(f"repeat must be at least 1, got {repeat}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="yotposync-bench-") as folder:
        for size in sizes:
            runs = []
            for attempt in range(1, repeat + 1):
                print(
                    f"catch-up benchmark: {size} tickets, run {attempt} of {repeat} ...", flush=True
                )
                # A run in a folder of its own starts from an empty ledger, as the first one does.
                workdir = Path(folder) / f"{size}-{attempt}"
                workdir.mkdir()
                runs.append(measure_size(size, workdir))
            row = median_run(runs)
            row["store_size"] = size
            rows.append(row)
    base = next((row for row in rows if row["store_size"] == RSS_BASE_TICKETS), rows[0])
    largest = max(rows, key=lambda row: row["store_size"])
    return {
        "sizes": rows,
        "repeat": repeat,
        "rss_growth": round(largest["daemon_peak_rss_mib"] / base["daemon_peak_rss_mib"], 3),
        "rss_growth_between": [base["store_size"], largest["store_size"]],
        "min_ratio_to_wire": min(row["ratio_to_wire"] for row in rows),
        "max_cpu_ms_per_ticket": max(row["cpu_ms_per_ticket"] for row in rows),
    }
