from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from yotposync.errors import InvalidRecordError
from yotposync.money import (
    MAX_DOLLARS,
    format_cents,
    format_percent,
    optional_cents,
    to_cents,
    to_decimal,
)


def cents(value: object) -> int:
    return to_cents(value, record="ticket 5001", field="total")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (20, 2000),
        (0, 0),
        (19.99, 1999),
        (158.03, 15803),
        (0.5, 50),
        (-29.16, -2916),
        (4.32, 432),
        ("19.99", 1999),
        (" 54.00 ", 5400),
        ("-27", -2700),
        ("1e2", 10000),
        (Decimal("1.10"), 110),
    ],
)
def test_to_cents_converts_exactly(value: object, expected: int) -> None:
    assert cents(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.005, 1),
        (0.004, 0),
        ("1.005", 101),
        (-0.005, -1),
        ("-1.005", -101),
        ("2.675", 268),
        (2.675, 268),
    ],
)
def test_to_cents_rounds_half_up(value: object, expected: int) -> None:
    assert cents(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        float("nan"),
        float("inf"),
        float("-inf"),
        "NaN",
        "Infinity",
        "abc",
        "",
        "$7.50",
        "1_000",
        "1,5",
        [19.99],
        {"amount": 1},
    ],
)
def test_to_cents_rejects_non_amounts(value: object) -> None:
    with pytest.raises(InvalidRecordError):
        cents(value)


def test_to_cents_rejects_huge_amount() -> None:
    with pytest.raises(InvalidRecordError):
        cents(1_000_000_000.01)


def test_to_cents_rejects_huge_negative_amount() -> None:
    with pytest.raises(InvalidRecordError):
        cents("-1000000000.01")


def test_to_cents_rejects_huge_exponent() -> None:
    with pytest.raises(InvalidRecordError):
        cents("1e999999999")


def test_to_cents_accepts_limit() -> None:
    assert cents(MAX_DOLLARS) == 100_000_000_000


def test_to_cents_tiny_exponent_is_zero() -> None:
    assert cents("1e-999999999") == 0


def test_to_cents_error_names_field() -> None:
    with pytest.raises(InvalidRecordError) as caught:
        cents("abc")
    assert caught.value.record == "ticket 5001"
    assert caught.value.field == "total"
    assert "expected an amount in dollars" in str(caught.value)


def test_optional_cents_null_is_none() -> None:
    assert optional_cents(None, record="ticket 5001", field="subtotal") is None


def test_optional_cents_converts_value() -> None:
    assert optional_cents(54.0, record="ticket 5001", field="subtotal") == 5400


def test_optional_cents_rejects_bad_value() -> None:
    with pytest.raises(InvalidRecordError):
        optional_cents("n/a", record="ticket 5001", field="subtotal")


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, "0.00"), (5, "0.05"), (5400, "54.00"), (-2916, "-29.16"), (-5, "-0.05")],
)
def test_format_cents(value: int, expected: str) -> None:
    assert format_cents(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("1E+2"), "100%"),
        (Decimal("5E+1"), "50%"),
        (Decimal("1E+1"), "10%"),
        (Decimal("12.5"), "12.5%"),
        (Decimal("12.50"), "12.5%"),
        (Decimal("100.0"), "100%"),
        (Decimal("0.5"), "0.5%"),
    ],
)
def test_format_percent_without_exponent(value: Decimal, expected: str) -> None:
    assert format_percent(value) == expected


_numbers = st.one_of(
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
    st.text(max_size=12),
)


@given(_numbers)
def test_to_cents_never_returns_float(value: object) -> None:
    try:
        result = cents(value)
    except InvalidRecordError:
        return
    assert type(result) is int


@given(st.integers(min_value=-100_000_000_000, max_value=100_000_000_000))
def test_to_cents_round_trips_cents(value: int) -> None:
    assert cents(format_cents(value)) == value


@given(
    st.one_of(
        st.integers(min_value=-(10**12), max_value=10**12),
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(min_value=-(10**11), max_value=10**11).map(lambda cents: cents / 100),
        st.decimals(places=2, min_value=-(10**10), max_value=10**10).map(float),
    )
)
def test_to_cents_shortcut_agrees_with_decimal_conversion(value: int | float) -> None:
    # to_cents converts ints and two-decimal floats without Decimal. Its result, or its
    # error, must be the one the Decimal conversion gives.
    try:
        amount = to_decimal(value, record="ticket 1", field="total")
        if amount.copy_abs() > MAX_DOLLARS:
            raise InvalidRecordError("ticket 1", "total", value, "too large")
        expected: int | None = int(amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) * 100)
    except InvalidRecordError:
        expected = None
    try:
        got: int | None = to_cents(value, record="ticket 1", field="total")
    except InvalidRecordError:
        got = None
    assert got == expected
