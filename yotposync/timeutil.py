"""Parsing and formatting of API timestamps.

Heartland writes UTC fields with `+00:00` and no fraction, and other sources add `Z`,
milliseconds, microseconds or another offset. Everything parsed here becomes an aware UTC
datetime. Nothing here reads the clock: callers pass the current time in.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone

from yotposync.errors import InvalidRecordError

_HINT = "expected an ISO 8601 timestamp such as 2025-04-02T15:07:43+00:00"

_TIMESTAMP = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})"
    r"[Tt ](?P<hour>\d{2}):(?P<minute>\d{2})"
    r"(?::(?P<second>\d{2})(?:[.,](?P<fraction>\d+))?)?"
    r"\s*(?P<zone>[Zz]|[+-]\d{2}(?::?\d{2})?)?"
)

_LOCAL_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

# Heartland's own shape for UTC fields, which `datetime.fromisoformat` reads directly.
_HEARTLAND_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00", re.ASCII)


def _parse_zone(text: str | None) -> timezone:
    """Return the timezone for a `Z`, `+HH`, `+HHMM` or `+HH:MM` suffix, or UTC without one."""
    if text is None or text in ("Z", "z"):
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours = int(digits[:2])
    minutes = int(digits[2:] or "0")
    # timezone() raises ValueError for offsets of 24 hours or more.
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def parse_timestamp(value: object, *, record: str, field: str) -> datetime:
    """Parse an ISO 8601 timestamp to an aware UTC datetime.

    A value without an offset is taken as UTC. Fractions beyond microseconds are
    truncated. An aware datetime passes through converted to UTC. Raises
    InvalidRecordError for anything else, including a date without a time.
    """
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    if not isinstance(value, str):
        raise InvalidRecordError(record, field, value, _HINT)
    if _HEARTLAND_UTC.fullmatch(value):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass  # month 13 and the like: the general path below names the problem

    match = _TIMESTAMP.fullmatch(value.strip())
    if match is None:
        raise InvalidRecordError(record, field, value, _HINT)

    fraction = (match["fraction"] or "")[:6].ljust(6, "0")
    try:
        zone = _parse_zone(match["zone"])
        parsed = datetime(
            int(match["year"]),
            int(match["month"]),
            int(match["day"]),
            int(match["hour"]),
            int(match["minute"]),
            int(match["second"] or "0"),
            int(fraction),
            tzinfo=zone,
        )
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        # Month 13, hour 25, an offset of 24 hours, or a year 1 time that moves out of
        # range when converted to UTC.
        raise InvalidRecordError(record, field, value, f"{_HINT} ({exc})") from exc


def optional_timestamp(value: object, *, record: str, field: str) -> datetime | None:
    """Parse like `parse_timestamp`, but return None when the value is null or absent."""
    if value is None:
        return None
    return parse_timestamp(value, record=record, field=field)


def local_date(value: object) -> str | None:
    """Return the `YYYY-MM-DD` date of a store-local timestamp, or None when it has none.

    Heartland's `local_*` fields hold the store's wall-clock time, but their offset suffix
    is unreliable (local times are sometimes written with `+00:00`). So only the leading
    date digits count, and the time and suffix are ignored.
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    match = _LOCAL_DATE.match(text)
    if match is None:
        return None
    # A date followed directly by more digits ("2025-04-021") is not a date.
    if len(text) > 10 and text[10].isdigit():
        return None
    try:
        date.fromisoformat(match.group())
    except ValueError:
        return None
    return match.group()


def format_utc(moment: datetime) -> str:
    """Format an aware datetime as `YYYY-MM-DDTHH:MM:SS+00:00` in UTC, dropping the fraction.

    Raises ValueError for a naive datetime, because its zone is unknown.
    """
    if moment.tzinfo is None:
        raise ValueError("format_utc needs an aware datetime, got a naive one")
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()
