"""Indexes that let a Heartland list request read only the records it can return.

A list request filters, sorts and cuts a page. Done by scanning, a keyset walk over N tickets
costs O(N) per page and O(N^2 / page size) in all. `IndexedRecords` is a snapshot list of one
collection that also carries two indexes:

- record positions by `id`, for filters that name ids (`id` equal to a value or `$in` a list);
- for tickets, the records sorted by `(updated_at, id)`, for filters that bound that key, such
  as the keyset condition of the next page and the window's `updated_at` limits.

`plan_lookup()` reads the filter specs and returns the index that can serve them. The list code
still evaluates the whole filter on the records an index returns, unless the plan covers every
condition of the filter, so an index only ever narrows the work and never changes a result.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from yotposync.sandbox.filters import as_decimal, parse_timestamp

# A key of the ticket order: the `updated_at` timestamp and the id. Bounds use -inf and +inf
# in place of an id, so that (t, -inf) sorts before and (t, +inf) after every key at time t.
OrderKey = tuple[datetime, float]

ID_FIELD = "id"

_K = TypeVar("_K")
_V = TypeVar("_V")


class IndexedRecords(list[dict[str, Any]]):
    """Rendered records of one collection, with lookups by id and, optionally, by sort key.

    It is a plain list of the records for every caller that iterates it. When `order_field`
    is set, the list is sorted by `(order_field, id)` and `keys` contains those keys in the same
    order; otherwise `keys` is None. Callers must not change the list or its records.
    """

    def __init__(
        self,
        records: Iterable[dict[str, Any]],
        order_field: str | None = None,
    ) -> None:
        items = list(records)
        keys = _order_keys(items, order_field) if order_field is not None else None
        if keys is not None:
            pairs = sorted(zip(keys, items, strict=True), key=lambda pair: pair[0])
            items = [record for _, record in pairs]
            keys = [key for key, _ in pairs]
            if not _text_order_matches(items, order_field or ""):
                keys = None
        super().__init__(items)
        self.order_field = order_field if keys is not None else None
        self.keys: list[OrderKey] | None = keys
        self.positions: dict[int, int] = {}
        for position, record in enumerate(items):
            record_id = record.get(ID_FIELD)
            if isinstance(record_id, int) and not isinstance(record_id, bool):
                self.positions[record_id] = position

    def by_ids(self, ids: Iterable[int]) -> list[dict[str, Any]]:
        """Return the records with the given ids, in list order; unknown ids are skipped."""
        found = sorted({self.positions[i] for i in ids if i in self.positions})
        return [self[position] for position in found]

    def key_slice(self, lower: OrderKey | None, upper: OrderKey | None) -> tuple[int, int]:
        """Return the list positions [start, stop) of the records with lower <= key < upper."""
        if self.keys is None:
            raise ValueError("this collection has no sort-key index")
        start = 0 if lower is None else bisect.bisect_left(self.keys, lower)
        stop = len(self.keys) if upper is None else bisect.bisect_left(self.keys, upper)
        return start, max(start, stop)


@dataclass(frozen=True)
class LookupPlan:
    """What an index can do for one filter.

    `ids` is the set of ids a matching record must have (None when the filter does not limit
    ids). `lower` and `upper` bound the `(field, id)` key as lower <= key < upper (None when
    unbounded). `covers_filter` is True when these limits are the whole filter, so the records
    they select need no further test.
    """

    ids: frozenset[int] | None
    lower: OrderKey | None
    upper: OrderKey | None
    covers_filter: bool

    @property
    def bounded(self) -> bool:
        return self.lower is not None or self.upper is not None


def plan_lookup(specs: Iterable[Any], order_field: str | None) -> LookupPlan:
    """Read the conditions that every match must meet from filter specs already validated.

    Conditions other than those an index understands are left to the full filter, and make
    `covers_filter` False.
    """
    ids: set[int] | None = None
    lower: OrderKey | None = None
    upper: OrderKey | None = None
    covered = True
    for name, condition in _conjuncts(specs):
        if name == ID_FIELD:
            found = _id_values(condition)
            if found is None:
                covered = False
                continue
            ids = found if ids is None else ids & found
            continue
        bounds = None
        if order_field is not None:
            if name == order_field:
                bounds = _field_bounds(condition)
            elif name == "$or":
                bounds = _keyset_bounds(condition, order_field)
        if bounds is None:
            covered = False
            continue
        low, high = bounds
        if low is not None and (lower is None or low > lower):
            lower = low
        if high is not None and (upper is None or high < upper):
            upper = high
    return LookupPlan(
        ids=None if ids is None else frozenset(ids),
        lower=lower,
        upper=upper,
        covers_filter=covered and ids is None,
    )


def _conjuncts(specs: Iterable[Any]) -> list[tuple[str, Any]]:
    """Flatten specs into `(field or operator, condition)` pairs that must all hold."""
    pairs: list[tuple[str, Any]] = []
    pending = list(specs)
    while pending:
        node = pending.pop()
        if isinstance(node, list):
            pending.extend(node)
        elif isinstance(node, dict):
            for key, value in node.items():
                if key == "$and" and isinstance(value, list):
                    pending.extend(value)
                else:
                    pairs.append((key, value))
    return pairs


def _id_values(condition: Any) -> set[int] | None:
    """Return the ids an `id` condition allows, or None when it is not an equality or `$in`."""
    if isinstance(condition, dict):
        if set(condition) == {"$eq"}:
            options = [condition["$eq"]]
        elif set(condition) == {"$in"} and isinstance(condition["$in"], list):
            options = list(condition["$in"])
        else:
            return None
    elif isinstance(condition, list):
        return None
    else:
        options = [condition]
    ids: set[int] = set()
    for option in options:
        number = as_decimal(option)
        # A value that is not a whole number can equal no id, so it adds none.
        if number is not None and number == number.to_integral_value():
            ids.add(int(number))
    return ids


def _field_bounds(condition: Any) -> tuple[OrderKey | None, OrderKey | None] | None:
    """Return the key bounds of a condition on the ordered timestamp field, or None."""
    operations = condition if isinstance(condition, dict) else {"$eq": condition}
    lower: OrderKey | None = None
    upper: OrderKey | None = None
    for operator, operand in operations.items():
        moment = parse_timestamp(operand) if isinstance(operand, str) else None
        if moment is None:
            return None
        if operator == "$gte":
            low: OrderKey | None = (moment, -math.inf)
            high: OrderKey | None = None
        elif operator == "$gt":
            low, high = (moment, math.inf), None
        elif operator == "$lte":
            low, high = None, (moment, math.inf)
        elif operator == "$lt":
            low, high = None, (moment, -math.inf)
        elif operator == "$eq":
            low, high = (moment, -math.inf), (moment, math.inf)
        else:
            return None
        if low is not None and (lower is None or low > lower):
            lower = low
        if high is not None and (upper is None or high < upper):
            upper = high
    return lower, upper


def _keyset_bounds(
    condition: Any, order_field: str
) -> tuple[OrderKey | None, OrderKey | None] | None:
    """Recognise the keyset condition `field > t OR (field = t AND id > n)` as key > (t, n).

    `$gte` on the id is read as key >= (t, n). Any other `$or` returns None.
    """
    if not isinstance(condition, list) or len(condition) != 2:
        return None
    for later, tie in (condition, condition[::-1]):
        if not (isinstance(later, dict) and isinstance(tie, dict)):
            return None
        if set(later) != {order_field} or set(tie) != {order_field, ID_FIELD}:
            continue
        after = later[order_field]
        if not isinstance(after, dict) or set(after) != {"$gt"}:
            continue
        moment_text = after["$gt"]
        same = tie[order_field]
        if isinstance(same, dict):
            if set(same) != {"$eq"}:
                continue
            same = same["$eq"]
        if same != moment_text or not isinstance(moment_text, str):
            continue
        moment = parse_timestamp(moment_text)
        id_condition = tie[ID_FIELD]
        if moment is None or not isinstance(id_condition, dict) or len(id_condition) != 1:
            continue
        ((operator, operand),) = id_condition.items()
        number = as_decimal(operand)
        if number is None or operator not in ("$gt", "$gte"):
            continue
        return (moment, _id_bound(number, inclusive=operator == "$gte")), None
    return None


def _id_bound(number: Decimal, *, inclusive: bool) -> float:
    """Return the smallest id allowed by `id > number` or `id >= number`, as a sort bound."""
    whole = math.floor(number)
    if inclusive:
        return float(whole if number == whole else whole + 1)
    return float(whole + 1)


def _order_keys(records: list[dict[str, Any]], field: str) -> list[OrderKey] | None:
    """Return each record's `(field, id)` key, or None when a record has no usable one."""
    keys: list[OrderKey] = []
    for record in records:
        value = record.get(field)
        record_id = record.get(ID_FIELD)
        moment = parse_timestamp(value) if isinstance(value, str) else None
        if moment is None or not isinstance(record_id, int) or isinstance(record_id, bool):
            return None
        keys.append((moment, record_id))
    return keys


