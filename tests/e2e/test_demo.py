"""`yotposync demo` as a user runs it: the real process, its own sandbox on loopback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def demo(*options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "yotposync", "demo", "--tickets", "60", *options],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_demo_balances_match_quietly() -> None:
    result = demo()

    assert result.returncode == 0, result.stderr
    assert "Yotpo balances match the expected figures" in result.stdout
    # Its scratch ledger is new by design, so the warning for a new ledger stays out.
    assert result.stderr == ""


def test_given_demo_ledger_warned_new(tmp_path: Path) -> None:
    result = demo("--ledger", str(tmp_path / "demo.sqlite3"))

    assert result.returncode == 0, result.stderr
    assert "ledger_created" in result.stderr
