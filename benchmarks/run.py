"""Run the benchmarks, print their figures and write them to `benchmarks/results/`.

    python -m benchmarks.run            # 1k to 100k tickets, three catch-ups each (about 25 min)
    python -m benchmarks.run --quick    # small sizes while developing (about 3 min)
    python -m benchmarks.run --only catch-up --sizes 1000,5000 --repeat 5

Every run writes `<name>-<time>.json` and `<name>-latest.json` per benchmark. A full catch-up
run also draws throughput and peak RSS against store size to `docs/performance.png`.
Nothing here asserts a target: the figures are printed next to their targets.
"""

from __future__ import annotations

import argparse
import compileall
import sys
from pathlib import Path
from typing import Any

from benchmarks import catch_up, deciding, idle, latency, rate_limit
from benchmarks.harness import ROOT, Result, machine, now_iso, print_table

FULL = {
    "sizes": [1_000, 3_000, 10_000, 30_000, 100_000],
    "catch_up_repeat": 3,
    "rate_limit_tickets": 2_000,
    "idle_seconds": 120.0,
    "latency_samples": 20,
    "poll_seconds": 10,
    "deciding_tickets": 10_000,
    "deciding_replays": 5,
}
QUICK = {
    "sizes": [1_000, 5_000],
    "catch_up_repeat": 1,
    "rate_limit_tickets": 300,
    "idle_seconds": 20.0,
    "latency_samples": 4,
    "poll_seconds": 5,
    "deciding_tickets": 1_000,
    "deciding_replays": 3,
}
NAMES = ("catch-up", "deciding", "rate-limit", "idle", "latency")
PLOT = ROOT / "docs" / "performance.png"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the yotposync benchmarks.")
    parser.add_argument("--quick", action="store_true", help="small sizes and short runs")
    parser.add_argument("--only", choices=NAMES, action="append", help="run only these")
    parser.add_argument("--sizes", help="catch-up store sizes, comma-separated ticket counts")
    parser.add_argument(
        "--repeat", type=int, help="catch-up runs per size; each size reports the median ratio"
    )
    parser.add_argument("--results", type=Path, help="folder for the JSON results")
    parser.add_argument("--plot", type=Path, help="PNG file for the catch-up plot")
    options = parser.parse_args(argv)
    plan: dict[str, Any] = dict(QUICK if options.quick else FULL)
    if options.sizes:
        plan["sizes"] = [int(size) for size in options.sizes.split(",")]
    if options.repeat is not None:
        plan["catch_up_repeat"] = options.repeat
    chosen = options.only or list(NAMES)
    folder = options.results or ROOT / "benchmarks" / "results"
    plot = options.plot or (None if options.quick else PLOT)

    # pip byte-compiles a package it installs, so an installed daemon starts from .pyc files.
    # An editable checkout under PYTHONDONTWRITEBYTECODE would compile its sources at every
    # start instead; compiling them here first measures the daemon as installed.
    compileall.compile_dir(ROOT / "yotposync", quiet=1)
    catch_up_sizes: list[dict[str, Any]] | None = None
    for name in chosen:
        started = now_iso()
        figures, targets = _run_one(name, plan)
        result = Result(name, figures, targets, machine(), started)
        path = result.save(folder)
        _print(name, figures, targets)
        print(f"  written to {path}")
        if name == "catch-up":
            catch_up_sizes = figures["sizes"]
    # The plot is drawn last: matplotlib adds about 50 MiB to this process, and Linux reports
    # each later child's peak RSS as at least this process's RSS when it started the child.
    if catch_up_sizes is not None and plot is not None:
        from benchmarks.plot import draw_catch_up

        draw_catch_up(catch_up_sizes, plot)
        print(f"catch-up plot written to {plot}")
    return 0


def _run_one(name: str, plan: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    if name == "catch-up":
        figures = catch_up.run(plan["sizes"], plan["catch_up_repeat"])
        targets = {
            "min_ratio_to_wire": ">= 0.9",
            "rss_growth": "<= 1.2 (largest size over 10,000 tickets)",
            "max_cpu_ms_per_ticket": "<= 1.0",
        }
    elif name == "deciding":
        figures = deciding.run(plan["deciding_tickets"], plan["deciding_replays"])
        # No target of its own: this is the part of the CPU target that only the daemon spends.
        targets = {"cpu_ms_per_ticket": "reported (part of the 1 ms per ticket of a catch-up)"}
    elif name == "rate-limit":
        figures = rate_limit.run(plan["rate_limit_tickets"])
        targets = {"share_of_limit": ">= 0.95", "share_429": "<= 0.01", "pushes_lost": "0"}
    elif name == "idle":
        figures = idle.run(plan["idle_seconds"])
        targets = {"cpu_percent": "< 1.0"}
    else:
        figures = latency.run(plan["latency_samples"], plan["poll_seconds"])
        targets = {"p99_seconds": f"<= {plan['poll_seconds'] + 2} (poll interval + 2 s)"}
    return figures, targets


def _print(name: str, figures: dict[str, Any], targets: dict[str, Any]) -> None:
    if name == "catch-up":
        for row in figures["sizes"]:
            print_table(f"catch-up, {row['tickets']} tickets", list(row.items()))
        summary = {k: v for k, v in figures.items() if k != "sizes"}
        print_table("catch-up, across sizes", list(summary.items()))
    else:
        print_table(name, list(figures.items()))
    print_table(f"{name} targets", list(targets.items()))


if __name__ == "__main__":
    sys.exit(main())
