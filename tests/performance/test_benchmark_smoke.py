"""The catch-up and deciding benchmarks run end to end at a tiny size, so they cannot rot unnoticed.

It checks only that each figure is produced and consistent, never how fast anything was.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks import deciding
from benchmarks.catch_up import measure_size


def test_catch_up_benchmark_produces_figures(tmp_path: Path) -> None:
    figures = measure_size(120, tmp_path)

    assert figures["tickets"] > 0
    assert figures["pushes"] > 0
    assert figures["requests"] >= figures["pushes"]
    assert figures["daemon_peak_rss_mib"] > 0
    assert figures["daemon_cpu_seconds"] > 0
    assert figures["wire_wall_seconds"] > 0
    assert figures["ratio_to_wire"] > 0


def test_deciding_benchmark_replays_whole_store() -> None:
    figures = deciding.run(120, repeat=2)

    assert figures["tickets"] > 0
    assert figures["pushes"] > 0
    assert figures["replays"] == 2
    assert len(figures["cpu_seconds"]) == 2
    assert all(seconds > 0 for seconds in figures["cpu_seconds"])
    assert figures["cpu_ms_per_ticket"] > 0
