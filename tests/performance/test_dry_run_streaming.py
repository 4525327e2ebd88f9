"""`catch-up --dry-run` prints each push as its page is decided, before the summary."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import make_env


def test_dry_run_lists_every_push(tmp_path: Path) -> None:
    for env in make_env(tmp_path, seed=3, tickets=120):
        result = env.cli("catch-up", "--since", env.since(), "--dry-run")
        lines = result.stdout.splitlines()
        summary = next(i for i, line in enumerate(lines) if line.startswith("Would send"))
        announced = int(lines[summary].split()[2])
        listed = [line for line in lines[:summary] if line.startswith("  ")]

        assert announced > 0
        assert len(listed) == announced
        assert all(" hl-" in line for line in listed)
