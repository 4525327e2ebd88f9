"""`yotposync check` against the sandbox: every finding and its fix, never a secret."""

from __future__ import annotations

import http.server
import os
import socket
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.ops.scenario import SECRETS, Scenario, run_cli, write_config
from yotposync.clients.heartland import HeartlandClient
from yotposync.clients.http import RetryPolicy
from yotposync.clients.yotpo import YotpoClient
from yotposync.config import Settings, sandbox_settings
from yotposync.ledger import Ledger, LedgerLock
from yotposync.ledger.integrity import MOVED_ASIDE_ADVICE
from yotposync.ops.check import (
    LOW_FREE_SPACE_BYTES,
    OK,
    PROBLEM,
    WARNING,
    Finding,
    check_go_live,
    check_heartland,
    check_installation,
    check_ledger,
    check_listen_addresses,
    check_secret_files,
    check_webhook,
    check_yotpo,
)
from yotposync.ops.command_clients import command_heartland, command_yotpo
from yotposync.ops.heartland_webhooks import receiver_url, register_webhook
from yotposync.sandbox import Sandbox

WEBHOOK_SECRET = "check-test-secret-0123456789abcdef"
NO_RETRY = RetryPolicy(max_tries=1)


def settings_for(scenario: Scenario, ledger: Path, **sections: dict[str, object]) -> Settings:
    sandbox = scenario.sandbox
    return sandbox_settings(sandbox.heartland_url, sandbox.yotpo_url, ledger, **sections)


def run_checks(settings: Settings) -> list[Finding]:
    return check_installation(
        settings,
        heartland=lambda: command_heartland(settings),
        yotpo=lambda: command_yotpo(settings),
    )


def problems(findings: list[Finding]) -> list[str]:
    return [f"{f.subject}: {f.message}" for f in findings if f.status == PROBLEM]


@pytest.fixture(scope="module")
def ready_output(scenario: Scenario) -> subprocess.CompletedProcess[str]:
    return scenario.cli("check", check=False)


def test_ready_exits_0(ready_output: subprocess.CompletedProcess[str]) -> None:
    assert ready_output.returncode == 0
    assert ready_output.stdout.strip().endswith("Ready to run.")


def test_ready_checks_reads(ready_output: subprocess.CompletedProcess[str]) -> None:
    for read in ("locations", "sales tickets", "customers"):
        assert f"ok       heartland: can read {read}" in ready_output.stdout


def test_ready_prints_no_secret(ready_output: subprocess.CompletedProcess[str]) -> None:
    for secret in SECRETS:
        assert secret not in ready_output.stdout + ready_output.stderr


def test_wrong_token_exits_1(scenario: Scenario, tmp_path: Path) -> None:
    config = tmp_path / "y.toml"
    write_config(config, scenario.sandbox, tmp_path / "ledger.sqlite3")
    config.write_text(config.read_text().replace(SECRETS[0], "wrong-token-5f1e9a"))
    result = run_cli(config, "check", check=False)
    assert result.returncode == 1
    assert "PROBLEM  heartland: credentials rejected" in result.stdout
    assert "fix: generate a new token in Heartland" in result.stdout
    # Another service at the configured address may also reject the token.
    assert "if they are right, check that heartland.base_url is this API's address" in (
        result.stdout
    )
    assert "wrong-token-5f1e9a" not in result.stdout + result.stderr


def test_secret_in_file_is_warning_finding(scenario: Scenario, tmp_path: Path) -> None:
    config = tmp_path / "y.toml"
    write_config(config, scenario.sandbox, tmp_path / "ledger.sqlite3")
    config.write_text(config.read_text().replace(SECRETS[0], "file-token-7d02c4"))

    result = run_cli(config, "check", check=False)

    assert "WARNING  configuration: heartland.token is written in the configuration file" in (
        result.stdout
    )
    assert "config_warning" not in result.stderr
    assert "file-token-7d02c4" not in result.stdout + result.stderr


def test_shared_secret_file_is_warning_finding(scenario: Scenario, tmp_path: Path) -> None:
    config = tmp_path / "y.toml"
    token_file = tmp_path / "heartland-token"
    token_file.write_text(SECRETS[0] + "\n", encoding="utf-8")
    token_file.chmod(0o644)
    write_config(config, scenario.sandbox, tmp_path / "ledger.sqlite3")
    config.write_text(
        config.read_text().replace(f'token = "{SECRETS[0]}"', f'token_file = "{token_file}"')
    )

    result = run_cli(config, "check", check=False)

    assert (
        f"WARNING  configuration: heartland.token_file: {token_file} has mode 0644, so other "
        "users may read the secret it contains"
    ) in result.stdout
    assert f"run chmod 600 {token_file}" in result.stdout
    assert result.returncode == 0, result.stdout + result.stderr


