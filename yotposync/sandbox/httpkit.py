"""HTTP helpers shared by both emulators: the request error, JSON bodies and responses."""

from __future__ import annotations

import json
from typing import Any

from werkzeug.wrappers import Request, Response


class RequestError(Exception):
    """A request the emulator rejects; each emulator renders it in its vendor's error shape."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def json_response(
    payload: object, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """Build a JSON response with an exact Content-Length, so keep-alive connections work."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    response = Response(body, status=status, mimetype="application/json")
    if headers:
        response.headers.update(headers)
    return response


def read_json_object(request: Request, invalid_code: str) -> dict[str, Any]:
    """Parse the request body as a JSON object, or raise a 400 RequestError with `invalid_code`."""
    raw = request.get_data(cache=False)
    if not raw.strip():
        raise RequestError(400, invalid_code, "the request body is empty: send a JSON object")
    try:
        payload = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestError(400, invalid_code, f"the request body is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise RequestError(400, invalid_code, "the request body must be a JSON object")
    return payload