def _text_order_matches(records: list[dict[str, Any]], field: str) -> bool:
    """Tell whether the timestamp order is also the text order a sort by `field` uses.

    It is for timestamps written alike (Heartland's `YYYY-MM-DDTHH:MM:SS+00:00`); a record
    whose text sorts otherwise turns the ordered index off.
    """
    previous: str | None = None
    for record in records:
        text = record[field]
        if previous is not None and text < previous:
            return False
        previous = text
    return True


class ChangeCountingDict(dict[_K, _V]):
    """A dict that counts the writes and removals made to it.

    A cached snapshot stores the counts it was built at and is rebuilt once they move. Only
    the methods the sandbox state uses to change its dicts are counted.
    """

    def __init__(self, items: Iterable[tuple[_K, _V]] = ()) -> None:
        super().__init__(items)
        self.writes = 0
        self.removals = 0

    def __setitem__(self, key: _K, value: _V) -> None:
        self.writes += 1
        super().__setitem__(key, value)

    def __delitem__(self, key: _K) -> None:
        self.removals += 1
        super().__delitem__(key)

    def pop(self, key: _K, *default: Any) -> Any:
        self.removals += 1
        return super().pop(key, *default)

    def clear(self) -> None:
        self.removals += 1
        super().clear()

    def update(self, *args: Any, **kwargs: Any) -> None:
        self.writes += 1
        super().update(*args, **kwargs)

    def setdefault(self, key: _K, default: Any = None) -> Any:
        self.writes += 1
        return super().setdefault(key, default)

    def popitem(self) -> tuple[_K, _V]:
        self.removals += 1
        return super().popitem()