def test_secret_file_mode_checked(scenario: Scenario, tmp_path: Path) -> None:
    token_file = tmp_path / "heartland-token"
    token_file.write_text(SECRETS[0], encoding="utf-8")
    settings = sandbox_settings(
        scenario.sandbox.heartland_url,
        scenario.sandbox.yotpo_url,
        tmp_path / "ledger.sqlite3",
        heartland={"token": None, "token_file": str(token_file)},
    )

    token_file.chmod(0o600)
    private = check_secret_files(settings)
    token_file.chmod(0o640)
    shared = check_secret_files(settings)

    assert private == []
    assert [f.status for f in shared] == [WARNING]
    assert shared[0].message.startswith(f"heartland.token_file: {token_file} has mode 0640")


def test_invalid_config_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "y.toml"
    config.write_text('[heartland]\nbase_url = "ftp://x"\n[ops]\nlisten = "9310"\n')
    result = run_cli(config, "check", check=False)
    assert result.returncode == 2
    assert 'PROBLEM  configuration: ops.listen = "9310": must be host:port' in result.stdout


def test_unknown_rule_field_is_problem(scenario: Scenario, tmp_path: Path) -> None:
    settings = settings_for(
        scenario,
        tmp_path / "ledger.sqlite3",
        rules={"exclude_ticket_custom_fields": [{"key": "web_order_number"}]},
    )
    assert problems(run_checks(settings)) == [
        "rules: rules.exclude_ticket_custom_fields names 'web_order_number', which is not a "
        "sales.transaction custom field in Heartland, so the rule never matches"
    ]


def test_unknown_location_is_problem(scenario: Scenario, tmp_path: Path) -> None:
    settings = settings_for(
        scenario,
        tmp_path / "ledger.sqlite3",
        rules={"exclude_location_ids": [201, 999], "exclude_station_ids": [301]},
    )
    assert problems(run_checks(settings)) == [
        "rules: rules.exclude_location_ids names [999], which Heartland does not have, so "
        "those entries never match"
    ]


def test_future_go_live_warned(tmp_path: Path) -> None:
    now = datetime(2026, 12, 5, tzinfo=UTC)
    settings = sandbox_settings(
        "http://127.0.0.1:1/api",
        "http://127.0.0.1:1/api/v2",
        tmp_path,
        sync={"go_live": datetime(2099, 1, 1, tzinfo=UTC)},
    )

    [finding] = check_go_live(settings, now)

    assert finding.status == WARNING
    assert finding.message.startswith("sync.go_live = 2099-01-01T00:00:00+00:00 is in the future")
    assert check_go_live(settings, datetime(2099, 1, 2, tzinfo=UTC)) == []


def test_unreachable_heartland_is_problem(tmp_path: Path) -> None:
    settings = sandbox_settings("http://127.0.0.1:1/api", "http://127.0.0.1:1/api/v2", tmp_path)
    client = HeartlandClient(settings.heartland.base_url, "token", retry=NO_RETRY)
    reachable, findings = check_heartland(settings, client)
    assert reachable is False
    assert findings[0].message.startswith("cannot reach http://127.0.0.1:1/api")
    assert findings[0].fix is not None
    assert findings[0].fix.startswith("check heartland.base_url")


class _Answer(http.server.BaseHTTPRequestHandler):
    """Respond to every GET with the same status, headers and body."""

    status = 302
    headers_sent: tuple[tuple[str, str], ...] = (("Location", "https://127.0.0.1/api"),)
    body = b""

    def do_GET(self) -> None:
        self.send_response(self.status)
        for name, value in self.headers_sent:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Redirect(_Answer):
    pass


class _WebPage(_Answer):
    status = 200
    headers_sent = (("Content-Type", "text/html"),)
    body = b"<html>Welcome</html>"


class _BadRequest(_Answer):
    status = 400
    headers_sent = (("Content-Type", "application/json"),)
    body = b'{"error": "invalid_request", "message": "unknown parameter"}'


class _OtherJson(_Answer):
    status = 200
    headers_sent = (("Content-Type", "application/json"),)
    body = b'{"status": "ok"}'


