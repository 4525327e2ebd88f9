"""Conversion of Heartland money values to integer cents.

Heartland sends money as JSON numbers: whole amounts as integers (`20`), others as floats
(`158.03`). A float goes through `Decimal(str(x))`, so `19.99` becomes exactly 1999 cents
and no float arithmetic ever touches an amount.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

from yotposync.errors import InvalidRecordError

# Amounts larger than this many dollars are treated as corrupt data, not as sales.
_MAX_WHOLE_DOLLARS = 1_000_000_000
MAX_DOLLARS = Decimal(_MAX_WHOLE_DOLLARS)

_HINT = "expected an amount in dollars as a number or numeric string, such as 19.99"

# A plain decimal number with an optional sign and exponent. Decimal() alone would also
# accept "NaN", "Infinity" and digits separated by underscores.
_NUMERIC_TEXT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")

_CENT = Decimal("0.01")


def to_decimal(value: object, *, record: str, field: str, hint: str = _HINT) -> Decimal:
    """Convert a JSON number or numeric string to a finite Decimal without float arithmetic.

    Raises InvalidRecordError with `hint` for None, booleans, NaN, infinities and
    non-numeric strings.
    """
    # bool is a subclass of int, so it must be rejected before the int branch.
    if value is None or isinstance(value, bool):
        raise InvalidRecordError(record, field, value, hint)
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float | Decimal):
        number = Decimal(str(value))
        if not number.is_finite():
            raise InvalidRecordError(record, field, value, hint)
        return number
    if isinstance(value, str):
        text = value.strip()
        if _NUMERIC_TEXT.fullmatch(text) is None:
            raise InvalidRecordError(record, field, value, hint)
        return Decimal(text)
    raise InvalidRecordError(record, field, value, hint)


def _plain_cents(value: object) -> int | None:
    """Return the cents of an int, or of a float written with at most two decimals, else None.

    These are nearly all of Heartland's amounts (`20`, `158.03`, `-4.5`), and converting them
    needs no Decimal. A float within the limit is multiplied by 100 and rounded. The result is
    its cents exactly when dividing it by 100 gives the same float back, which is true only
    when the float's shortest text (`repr`) has at most two decimals. Anything else (more
    decimals, an exponent, NaN, an amount beyond MAX_DOLLARS) returns None, and the caller
    takes the Decimal path, which rounds or raises.
    """
    # An exact type check, because True and False are ints too and must be rejected.
    if type(value) is int:
        return value * 100 if -_MAX_WHOLE_DOLLARS <= value <= _MAX_WHOLE_DOLLARS else None
    if type(value) is not float:
        return None
    # The bounds also leave out NaN and the infinities, which compare false.
    if not -_MAX_WHOLE_DOLLARS <= value <= _MAX_WHOLE_DOLLARS:
        return None
    cents = round(value * 100)
    return cents if cents / 100 == value else None


def to_cents(value: object, *, record: str, field: str) -> int:
    """Convert a dollar amount to integer cents, rounding half a cent away from zero.

    Accepts ints, floats, Decimals and numeric strings. Raises InvalidRecordError for None,
    booleans, NaN, infinities, other strings and amounts above MAX_DOLLARS in either sign.
    """
    plain = _plain_cents(value)
    if plain is not None:
        return plain
    amount = to_decimal(value, record=record, field=field)
    # copy_abs() and the comparison ignore the decimal context, so a huge exponent such as
    # "1e999999999" is rejected here instead of raising decimal.Overflow.
    if amount.copy_abs() > MAX_DOLLARS:
        raise InvalidRecordError(
            record,
            field,
            value,
            f"amounts beyond {MAX_DOLLARS:,} dollars, positive or negative, are not accepted",
        )
    cents = amount.quantize(_CENT, rounding=ROUND_HALF_UP) * 100
    return int(cents)


def optional_cents(value: object, *, record: str, field: str) -> int | None:
    """Convert like `to_cents`, but return None when the value is null or absent."""
    if value is None:
        return None
    plain = _plain_cents(value)
    if plain is not None:
        return plain
    return to_cents(value, record=record, field=field)


def format_cents(cents: int) -> str:
    """Format integer cents as a dollar amount with two decimals, such as `-27.00`."""
    sign = "-" if cents < 0 else ""
    dollars, rest = divmod(abs(cents), 100)
    return f"{sign}{dollars}.{rest:02d}"


def format_percent(percent: Decimal) -> str:
    """Format a percentage for people without exponent or trailing zeros: `50%`, `12.5%`.

    `Decimal.normalize()`, which the offer parser applies, turns 100 into `1E+2`, and `str()`
    then prints the exponent, so the number is written in fixed-point notation here.
    """
    return f"{percent.normalize():f}%"


def format_stored_cents(value: object) -> str:
    """Format cents read back from the ledger, showing a value edited into another type as is.

    The ledger writes whole cents only, so anything else there was edited by hand. Reading
    commands show it instead of stopping, so that the rest of the report stays readable.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return format_cents(value)
    return f"{value!r} (not whole cents: edited in the ledger)"
