"""Heartland collection listing: paging, sorting, `_only[]`, `_include[]` and the envelope.

Records are rendered dicts. Sorting is stable and ends with `id` ascending, so pages never
overlap or skip when sort values tie. When the records come as `IndexedRecords`, a filter on
ids or on the index's `(updated_at, id)` key is served from the index instead of a scan.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from werkzeug.datastructures import MultiDict

from yotposync.sandbox.filters import (
    FieldSet,
    Predicate,
    collect_filter_specs,
    compile_filter,
    invalid_request,
)
from yotposync.sandbox.indexes import IndexedRecords, plan_lookup
from yotposync.sandbox.policies import DEFAULT_PER_PAGE, MAX_PER_PAGE


@dataclass(frozen=True)
class SortKey:
    """One `sort` entry: a field name (or `custom@key`) and its direction."""

    field: str
    descending: bool


@dataclass(frozen=True)
class ListQuery:
    """The parsed list parameters of one request."""

    matches: Predicate
    sort: tuple[SortKey, ...]
    page: int
    per_page: int | None  # None means `per_page=all`
    only: frozenset[str] | None
    include: frozenset[str]
    specs: tuple[Any, ...] = ()  # the filter as parsed, before compiling, for index lookups


def parse_list_query(
    args: MultiDict[str, str], fields: FieldSet, includes: frozenset[str]
) -> ListQuery:
    """Parse list parameters; raise a 400 RequestError naming the first bad one."""
    params = list(args.items(multi=True))
    specs = collect_filter_specs(params)
    matches = compile_filter(specs, fields)
    sort = tuple(_parse_sort(value, fields) for value in _values(args, "sort"))
    include = frozenset(_values(args, "_include"))
    unknown = sorted(include - includes)
    if unknown:
        raise invalid_request(
            f"unknown _include value {unknown[0]!r}; allowed: {', '.join(sorted(includes))}",
            {"_include": "unknown relation"},
        )
    only_values = _values(args, "_only")
    only = frozenset(only_values) if only_values else None
    return ListQuery(
        matches=matches,
        sort=sort,
        page=_parse_page(args.get("page")),
        per_page=_parse_per_page(args.get("per_page")),
        only=only,
        include=include,
        specs=tuple(specs),
    )


def _values(args: MultiDict[str, str], name: str) -> list[str]:
    return args.getlist(f"{name}[]") + args.getlist(name)


def _parse_sort(value: str, fields: FieldSet) -> SortKey:
    name, _, direction = value.partition(",")
    name = name.strip()
    direction = direction.strip().lower() or "asc"
    if direction not in ("asc", "desc"):
        raise invalid_request(
            f"sort direction {direction!r} in {value!r} must be asc or desc",
            {"sort": "invalid direction"},
        )
    fields.resolver(name)
    return SortKey(field=name, descending=direction == "desc")


def _parse_page(raw: str | None) -> int:
    if raw is None:
        return 1
    try:
        page = int(raw)
    except ValueError:
        page = 0
    if page < 1:
        raise invalid_request(f"page must be a whole number from 1, not {raw!r}", {"page": raw})
    return page


def _parse_per_page(raw: str | None) -> int | None:
    if raw is None:
        return DEFAULT_PER_PAGE
    if raw == "all":
        return None
    try:
        per_page = int(raw)
    except ValueError:
        per_page = 0
    if not 1 <= per_page <= MAX_PER_PAGE:
        raise invalid_request(
            f"per_page must be 'all' or a whole number from 1 to {MAX_PER_PAGE}, not {raw!r}",
            {"per_page": raw},
        )
    return per_page


def sort_value(value: Any) -> tuple[int, Any]:
    """Key that orders nulls first, then booleans and numbers, then text."""
    if value is None:
        return (0, 0)
    if isinstance(value, bool | int | float):
        return (1, Decimal(str(int(value) if isinstance(value, bool) else value)))
    return (2, str(value))


def sorted_records(
    records: Iterable[Mapping[str, Any]], sort: Sequence[SortKey], fields: FieldSet
) -> list[Mapping[str, Any]]:
    """Sort by the requested keys, ties broken by `id` ascending."""
    ordered = sorted(records, key=lambda record: sort_value(record.get("id")))
    for key in reversed(sort):
        read = fields.resolver(key.field)

        def by_field(
            record: Mapping[str, Any], read: Callable[[Mapping[str, Any]], Any] = read
        ) -> tuple[int, Any]:
            return sort_value(read(record))

        ordered.sort(key=by_field, reverse=key.descending)
    return ordered


def page_envelope(
    records: Iterable[Mapping[str, Any]],
    query: ListQuery,
    fields: FieldSet,
    shape: Callable[[Mapping[str, Any], ListQuery], dict[str, Any]],
) -> dict[str, Any]:
    """Filter, sort and cut one page, returning `{"results", "total", "pages"}`.

    `shape(record, query)` turns each full record into the dict the client receives.
    """
    selected = _select_indexed(records, query, fields)
    if selected is None:
        matching = [record for record in records if query.matches(record)]
        ordered: Sequence[Mapping[str, Any]] = sorted_records(matching, query.sort, fields)
        selected = _cut_page(ordered, query), len(ordered)
    page_records, total = selected
    return {
        "results": [shape(record, query) for record in page_records],
        "total": total,
        "pages": _page_count(total, query.per_page),
    }


def _page_count(total: int, per_page: int | None) -> int:
    """Return the number of pages, rounded up; `per_page=all` makes one page unless empty."""
    if per_page is None:
        return 1 if total else 0
    return -(-total // per_page)


def _cut_page(ordered: Sequence[Mapping[str, Any]], query: ListQuery) -> list[Mapping[str, Any]]:
    if query.per_page is None:
        return list(ordered) if query.page == 1 else []
    start = (query.page - 1) * query.per_page
    return list(ordered[start : start + query.per_page])


def _select_indexed(
    records: Iterable[Mapping[str, Any]], query: ListQuery, fields: FieldSet
) -> tuple[list[Mapping[str, Any]], int] | None:
    """Return one page and the match count from the records' indexes, or None to scan."""
    if not isinstance(records, IndexedRecords):
        return None
    plan = plan_lookup(query.specs, records.order_field)
    if plan.ids is not None:
        candidates = [record for record in records.by_ids(plan.ids) if query.matches(record)]
        ordered = sorted_records(candidates, query.sort, fields)
        return _cut_page(ordered, query), len(ordered)
    order_field = records.order_field
    if order_field is None or query.sort not in _key_orders(order_field):
        return None
    start, stop = records.key_slice(plan.lower, plan.upper)
    if not plan.covers_filter:
        matching = [records[i] for i in range(start, stop) if query.matches(records[i])]
        return _cut_page(matching, query), len(matching)
    # The bounds are the whole filter: the page is a slice of the index, with no test at all.
    total = stop - start
    if query.per_page is None:
        first, last = (start, stop) if query.page == 1 else (start, start)
    else:
        first = min(stop, start + (query.page - 1) * query.per_page)
        last = min(stop, first + query.per_page)
    return [records[i] for i in range(first, last)], total


def _key_orders(field: str) -> tuple[tuple[SortKey, ...], ...]:
    """The sorts that list records in index order: by `field`, then by `id`, both ascending."""
    by_field = SortKey(field=field, descending=False)
    return ((by_field,), (by_field, SortKey(field="id", descending=False)))


def apply_only(record: Mapping[str, Any], only: frozenset[str] | None) -> dict[str, Any]:
    """Keep only the `_only[]` fields of a record, or all of them when none were requested."""
    if only is None:
        return dict(record)
    return {key: value for key, value in record.items() if key in only}
