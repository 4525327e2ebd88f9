from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from yotposync.errors import InvalidRecordError
from yotposync.timeutil import format_utc, local_date, optional_timestamp, parse_timestamp


def parse(value: object) -> datetime:
    return parse_timestamp(value, record="ticket 5001", field="updated_at")


EXPECTED = datetime(2025, 4, 2, 15, 7, 43, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    [
        "2025-04-02T15:07:43+00:00",
        "2025-04-02T15:07:43Z",
        "2025-04-02T15:07:43z",
        "2025-04-02 15:07:43+00:00",
        "2025-04-02T15:07:43",
        "2025-04-02T10:07:43-05:00",
        "2025-04-02T10:07:43-0500",
        "2025-04-02T20:37:43+05:30",
        "2025-04-02T17:07:43+02",
        " 2025-04-02T15:07:43Z ",
    ],
)
def test_parse_timestamp_variants(value: str) -> None:
    assert parse(value) == EXPECTED


def test_parse_timestamp_is_utc() -> None:
    assert parse("2025-04-02T10:07:43-05:00").tzinfo is UTC


def test_parse_timestamp_milliseconds() -> None:
    assert parse("2025-04-02T15:07:43.000Z") == EXPECTED


def test_parse_timestamp_microseconds() -> None:
    assert parse("2025-04-02T15:07:43.123456Z").microsecond == 123456


def test_parse_timestamp_short_fraction() -> None:
    assert parse("2025-04-02T15:07:43.5+00:00").microsecond == 500000


def test_parse_timestamp_truncates_nanoseconds() -> None:
    assert parse("2025-04-02T15:07:43.123456789Z").microsecond == 123456


def test_parse_timestamp_without_seconds() -> None:
    assert parse("2025-04-02T15:07Z") == EXPECTED.replace(second=0)


def test_parse_timestamp_crosses_date() -> None:
    assert parse("2025-04-01T23:30:00-05:00") == datetime(2025, 4, 2, 4, 30, tzinfo=UTC)


def test_parse_timestamp_aware_datetime() -> None:
    moment = datetime(2025, 4, 2, 10, 7, 43, tzinfo=timezone(timedelta(hours=-5)))
    assert parse(moment) == EXPECTED


def test_parse_timestamp_naive_datetime() -> None:
    assert parse(datetime(2025, 4, 2, 15, 7, 43)) == EXPECTED


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "yesterday",
        "2025-04-02",
        "2025-13-02T15:07:43Z",
        "2025-02-30T15:07:43Z",
        "2025-04-02T25:07:43Z",
        "2025-04-02T15:07:43+24:00",
        "2025-04-02T15:07:43 EST",
        1743606463,
        True,
    ],
)
def test_parse_timestamp_rejects(value: object) -> None:
    with pytest.raises(InvalidRecordError):
        parse(value)


def test_parse_timestamp_error_names_field() -> None:
    with pytest.raises(InvalidRecordError) as caught:
        parse("2025-13-02T15:07:43Z")
    assert caught.value.field == "updated_at"


def test_optional_timestamp_null() -> None:
    assert optional_timestamp(None, record="ticket 5001", field="completed_at") is None


def test_optional_timestamp_value() -> None:
    value = optional_timestamp("2025-04-02T15:07:43Z", record="ticket 5001", field="completed_at")
    assert value == EXPECTED


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-04-02T10:07:43", "2025-04-02"),
        ("2025-04-02T22:07:43+00:00", "2025-04-02"),
        ("2025-04-02T22:07:43-05:00", "2025-04-02"),
        ("2025-04-02T22:07:43.000Z", "2025-04-02"),
        ("2025-04-02", "2025-04-02"),
        (None, None),
        ("", None),
        ("04/02/2025", None),
        ("2025-02-30T10:00:00", None),
        ("2025-04-021T10:00:00", None),
        (20250402, None),
    ],
)
def test_local_date(value: object, expected: str | None) -> None:
    assert local_date(value) == expected


def test_format_utc_from_utc() -> None:
    assert format_utc(EXPECTED) == "2025-04-02T15:07:43+00:00"


def test_format_utc_converts_offset() -> None:
    moment = datetime(2025, 4, 2, 10, 7, 43, tzinfo=timezone(timedelta(hours=-5)))
    assert format_utc(moment) == "2025-04-02T15:07:43+00:00"


def test_format_utc_drops_fraction() -> None:
    assert format_utc(EXPECTED.replace(microsecond=999999)) == "2025-04-02T15:07:43+00:00"


def test_format_utc_rejects_naive() -> None:
    with pytest.raises(ValueError, match="aware"):
        format_utc(datetime(2025, 4, 2, 15, 7, 43))


def test_format_utc_round_trips() -> None:
    assert parse(format_utc(EXPECTED)) == EXPECTED


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)))
def test_heartland_shape_read_like_any_other(moment: datetime) -> None:
    # The `...+00:00` shape takes a shorter path, so its result must match the general one.
    heartland = moment.replace(microsecond=0, tzinfo=UTC).isoformat()
    general = heartland.replace("+00:00", "Z")
    parsed = parse_timestamp(heartland, record="ticket 1", field="updated_at")
    assert parsed == parse_timestamp(general, record="ticket 1", field="updated_at")
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize("value", ["2025-13-02T15:07:43+00:00", "2025-02-30T15:07:43+00:00"])
def test_heartland_shape_with_impossible_date_rejected(value: str) -> None:
    with pytest.raises(InvalidRecordError, match="ISO 8601"):
        parse_timestamp(value, record="ticket 1", field="updated_at")
