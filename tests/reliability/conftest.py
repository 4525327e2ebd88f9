"""Reliability test fixtures, and the session's figures printed after the test summary."""

from __future__ import annotations

import pytest

from tests.reliability.support import FIGURES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print what the reliability tests tried, for the figures in docs/reliability.md."""
    if not FIGURES:
        return
    terminalreporter.section("reliability figures")
    for name, value in sorted(FIGURES.items()):
        terminalreporter.write_line(f"{name}: {value}")
