"""The Heartland customer custom fields yotposync needs, created when they do not exist.

A field is found by its configured key, else by the name yotposync gives it. A missing field
is created with that name. Heartland assigns the key of a new field itself, so the key to use
is read back from the created definition.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import structlog

from yotposync.sync.cashier_fields import FIELD_NAMES

log = structlog.get_logger("yotposync.customer_fields")

CUSTOMER_GROUP = "customer"


class FieldDefinitions(Protocol):
    """The part of the Heartland client that reads and creates custom field definitions."""

    def custom_fields(self) -> list[dict[str, Any]]: ...

    def create_custom_field(self, definition: Mapping[str, Any]) -> dict[str, Any]: ...


def ensure_customer_fields(
    heartland: FieldDefinitions, wanted: Mapping[str, str]
) -> dict[str, str]:
    """Return the key of each wanted field, creating the ones Heartland does not have.

    `wanted` maps a role from `cashier_fields.FIELD_NAMES` to its configured key. The
    result maps the same roles to the keys Heartland uses.
    """
    definitions = [
        definition
        for definition in heartland.custom_fields()
        if definition.get("group_id") == CUSTOMER_GROUP and isinstance(definition.get("key"), str)
    ]
    keys: dict[str, str] = {}
    for role, key in wanted.items():
        name = FIELD_NAMES[role]
        found = _find(definitions, key, name)
        if found is None:
            found = heartland.create_custom_field(
                {"group_id": CUSTOMER_GROUP, "name": name, "validation_type": "text"}
            )
            definitions.append(found)
            log.info("custom_field_created", name=name, key=found.get("key"))
        actual = str(found.get("key"))
        if actual != key:
            log.warning(
                "custom_field_key_differs",
                name=name,
                configured_key=key,
                key=actual,
                detail=f"using the field {name!r} with key {actual!r}; set the configured "
                "key to it to silence this warning",
            )
        keys[role] = actual
    return keys


def _find(definitions: list[dict[str, Any]], key: str, name: str) -> dict[str, Any] | None:
    for definition in definitions:
        if definition.get("key") == key:
            return definition
    folded = name.casefold()
    for definition in definitions:
        other = definition.get("name")
        if isinstance(other, str) and other.strip().casefold() == folded:
            return definition
    return None
