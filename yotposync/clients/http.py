"""The HTTP layer shared by the Heartland and Yotpo clients.

One `HttpService` per remote API keeps a keep-alive session, the credential headers, a
timeout for every call, a rate limiter, and the one map from HTTP status to the errors in
`yotposync.errors`. Retries of transient failures happen here, with backoff and a ceiling.
Nothing in this module logs or raises a header value, a body or a query string.
"""

from __future__ import annotations

import http
import ipaddress
import math
import os
import re
import threading
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import backoff
import requests
import structlog
from urllib3.exceptions import MaxRetryError, NewConnectionError

from yotposync import __version__
from yotposync.errors import (
    AuthError,
    ConfigError,
    FatalError,
    NotFoundError,
    RejectedError,
    RetriableError,
)
from yotposync.logs import hide_url_secrets, redact_text

_log = structlog.get_logger(__name__)

_T = TypeVar("_T")

DEFAULT_USER_AGENT = f"yotposync/{__version__}"

# Functions called before each retry wait with the service name and the HTTP status (None for
# a timeout or connection error). The daemon's metrics count retries through this list.
retry_listeners: list[Callable[[str, int | None], None]] = []

# Methods that change nothing on the server, or change it the same way when repeated.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

MAX_REASON_CHARS = 200

_LOOPBACK_NAMES = frozenset({"localhost"})
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f\s]+")


