"""Heartland list filters: the four query-string spellings parsed into one evaluator.

Spellings accepted, all combined with AND:

- `_filter=<JSON>`: an object (every key must match) or an array of filters (all must match).
- `_filter[]=<JSON>`, repeated.
- Bracket form parsed as nested parameters: `_filter[type][$eq]=Return`,
  `_filter[source_location_id][$in][]=7`, `_filter[$or][0][id][$gt]=5`.
- Tilde shorthand, the same nesting under `~`: `~[public_id]=X`, `~[created_at][$gte]=...`.

Operators: a plain value (equality), `$eq`, `$neq`, `$gt`, `$gte`, `$lt`, `$lte`, `$in`, and
`$or` / `$and` over arrays of filters. `custom@<key>` addresses a custom field value.

Values from the query string arrive as text, so a comparison converts the filter value to
the record value's type: numbers, `true`/`false`, and `null`. Two values that both read as
ISO dates or timestamps compare as datetimes, so `2025-04-02T15:07:44+00:00` is after
`2025-04-02`. A timestamp or date without an offset counts as UTC.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from yotposync.sandbox.httpkit import RequestError
from yotposync.sandbox.policies import ERROR_INVALID_REQUEST

Predicate = Callable[[Mapping[str, Any]], bool]

CUSTOM_PREFIX = "custom@"

_COMPARISONS = frozenset({"$eq", "$neq", "$gt", "$gte", "$lt", "$lte", "$in"})
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")
_TIMESTAMP = re.compile(
    r"^\d{4}-\d{2}-\d{2}"
    r"([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?)?$"
)


def invalid_request(message: str, details: dict[str, str] | None = None) -> RequestError:
    """Build the 400 error Heartland returns for a bad list parameter."""
    return RequestError(400, ERROR_INVALID_REQUEST, message, details)


@dataclass(frozen=True)
class FieldSet:
    """The names a filter or sort may use on one collection."""

    names: frozenset[str]
    custom_keys: frozenset[str]

    def resolver(self, name: str) -> Callable[[Mapping[str, Any]], Any]:
        """Return a function reading field `name` from a rendered record.

        Raises a 400 RequestError naming the field when the collection has no such field.
        """
        if name.startswith(CUSTOM_PREFIX):
            key = name[len(CUSTOM_PREFIX) :]
            if key not in self.custom_keys:
                raise invalid_request(
                    f"unknown custom field {key!r} in {name!r}", {name: "unknown field"}
                )

            def read_custom(record: Mapping[str, Any]) -> Any:
                custom = record.get("custom") or {}
                return custom.get(key)

            return read_custom
        if name not in self.names:
            raise invalid_request(f"unknown field {name!r}", {name: "unknown field"})

        def read_field(record: Mapping[str, Any]) -> Any:
            return record.get(name)

        return read_field


# Query-string parsing.


def collect_filter_specs(params: Iterable[tuple[str, str]]) -> list[Any]:
    """Gather every filter spelling in the query parameters into a list of JSON-like specs."""
    specs: list[Any] = []
    bracket_root: dict[str, Any] = {}
    tilde_root: dict[str, Any] = {}
    for key, value in params:
        if key in ("_filter", "_filter[]"):
            specs.append(_load_json_filter(key, value))
        elif key.startswith("_filter["):
            _insert_nested(bracket_root, _segments(key, "_filter"), value, key)
        elif key.startswith("~["):
            _insert_nested(tilde_root, _segments(key, "~"), value, key)
    for root in (bracket_root, tilde_root):
        if root:
            specs.append(_lists_from_indexes(root))
    return specs


def _load_json_filter(key: str, value: str) -> Any:
    try:
        spec = json.loads(value)
    except json.JSONDecodeError as exc:
        raise invalid_request(f"{key} is not valid JSON: {exc}", {key: "invalid JSON"}) from exc
    if not isinstance(spec, dict | list):
        raise invalid_request(f"{key} must be a JSON object or array", {key: "not an object"})
    return spec


def _segments(key: str, prefix: str) -> list[str]:
    rest = key[len(prefix) :]
    segments = _SEGMENT.findall(rest)
    if not segments or "".join(f"[{segment}]" for segment in segments) != rest:
        raise invalid_request(f"malformed filter parameter {key!r}", {key: "malformed"})
    return segments


def _insert_nested(root: dict[str, Any], segments: list[str], value: str, key: str) -> None:
    """Store `value` under the bracket path, Rails style: a trailing `[]` appends to a list."""
    if "" in segments[:-1] or segments == [""]:
        raise invalid_request(
            f"{key!r}: '[]' is allowed only at the end; index array members as [0], [1], ...",
            {key: "malformed"},
        )
    node = root
    for segment in segments[:-2] if segments[-1] == "" else segments[:-1]:
        child = node.setdefault(segment, {})
        if not isinstance(child, dict):
            raise invalid_request(f"{key!r} conflicts with another filter parameter")
        node = child
    if segments[-1] == "":
        target = node.setdefault(segments[-2], [])
        if not isinstance(target, list):
            raise invalid_request(f"{key!r} conflicts with another filter parameter")
        target.append(value)
        return
    if isinstance(node.get(segments[-1]), dict | list):
        raise invalid_request(f"{key!r} conflicts with another filter parameter")
    node[segments[-1]] = value


def _lists_from_indexes(node: Any) -> Any:
    """Turn objects whose keys are all array indexes (`{"0": a, "1": b}`) into lists."""
    if isinstance(node, list):
        return [_lists_from_indexes(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _lists_from_indexes(value) for key, value in node.items()}
    if converted and all(key.isdigit() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted


# Compiling specs into a predicate.


def compile_filter(specs: list[Any], fields: FieldSet) -> Predicate:
    """Compile filter specs into one predicate; every spec must match (AND).

    Raises a 400 RequestError for unknown fields or operators and malformed values, even
    when no record would be tested.
    """
    predicates = [_compile_node(spec, fields) for spec in specs]

    def matches_all(record: Mapping[str, Any]) -> bool:
        return all(predicate(record) for predicate in predicates)

    return matches_all


def _compile_node(node: Any, fields: FieldSet) -> Predicate:
    if isinstance(node, list):
        parts = [_compile_node(item, fields) for item in node]
        return lambda record: all(part(record) for part in parts)
    if not isinstance(node, dict):
        raise invalid_request(f"a filter must be a JSON object or array, not {node!r}")
    predicates: list[Predicate] = []
    for key, value in node.items():
        if key in ("$or", "$and"):
            predicates.append(_compile_logical(key, value, fields))
        elif key.startswith("$"):
            raise invalid_request(f"unknown filter operator {key!r}", {key: "unknown operator"})
        else:
            predicates.append(_compile_field(key, value, fields))
    return lambda record: all(predicate(record) for predicate in predicates)


def _compile_logical(operator: str, value: Any, fields: FieldSet) -> Predicate:
    if not isinstance(value, list) or not value:
        raise invalid_request(
            f"{operator} needs a non-empty array of filters", {operator: "not an array"}
        )
    parts = [_compile_node(item, fields) for item in value]
    if operator == "$or":
        return lambda record: any(part(record) for part in parts)
    return lambda record: all(part(record) for part in parts)


def _compile_field(name: str, condition: Any, fields: FieldSet) -> Predicate:
    read = fields.resolver(name)
    if isinstance(condition, dict):
        if not condition:
            raise invalid_request(f"empty condition for field {name!r}", {name: "empty"})
        checks = [_compile_operator(name, op, operand) for op, operand in condition.items()]
        return lambda record: all(check(read(record)) for check in checks)
    if isinstance(condition, list):
        raise invalid_request(
            f"field {name!r}: use {{'$in': [...]}} to match one of several values",
            {name: "unsupported value"},
        )
    return lambda record: compare(read(record), condition) == 0


def _compile_operator(name: str, operator: str, operand: Any) -> Callable[[Any], bool]:
    if operator not in _COMPARISONS:
        raise invalid_request(
            f"unknown filter operator {operator!r} on field {name!r}", {name: "unknown operator"}
        )
    if operator == "$in":
        if not isinstance(operand, list):
            raise invalid_request(f"$in on field {name!r} needs an array", {name: "not an array"})
        options = list(operand)
        return lambda value: any(compare(value, option) == 0 for option in options)
    if isinstance(operand, dict | list):
        raise invalid_request(
            f"{operator} on field {name!r} needs a single value", {name: "unsupported value"}
        )
    if operator == "$eq":
        return lambda value: compare(value, operand) == 0
    if operator == "$neq":
        return lambda value: compare(value, operand) != 0
    tests: dict[str, Callable[[int], bool]] = {
        "$gt": lambda order: order > 0,
        "$gte": lambda order: order >= 0,
        "$lt": lambda order: order < 0,
        "$lte": lambda order: order <= 0,
    }
    test = tests[operator]

    def ordered(value: Any) -> bool:
        order = compare(value, operand)
        return order is not None and test(order)

    return ordered


# Comparing a record value with a filter value.


def compare(record_value: Any, filter_value: Any) -> int | None:
    """Order a record value against a filter value: -1, 0, 1, or None when incomparable."""
    if record_value is None:
        return 0 if filter_value is None or filter_value == "null" else None
    if filter_value is None:
        return None
    if isinstance(record_value, bool):
        flag = _as_bool(filter_value)
        return None if flag is None else _order(int(record_value), int(flag))
    if isinstance(record_value, int | float):
        number = as_decimal(filter_value)
        return None if number is None else _order(Decimal(str(record_value)), number)
    if isinstance(record_value, str):
        return _compare_text(record_value, filter_value)
    return None


def _compare_text(record_value: str, filter_value: Any) -> int | None:
    if isinstance(filter_value, bool):
        return None
    if isinstance(filter_value, int | float):
        number = as_decimal(record_value)
        if number is not None:
            return _order(number, Decimal(str(filter_value)))
        return _order(record_value, str(filter_value))
    if not isinstance(filter_value, str):
        return None
    record_time = parse_timestamp(record_value)
    filter_time = parse_timestamp(filter_value)
    if record_time is not None and filter_time is not None:
        return _order(record_time, filter_time)
    return _order(record_value, filter_value)


@functools.lru_cache(maxsize=65536)
def parse_timestamp(text: str) -> datetime | None:
    """Read an ISO date or timestamp as an aware datetime (UTC when no offset), else None.

    Cached, because every list request compares the same record timestamps again.
    """
    if not _TIMESTAMP.match(text):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def as_decimal(value: Any) -> Decimal | None:
    """Read a number from a JSON or query-string value, or None when it is not a finite one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return Decimal(str(value))
    if isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            return None
        return number if number.is_finite() else None
    return None


def _order(left: Any, right: Any) -> int:
    if left < right:
        return -1
    if left > right:
        return 1
    return 0
