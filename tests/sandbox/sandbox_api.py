"""Shared constants and HTTP clients for the sandbox tests.

A module of its own, not conftest.py, because `from conftest import ...` can load another
directory's conftest.py once the suite has several of them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import requests

from yotposync.sandbox import Sandbox

ANCHOR = datetime(2025, 5, 1, 12, 0, 0, tzinfo=UTC)
TIMEOUT = 5


class Api:
    """A requests session bound to one base URL and its credentials."""

    def __init__(
        self, base_url: str, headers: dict[str, str], admin_url: str | None = None
    ) -> None:
        self.base_url = base_url
        self.admin_url = admin_url
        self.session = requests.Session()
        self.session.headers.update(headers)

    def get(self, path: str, params: Any = None) -> requests.Response:
        return self.session.get(self.base_url + path, params=params, timeout=TIMEOUT)

    def post(self, path: str, body: Any) -> requests.Response:
        return self.session.post(self.base_url + path, json=body, timeout=TIMEOUT)

    def put(self, path: str, body: Any) -> requests.Response:
        return self.session.put(self.base_url + path, json=body, timeout=TIMEOUT)

    def admin(self, method: str, path: str) -> requests.Response:
        assert self.admin_url is not None
        return self.session.request(method, self.admin_url + path, timeout=TIMEOUT)

    def follow(self, response: requests.Response) -> requests.Response:
        """GET the record a 201 response points at with its Location header."""
        location = response.headers["Location"]
        root = self.base_url.rsplit("/api", 1)[0]
        return self.session.get(root + location, timeout=TIMEOUT)


def heartland_api(sandbox: Sandbox) -> Api:
    return Api(
        sandbox.heartland_url,
        {"Authorization": f"Bearer {sandbox.heartland_token}"},
        sandbox.heartland_admin_url,
    )


def yotpo_api(sandbox: Sandbox) -> Api:
    return Api(
        sandbox.yotpo_url,
        {"x-guid": sandbox.yotpo_guid, "x-api-key": sandbox.yotpo_api_key},
        sandbox.yotpo_admin_url,
    )
