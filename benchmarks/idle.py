"""Idle CPU of `yotposync run` when there is nothing to do.

The sandbox starts empty, the daemon runs with the default schedule, and after a warm-up its
CPU time is read twice, `seconds` apart. The share of one core it used in between is the
figure: the polls, the scheduler and the Python runtime, with no ticket to process.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from benchmarks.harness import PYTHON, ROOT, SandboxProcess, clean_environment, write_config

WARM_UP_SECONDS = 10.0


def run(seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="yotposync-bench-") as folder:
        workdir = Path(folder)
        config = workdir / "yotposync.toml"
        with SandboxProcess(0, empty=True) as sandbox:
            # The empty store prints no go-live date; any past moment will do.
            sandbox.go_live = "2025-01-01T00:00:00+00:00"
            ledger = workdir / "ledger.sqlite3"
            write_config(config, sandbox, ledger, yotpo_rate=10, heartland_rate=5)
            print(f"idle run: {WARM_UP_SECONDS:g} s warm-up, {seconds:g} s measured", flush=True)
            with (workdir / "daemon.log").open("w") as log:
                daemon = subprocess.Popen(
                    [PYTHON, "-m", "yotposync", "--config", str(config), "run"],
                    cwd=ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=clean_environment(),
                )
                try:
                    time.sleep(WARM_UP_SECONDS)
                    process = psutil.Process(daemon.pid)
                    before = process.cpu_times()
                    started = time.monotonic()
                    time.sleep(seconds)
                    after = process.cpu_times()
                    elapsed = time.monotonic() - started
                    rss = process.memory_info().rss / 2**20
                finally:
                    daemon.terminate()
                    daemon.wait(timeout=60)
    cpu = (after.user + after.system) - (before.user + before.system)
    return {
        "measured_seconds": round(elapsed, 1),
        "cpu_seconds": round(cpu, 3),
        "cpu_percent": round(100 * cpu / elapsed, 3),
        "rss_mib": round(rss, 1),
        "exit_code": daemon.returncode,
    }
