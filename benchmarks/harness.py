"""Shared parts of the benchmarks: the sandbox process, configs, measured child processes.

The sandbox and the daemon run as separate processes, so that the CPU time and peak memory
of each are read from the kernel's accounting for that process alone (`wait4`).
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import psutil
import requests

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
# The interpreter that runs the measured processes: the daemon, the sandbox and the wire
# client. `make bench` points it at the project's .venv, which contains what an installation
# of yotposync contains. The benchmark tools live in a venv of their own because matplotlib
# brings numpy, and sqlite-utils imports numpy whenever it can. That costs about 0.15 s of
# CPU at every start, which an installed daemon does not spend.
PYTHON = os.environ.get("BENCH_PYTHON") or sys.executable

TOKEN = "sandbox-heartland-token"
GUID = "sandbox-guid"
API_KEY = "sandbox-api-key"

READY = re.compile(r"SANDBOX READY heartland=(\S+) yotpo=(\S+)")
GO_LIVE = re.compile(r"go-live (\S+)")

# Generated stores spread their tickets over this many days before now; the catch-up window
# starts before the first of them.
HISTORY_DAYS = 365


@dataclass
class ProcessFigures:
    """Cost of one finished child process: wall time, CPU time and peak resident memory."""

    wall_seconds: float
    cpu_seconds: float
    peak_rss_mib: float
    exit_code: int


class SandboxProcess:
    """`yotposync sandbox` in its own process, with a generated store of `tickets` tickets."""

    def __init__(
        self,
        tickets: int,
        *,
        seed: int = 1,
        yotpo_rate_limit: float = 0,
        empty: bool = False,
        log_path: Path | None = None,
    ) -> None:
        self.tickets = tickets
        self.args = [
            PYTHON,
            "-m",
            "yotposync",
            "sandbox",
            "--seed",
            str(seed),
            "--tickets",
            str(tickets),
            "--days",
            str(HISTORY_DAYS),
            # Go-live before the first ticket: every generated sale may earn.
            "--go-live-days",
            str(HISTORY_DAYS + 1),
            "--heartland-port",
            "0",
            "--yotpo-port",
            "0",
            "--yotpo-rate-limit",
            str(yotpo_rate_limit),
        ]
        if empty:
            self.args.append("--empty")
        self.log_path = log_path
        self.process: subprocess.Popen[str] | None = None
        self.heartland_url = ""
        self.yotpo_url = ""
        self.go_live = ""

    def start(self, timeout: float = 600) -> SandboxProcess:
        stderr = self.log_path.open("w") if self.log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(
            self.args, cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True
        )
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        banner: list[str] = []
        for line in self.process.stdout:
            banner.append(line)
            found = GO_LIVE.search(line)
            if found:
                self.go_live = found.group(1)
            ready = READY.search(line)
            if ready:
                self.heartland_url, self.yotpo_url = ready.group(1), ready.group(2)
                return self
            if time.monotonic() > deadline:
                break
        self.stop()
        raise RuntimeError("the sandbox did not start:\n" + "".join(banner))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> SandboxProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def cpu_seconds(self) -> float:
        times = psutil.Process(self.pid).cpu_times()
        return float(times.user + times.system)

    def rss_mib(self) -> float:
        return float(psutil.Process(self.pid).memory_info().rss) / 2**20

    def yotpo_records(self) -> dict[str, Any]:
        response = requests.get(
            self.yotpo_url.replace("/api/v2", "/_sandbox/records"),
            headers={"x-guid": GUID, "x-api-key": API_KEY},
            timeout=60,
        )
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body


def write_config(
    path: Path,
    sandbox: SandboxProcess,
    ledger: Path,
    *,
    yotpo_rate: float = 100_000,
    heartland_rate: float = 100_000,
    extra: str = "",
) -> None:
    """Write a daemon configuration for the sandbox with the generated store's rules.

    The default request rates are high enough never to space requests: the catch-up
    benchmark's sandbox enforces no limit, and the wire-limit client it is compared with has
    none. The rate-limit benchmark passes Yotpo's real 10 per second.
    """
    path.write_text(
        f"""