class _ListsButNotCustomFields(_OtherJson):
    """Respond to every list request with an empty Heartland list, except custom fields."""

    def do_GET(self) -> None:
        other = self.path.split("?")[0].endswith("/custom_fields")
        self.body = b'{"status": "ok"}' if other else b'{"results": [], "total": 0}'
        super().do_GET()


class _JunkInLocationList(_OtherJson):
    """Respond with empty Heartland lists, except a full location list containing junk."""

    def do_GET(self) -> None:
        full_locations = "/locations?" in self.path and "per_page=all" in self.path
        self.body = (
            b'{"results": [{"foo": 1}, 7, null]}'
            if full_locations
            else b'{"results": [], "total": 0}'
        )
        super().do_GET()


def heartland_findings_from(
    handler: type[http.server.BaseHTTPRequestHandler], tmp_path: Path
) -> tuple[str, Finding]:
    """Run check_heartland against a loopback server; return its base URL and first problem."""
    base, _, findings = all_heartland_findings(handler, tmp_path)
    return base, next(f for f in findings if f.status == PROBLEM)


def all_heartland_findings(
    handler: type[http.server.BaseHTTPRequestHandler],
    tmp_path: Path,
    rules: dict[str, object] | None = None,
) -> tuple[str, bool, list[Finding]]:
    """Run check_heartland against a loopback server; return its base URL and the result."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}/api"
    try:
        extra = {"rules": rules} if rules is not None else {}
        settings = sandbox_settings(base, "http://127.0.0.1:1/api/v2", tmp_path, **extra)
        client = HeartlandClient(base, "token", retry=NO_RETRY)
        reachable, findings = check_heartland(settings, client)
    finally:
        server.shutdown()
        server.server_close()
    return base, reachable, findings


def test_rejecting_heartland_is_problem(tmp_path: Path) -> None:
    _, problem = heartland_findings_from(_BadRequest, tmp_path)
    assert "HTTP 400: invalid_request: unknown parameter" in problem.message
    assert problem.fix == (
        "check heartland.base_url: this server does not accept the API's requests there"
    )


def test_redirecting_heartland_is_problem(tmp_path: Path) -> None:
    base, problem = heartland_findings_from(_Redirect, tmp_path)
    assert problem.message == (
        f"{base} answered with a redirect (HTTP 302), which yotposync does not follow"
    )
    assert problem.fix is not None
    assert problem.fix.startswith("set heartland.base_url to the address it redirects to")


def test_web_page_instead_of_heartland_is_problem(tmp_path: Path) -> None:
    base, problem = heartland_findings_from(_WebPage, tmp_path)
    assert problem.message.startswith(f"{base} answered the request for")
    assert "with HTTP 200, but not with the API's response (invalid JSON" in problem.message
    assert problem.fix is not None
    assert problem.fix.startswith("check heartland.base_url: it must be the API's address")


def test_other_json_service_is_problem(tmp_path: Path) -> None:
    base, reachable, findings = all_heartland_findings(_OtherJson, tmp_path)
    # One problem: nothing about the token or the rules, which that service cannot tell.
    assert [(f.status, f.message) for f in findings] == [
        (PROBLEM, f"reading locations from {base} returned JSON that is not a Heartland list")
    ]
    assert findings[0].fix == (
        "check that heartland.base_url is the API's address; another service may answer there"
    )
    assert reachable is False


def test_unreadable_custom_fields_leave_rules_unchecked(tmp_path: Path) -> None:
    _, reachable, findings = all_heartland_findings(_ListsButNotCustomFields, tmp_path)
    rules = [(f.status, f.message) for f in findings if f.subject == "rules"]
    assert rules == [
        (
            WARNING,
            "cannot check the rules' keys: Heartland's list of custom fields came back in another "
            "shape",
        )
    ]
    assert reachable is True


def test_location_rules_checked_without_custom_fields(tmp_path: Path) -> None:
    rules: dict[str, object] = {"exclude_location_ids": [201]}
    _, _, findings = all_heartland_findings(_ListsButNotCustomFields, tmp_path, rules)
    messages = [f.message for f in findings if f.subject == "rules"]
    assert len(messages) == 2
    assert messages[0].startswith("cannot check the rules' keys")
    assert messages[1].startswith("rules.exclude_location_ids names [201]")


def test_junk_location_list_leaves_ids_unchecked(tmp_path: Path) -> None:
    rules: dict[str, object] = {"exclude_location_ids": [201]}
    _, _, findings = all_heartland_findings(_JunkInLocationList, tmp_path, rules)
    location_findings = [
        (f.status, f.message) for f in findings if f.subject == "rules" and "location" in f.message
    ]
    assert location_findings == [
        (
            WARNING,
            "cannot check the rules' location and station ids: Heartland's list of locations "
            "came back in another shape",
        )
    ]


class _ArrayOfText(_OtherJson):
    body = b'["a", "b"]'


@pytest.mark.parametrize("handler", [_OtherJson, _ArrayOfText])
def test_other_json_service_is_yotpo_problem(
    tmp_path: Path, handler: type[http.server.BaseHTTPRequestHandler]
) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}/api/v2"
    try:
        settings = sandbox_settings("http://127.0.0.1:1/api", base, tmp_path)
        client = YotpoClient(base, "guid", "key", retry=NO_RETRY)
        findings = check_yotpo(settings, client)
    finally:
        server.shutdown()
        server.server_close()
    assert [(f.status, f.message) for f in findings] == [
        (PROBLEM, f"reading VIP tiers from {base} returned JSON that is not an array of VIP tiers")
    ]


@pytest.mark.parametrize("below", ["ledger.sqlite3", "deeper/ledger.sqlite3"])
def test_ledger_under_file_is_problem(tmp_path: Path, below: str) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    findings = check_ledger(blocker / below)
    assert findings[0].status == PROBLEM
    assert f"runs through {blocker}, which is a file, not a folder" in findings[0].message
    assert (findings[0].fix or "").startswith("set ledger.path to a file in a folder")


def test_lock_path_folder_is_problem(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.sqlite3"
    (tmp_path / "ledger.sqlite3.lock").mkdir()

    findings = check_ledger(ledger)

    assert findings[0].status == PROBLEM
    assert findings[0].message == f"the lock file {ledger}.lock is a folder"
    assert (findings[0].fix or "").startswith("remove it")


def test_new_ledger_will_be_created(tmp_path: Path) -> None:
    findings = check_ledger(tmp_path / "state" / "ledger.sqlite3")
    assert findings[0].status == OK
    assert "will be created on the first run" in findings[0].message


def test_shared_ledger_file_warned(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.sqlite3"
    Ledger.open(ledger).close()
    ledger.chmod(0o644)

    findings = check_ledger(ledger)

    assert [f.status for f in findings] == [OK, WARNING]
    assert "mode 0644" in findings[1].message
    assert findings[1].fix == f"run chmod 600 {ledger}"


def test_private_ledger_file_not_warned(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.sqlite3"
    Ledger.open(ledger).close()

    findings = check_ledger(ledger)

    assert [f.status for f in findings] == [OK]


def test_low_free_space_warned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = tmp_path / "ledger.sqlite3"
    Ledger.open(ledger).close()
    free = LOW_FREE_SPACE_BYTES - 1
    monkeypatch.setattr(
        "yotposync.ops.check.shutil.disk_usage",
        lambda folder: SimpleNamespace(free=free),
    )

    findings = check_ledger(ledger)

    assert [f.status for f in findings] == [OK, WARNING]
    assert findings[1].message.startswith(f"the file system of {tmp_path} has 100.0 MiB free")
    assert findings[1].fix is not None
    assert "set ledger.path" in findings[1].fix


def test_full_file_system_warned_before_first_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        "yotposync.ops.check.shutil.disk_usage",
        lambda folder: SimpleNamespace(free=0),
    )

    findings = check_ledger(tmp_path / "state" / "ledger.sqlite3")

    assert [f.status for f in findings] == [OK, WARNING]
    assert f"the file system of {tmp_path} has 0.0 MiB free" in findings[1].message


def test_ledger_damaged_inside_is_problem(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.sqlite3"
    Ledger.open(ledger).close()
    with closing(sqlite3.connect(ledger)) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        root = connection.execute(
            "SELECT rootpage FROM sqlite_master WHERE type = 'table' AND name = 'pushes'"
        ).fetchone()[0]
        size = connection.execute("PRAGMA page_size").fetchone()[0]
    data = bytearray(ledger.read_bytes())
    data[(root - 1) * size : root * size] = bytes(range(256)) * (size // 256)
    ledger.write_bytes(bytes(data))

    findings = check_ledger(ledger)

    assert findings[0].status == PROBLEM
    assert findings[0].message.startswith(f"{ledger} is damaged (")
    assert "\n" not in findings[0].message
    assert "restore the ledger from a backup" in (findings[0].fix or "")


@pytest.mark.parametrize(
    ("statement", "missing"),
    [
        ("DROP TABLE pushes", "the table pushes"),
        ("ALTER TABLE tickets DROP COLUMN rule", "the column tickets.rule"),
        ("ALTER TABLE customers RENAME COLUMN email_key TO key", "the column customers.email_key"),
    ],
)
def test_ledger_missing_schema_is_problem(tmp_path: Path, statement: str, missing: str) -> None:
    ledger = tmp_path / "ledger.sqlite3"
    Ledger.open(ledger).close()
    with closing(sqlite3.connect(ledger, isolation_level=None)) as connection:
        connection.execute(statement)

    findings = check_ledger(ledger)

    assert findings[0].status == PROBLEM
    assert findings[0].message == (
        f"the ledger {ledger} is missing {missing}, so the ledger was edited or damaged"
    )
    assert findings[0].fix == MOVED_ASIDE_ADVICE


def test_ledger_added_table_not_problem(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.sqlite3"
    Ledger.open(ledger).close()
    with closing(sqlite3.connect(ledger, isolation_level=None)) as connection:
        connection.execute("CREATE TABLE notes (text TEXT)")
        connection.execute("ALTER TABLE pushes ADD COLUMN note TEXT")

    findings = check_ledger(ledger)

    assert [f.status for f in findings] == [OK]


def test_emptied_ledger_is_problem(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.sqlite3"
    with LedgerLock(ledger):
        Ledger.open(ledger).close()
    ledger.write_bytes(b"")

    findings = check_ledger(ledger)

    assert [f.status for f in findings] == [PROBLEM]
    assert "content was lost" in findings[0].message
    assert "delete the empty file" in (findings[0].fix or "")


def test_empty_ledger_before_first_run_ok(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.sqlite3"
    ledger.write_bytes(b"")

    findings = check_ledger(ledger)

    assert [f.status for f in findings] == [OK]
    assert "the first run sets it up" in findings[0].message


def test_corrupt_ledger_is_problem(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.sqlite3"
    ledger.write_bytes(b"this is not a database" * 100)
    findings = check_ledger(ledger)
    assert findings[0].status == PROBLEM
    assert findings[0].fix == "restore the ledger from a backup"


@pytest.fixture
def webhook_sandbox() -> Iterator[Sandbox]:
    with Sandbox(store=None) as sandbox:
        yield sandbox


def webhook_settings(sandbox: Sandbox, tmp_path: Path, secret: str) -> Settings:
    return sandbox_settings(
        sandbox.heartland_url,
        sandbox.yotpo_url,
        tmp_path / "ledger.sqlite3",
        ops={"webhook_listen": "127.0.0.1:0", "webhook_secret": secret},
    )


def test_unregistered_webhook_is_problem(webhook_sandbox: Sandbox, tmp_path: Path) -> None:
    settings = webhook_settings(webhook_sandbox, tmp_path, WEBHOOK_SECRET)
    client = command_heartland(settings)
    try:
        findings = check_webhook(settings, client)
    finally:
        client.close()
    assert findings[0].status == PROBLEM
    assert findings[0].fix is not None
    assert "yotposync webhooks register --url" in findings[0].fix


def test_registered_webhook_ok_and_hidden(webhook_sandbox: Sandbox, tmp_path: Path) -> None:
    settings = webhook_settings(webhook_sandbox, tmp_path, WEBHOOK_SECRET)
    client = command_heartland(settings)
    try:
        register_webhook(client.http, receiver_url("http://127.0.0.1:9", WEBHOOK_SECRET))
        findings = check_webhook(settings, client)
    finally:
        client.close()
    assert findings[0].status == OK
    assert "http://127.0.0.1:9/heartland/***" in findings[0].message
    assert WEBHOOK_SECRET not in findings[0].message


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port on 127.0.0.1 that another socket listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        yield int(listener.getsockname()[1])


def listen_settings(tmp_path: Path, **sections: dict[str, object]) -> Settings:
    # The API URLs are never called: check_listen_addresses only binds local addresses.
    return sandbox_settings(
        "http://127.0.0.1:1/api",
        "http://127.0.0.1:1/api/v2",
        tmp_path / "ledger.sqlite3",
        **sections,
    )


def test_busy_listen_port_is_problem(tmp_path: Path, busy_port: int) -> None:
    settings = listen_settings(tmp_path, ops={"listen": f"127.0.0.1:{busy_port}"})
    findings = check_listen_addresses(settings)
    assert [(f.status, f.subject) for f in findings] == [(PROBLEM, "ops")]
    assert findings[0].message.startswith(
        f"cannot listen on ops.listen = 127.0.0.1:{busy_port}: Address already in use"
    )
    assert findings[0].fix == (
        f"set ops.listen to a free port, or stop the process that uses it "
        f"(`ss -ltnp 'sport = :{busy_port}'` shows it)"
    )


def test_busy_webhook_port_is_problem(tmp_path: Path, busy_port: int) -> None:
    settings = listen_settings(
        tmp_path,
        ops={"webhook_listen": f"127.0.0.1:{busy_port}", "webhook_secret": WEBHOOK_SECRET},
    )
    findings = check_listen_addresses(settings)
    assert [f.status for f in findings] == [PROBLEM]
    assert f"ops.webhook_listen = 127.0.0.1:{busy_port}" in findings[0].message


def test_free_listen_addresses_ok(tmp_path: Path) -> None:
    settings = listen_settings(
        tmp_path,
        ops={
            "listen": "127.0.0.1:0",
            "webhook_listen": "127.0.0.1:0",
            "webhook_secret": WEBHOOK_SECRET,
        },
    )
    findings = check_listen_addresses(settings)
    assert [(f.status, f.message) for f in findings] == [
        (OK, "/healthz and /metrics can listen on ops.listen = 127.0.0.1:0"),
        (OK, "webhook receiver can listen on ops.webhook_listen = 127.0.0.1:0"),
    ]


def test_empty_listen_is_skipped(tmp_path: Path) -> None:
    settings = listen_settings(tmp_path, ops={"listen": "", "webhook_listen": ""})
    assert check_listen_addresses(settings) == []


def test_offers_listen_checked_only_when_enabled(tmp_path: Path, busy_port: int) -> None:
    offers = {"webhook_listen": f"127.0.0.1:{busy_port}", "webhook_secret": WEBHOOK_SECRET}
    enabled = check_listen_addresses(listen_settings(tmp_path, offers=offers))
    disabled = check_listen_addresses(
        listen_settings(tmp_path, offers={**offers, "enabled": False})
    )
    assert [(f.status, f.subject) for f in enabled] == [(PROBLEM, "offers")]
    assert f"offers.webhook_listen = 127.0.0.1:{busy_port}" in enabled[0].message
    assert disabled == []


def test_foreign_listen_address_is_problem(tmp_path: Path) -> None:
    # 192.0.2.1 is reserved for documentation (RFC 5737), so no machine has it. Binding sends
    # nothing.
    settings = listen_settings(tmp_path, ops={"listen": "192.0.2.1:9310"})
    findings = check_listen_addresses(settings)
    assert [f.status for f in findings] == [PROBLEM]
    assert findings[0].fix == "set ops.listen to an address of this machine, such as 127.0.0.1:9310"


def test_port_of_running_daemon_ok(tmp_path: Path, busy_port: int) -> None:
    settings = listen_settings(tmp_path, ops={"listen": f"127.0.0.1:{busy_port}"})
    with LedgerLock(settings.ledger.path):
        findings = check_listen_addresses(settings)
    assert [f.status for f in findings] == [OK]
    assert findings[0].message == (
        f"ops.listen = 127.0.0.1:{busy_port} is in use while a yotposync process "
        f"(pid {os.getpid()}) holds the ledger lock, most likely the running daemon serving "
        "the /healthz and /metrics there"
    )


def test_cli_busy_listen_port_exits_1(scenario: Scenario, tmp_path: Path, busy_port: int) -> None:
    config = tmp_path / "y.toml"
    extra = f'[ops]\nlisten = "127.0.0.1:{busy_port}"\n'
    write_config(config, scenario.sandbox, tmp_path / "ledger.sqlite3", extra)
    result = run_cli(config, "check", check=False)
    assert result.returncode == 1
    assert (
        f"PROBLEM  ops: cannot listen on ops.listen = 127.0.0.1:{busy_port}: "
        "Address already in use, so `yotposync run` would stop"
    ) in result.stdout
    assert "fix: set ops.listen to a free port" in result.stdout


def test_unreadable_lock_file_is_warning(tmp_path: Path, busy_port: int) -> None:
    settings = listen_settings(tmp_path, ops={"listen": f"127.0.0.1:{busy_port}"})
    # A symbolic link to itself cannot be opened, also by root (ELOOP).
    lock_file = tmp_path / "ledger.sqlite3.lock"
    lock_file.symlink_to(lock_file.name)
    findings = check_listen_addresses(settings)
    assert [f.status for f in findings] == [WARNING]
    assert "the ledger lock file cannot be read" in findings[0].message
