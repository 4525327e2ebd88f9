"""The `[offers]` settings: defaults, validation, and the webhook secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from yotposync.config import load_settings
from yotposync.errors import ConfigError

BASE = """
[heartland]
base_url = "https://mystore.retail.heartland.us/api"
token = "t"
[yotpo]
guid = "g"
api_key = "k"
"""


def _load(tmp_path: Path, offers: str) -> object:
    path = tmp_path / "yotposync.toml"
    path.write_text(BASE + "[offers]\n" + offers)
    return load_settings(path, environ={})


def test_offers_defaults(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, BASE), environ={})
    assert settings.offers.restore_policy == "proportional"
    assert settings.offers.webhook_listen is None
    assert settings.offers_webhook_secret() is None


def test_unknown_restore_policy_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        _load(tmp_path, 'restore_policy = "half"\n')
    assert "offers.restore_policy" in str(error.value)


def test_webhook_needs_secret(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        _load(tmp_path, 'webhook_listen = "127.0.0.1:9320"\n')
    assert "YOTPOSYNC_OFFERS__WEBHOOK_SECRET" in str(error.value)


def test_webhook_listen_must_be_address(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        _load(tmp_path, 'webhook_listen = "example.com:80"\nwebhook_secret = "s"\n')


def test_webhook_secret_from_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "offers-secret"
    secret_file.write_text("from-a-file-0123456789abcdef\n")
    text = f'webhook_listen = "127.0.0.1:0"\nwebhook_secret_file = "{secret_file}"\n'
    settings = load_settings(_write(tmp_path, BASE + "[offers]\n" + text), environ={})
    assert settings.offers_webhook_secret() == "from-a-file-0123456789abcdef"
    assert settings.describe()["offers"]["webhook_secret"] == "(set)"


def test_webhook_secret_from_environment(tmp_path: Path) -> None:
    path = _write(tmp_path, BASE + '[offers]\nwebhook_listen = "127.0.0.1:0"\n')
    environ = {"YOTPOSYNC_OFFERS__WEBHOOK_SECRET": "from-env-0123456789abcdefgh"}
    settings = load_settings(path, environ=environ)
    assert settings.offers_webhook_secret() == "from-env-0123456789abcdefgh"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "yotposync.toml"
    path.write_text(text)
    return path


def test_max_discount_default(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, BASE), environ={})
    assert settings.offers.max_discount_cents == 50000


@pytest.mark.parametrize("value", ["0", "-1", "10000001"])
def test_max_discount_out_of_range_rejected(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError) as error:
        _load(tmp_path, f"max_discount_cents = {value}\n")
    assert f"offers.max_discount_cents = {value}: must be between 1 and 10000000" in str(
        error.value
    )
