"""Turn pydantic validation errors on the settings into the one-line problems of a ConfigError.

Each line names the key, the environment variable that set it (if one did), the value (never a
secret's) and what is allowed.
"""

from __future__ import annotations

import difflib
import json
import re
import typing
from collections.abc import Mapping
from datetime import date, datetime, time
from typing import Any, get_args

import annotated_types
from pydantic import BaseModel
from pydantic_core import ErrorDetails

from yotposync.logs import hide_url_secrets

# Keyed by the location without array indexes, e.g. "rules.exclude_ticket_custom_fields.key".
_MISSING_HINTS = {
    "heartland.base_url": (
        "set it to your account's API address, e.g. https://mystore.retail.heartland.us/api"
    ),
    "rules.exclude_ticket_custom_fields.key": 'name the custom field, e.g. {key = "web_order_no"}',
    "rules.exclude_customer_custom_fields.key": 'name the custom field, e.g. {key = "staff"}',
}

_TYPE_REASONS = {
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be a quoted string",
    "string_too_short": "must not be empty",
    "tuple_type": "must be an array, e.g. [1, 2]",
    "list_type": "must be an array, e.g. [1, 2]",
    "model_type": "must be a table",
    "model_attributes_type": "must be a table",
    "dict_type": "must be a table",
    "path_type": "must be a file path",
}

_OUT_OF_RANGE_NUMBERS = {"int_parsing_size": "a whole number", "finite_number": "a finite number"}

_BOUND_ERRORS = frozenset({"greater_than", "greater_than_equal", "less_than", "less_than_equal"})


def problem_line(
    error: ErrorDetails,
    environment_names: frozenset[str],
    *,
    root: type[BaseModel],
    secret_locations: frozenset[tuple[str, str]],
    environment_prefix: str,
    host_only_locations: frozenset[tuple[str, str]] = frozenset(),
) -> str:
    """Convert one pydantic error to a line naming the key, its value and what is allowed.

    `root` is the settings model that validated the data. The value at each `(section, key)`
    in `secret_locations` is never shown. The value at each one in `host_only_locations` is a
    URL whose path is a credential, and only its scheme and host are shown.
    `environment_names` are the lower-case names of the variables set, and the line names the
    one that set the key, either `<environment_prefix>section__key` or
    `<environment_prefix>section`.
    """
    loc = error["loc"]
    key = _format_loc(loc)
    source = _environment_source(loc, environment_names, environment_prefix)

    if error["type"] == "extra_forbidden":
        return _unknown_key_line(loc, source, root)
    if error["type"] == "missing":
        field_path = ".".join(str(part) for part in loc if isinstance(part, str))
        hint = _MISSING_HINTS.get(field_path, "add it")
        return f"{key} is missing{source}: {hint}"

    reason = _reason(error, root)
    if len(loc) < 2 or _is_secret(loc, secret_locations):
        return f"{key}{source}: {reason}"
    value = error["input"]
    if loc[:2] in host_only_locations and isinstance(value, str):
        value = _scheme_and_host(value)
    return f"{key} = {format_value(value)}{source}: {reason}"


def _reason(error: ErrorDetails, root: type[BaseModel]) -> str:
    kind = error["type"]
    context = error.get("ctx") or {}
    if kind == "value_error" and "error" in context:
        return str(context["error"])
    if kind in _BOUND_ERRORS:
        return _bounds_reason(error["loc"], context, root)
    if kind in _OUT_OF_RANGE_NUMBERS:
        # Too large to parse, or infinite: name the range that the key allows, if it has one.
        described = _OUT_OF_RANGE_NUMBERS[kind]
        ranged = _bounds_reason(error["loc"], {}, root).removeprefix("must be ")
        return f"must be {described}, {ranged}" if ranged else f"must be {described}"
    if kind == "literal_error":
        return f"must be one of {context.get('expected', '')}"
    if kind in ("tuple_type", "list_type") and _holds_text(error["loc"], root):
        return 'must be an array of quoted strings, e.g. ["CASH", "HOUSE"]'
    known = _TYPE_REASONS.get(kind)
    if known is not None:
        return known
    message = error["msg"]
    return message[:1].lower() + message[1:]


def _holds_text(loc: tuple[int | str, ...], root: type[BaseModel]) -> bool:
    """Return whether the field at `loc` is an array of strings."""
    model = _model_at(root, loc[:-1])
    field = model.model_fields.get(str(loc[-1])) if model is not None else None
    return field is not None and typing.get_args(field.annotation)[:1] == (str,)


