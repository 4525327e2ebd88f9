"""Logging set-up: structlog events and standard-library records through one renderer.

Every line carries an ISO 8601 UTC `timestamp`, a `level`, the `logger` name and the
`event`. Lines are JSON objects, one per line, unless the output is a terminal or the
console format is chosen. Records from standard-library loggers (APScheduler, urllib3,
backoff, werkzeug) pass through the same processors and renderer as our own events.

As a second line of defence behind code that never logs secrets, the renderer replaces
every value registered with `register_secret()` by `***`, in every field of every line.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED = "***"

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
_FORMATS = ("auto", "console", "json")

# Libraries that log every request at INFO. They are held at WARNING at any level.
_WARNING_ONLY_LOGGERS = ("urllib3", "werkzeug")
# APScheduler's executor logs two INFO lines per job run. The jobs log their own summary,
# so these lines are shown only at the debug level.
_DEBUG_ONLY_INFO_LOGGERS = ("apscheduler.executors",)
# The HTTP layer drives backoff with a zero wait and logs each retry itself (`http_retry`,
# with the real wait), so backoff's own lines would only repeat it with wrong figures.
_SILENCED_LOGGERS = ("backoff",)

_secrets: tuple[str, ...] = ()
_secrets_lock = threading.Lock()


class _Handler(logging.StreamHandler[TextIO]):
    """The handler that configure_logging() installs, so that a second call can replace it."""


def register_secret(value: str) -> None:
    """Add a value that the renderer replaces with `***` wherever it appears in a line.

    Empty values are ignored. Registration lasts for the life of the process.
    """
    global _secrets
    if not value:
        return
    with _secrets_lock:
        if value not in _secrets:
            # Longest first, so that a secret containing another one is replaced whole.
            _secrets = tuple(sorted({*_secrets, value}, key=len, reverse=True))


def redact_text(text: str, replacement: str = REDACTED) -> str:
    """Replace every registered secret in `text`, for messages that do not pass the logger."""
    return _replace_secrets(text, _secrets, replacement)


def redact_secrets(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """Replace registered secrets in every field value, including nested ones.

    A structlog processor. Keys are left as they are.
    """
    secrets = _secrets
    if not secrets:
        return event_dict
    return {key: _redact(value, secrets) for key, value in event_dict.items()}


def _redact(value: Any, secrets: tuple[str, ...]) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return _replace_secrets(value, secrets)
    if isinstance(value, Mapping):
        return {key: _redact(item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact(item, secrets) for item in value]

    # Any other object is rendered by repr() or str(). When either would show a secret,
    # the object is replaced by its redacted text.
    for text in (repr(value), str(value)):
        if any(secret in text for secret in secrets):
            return _replace_secrets(text, secrets)
    return value


def _replace_secrets(text: str, secrets: tuple[str, ...], replacement: str = REDACTED) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, replacement)
    return text


def debug_enabled(name: str) -> bool:
    """Tell whether logger `name` writes debug events, at the cost of a dictionary lookup.

    A structlog call that the level filters out still binds a logger first, because loggers
    are not cached (see configure_logging). Code that logs once per push checks this first.
    """
    return logging.getLogger(name).isEnabledFor(logging.DEBUG)


class SeenOnce:
    """Remember the last `size` keys, to tell whether a condition was already reported.

    A daemon that meets the same odd record at every poll would otherwise repeat its warning
    every interval, for as long as the record stays in the window. The memory lives as long as
    the process, so a restarted daemon warns once more.
    """

    def __init__(self, size: int = 1000) -> None:
        self._size = size
        self._keys: OrderedDict[Hashable, None] = OrderedDict()
        self._lock = threading.Lock()

    def first_time(self, key: Hashable) -> bool:
        """Return True the first time `key` is given, and False while it is remembered."""
        with self._lock:
            if key in self._keys:
                self._keys.move_to_end(key)
                return False
            self._keys[key] = None
            if len(self._keys) > self._size:
                self._keys.popitem(last=False)
            return True

    def warn(self, logger: Any, key: Hashable, event: str, **fields: Any) -> None:
        """Log `event` as a warning the first time `key` is given, and at debug level after."""
        report = logger.warning if self.first_time(key) else logger.debug
        report(event, **fields)


def mask_email(address: str) -> str:
    """Shorten an e-mail address for logs to its first letter and domain.

    `pat.lee@example.com` becomes `p***@example.com`. Text without a local part and a
    domain becomes `***`.
    """
    local, separator, domain = address.strip().rpartition("@")
    if not separator or not domain:
        return REDACTED
    if not local:
        return f"{REDACTED}@{domain}"
    return f"{local[0]}{REDACTED}@{domain}"


# Greedy up to the last "@", so that a password containing "/" or "@" is hidden whole.
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)\S*@")
# A query string or fragment and the rest of the text, which may be more of a token that
# contains a space or a line break.
_URL_QUERY = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^\s?#]*)(?P<mark>[?#]).*", re.DOTALL)


def hide_url_secrets(text: str) -> str:
    """Replace the user info of each URL in `text`, and the first query or fragment, with `***`.

    `https://u:pw@shop.example.com/api?token=x` becomes `https://***@shop.example.com/api?***`.
    User info goes first and up to the last `@`, so an `@` in a query hides the host as well.
    Everything after the first `?` or `#` of a URL is hidden, to the end of the text.
    """
    hidden = _URL_CREDENTIALS.sub(r"\g<scheme>***@", text)
    return _URL_QUERY.sub(r"\g<head>\g<mark>***", hidden)


def configure_logging(level: str = "info", fmt: str = "auto", stream: TextIO | None = None) -> None:
    """Route structlog and standard-library logging to `stream`, standard output by default.

    `level` is debug, info, warning or error. `fmt` is "console", "json", or "auto", which
    picks console on a terminal and JSON otherwise. Calling this again replaces the handler
    installed by the previous call, so lines are never written twice.
    """
    if level not in _LEVELS:
        raise ValueError(f"invalid log level {level!r}: use one of {', '.join(_LEVELS)}")
    if fmt not in _FORMATS:
        raise ValueError(f"invalid log format {fmt!r}: use one of {', '.join(_FORMATS)}")
    output = sys.stdout if stream is None else stream
    threshold = _LEVELS[level]

    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Loggers bound before a later configure_logging() call must follow the new one.
        cache_logger_on_first_use=False,
    )

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            # Tracebacks become text before redaction, so a secret in an exception
            # message is replaced too.
            structlog.processors.format_exc_info,
            redact_secrets,
            _renderer(fmt, output),
        ],
    )
    handler = _Handler(output)
    handler.setFormatter(formatter)

    root = logging.getLogger()
    for old in [existing for existing in root.handlers if isinstance(existing, _Handler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(threshold)

    for name in _WARNING_ONLY_LOGGERS:
        logging.getLogger(name).setLevel(max(threshold, logging.WARNING))
    for name in _DEBUG_ONLY_INFO_LOGGERS:
        quiet = threshold if threshold == logging.DEBUG else max(threshold, logging.WARNING)
        logging.getLogger(name).setLevel(quiet)
    for name in _SILENCED_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _renderer(fmt: str, output: TextIO) -> Processor:
    terminal = _is_terminal(output)
    if fmt == "console" or (fmt == "auto" and terminal):
        return structlog.dev.ConsoleRenderer(colors=terminal)
    return structlog.processors.JSONRenderer()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except ValueError:  # a closed stream
        return False
