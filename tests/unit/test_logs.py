import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import structlog

from yotposync.logs import (
    SeenOnce,
    configure_logging,
    debug_enabled,
    hide_url_secrets,
    mask_email,
    register_secret,
)

# Loggers whose level configure_logging() changes, restored after each test.
TOUCHED_LOGGERS = ("", "urllib3", "werkzeug", "apscheduler.executors")


class TerminalStream(io.StringIO):
    """A text stream that reports itself as a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers = list(root.handlers)
    levels = {name: logging.getLogger(name).level for name in TOUCHED_LOGGERS}
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    structlog.reset_defaults()


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_when_not_terminal() -> None:
    stream = io.StringIO()
    configure_logging("info", "auto", stream)
    structlog.get_logger("yotposync.transactions").info("page_committed", tickets=3)
    [line] = json_lines(stream)
    assert line["event"] == "page_committed"
    assert line["tickets"] == 3
    assert line["level"] == "info"
    assert line["logger"] == "yotposync.transactions"


def test_timestamp_is_iso_utc() -> None:
    stream = io.StringIO()
    before = datetime.now(UTC)
    configure_logging("info", "json", stream)
    structlog.get_logger("yotposync").info("started")
    [line] = json_lines(stream)
    stamp = line["timestamp"]
    assert stamp.endswith("Z")
    parsed = datetime.fromisoformat(stamp)
    assert parsed.utcoffset() == timedelta(0)
    assert abs(parsed - before) < timedelta(minutes=1)


def test_console_on_terminal() -> None:
    stream = TerminalStream()
    configure_logging("info", "auto", stream)
    structlog.get_logger("yotposync").info("daemon_started", jobs=2)
    output = stream.getvalue()
    assert "daemon_started" in output
    assert not output.lstrip().startswith("{")


def test_console_format_without_terminal_has_no_colors() -> None:
    stream = io.StringIO()
    configure_logging("info", "console", stream)
    structlog.get_logger("yotposync").info("daemon_started")
    output = stream.getvalue()
    assert "daemon_started" in output
    assert not output.lstrip().startswith("{")
    assert "\x1b[" not in output


def test_json_format_on_terminal() -> None:
    stream = TerminalStream()
    configure_logging("info", "json", stream)
    structlog.get_logger("yotposync").info("daemon_started")
    assert json_lines(stream)[0]["event"] == "daemon_started"


def test_stdlib_record_rendered_as_json() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream)
    logging.getLogger("apscheduler.scheduler").info("Added job %r to job store", "deliver")
    [line] = json_lines(stream)
    assert line["event"] == "Added job 'deliver' to job store"
    assert line["logger"] == "apscheduler.scheduler"
    assert line["level"] == "info"
    assert line["timestamp"].endswith("Z")


def test_stdlib_exception_rendered() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream)
    try:
        raise TimeoutError("read timed out")
    except TimeoutError:
        logging.getLogger("apscheduler.scheduler").exception("Giving up")
    [line] = json_lines(stream)
    assert line["level"] == "error"
    assert "TimeoutError: read timed out" in line["exception"]


def test_debug_dropped_at_info() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream)
    structlog.get_logger("yotposync").debug("cursor_read")
    logging.getLogger("backoff").debug("Backing off")
    assert stream.getvalue() == ""


def test_debug_kept_at_debug() -> None:
    stream = io.StringIO()
    configure_logging("debug", "json", stream)
    structlog.get_logger("yotposync").debug("cursor_read")
    assert json_lines(stream)[0]["level"] == "debug"


@pytest.mark.parametrize("name", ["urllib3.connectionpool", "werkzeug"])
def test_chatty_library_held_at_warning(name: str) -> None:
    stream = io.StringIO()
    configure_logging("debug", "json", stream)
    logging.getLogger(name).info("Starting new HTTPS connection")
    logging.getLogger(name).warning("Connection pool is full")
    events = [line["event"] for line in json_lines(stream)]
    assert events == ["Connection pool is full"]


def test_error_level_hides_library_warnings() -> None:
    stream = io.StringIO()
    configure_logging("error", "json", stream)
    logging.getLogger("urllib3.connectionpool").warning("Connection pool is full")
    assert stream.getvalue() == ""


@pytest.mark.parametrize(("level", "shown"), [("info", False), ("debug", True)])
def test_apscheduler_run_lines_only_at_debug(level: str, shown: bool) -> None:
    stream = io.StringIO()
    configure_logging(level, "json", stream)
    logging.getLogger("apscheduler.executors.default").info("Running job")
    assert (stream.getvalue() != "") is shown


def test_configure_twice_single_handler() -> None:
    first = io.StringIO()
    second = io.StringIO()
    handlers_before = len(logging.getLogger().handlers)
    configure_logging("info", "json", first)
    configure_logging("info", "json", second)
    structlog.get_logger("yotposync").info("once")
    assert len(logging.getLogger().handlers) == handlers_before + 1
    assert first.getvalue() == ""
    assert len(json_lines(second)) == 1


def test_logger_bound_before_reconfigure_follows_it() -> None:
    first = io.StringIO()
    second = io.StringIO()
    configure_logging("info", "json", first)
    log = structlog.get_logger("yotposync").bind(job="delivery")
    log.info("run_started")
    configure_logging("info", "json", second)
    log.info("run_finished")
    assert [line["event"] for line in json_lines(second)] == ["run_finished"]


def test_default_stream_is_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", "json")
    structlog.get_logger("yotposync").info("to_stdout")
    captured = capsys.readouterr()
    assert json.loads(captured.out)["event"] == "to_stdout"
    assert captured.err == ""


@pytest.mark.parametrize(("level", "fmt"), [("verbose", "json"), ("info", "xml")])
def test_invalid_level_or_format(level: str, fmt: str) -> None:
    with pytest.raises(ValueError):
        configure_logging(level, fmt, io.StringIO())


# --- redaction -------------------------------------------------------------------------


def test_secret_redacted_in_fields() -> None:
    secret = "tok-5e1f0a9b8c7d"
    register_secret(secret)
    stream = io.StringIO()
    configure_logging("info", "json", stream)
    structlog.get_logger("yotposync").info(
        f"sent with {secret}",
        header=f"Bearer {secret}",
        nested={"headers": [f"x-api-key: {secret}"]},
    )
    [line] = json_lines(stream)
    assert line["event"] == "sent with ***"
    assert line["header"] == "Bearer ***"
    assert line["nested"] == {"headers": ["x-api-key: ***"]}


def test_secret_redacted_in_stdlib_message() -> None:
    secret = "guid-44aa21cc90ef"
    register_secret(secret)
    stream = io.StringIO()
    configure_logging("info", "json", stream)
    logging.getLogger("urllib3.connectionpool").warning("GET /points?guid=%s failed", secret)
    assert json_lines(stream)[0]["event"] == "GET /points?guid=*** failed"


def test_secret_redacted_in_exception() -> None:
    secret = "key-0d9c8b7a6f5e"
    register_secret(secret)
    stream = io.StringIO()
    configure_logging("info", "json", stream)
    try:
        raise PermissionError(f"bad key {secret}")
    except PermissionError as exc:
        structlog.get_logger("yotposync").exception("push_failed", error=exc)
    output = stream.getvalue()
    assert secret not in output
    [line] = json_lines(stream)
    assert line["error"] == "PermissionError('bad key ***')"
    assert "PermissionError: bad key ***" in line["exception"]


def test_secret_redacted_on_console() -> None:
    secret = "tok-77e3b2a1d4c5"
    register_secret(secret)
    stream = TerminalStream()
    configure_logging("info", "console", stream)
    structlog.get_logger("yotposync").info("request_sent", authorization=f"Bearer {secret}")
    output = stream.getvalue()
    assert secret not in output
    assert "Bearer ***" in output


def test_longer_secret_replaced_whole() -> None:
    register_secret("pair-31f2")
    register_secret("pair-31f2-extended")
    stream = io.StringIO()
    configure_logging("info", "json", stream)
    structlog.get_logger("yotposync").info("token_seen", value="pair-31f2-extended")
    assert json_lines(stream)[0]["value"] == "***"


def test_empty_secret_ignored() -> None:
    register_secret("")
    stream = io.StringIO()
    configure_logging("info", "json", stream)
    structlog.get_logger("yotposync").info("plain_event", note="unchanged")
    [line] = json_lines(stream)
    assert line["event"] == "plain_event"
    assert line["note"] == "unchanged"


def test_values_without_secrets_keep_type() -> None:
    register_secret("tok-a1b2c3d4e5f6")
    stream = io.StringIO()
    configure_logging("info", "json", stream)
    structlog.get_logger("yotposync").info("counts", sent=3, ratio=0.5, done=True, missing=None)
    [line] = json_lines(stream)
    assert line["sent"] == 3
    assert line["ratio"] == 0.5
    assert line["done"] is True
    assert line["missing"] is None


# --- mask_email ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "masked"),
    [
        ("pat.lee@example.com", "p***@example.com"),
        ("P@example.com", "P***@example.com"),
        (" pat.lee@example.com ", "p***@example.com"),
        ('"odd@name"@example.com', '"***@example.com'),
        ("@example.com", "***@example.com"),
        ("pat.lee@", "***"),
        ("not-an-address", "***"),
        ("", "***"),
    ],
)
def test_mask_email(address: str, masked: str) -> None:
    assert mask_email(address) == masked


# --- hide_url_secrets ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("https://shop.example.com/api", "https://shop.example.com/api"),
        ("https://u:pw@shop.example.com/api", "https://***@shop.example.com/api"),
        ("https://shop.example.com/api?token=x", "https://shop.example.com/api?***"),
        ("https://shop.example.com/api#token", "https://shop.example.com/api#***"),
        ("https://shop.example.com/api?t=a b\nc", "https://shop.example.com/api?***"),
        ("https://admin:pa?ss@shop.example.com/api", "https://***@shop.example.com/api"),
        ("https://shop.example.com/api?e=a@b", "https://***@b"),
        ("not a url?x", "not a url?x"),
    ],
)
def test_hide_url_secrets(text: str, hidden: str) -> None:
    assert hide_url_secrets(text) == hidden


def test_backoff_lines_are_silenced() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream)
    logging.getLogger("backoff").error("Giving up fetch_once(...) after 4 tries")
    assert json_lines(stream) == []


@pytest.mark.parametrize(("level", "expected"), [("info", False), ("debug", True)])
def test_debug_enabled_follows_the_configured_level(level: str, expected: bool) -> None:
    configure_logging(level, "json", stream=io.StringIO())
    assert debug_enabled("yotposync.delivery") is expected
    assert debug_enabled("yotposync.transactions") is expected


def test_seen_once_forgets_oldest_key() -> None:
    seen = SeenOnce(size=2)
    assert [seen.first_time(key) for key in ("a", "b", "a", "c")] == [True, True, False, True]
    # "b" was the least recently seen of three keys, so it is reported again; "a" is not.
    assert seen.first_time("b") is True
    assert seen.first_time("c") is False