def _bounds_reason(
    loc: tuple[int | str, ...], context: Mapping[str, Any], root: type[BaseModel]
) -> str:
    """Describe the whole allowed range of a field, not only the bound that was crossed."""
    bounds: dict[str, Any] = {}
    model = _model_at(root, loc[:-1])
    field = model.model_fields.get(str(loc[-1])) if model is not None else None
    if field is not None:
        for item in field.metadata:
            if isinstance(item, annotated_types.Ge):
                bounds["ge"] = item.ge
            elif isinstance(item, annotated_types.Gt):
                bounds["gt"] = item.gt
            elif isinstance(item, annotated_types.Le):
                bounds["le"] = item.le
            elif isinstance(item, annotated_types.Lt):
                bounds["lt"] = item.lt
    if not bounds:
        bounds = dict(context)

    if "ge" in bounds and "le" in bounds:
        return f"must be between {bounds['ge']} and {bounds['le']}"
    parts = []
    if "ge" in bounds:
        parts.append(f"at least {bounds['ge']}")
    if "gt" in bounds:
        parts.append(f"greater than {bounds['gt']}")
    if "le" in bounds:
        parts.append(f"at most {bounds['le']}")
    if "lt" in bounds:
        parts.append(f"less than {bounds['lt']}")
    return "must be " + " and ".join(parts)


def _unknown_key_line(loc: tuple[int | str, ...], source: str, root: type[BaseModel]) -> str:
    key = _format_loc(loc)
    name = str(loc[-1])
    model = _model_at(root, loc[:-1])
    allowed = list(model.model_fields) if model is not None else []

    close = difflib.get_close_matches(name, allowed, n=1)
    if close:
        return f"unknown key {key}{source}; did you mean {close[0]}?"
    if len(loc) == 2:
        for section, section_model in section_models(root).items():
            if name in section_model.model_fields:
                return f"unknown key {key}{source}; did you mean {section}.{name}?"
    return f"unknown key {key}{source}: allowed keys are {', '.join(allowed)}"


def _model_at(root: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """Return the model that validates the table at `loc`, skipping array indexes."""
    model: type[BaseModel] = root
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        inner = _model_in(field.annotation) if field is not None else None
        if inner is None:
            return None
        model = inner
    return model


def _is_secret(loc: tuple[int | str, ...], secret_locations: frozenset[tuple[str, str]]) -> bool:
    return loc[:2] in secret_locations


def _format_loc(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def _environment_source(
    loc: tuple[int | str, ...], environment_names: frozenset[str], environment_prefix: str
) -> str:
    """Name the environment variable that set the value at `loc`, if one did."""
    for length in (2, 1):
        parts = loc[:length]
        if len(parts) < length or not all(isinstance(part, str) for part in parts):
            continue
        name = environment_prefix.lower() + "__".join(str(part) for part in parts)
        if name in environment_names:
            return f" (from {name.upper()})"
    return ""


def format_value(value: Any) -> str:
    """Show a value as it would be written in TOML, shortened to 80 characters.

    The user info, query string and fragment of a URL in a string are shown as `***`.
    """
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int | float):
        text = repr(value)
    elif isinstance(value, datetime | date | time):
        text = value.isoformat()
    elif isinstance(value, str):
        text = json.dumps(hide_url_secrets(value))
    else:
        try:
            text = json.dumps(value, default=str)
        except ValueError:
            text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return text


# The scheme and the authority, which ends at the first `/`, `?` or `#`.
_URL_HEAD = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]*")


def _scheme_and_host(text: str) -> str:
    """Cut a URL to its scheme and host, with `***` for any path, query or fragment.

    User info is hidden as in `format_value`. Text without a scheme is hidden whole,
    because it has no clear end of the host.
    """
    hidden = hide_url_secrets(text.strip())
    head = _URL_HEAD.match(hidden)
    if head is None:
        return "***"
    tail = hidden[head.end() :]
    # The first character that was cut shows whether a path, a query or a fragment followed.
    return head.group() + (tail[:1] + "***" if tail else "")


def section_models(root: type[BaseModel]) -> dict[str, type[BaseModel]]:
    """Map the name of each settings section (a field of `root` typed as a model) to its model."""
    sections: dict[str, type[BaseModel]] = {}
    for name, field in root.model_fields.items():
        model = _model_in(field.annotation)
        if model is not None:
            sections[name] = model
    return sections


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """Return the model class in an annotation such as `Model` or `tuple[Model, ...]`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in get_args(annotation):
        model = _model_in(argument)
        if model is not None:
            return model
    return None
