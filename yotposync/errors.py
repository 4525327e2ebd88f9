"""Errors grouped by what the caller should do about them.

- ConfigError, FatalError: stop with a clear message and a non-zero exit.
- RetriableError: try again later (429, 5xx, timeouts, connection errors).
- RejectedError: the remote refused this one request; record the reason, never retry it.
- InvalidRecordError: a Heartland record we cannot use; record it in the ledger and go on.

Messages never contain secrets, query strings or response bodies beyond a short reason.
"""

from __future__ import annotations

from yotposync.logs import redact_text


class YotposyncError(Exception):
    """Base class for every error this package raises on purpose."""


class ConfigError(YotposyncError):
    """The configuration is invalid; carries every problem found, not only the first."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


class FatalError(YotposyncError):
    """The run cannot go on: bad credentials, a corrupt ledger, a second daemon."""


class LedgerError(FatalError):
    """The ledger file is unusable (corrupt, newer schema, wrong permissions)."""


class LedgerFullError(LedgerError):
    """The ledger's file system is full, so SQLite rolled back the write that failed.

    The daemon treats it as a failed run, not a fatal error: once space is freed, the next run
    goes on from the last commit without a restart.
    """


class LockedError(FatalError):
    """Another yotposync process holds the ledger lock."""


class GuardError(FatalError):
    """A safety guard stopped a job instead of letting it move a cursor."""


class ApiError(YotposyncError):
    """An HTTP call to Heartland or Yotpo failed.

    `path` is the request path without its query string, so it is safe to log.
    """

    def __init__(
        self, service: str, method: str, path: str, status: int | None, reason: str
    ) -> None:
        self.service = service
        self.method = method
        self.path = path
        self.status = status
        self.reason = reason
        shown = f"HTTP {status}" if status is not None else "no response"
        super().__init__(f"{service} {method} {path} failed: {shown}: {reason}")


class RetriableError(ApiError):
    """A transient failure: 429, 5xx, a timeout or a dropped connection."""

    def __init__(
        self,
        service: str,
        method: str,
        path: str,
        status: int | None,
        reason: str,
        retry_after: float | None = None,
        maybe_applied: bool = False,
    ) -> None:
        super().__init__(service, method, path, status, reason)
        self.retry_after = retry_after
        # True when the request may have reached the server (read timeout, reset after
        # sending): the caller must treat the outcome as unknown.
        self.maybe_applied = maybe_applied


class RejectedError(ApiError):
    """A 4xx other than 401, 403 and 429: this request will never succeed as it is."""


class NotFoundError(RejectedError):
    """HTTP 404."""


class AuthError(ApiError, FatalError):
    """HTTP 401 or 403: the credentials are missing, wrong or lack a permission."""


class DamagedPushError(YotposyncError):
    """A push's payload stored in the ledger cannot be what was planned, so it is not sent."""


class InvalidRecordError(YotposyncError):
    """A record from Heartland has a value we cannot use.

    The message names the record, the field, the value and what to fix.
    """

    def __init__(self, record: str, field: str, value: object, hint: str) -> None:
        self.record = record
        self.field = field
        self.value = value
        self.hint = hint
        # A record may echo anything, a credential too: the message is printed and stored.
        shown = redact_text(repr(value), "[redacted]")
        if len(shown) > 80:
            shown = shown[:77] + "..."
        super().__init__(f"{record}: invalid {field} {shown}: {hint}")
