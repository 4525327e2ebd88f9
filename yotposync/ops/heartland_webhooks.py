"""Heartland's webhook registrations: `GET`, `POST` and `DELETE /api/webhooks`.

Registering needs the "Manage Webhooks" permission on the API token's user. A registration
names a URL and its events; Heartland then posts each completed transaction to that URL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from yotposync.clients.http import HttpService, is_loopback_url
from yotposync.ops.webhook import EVENT, webhook_path

_WEBHOOKS = "/webhooks"


@dataclass(frozen=True)
class Webhook:
    """One registration in Heartland."""

    id: int | str
    url: str
    events: tuple[str, ...]


def receiver_url(public_base_url: str, secret: str) -> str:
    """Return the URL to register: the receiver's public address plus `/heartland/<secret>`.

    Raises ValueError for a URL that is not http(s), contains whitespace or a control
    character, names a port outside 1 to 65535, carries a query, or uses plain http to a host
    other than loopback, since the secret travels in the URL.
    """
    text = public_base_url.strip()
    if any(character.isspace() or not character.isprintable() for character in text):
        raise ValueError(
            f"{public_base_url!r} contains a space, a line break or another control character"
        )
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{public_base_url!r} is not an http or https URL")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise ValueError(f"{public_base_url!r} names a port outside 1 to 65535")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError("give the receiver's address without a query, fragment or password")
    if parts.scheme == "http" and not is_loopback_url(public_base_url):
        raise ValueError(
            "use https: the webhook secret is part of the URL, and plain http would expose it"
        )
    base = text.rstrip("/")
    if base.endswith(webhook_path(secret)):
        return base  # the address was given with the receiver's path already
    return base + webhook_path(secret)


def hide_secret(url: str, secret: str) -> str:
    """Return the URL with the webhook secret replaced by `***`, for output and logs."""
    return url.replace(secret, "***")


def list_webhooks(http: HttpService) -> list[Webhook]:
    body = http.get_json(_WEBHOOKS, {"per_page": "all"}, check=_envelope_problem)
    return [_webhook(record) for record in body["results"]]


def register_webhook(http: HttpService, url: str) -> Webhook:
    """Register `url` for completed transactions and return the new registration.

    Heartland responds with 201 and the record as JSON, or with only a `Location` header as
    other collections do. In the second case the record is read from that location.
    """
    # Not repeated after a timeout, which could register the URL twice.
    response = http.request(
        "POST", _WEBHOOKS, json={"url": url, "events": [EVENT]}, idempotent=False
    )
    record = _json_object(response.content)
    if record is None or "id" not in record:
        location = response.headers.get("Location", "")
        path = urlsplit(location).path
        if "/webhooks/" not in path:
            return Webhook("?", url, (EVENT,))
        record = http.get_json(_WEBHOOKS + "/" + path.rsplit("/", 1)[-1])
    return _webhook(record)


def delete_webhook(http: HttpService, webhook_id: int | str) -> None:
    http.request("DELETE", f"{_WEBHOOKS}/{webhook_id}")


def _webhook(record: Any) -> Webhook:
    if not isinstance(record, dict):
        return Webhook("?", "", ())
    events = record.get("events")
    return Webhook(
        id=record.get("id", "?"),
        url=str(record.get("url", "")),
        events=tuple(str(e) for e in events) if isinstance(events, list) else (),
    )


def _json_object(content: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(content) if content.strip() else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _envelope_problem(body: Any) -> str | None:
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, list):
        return "no results list"
    return None
