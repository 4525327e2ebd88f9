"""Draw the catch-up benchmark: throughput and peak RSS against store size, in one PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt


def draw_catch_up(rows: list[dict[str, Any]], path: Path) -> None:
    """Plot tickets per second (daemon and wire limit) and the daemon's peak RSS."""
    sizes = [row["tickets"] for row in rows]
    daemon_rate = [row["tickets_per_second"] for row in rows]
    wire_rate = [row["tickets"] / row["wire_wall_seconds"] for row in rows]
    rss = [row["daemon_peak_rss_mib"] for row in rows]

    figure, throughput = plt.subplots(figsize=(7, 4))
    throughput.plot(sizes, daemon_rate, "o-", label="catch-up (tickets/s)")
    throughput.plot(sizes, wire_rate, "s--", label="wire limit (tickets/s)")
    throughput.set_xscale("log")
    throughput.set_xlabel("tickets in the store")
    throughput.set_ylabel("tickets per second")
    throughput.set_ylim(bottom=0)
    memory = throughput.twinx()
    memory.plot(sizes, rss, "^:", color="tab:red", label="daemon peak RSS (MiB)")
    memory.set_ylabel("peak RSS (MiB)")
    memory.set_ylim(bottom=0, top=max(rss) * 1.5)
    lines = throughput.get_legend_handles_labels()
    more = memory.get_legend_handles_labels()
    throughput.legend(lines[0] + more[0], lines[1] + more[1], loc="lower left")
    throughput.set_title("yotposync catch-up against the sandbox on loopback")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
