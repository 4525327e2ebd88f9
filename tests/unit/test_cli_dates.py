"""Dates and timestamps on the command line: one date form, timestamps with an offset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click
import pytest

from yotposync.cli import parse_timestamp, parse_when


def test_date_is_midnight_utc() -> None:
    assert parse_when("2026-12-01", "--since") == datetime(2026, 12, 1, tzinfo=UTC)


def test_timestamp_keeps_its_offset() -> None:
    parsed = parse_timestamp("2026-12-01T09:00:00-05:00", "--since")
    assert parsed.utcoffset() == timedelta(hours=-5)
    assert parse_when("2026-12-01T09:00:00Z", "--since") == datetime(2026, 12, 1, 9, tzinfo=UTC)


@pytest.mark.parametrize("value", ["20261201", "2026-W49", "2026-12", "12/01/2026", "2026-13-01"])
def test_other_date_forms_rejected(value: str) -> None:
    with pytest.raises(click.BadParameter, match="is not a date: use YYYY-MM-DD"):
        parse_when(value, "--since")


def test_timestamp_without_offset_rejected() -> None:
    with pytest.raises(click.BadParameter, match="has no UTC offset"):
        parse_when("2026-12-01T09:00:00", "--since")
