"""The `[ops]` settings: listen addresses, the ping URL, the optional webhook secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from yotposync.config import Settings, load_settings, sandbox_settings
from yotposync.errors import ConfigError
from yotposync.ops.address import format_listen_address, parse_listen_address

SECRET = "s3cr3t-Webhook_value-0123456789"
SECRETS_ENV = {
    "YOTPOSYNC_HEARTLAND__TOKEN": "token-1234",
    "YOTPOSYNC_YOTPO__GUID": "guid-1234",
    "YOTPOSYNC_YOTPO__API_KEY": "key-1234",
}


def ops_settings(tmp_path: Path, **ops: object) -> Settings:
    return sandbox_settings(
        "http://127.0.0.1:1/api", "http://127.0.0.1:2/api/v2", tmp_path / "l.sqlite3", ops=ops
    )


def ops_problems(tmp_path: Path, **ops: object) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        ops_settings(tmp_path, **ops)
    return caught.value.problems


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:9310", ("127.0.0.1", 9310)),
        ("[::1]:9310", ("::1", 9310)),
        ("0.0.0.0:0", ("0.0.0.0", 0)),
        ("localhost:80", ("localhost", 80)),
    ],
)
def test_listen_address_parsed(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen_address(text) == expected


@pytest.mark.parametrize(
    "text", ["9310", ":9310", "::1:9310", "[127.0.0.1]:80", "example.com:80", "1.2.3.4:65536"]
)
def test_listen_address_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="must"):
        parse_listen_address(text)


def test_listen_address_formatted_ipv6() -> None:
    assert format_listen_address("::1", 9310) == "[::1]:9310"


def test_ops_off_by_default(tmp_path: Path) -> None:
    ops = ops_settings(tmp_path).ops
    assert (ops.listen, ops.ping_url, ops.webhook_listen) == (None, None, None)


def test_empty_listen_is_off(tmp_path: Path) -> None:
    assert ops_settings(tmp_path, listen="").ops.listen is None


def test_invalid_listen_named(tmp_path: Path) -> None:
    assert ops_problems(tmp_path, listen="9310") == [
        'ops.listen = "9310": must be host:port, e.g. "127.0.0.1:9310"'
    ]


def test_ping_url_needs_https(tmp_path: Path) -> None:
    problems = ops_problems(tmp_path, ping_url="http://hc.example.com/abc")
    assert problems[0].startswith('ops.ping_url = "http://hc.example.com/***": must use https')


def test_ping_url_trailing_slash_removed(tmp_path: Path) -> None:
    settings = ops_settings(tmp_path, ping_url="https://hc.example.com/abc/")
    assert settings.ops.ping_url == "https://hc.example.com/abc"


def test_webhook_listen_needs_secret(tmp_path: Path) -> None:
    problems = ops_problems(tmp_path, webhook_listen="127.0.0.1:9311")
    assert problems == [
        "ops: webhook_listen is set but no webhook secret is: set the environment variable "
        "YOTPOSYNC_OPS__WEBHOOK_SECRET, or ops.webhook_secret_file to the path of a file "
        "that contains it"
    ]


def test_webhook_secret_optional(tmp_path: Path) -> None:
    assert ops_settings(tmp_path).webhook_secret() is None


def test_webhook_secret_from_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "webhook-secret"
    secret_file.write_text(SECRET + "\n")
    settings = ops_settings(
        tmp_path, webhook_listen="127.0.0.1:0", webhook_secret_file=str(secret_file)
    )
    assert settings.webhook_secret() == SECRET


def test_webhook_secret_file_from_credentials(tmp_path: Path) -> None:
    (tmp_path / "webhook-secret").write_text(SECRET)
    config = tmp_path / "y.toml"
    config.write_text(
        '[heartland]\nbase_url = "https://x.example/api"\n'
        '[ops]\nwebhook_listen = "127.0.0.1:9311"\nwebhook_secret_file = "webhook-secret"\n'
    )
    environ = SECRETS_ENV | {"CREDENTIALS_DIRECTORY": str(tmp_path)}
    assert load_settings(config, environ=environ).webhook_secret() == SECRET


def test_webhook_secret_missing_file_reported(tmp_path: Path) -> None:
    problems = ops_problems(
        tmp_path, webhook_listen="127.0.0.1:0", webhook_secret_file=str(tmp_path / "none")
    )
    assert problems == [f'ops.webhook_secret_file = "{tmp_path / "none"}": file not found']


def test_short_webhook_secret_rejected(tmp_path: Path) -> None:
    settings = ops_settings(tmp_path, webhook_listen="127.0.0.1:0", webhook_secret="too-short")
    with pytest.raises(ConfigError, match="at least 24 characters"):
        settings.webhook_secret()


def test_webhook_secret_hidden_in_describe(tmp_path: Path) -> None:
    settings = ops_settings(tmp_path, webhook_listen="127.0.0.1:0", webhook_secret=SECRET)
    assert settings.describe()["ops"]["webhook_secret"] == "(set)"
    assert SECRET not in repr(settings)


def test_unset_webhook_secret_described(tmp_path: Path) -> None:
    assert ops_settings(tmp_path).describe()["ops"]["webhook_secret"] == "(not set)"
