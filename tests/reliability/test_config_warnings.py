"""Warnings about how secrets are given, through the real command line and a real ledger.

`status` and the other commands that read only the ledger treat a malformed secret as a
warning, not an error.
A secret written in the configuration file works but is logged once at start-up by name.
A webhook secret too weak to guard its receiver stops `check` and the daemon.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.reliability.support import invoke
from yotposync.ledger import Ledger, LedgerLock
from yotposync.logs import redact_text

TOKEN = "file-token-4a7c19e2"
GUID = "file-guid-0d5b33f1"
API_KEY = "file-apikey-9c21aa07"
WEBHOOK_SECRET = "file-webhook-secret-0123456789abcdef"
# Nothing listens here, and the commands below send no request.
BASE_URL = "http://127.0.0.1:9/api"


def write_config(tmp_path: Path, secrets: str = "") -> Path:
    config = tmp_path / "yotposync.toml"
    config.write_text(
        f"""
[heartland]
base_url = "{BASE_URL}"

[yotpo]
base_url = "{BASE_URL}/v2"

[ledger]
path = "{tmp_path / "ledger.sqlite3"}"

[logging]
format = "json"

{secrets}
""",
        encoding="utf-8",
    )
    return config


def create_ledger(config: Path) -> None:
    Ledger.open(config.parent / "ledger.sqlite3").close()


def log_events(output: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_status_runs_with_malformed_secret(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    create_ledger(config)

    result = invoke(
        "--config", str(config), "status", env={"YOTPOSYNC_YOTPO__API_KEY": f"{API_KEY}\nx"}
    )

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"Ledger: {tmp_path / 'ledger.sqlite3'}\n")
    assert result.stderr == (
        "warning: yotpo.api_key (from YOTPOSYNC_YOTPO__API_KEY) contains a line break or "
        "another control character, which no HTTP header can carry: keep the secret on one "
        "line\n"
    )
    assert API_KEY not in result.output


def test_status_json_keeps_warning_on_stderr(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    create_ledger(config)

    result = invoke(
        "--config",
        str(config),
        "status",
        "--json",
        env={"YOTPOSYNC_HEARTLAND__TOKEN": f"{TOKEN}\u20ac"},
    )

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["ledger"] == str(tmp_path / "ledger.sqlite3")
    assert result.stderr.startswith("warning: heartland.token (from YOTPOSYNC_HEARTLAND__TOKEN)")
    assert TOKEN not in result.output


def test_daemon_logs_secrets_in_file_once(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        f"""
[ops]
webhook_secret = "{WEBHOOK_SECRET}"
""",
    )
    config.write_text(
        config.read_text(encoding="utf-8")
        .replace("[heartland]\n", f'[heartland]\ntoken = "{TOKEN}"\n')
        .replace("[yotpo]\n", f'[yotpo]\nguid = "{GUID}"\napi_key = "{API_KEY}"\n'),
        encoding="utf-8",
    )
    create_ledger(config)

    # The test locks the ledger, so the daemon stops right after start-up, as when another
    # daemon runs.
    with LedgerLock(tmp_path / "ledger.sqlite3"):
        result = invoke("--config", str(config), "run")

    warnings = [event for event in log_events(result.stdout) if event["event"] == "config_warning"]
    assert result.exit_code == 1
    assert [event["level"] for event in warnings] == ["warning"] * 4
    named = [str(event["detail"]).split(" ", 1)[0] for event in warnings]
    assert named == ["heartland.token", "yotpo.guid", "yotpo.api_key", "ops.webhook_secret"]
    assert "YOTPOSYNC_YOTPO__API_KEY or to a file named by yotpo.api_key_file" in str(warnings)
    for secret in (TOKEN, GUID, API_KEY, WEBHOOK_SECRET):
        assert secret not in result.output


def test_secrets_from_environment_log_nothing(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    create_ledger(config)
    env = {
        "YOTPOSYNC_HEARTLAND__TOKEN": TOKEN,
        "YOTPOSYNC_YOTPO__GUID": GUID,
        "YOTPOSYNC_YOTPO__API_KEY": API_KEY,
    }

    with LedgerLock(tmp_path / "ledger.sqlite3"):
        result = invoke("--config", str(config), "run", env=env)

    assert result.exit_code == 1
    assert "config_warning" not in result.output


LEDGER_ONLY_COMMANDS = [
    ("report", "--since", "2026-01-01"),
    ("explain", "1", "--no-balance"),
    ("retry-failed",),
    ("customers", "review"),
    ("offers", "list"),
]


def test_ledger_only_commands_run_with_malformed_secret(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    create_ledger(config)
    env = {"YOTPOSYNC_YOTPO__API_KEY": f"{API_KEY}\nx"}

    for command in LEDGER_ONLY_COMMANDS:
        result = invoke("--config", str(config), *command, env=env)

        # explain exits 1 because ticket 1 is not in the empty ledger; the rest succeed.
        expected = 1 if command[0] == "explain" else 0
        assert result.exit_code == expected, (command, result.output)
        # Every one of them prints the warning the same way.
        warning = "warning: yotpo.api_key (from YOTPOSYNC_YOTPO__API_KEY) contains a line break"
        assert warning in result.stderr, command
        assert "config_warning" not in result.output, command
        assert API_KEY not in result.output, command


def test_explain_with_balance_rejects_malformed_secret(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    create_ledger(config)

    result = invoke(
        "--config", str(config), "explain", "1", env={"YOTPOSYNC_YOTPO__API_KEY": f"{API_KEY}\nx"}
    )

    assert result.exit_code == 2, result.output
    assert "contains a line break" in result.output
    assert API_KEY not in result.output


def test_ledger_only_commands_need_no_webhook_secret(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[ops]\nwebhook_listen = "127.0.0.1:18751"\n')
    create_ledger(config)

    for command in [("status",), *LEDGER_ONLY_COMMANDS]:
        result = invoke("--config", str(config), *command)

        expected = 1 if command[0] == "explain" else 0
        assert result.exit_code == expected, (command, result.output)
        assert "webhook secret" not in result.output, command


def test_daemon_requires_webhook_secret_when_listening(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[ops]\nwebhook_listen = "127.0.0.1:18751"\n')
    env = {
        "YOTPOSYNC_HEARTLAND__TOKEN": TOKEN,
        "YOTPOSYNC_YOTPO__GUID": GUID,
        "YOTPOSYNC_YOTPO__API_KEY": API_KEY,
    }

    result = invoke("--config", str(config), "run", env=env)

    assert result.exit_code == 2, result.output
    assert "ops: webhook_listen is set but no webhook secret is" in result.output


WEAK_SECRET_PROBLEM = (
    "must be at least 24 characters of A-Z, a-z, 0-9, '-' and '_', with at least 12 different "
    "ones: make one with python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
)
WEAK_SECRETS = [
    "short",
    "a b/c?d",
    "MARKER-23-characters-ab",
    "MARKER-twenty-four-chars+",
    "aaaaaaaaaaaaaaaaaaaaaaaa",
    "123456789012345678901234",
    "changeme-changeme-changeme",
]
API_SECRETS = {
    "YOTPOSYNC_HEARTLAND__TOKEN": TOKEN,
    "YOTPOSYNC_YOTPO__GUID": GUID,
    "YOTPOSYNC_YOTPO__API_KEY": API_KEY,
}


@pytest.mark.parametrize("section", ["ops", "offers"])
@pytest.mark.parametrize("secret", WEAK_SECRETS)
def test_check_rejects_weak_webhook_secret(tmp_path: Path, section: str, secret: str) -> None:
    config = write_config(tmp_path, f'[{section}]\nwebhook_listen = "127.0.0.1:18752"\n')
    env = {**API_SECRETS, f"YOTPOSYNC_{section.upper()}__WEBHOOK_SECRET": secret}

    result = invoke("--config", str(config), "check", env=env)

    assert result.exit_code == 2, result.output
    assert result.stdout == (
        f"PROBLEM  configuration: {section}.webhook_secret {WEAK_SECRET_PROBLEM}\n"
        "1 problem found.\n"
    )
    assert secret not in result.output


@pytest.mark.parametrize("section", ["ops", "offers"])
def test_daemon_rejects_weak_webhook_secret(tmp_path: Path, section: str) -> None:
    config = write_config(tmp_path, f'[{section}]\nwebhook_listen = "127.0.0.1:18752"\n')
    create_ledger(config)
    env = {**API_SECRETS, f"YOTPOSYNC_{section.upper()}__WEBHOOK_SECRET": "short"}

    # With the ledger locked, a daemon that got past its settings would stop with exit code 1.
    with LedgerLock(tmp_path / "ledger.sqlite3"):
        result = invoke("--config", str(config), "run", env=env)

    assert result.exit_code == 2, result.output
    assert f"{section}.webhook_secret {WEAK_SECRET_PROBLEM}" in result.output
    assert "daemon_started" not in result.output


def test_ledger_only_commands_ignore_weak_webhook_secret(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    create_ledger(config)
    env = {"YOTPOSYNC_OPS__WEBHOOK_SECRET": "short", "YOTPOSYNC_OFFERS__WEBHOOK_SECRET": "short"}

    for command in LEDGER_ONLY_COMMANDS:
        result = invoke("--config", str(config), *command, env=env)

        expected = 1 if command[0] == "explain" else 0
        assert result.exit_code == expected, (command, result.output)
        assert "webhook_secret" not in result.output, command


def test_offers_webhook_secret_redacted(tmp_path: Path) -> None:
    secret = "offers-redaction-secret-5b7e02c4d1"
    config = write_config(tmp_path, '[offers]\nwebhook_listen = "127.0.0.1:18752"\n')
    create_ledger(config)
    env = {**API_SECRETS, "YOTPOSYNC_OFFERS__WEBHOOK_SECRET": secret}

    result = invoke("--config", str(config), "retry-failed", env=env)

    assert result.exit_code == 0, result.output
    assert redact_text(f"secret {secret}") == "secret ***"
