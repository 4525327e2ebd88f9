"""Heartland's webhook registrations: `GET`, `POST` and `DELETE /api/webhooks`.

Registering needs the "Manage Webhooks" permission on the API token's user. A registration
names a URL and its events; Heartland then posts each completed transaction to that URL.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from yotposync.clients.http import HttpService, is_loopback_url
from yotposync.logs import hide_url_secrets
from yotposync.ops.webhook import EVENT, PATH_PREFIX, webhook_path

_WEBHOOKS = "/webhooks"
_DEFAULT_PORTS = {"http": 80, "https": 443}
# The secret segment of a receiver URL: up to the next `/`, query or fragment.
_RECEIVER_SECRET = re.compile(rf"(?P<prefix>{re.escape(PATH_PREFIX)})[^/?#]+")


@dataclass(frozen=True)
class Webhook:
    """One registration in Heartland."""

    id: int | str
    url: str
    events: tuple[str, ...]


def receiver_url(public_base_url: str, secret: str) -> str:
    """Return the URL to register: the receiver's public address plus `/heartland/<secret>`.

    The address is normalised by `normalize_url`, so that two spellings of one receiver,
    such as ports 8443 and 08443, register the same URL.

    Raises ValueError for a URL that is not http(s), contains whitespace or a control
    character, names a port outside 1 to 65535, carries a query, or uses plain http to a host
    other than loopback, since the secret travels in the URL.
    """
    text = public_base_url.strip()
    # The address may already end with the receiver's path, so its secret is hidden too.
    shown = hide_secret(public_base_url, secret)
    if any(character.isspace() or not character.isprintable() for character in text):
        raise ValueError(f"{shown!r} contains a space, a line break or another control character")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{shown!r} is not an http or https URL")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise ValueError(f"{shown!r} names a port outside 1 to 65535")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError("give the receiver's address without a query, fragment or password")
    if parts.scheme == "http" and not is_loopback_url(public_base_url):
        raise ValueError(
            "use https: the webhook secret is part of the URL, and plain http would expose it"
        )
    base = normalize_url(text).rstrip("/")
    if base.endswith(webhook_path(secret)):
        return base  # the address was given with the receiver's path already
    return base + webhook_path(secret)


def normalize_url(url: str) -> str:
    """Return the URL with its scheme and host in lower case and its port as a plain number.

    A port loses its leading zeros, and is dropped when it is the scheme's default (80 for
    http, 443 for https), because both spellings reach the same server. The path, query and
    fragment are kept as they are. A URL whose port is not a number from 0 to 65535 is
    returned unchanged.
    """
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return url
    host = parts.hostname
    if host is None:
        return url
    if ":" in host:
        host = f"[{host}]"  # an IPv6 address
    if port is not None and port != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{port}"
    user_info, at, _ = parts.netloc.rpartition("@")
    return urlunsplit(
        (parts.scheme, user_info + at + host, parts.path, parts.query, parts.fragment)
    )


def same_url(first: str, second: str) -> bool:
    """Tell whether two URLs name the same address once normalised, ignoring a final `/`."""
    return normalize_url(first).rstrip("/") == normalize_url(second).rstrip("/")


def hide_secret(url: str, secret: str | None = None) -> str:
    """Return the URL with each segment after `/heartland/` replaced by `***`, for output.

    The segment is masked whatever it contains, not only when it equals the configured
    secret. During a rotation Heartland still has the registration with the old secret, and
    one made from another configuration contains a secret this one never read.
    `secret`, when given, is replaced anywhere else in the URL too, for a registration made
    by hand to a proxy that forwards another path to the receiver. The user info, query and
    fragment of every URL are hidden as well, since other programs' receivers keep their
    credentials there.
    """
    hidden = hide_url_secrets(_RECEIVER_SECRET.sub(r"\g<prefix>***", url))
    return hidden.replace(secret, "***") if secret else hidden


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


def delete_webhook(http: HttpService, webhook_id: int) -> None:
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
