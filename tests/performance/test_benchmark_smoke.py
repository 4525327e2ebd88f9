"""The catch-up benchmark runs end to end at a tiny size, so it cannot rot unnoticed.

It checks only that each figure is produced and consistent, never how fast anything was.
"""

from __future__ import annotations

from pathlib import Path

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