[heartland]
base_url = "{sandbox.heartland_url}"
token = "{TOKEN}"
requests_per_second = {heartland_rate}

[yotpo]
base_url = "{sandbox.yotpo_url}"
guid = "{GUID}"
api_key = "{API_KEY}"
requests_per_second = {yotpo_rate}

[ledger]
path = "{ledger}"

[sync]
go_live = "{sandbox.go_live}"

[rules]
exclude_customer_public_ids = ["CASH"]
exclude_ticket_custom_fields = [{{ key = "web_order_no" }}]
exclude_customer_custom_fields = [{{ key = "staff", equals = "yes" }}]

[logging]
format = "json"
level = "info"
{extra}
"""
    )


def clean_environment() -> dict[str, str]:
    """Return the environment for child processes, without the caller's YOTPOSYNC_ overrides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("YOTPOSYNC_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_measured(
    args: Sequence[str], *, stdout: Path, stderr: Path, timeout: float = 7200
) -> ProcessFigures:
    """Run a child process to its end; return its wall time and its own CPU and peak RSS.

    Linux reports a child's peak RSS (`ru_maxrss`) as at least the RSS of the process that
    started it. A peak no larger than this harness's own RSS is therefore the harness's
    figure, not the child's, and a warning on stderr says so.
    """
    harness_rss_mib = psutil.Process().memory_info().rss / 2**20
    started = time.monotonic()
    with stdout.open("w") as out, stderr.open("w") as err:
        process = subprocess.Popen(args, cwd=ROOT, stdout=out, stderr=err, env=clean_environment())
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid == process.pid:
                break
            if time.monotonic() > deadline:
                process.kill()
                pid, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.02)
    wall = time.monotonic() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    # Linux reports ru_maxrss in KiB.
    peak_rss_mib = usage.ru_maxrss / 1024
    if peak_rss_mib <= harness_rss_mib + 1:
        print(
            f"warning: the peak RSS of {args[0]} ({peak_rss_mib:.1f} MiB) is not above the "
            f"benchmark harness's own ({harness_rss_mib:.1f} MiB), so it measures the harness",
            file=sys.stderr,
        )
    return ProcessFigures(
        wall_seconds=wall,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        peak_rss_mib=peak_rss_mib,
        exit_code=process.returncode,
    )


def log_events(path: Path) -> Iterator[dict[str, Any]]:
    """Read the JSON log lines of a daemon run, skipping anything else."""
    with path.open() as lines:
        for line in lines:
            if not line.startswith("{"):
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(event, dict):
                yield event


@dataclass
class Result:
    """One benchmark's figures, written as JSON to `benchmarks/results/`."""

    name: str
    figures: dict[str, Any]
    targets: dict[str, Any] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)
    started_at: str = ""

    def save(self, directory: Path = RESULTS) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        stamp = self.started_at.replace(":", "").replace("-", "")[:15]
        path = directory / f"{self.name}-{stamp}.json"
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")
        latest = directory / f"{self.name}-latest.json"
        latest.write_text(path.read_text())
        return path


def machine() -> dict[str, Any]:
    """Describe the machine the figures were taken on."""
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "measured_python": PYTHON,
        "numpy_importable_by_daemon": _importable(PYTHON, "numpy"),
    }


def _importable(python: str, module: str) -> bool:
    """Return whether `python` can import `module`."""
    done = subprocess.run(
        [python, "-c", f"import {module}"], capture_output=True, timeout=120, check=False
    )
    return done.returncode == 0


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def print_table(title: str, rows: Sequence[tuple[str, Any]]) -> None:
    """Print figures as aligned `name: value` lines under a title."""
    print(f"\n{title}")
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        print(f"  {name:<{width}}  {shown}")