@dataclass(frozen=True)
class RetryPolicy:
    """Limits for retrying one request after a RetriableError.

    `max_tries` counts the first attempt. `max_seconds` is the time budget from the first
    attempt: a wait that would end past it is not started and the last error propagates.
    `max_wait_seconds` caps a single wait, including one requested by a reset header.
    `jitter` turns an exponential wait into the wait actually used, by default a random
    value between 0 and that wait. A wait requested by the server is used as it is.
    """

    max_tries: int = 5
    max_seconds: float = 120.0
    base_wait_seconds: float = 0.5
    max_wait_seconds: float = 60.0
    jitter: Callable[[float], float] = backoff.full_jitter

    def __post_init__(self) -> None:
        if self.max_tries < 1:
            raise ValueError(f"max_tries must be at least 1, got {self.max_tries}")
        for name in ("max_seconds", "base_wait_seconds", "max_wait_seconds"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


DEFAULT_RETRY = RetryPolicy()


class _Reservation:
    """One caller's reserved send time; a pause that starts later may move it."""

    __slots__ = ("slot",)

    def __init__(self, slot: float) -> None:
        self.slot = slot


class RateLimiter:
    """A thread-safe token bucket with room for one request, shared by all users of a service.

    Requests are spaced at least `1 / rate_per_second` apart, in the order they call
    `acquire()`. A rate of 0 means no spacing. Independently of the rate, a response that
    reports `ratelimit-remaining: 0` pauses every caller, including those already waiting for
    a slot, until the server's window has ended, capped at `max_pause_seconds`.

    The window's end is `ratelimit-reset` seconds after that response, unless an earlier
    response showed where the window began: the response whose `ratelimit-remaining` is one
    less than `ratelimit-limit` answered the window's first request, so the window ends at most
    `ratelimit-reset` seconds after that response arrived. Because the reset header counts
    whole seconds, this estimate ends a pause up to a second earlier than the header alone,
    which is what lets a client keep pace at the limit itself.
    """

    def __init__(
        self,
        rate_per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        max_pause_seconds: float = 60.0,
    ) -> None:
        if not math.isfinite(rate_per_second) or rate_per_second < 0:
            raise ValueError(f"rate_per_second must be a finite number >= 0, got {rate_per_second}")
        self._interval = 1.0 / rate_per_second if rate_per_second > 0 else 0.0
        self._clock = clock
        self._sleep = sleep
        self._max_pause = max_pause_seconds
        self._lock = threading.Lock()
        self._next_slot = -math.inf
        self._paused_until = -math.inf
        self._window_ends_by: float | None = None
        self._waiting: list[_Reservation] = []

    def acquire(self) -> None:
        """Block until the caller may send one request, and reserve that slot."""
        with self._lock:
            now = self._clock()
            reservation = _Reservation(max(now, self._next_slot, self._paused_until))
            self._next_slot = reservation.slot + self._interval
            self._waiting.append(reservation)
        try:
            while True:
                # Sleep outside the lock: later callers have already been given later slots.
                planned = reservation.slot
                if planned > now:
                    self._sleep(planned - now)
                with self._lock:
                    if reservation.slot == planned:
                        return
                    # A pause moved this slot while the caller slept; wait for the new one.
                    now = self._clock()
        finally:
            with self._lock:
                self._waiting.remove(reservation)

    def note_response(self, headers: Mapping[str, str]) -> None:
        """Pause all callers when the response reports that no requests remain in this window."""
        limit = _parse_number(headers.get("ratelimit-limit"))
        remaining = _parse_number(headers.get("ratelimit-remaining"))
        reset = _parse_number(headers.get("ratelimit-reset"))
        if remaining is None or reset is None:
            return
        with self._lock:
            now = self._clock()
            if limit is not None and remaining == limit - 1:
                self._window_ends_by = now + reset
            if remaining > 0:
                return
            until = now + min(reset, self._max_pause)
            if self._window_ends_by is not None and now < self._window_ends_by < until:
                until = self._window_ends_by
            self._pause_until(until)

    def _pause_until(self, until: float) -> None:
        """Move the pause end to `until` and every reserved slot before it along, keeping gaps."""
        if until <= self._paused_until:
            return
        self._paused_until = until
        if not self._waiting:
            return
        shift = until - min(reservation.slot for reservation in self._waiting)
        if shift <= 0:
            return
        for reservation in self._waiting:
            reservation.slot += shift
        self._next_slot += shift


def is_loopback_url(url: str) -> bool:
    """Return whether the URL's host is localhost or a loopback address such as 127.0.0.1."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return False
    if host is None:
        return False
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class HttpService:
    """Requests to one remote API, with its credentials, timeouts, limits and retries.

    `path` arguments are relative to `base_url` and carry no query string. Query parameters
    go in `params`. Errors are those of `yotposync.errors`: AuthError for 401 and 403,
    NotFoundError for 404, RetriableError for 429, 5xx, the statuses in `retriable_statuses`,
    timeouts and connection failures, and RejectedError for any other status that is not 2xx.
    """

    def __init__(
        self,
        service: str,
        base_url: str,
        *,
        headers: Mapping[str, str],
        connect_timeout: float,
        read_timeout: float,
        limiter: RateLimiter,
        retry: RetryPolicy,
        verify_tls: bool = True,
        session: requests.Session | None = None,
        user_agent: str = DEFAULT_USER_AGENT,
        retriable_statuses: frozenset[int] = frozenset(),
        auth_hint: str = "",
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        for name, value in (("connect_timeout", connect_timeout), ("read_timeout", read_timeout)):
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a finite number of seconds > 0, got {value!r}")
        _check_base_url(service, base_url)
        if not verify_tls and not is_loopback_url(base_url):
            raise ConfigError(
                [
                    f"{service}: TLS certificate verification can be turned off only for "
                    "127.0.0.1, localhost or ::1; keep it on for other hosts"
                ]
            )
        self.service = service
        self.base_url = base_url.rstrip("/")
        self._headers = {
            "Accept": "application/json",
            # What requests' default session headers would have added: compressed bodies.
            "Accept-Encoding": requests.utils.DEFAULT_ACCEPT_ENCODING,
            "User-Agent": user_agent,
            **headers,
        }
        # What requests adds to a body it encodes itself from `json`.
        self._json_headers = {**self._headers, "Content-Type": "application/json"}
        self._secrets = _secret_fragments(headers)
        self._timeout = (connect_timeout, read_timeout)
        self._limiter = limiter
        self._retry = retry
        self._session = session if session is not None else requests.Session()
        self._proxies, self._verify_setting = _environment_settings(
            self._session, self.base_url, verify_tls
        )
        self._retriable_statuses = retriable_statuses
        self._auth_hint = auth_hint
        self._sleep = sleep
        self._clock = clock

    def close(self) -> None:
        """Close the keep-alive connections of the session."""
        self._session.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        json_text: str | None = None,
        idempotent: bool | None = None,
    ) -> requests.Response:
        """Send one request, retrying transient failures, and return the 2xx response.

        The body is `json`, encoded here, or `json_text`, JSON text that is sent unchanged.
        `idempotent` defaults to whether the method is one that may be repeated safely.
        A non-idempotent request is not retried after an error whose `maybe_applied` is
        True, so the caller can check the remote state before sending it again.
        """
        method = method.upper()
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS

        if json is not None and json_text is not None:
            raise ValueError("pass json or json_text, not both")

        def send_once() -> requests.Response:
            return self._send(method, path, params, json, json_text)

        return self._with_retries(method, path, idempotent, send_once)

    def get_json(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        check: Callable[[Any], str | None] | None = None,
    ) -> Any:
        """GET `path` and return the decoded JSON body.

        A body that is not valid JSON, or that `check` finds a problem in (it returns a short
        description, or None when the body is usable), is retried like a 5xx.
        """

        def fetch_once() -> Any:
            response = self._send("GET", path, params, None)
            try:
                body = response.json()
            except ValueError:
                problem: str | None = "invalid JSON in response"
            else:
                problem = None if check is None else check(body)
                if problem is not None:
                    problem = f"unexpected response: {problem}"
            if problem is not None:
                raise RetriableError(
                    self.service, "GET", _without_query(path), response.status_code, problem
                )
            return body

        return self._with_retries("GET", path, True, fetch_once)

    def _with_retries(
        self, method: str, path: str, idempotent: bool, attempt: Callable[[], _T]
    ) -> _T:
        started = self._clock()
        # Most requests succeed at once, so the first attempt runs before backoff's decorator
        # is built, which cost about 14 microseconds of CPU per request with a stubbed
        # transport. A retriable first failure is raised again as backoff's first try, so the
        # retries, waits and logs below still cover every attempt.
        try:
            return attempt()
        except RetriableError as error:
            first_failure: list[RetriableError] = [error]

        def replay_then_attempt() -> _T:
            if first_failure:
                raise first_failure.pop()
            return attempt()

        # backoff 2.2 always waits with time.sleep for the value its wait generator yields.
        # The generator below yields 0 and stores the real wait here, and the on_backoff
        # handler waits it out through the injected sleep, so tests never really sleep.
        planned_wait = [0.0]

        # The send type is Any because backoff's stubs declare None, though it sends the error.
        def waits() -> Generator[float, Any, None]:
            exponential = backoff.expo(
                factor=self._retry.base_wait_seconds,
                max_value=self._retry.max_wait_seconds,
            )
            next(exponential)
            error: RetriableError = yield 0.0
            for step in exponential:
                if error.retry_after is not None:
                    wait = min(error.retry_after, self._retry.max_wait_seconds)
                else:
                    wait = self._retry.jitter(step)
                elapsed = self._clock() - started
                if elapsed + wait > self._retry.max_seconds:
                    return  # backoff re-raises the last error when the generator stops
                planned_wait[0] = wait
                error = yield 0.0

        def give_up(error: Exception) -> bool:
            return isinstance(error, RetriableError) and error.maybe_applied and not idempotent

        def wait_before_retry(details: Any) -> None:
            error: RetriableError = details["exception"]
            event: dict[str, Any] = {
                "service": self.service,
                "method": method,
                "path": _without_query(path),
                "status": error.status,
                "attempt": details["tries"],
                "wait": round(planned_wait[0], 3),
            }
            if error.status is None:
                event["reason"] = error.reason
            _log.warning("http_retry", **event)
            for listener in retry_listeners:
                listener(self.service, error.status)
            self._sleep(planned_wait[0])

        retrying = backoff.on_exception(
            waits,
            RetriableError,
            max_tries=self._retry.max_tries,
            jitter=None,
            giveup=give_up,
            on_backoff=wait_before_retry,
            raise_on_giveup=True,
        )(replay_then_attempt)
        result: _T = retrying()
        return result

    def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        json: Any,
        json_text: str | None = None,
    ) -> requests.Response:
        safe_path = _without_query(path)
        url = f"{self.base_url}/{path.lstrip('/')}"
        self._limiter.acquire()
        try:
            # Prepared here and handed to `send`, rather than through `Session.request`, which
            # merges cookies, netrc and proxy variables on every call and so doubles the CPU
            # time of a request on a fast network. The environment was read once, in __init__.
            prepared = requests.PreparedRequest()
            if json_text is None:
                prepared.prepare(
                    method=method, url=url, headers=self._headers, params=params, json=json
                )
            else:
                prepared.prepare(
                    method=method,
                    url=url,
                    headers=self._json_headers,
                    params=params,
                    data=json_text.encode("utf-8"),
                )
            response = self._session.send(
                prepared,
                timeout=self._timeout,
                verify=self._verify_setting,
                proxies=self._proxies,
                stream=False,
                cert=None,
                # Custom credential headers would follow a redirect to another host.
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise self._transport_error(method, safe_path, exc) from None
        self._limiter.note_response(response.headers)
        self._raise_for_status(method, safe_path, response)
        return response

    def _transport_error(
        self, method: str, path: str, exc: requests.RequestException
    ) -> RetriableError | FatalError:
        """Map a requests exception to an error without its text, which contains the URL.

        A request that requests could not even build (a header value with a line break, for
        example) is a FatalError, because sending it again cannot help.
        """
        kind = type(exc).__name__
        if isinstance(exc, requests.ConnectTimeout):
            reason, maybe_applied = "connection timed out", False
        elif isinstance(exc, requests.ReadTimeout):
            reason, maybe_applied = f"read timed out after {self._timeout[1]} s", True
        elif isinstance(exc, requests.exceptions.SSLError):
            reason, maybe_applied = "TLS handshake or certificate verification failed", False
        elif isinstance(exc, requests.ConnectionError) and _never_connected(exc):
            reason = f"connection refused or host not reachable; check {self.service}.base_url"
            maybe_applied = False
        elif isinstance(
            exc,
            requests.ConnectionError
            | requests.exceptions.ChunkedEncodingError
            | requests.exceptions.ContentDecodingError,
        ):
            reason, maybe_applied = "connection dropped after the request was sent", True
        else:
            return FatalError(
                f"{self.service} {method} {path}: the request could not be sent ({kind}); "
                f"check {self.service}.base_url and the credentials for invalid characters"
            )
        return RetriableError(
            self.service,
            method,
            path,
            None,
            f"{reason} ({kind})",
            maybe_applied=maybe_applied,
        )

    def _raise_for_status(self, method: str, path: str, response: requests.Response) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        reason = self._reason(response)
        if status in (401, 403):
            if self._auth_hint:
                reason = f"{reason}; {self._auth_hint}"
            raise AuthError(self.service, method, path, status, reason)
        if status == 404:
            raise NotFoundError(self.service, method, path, status, reason)
        if status == 429 or status >= 500 or status in self._retriable_statuses:
            raise RetriableError(
                self.service,
                method,
                path,
                status,
                reason,
                retry_after=parse_retry_after(response.headers),
                # A 5xx can come after the server applied part or all of the request.
                maybe_applied=status >= 500,
            )
        if 300 <= status < 400:
            raise RejectedError(
                self.service, method, path, status, "unexpected redirect; check the base URL"
            )
        raise RejectedError(self.service, method, path, status, reason)

    def _reason(self, response: requests.Response) -> str:
        """Return a short, single-line reason from the error body, never the body itself."""
        text = _reason_from_body(response)
        if not text:
            try:
                text = http.HTTPStatus(response.status_code).phrase
            except ValueError:
                text = "unexpected status"
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        # The other service's secrets too, when the command registered them: an error body
        # may echo anything the server has seen.
        text = redact_text(text, "[redacted]")
        if len(text) > MAX_REASON_CHARS:
            text = text[: MAX_REASON_CHARS - 3] + "..."
        return text


def parse_retry_after(
    headers: Mapping[str, str], *, now: Callable[[], datetime] | None = None
) -> float | None:
    """Return the seconds to wait that the response requests, or None when it names none.

    Reads `Retry-After` as seconds or as an HTTP date, then Yotpo's `ratelimit-reset`
    seconds. A date in the past means 0.
    """
    value = headers.get("Retry-After")
    if value is not None:
        seconds = _parse_number(value)
        if seconds is not None:
            return seconds
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            moment = None
        if moment is not None and moment.tzinfo is not None:
            current = now() if now is not None else datetime.now(UTC)
            return max(0.0, (moment - current).total_seconds())
    return _parse_number(headers.get("ratelimit-reset"))


def _check_base_url(service: str, base_url: str) -> None:
    """Raise ConfigError unless the base URL is an absolute http(s) URL with a valid port."""
    try:
        parts = urlsplit(base_url)
        _ = parts.port  # raises ValueError when the port is not a number from 0 to 65535
    except ValueError:
        parts = urlsplit("")
        port_valid = False
    else:
        port_valid = True
    if parts.username is not None or parts.password is not None:
        problem = "must not contain a user name or password"
    elif parts.scheme not in ("http", "https") or not parts.hostname or not port_valid:
        shown = hide_url_secrets(base_url)
        problem = f"{shown!r} must be an http:// or https:// URL with a host and a valid port"
    else:
        return
    raise ConfigError([f"{service}.base_url {problem}"])


def _parse_number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _reason_from_body(response: requests.Response) -> str:
    """Join the `error` and `message` strings of a JSON error body, in one line.

    Heartland's validation errors may add `details`, an object from field name to what is
    wrong with it; its text entries follow, as `field: problem`.
    """
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    parts: list[str] = []
    for key in ("error", "message", "error_message"):
        value = body.get(key)
        if isinstance(value, str):
            cleaned = _CONTROL_CHARS.sub(" ", value).strip()
            if cleaned and cleaned not in parts:
                parts.append(cleaned)
    details = body.get("details")
    fields: list[str] = []
    if isinstance(details, dict):
        for field_name, problem in details.items():
            texts = problem if isinstance(problem, list) else [problem]
            joined = ", ".join(text for text in texts if isinstance(text, str))
            if isinstance(field_name, str) and joined:
                fields.append(_CONTROL_CHARS.sub(" ", f"{field_name}: {joined}").strip())
    if fields:
        parts.append("; ".join(fields))
    return ": ".join(parts)


def _secret_fragments(headers: Mapping[str, str]) -> tuple[str, ...]:
    """Return the header values, and tokens after a scheme such as Bearer, to redact."""
    fragments: set[str] = set()
    for value in headers.values():
        for fragment in (value, value.split()[-1] if value.split() else ""):
            if len(fragment) >= 4:
                fragments.add(fragment)
    # Longest first, so a whole value is replaced before a part of it.
    return tuple(sorted(fragments, key=len, reverse=True))


def _environment_settings(
    session: requests.Session, base_url: str, verify_tls: bool
) -> tuple[dict[str, str], bool | str]:
    """Return the proxies and the TLS verification setting for `base_url`, read once.

    These are what `Session.request` would read from the environment on every call: the
    proxy variables (`HTTPS_PROXY`, `NO_PROXY` and the rest) and a CA bundle named by
    `REQUESTS_CA_BUNDLE` or `CURL_CA_BUNDLE`. A session with `trust_env` off reads nothing.
    """
    proxies: dict[str, str] = dict(session.proxies)
    verify: bool | str = verify_tls
    if session.trust_env:
        for scheme, address in requests.utils.get_environ_proxies(base_url).items():
            proxies.setdefault(scheme, address)
        if verify_tls:
            bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            if bundle:
                verify = bundle
    return proxies, verify


def _never_connected(exc: requests.ConnectionError) -> bool:
    """Return whether the connection failed before any byte of the request was sent."""
    cause = exc.args[0] if exc.args else None
    return isinstance(cause, MaxRetryError) and isinstance(cause.reason, NewConnectionError)


def _without_query(path: str) -> str:
    return path.split("?", 1)[0]
