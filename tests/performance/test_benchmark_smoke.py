"""The catch-up and deciding benchmarks run end to end at a tiny size, so they cannot rot unnoticed.

It checks only that each figure is produced and consistent, never how fast anything was.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import catch_up, deciding
from benchmarks.catch_up import measure_size, median_run


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


SAME_WORK = {"tickets": 982, "pushes": 562, "requests": 582}


def test_median_run_of_three() -> None:
    runs = [
        {
            **SAME_WORK,
            "ratio_to_wire": 0.80,
            "daemon_peak_rss_mib": 58.0,
            "daemon_wall_seconds": 6.4,
        },
        {
            **SAME_WORK,
            "ratio_to_wire": 0.70,
            "daemon_peak_rss_mib": 60.5,
            "daemon_wall_seconds": 7.3,
        },
        {
            **SAME_WORK,
            "ratio_to_wire": 0.90,
            "daemon_peak_rss_mib": 57.0,
            "daemon_wall_seconds": 5.7,
        },
    ]

    row = median_run(runs)

    assert row["ratio_to_wire"] == 0.80
    assert row["daemon_wall_seconds"] == 6.4
    assert row["ratio_to_wire_runs"] == [0.80, 0.70, 0.90]
    assert row["daemon_peak_rss_mib"] == 60.5


def test_median_run_of_two_takes_lower() -> None:
    runs = [
        {**SAME_WORK, "ratio_to_wire": 0.9, "daemon_peak_rss_mib": 58.0},
        {**SAME_WORK, "ratio_to_wire": 0.7, "daemon_peak_rss_mib": 58.0},
    ]

    assert median_run(runs)["ratio_to_wire"] == 0.7


def test_catch_up_repeat_below_one_rejected() -> None:
    with pytest.raises(ValueError, match="repeat must be at least 1"):
        catch_up.run([120], repeat=0)


def test_median_run_rejects_different_work() -> None:
    runs = [
        {**SAME_WORK, "ratio_to_wire": 0.8, "daemon_peak_rss_mib": 58.0},
        {**SAME_WORK, "pushes": 0, "ratio_to_wire": 2.4, "daemon_peak_rss_mib": 58.0},
    ]

    with pytest.raises(RuntimeError, match="different amounts"):
        median_run(runs)


def test_catch_up_repeats_start_empty() -> None:
    figures = catch_up.run([120], repeat=2)

    row = figures["sizes"][0]
    assert figures["repeat"] == 2
    assert len(row["ratio_to_wire_runs"]) == 2
    assert row["pushes"] > 0
