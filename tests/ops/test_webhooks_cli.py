"""`yotposync webhooks delete` and `register` through the real command line.

Heartland is either `responses` at the HTTP edge, where a test must see every request the
command sends, or the sandbox's webhook emulator on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import responses

from tests.ops.scenario import write_config
from tests.reliability.support import invoke
from yotposync.sandbox import Sandbox

WEBHOOK_SECRET = "webhooks-cli-test-secret-0123456789"
# `responses` serves this address, so no request leaves the process.
MOCKED_HEARTLAND = "http://127.0.0.1:9/api"


class _MockedSandbox:
    """The two base URLs that write_config needs, both served by `responses`."""

    heartland_url = MOCKED_HEARTLAND
    yotpo_url = "http://127.0.0.1:9/api/v2"


def webhook_config(path: Path, sandbox: object) -> Path:
    config = path / "yotposync.toml"
    write_config(
        config,
        sandbox,  # type: ignore[arg-type]
        path / "ledger.sqlite3",
        extra=f'[ops]\nwebhook_secret = "{WEBHOOK_SECRET}"\n',
    )
    return config


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    # Every request fails unless a test registers it, and every one is recorded in `calls`.
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.mark.parametrize("webhook_id", ["abc", "0", "-3", "1.5", "12abc", "", "1_000", "١٢"])
def test_delete_rejects_invalid_id(
    tmp_path: Path, mocked: responses.RequestsMock, webhook_id: str
) -> None:
    config = webhook_config(tmp_path, _MockedSandbox())

    result = invoke("--config", str(config), "webhooks", "delete", "--", webhook_id)

    assert result.exit_code == 2
    assert f"{webhook_id!r} is not a webhook id" in result.stderr
    assert "whole number from 1 up, such as 12" in result.stderr
    assert "yotposync webhooks list" in result.stderr
    assert len(mocked.calls) == 0


def test_delete_sends_numeric_id(tmp_path: Path, mocked: responses.RequestsMock) -> None:
    config = webhook_config(tmp_path, _MockedSandbox())
    mocked.add(responses.DELETE, f"{MOCKED_HEARTLAND}/webhooks/12", status=204)

    result = invoke("--config", str(config), "webhooks", "delete", " 012 ")

    assert result.exit_code == 0, result.output
    assert result.stdout == "Deleted webhook 12.\n"
    assert [call.request.url for call in mocked.calls] == [f"{MOCKED_HEARTLAND}/webhooks/12"]


def test_delete_unknown_id_points_to_list(tmp_path: Path, mocked: responses.RequestsMock) -> None:
    config = webhook_config(tmp_path, _MockedSandbox())
    mocked.add(
        responses.DELETE,
        f"{MOCKED_HEARTLAND}/webhooks/999",
        status=404,
        json={"error": "Not found"},
    )

    result = invoke("--config", str(config), "webhooks", "delete", "999")

    assert result.exit_code == 1
    assert "error: Heartland has no webhook 999" in result.stderr
    assert "yotposync webhooks list" in result.stderr


def registered_urls(sandbox: Sandbox) -> list[str]:
    response = requests.get(
        f"{sandbox.heartland_url}/webhooks",
        headers={"Authorization": f"Bearer {sandbox.heartland_token}"},
        timeout=5,
    )
    return [hook["url"] for hook in response.json()["results"]]


def post_registration(sandbox: Sandbox, url: str) -> None:
    created = requests.post(
        f"{sandbox.heartland_url}/webhooks",
        json={"url": url, "events": ["sales_transaction_completed"]},
        headers={"Authorization": f"Bearer {sandbox.heartland_token}"},
        timeout=5,
    )
    assert created.status_code == 201, created.text


@pytest.mark.parametrize("configured", ["another", "none"])
def test_list_hides_any_receiver_secret(tmp_path: Path, configured: str) -> None:
    # A registration left from before a rotation, whose secret is not the configured one.
    old_secret = "S3CR3TwebhookABCDEFGHIJKLMNOPQRSTUV"
    with Sandbox(store=None) as sandbox:
        if configured == "none":
            config = tmp_path / "yotposync.toml"
            write_config(config, sandbox, tmp_path / "ledger.sqlite3")
        else:
            config = webhook_config(tmp_path, sandbox)
        post_registration(sandbox, f"http://127.0.0.1:18833/heartland/{old_secret}")
        post_registration(sandbox, "http://127.0.0.1:18834/other-service/hook")

        result = invoke("--config", str(config), "webhooks", "list")

    assert result.exit_code == 0, result.output
    assert old_secret not in result.output
    assert result.stdout == (
        "1: http://127.0.0.1:18833/heartland/*** (sales_transaction_completed)\n"
        "2: http://127.0.0.1:18834/other-service/hook (sales_transaction_completed)\n"
    )


def test_register_port_spellings_once(tmp_path: Path) -> None:
    with Sandbox(store=None) as sandbox:
        config = webhook_config(tmp_path, sandbox)

        first = invoke(
            "--config", str(config), "webhooks", "register", "--url", "https://127.0.0.1:18751"
        )
        second = invoke(
            "--config", str(config), "webhooks", "register", "--url", "https://127.0.0.1:018751/"
        )
        urls = registered_urls(sandbox)

    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert "Registered webhook 1" in first.stdout
    assert "Already registered: webhook 1" in second.stdout
    assert "https://127.0.0.1:18751/heartland/***" in second.stdout
    assert urls == [f"https://127.0.0.1:18751/heartland/{WEBHOOK_SECRET}"]


def test_register_finds_old_spelling(tmp_path: Path) -> None:
    with Sandbox(store=None) as sandbox:
        config = webhook_config(tmp_path, sandbox)
        # A registration made before the port was normalised, with its leading zero.
        old = f"https://127.0.0.1:018751/heartland/{WEBHOOK_SECRET}"
        post_registration(sandbox, old)

        result = invoke(
            "--config", str(config), "webhooks", "register", "--url", "https://127.0.0.1:18751"
        )
        urls = registered_urls(sandbox)

    assert result.exit_code == 0, result.output
    assert "Already registered: webhook 1" in result.stdout
    assert urls == [old]
