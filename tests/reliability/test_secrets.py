"""Secrets: marker credentials go through failures, then everything written is searched.

The sandbox accepts only the marker credentials, and its faults fail requests with bodies
that echo them back, as a careless server might. The real `yotposync` process runs a
catch-up and the daemon through those failures and through a wrong token. None of the
markers may appear in standard output or error, in `status`, or in any byte of the files in
the ledger's directory. TLS verification stays on for every non-loopback address, and the
sandbox binds only to loopback unless the caller allows more.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import ssl
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from tests.reliability.support import (
    FIGURES,
    Harness,
    invoke,
    subprocess_environment,
    toml_document,
    wait_until,
)
from yotposync.app import heartland_client
from yotposync.clients.http import HttpService, RateLimiter, RetryPolicy
from yotposync.config import load_settings
from yotposync.errors import ConfigError, RetriableError
from yotposync.sandbox import Sandbox, generate_store
from yotposync.sandbox.faults import FaultPlan, FaultRule

ANCHOR = datetime(2026, 6, 20, 18, 0, tzinfo=UTC)
TOKEN = "MARKER-token-7f3a9c1d"
GUID = "MARKER-guid-51be20aa"
API_KEY = "MARKER-apikey-c0ffee42"
WRONG_TOKEN = "MARKER-wrongtoken-0badc0de"
MARKERS = (TOKEN, GUID, API_KEY, WRONG_TOKEN)


def echo(secret_list: str) -> str:
    return f"request from {secret_list} refused"


FAULTS = FaultPlan(
    seed=3,
    rules=(
        FaultRule(
            name="heartland-echo",
            service="heartland",
            kind="server_error",
            path="/api/sales/tickets",
            times=1,
            message=echo(f"Bearer {TOKEN}"),
        ),
        FaultRule(
            name="yotpo-429-echo",
            service="yotpo",
            kind="rate_limit",
            path="/api/v2/orders",
            probability=0.2,
            reset_seconds=0,
            message=echo(f"{GUID}/{API_KEY}"),
        ),
        FaultRule(
            name="yotpo-500-echo",
            service="yotpo",
            kind="server_error",
            path="/api/v2/orders",
            probability=0.2,
            message=echo(API_KEY),
        ),
        FaultRule(
            name="yotpo-reject-echo",
            service="yotpo",
            kind="client_error",
            path="/api/v2/refunds",
            times=2,
            message=echo(f"x-api-key {API_KEY} x-guid {GUID}"),
        ),
        FaultRule(name="yotpo-lost", service="yotpo", kind="lost_response", probability=0.1),
    ),
)


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    store = generate_store(seed=71, tickets=40, anchor=ANCHOR)
    with Sandbox(
        store=store,
        heartland_token=TOKEN,
        yotpo_guid=GUID,
        yotpo_api_key=API_KEY,
        faults=FAULTS,
    ) as sandbox:
        started = Harness(
            sandbox, store, tmp_path, tmp_path / "state" / "ledger.sqlite3", tmp_path / "c.toml"
        )
        started.configure(delivery={"max_tries_per_call": 2})
        # The secrets come from the environment and a file, never from the file itself.
        del started.sections["heartland"]["token"]
        del started.sections["yotpo"]["guid"], started.sections["yotpo"]["api_key"]
        (tmp_path / "guid").write_text(GUID + "\n")
        started.sections["yotpo"]["guid_file"] = str(tmp_path / "guid")
        started.config.write_text(toml_document(started.sections))
        yield started
        FIGURES["faults injected"] += sandbox.faults.report()["total_injected"]


def environment(token: str = TOKEN) -> dict[str, str]:
    return subprocess_environment(
        YOTPOSYNC_HEARTLAND__TOKEN=token, YOTPOSYNC_YOTPO__API_KEY=API_KEY
    )


def settled(h: Harness) -> bool:
    """Tell whether the ledger exists and no push waits to be sent."""
    if not h.ledger.exists():
        return False
    try:
        rows = h.ledger_rows(
            "SELECT count(*), sum(state IN ('pending', 'sent', 'failed')) FROM pushes"
        )
    except sqlite3.OperationalError:
        return False
    return bool(rows[0][0]) and not rows[0][1]


def leaks(text: str | bytes) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    return [marker for marker in MARKERS if marker.encode() in data]


def test_no_secret_in_anything_written(h: Harness) -> None:
    outputs: list[str] = []
    daemon = h.popen("run", env=environment())
    try:
        wait_until(lambda: settled(h), 60, "the daemon to settle every push")
    finally:
        outputs.extend(daemon.stop())
    catch_up = h.cli("catch-up", "--since", h.since(), env=environment())
    outputs.extend([catch_up.stdout, catch_up.stderr])
    # The remaining commands run in this process, which writes what the real one would.
    wrong = h.invoke("catch-up", "--since", h.since(), env=environment(WRONG_TOKEN))
    status = h.invoke("status", env=environment())
    status_json = h.invoke("status", "--json", env=environment())
    for result in (wrong, status, status_json):
        outputs.extend([result.stdout, result.stderr])
    files = sorted(path for path in h.ledger.parent.iterdir() if path.is_file())
    rejected = h.ledger_rows("SELECT last_error FROM pushes WHERE state = 'rejected'")

    assert daemon.returncode == 0
    assert catch_up.returncode == 0, catch_up.stderr
    assert wrong.exit_code == 1
    assert "check the API token" in wrong.stderr
    assert json.loads(status_json.stdout)["outbox"]["rejected"] == len(rejected)
    assert rejected != []
    assert all("[redacted]" in str(row[0]) for row in rejected)
    assert h.sandbox.faults.report()["injected"]["heartland-echo"] == 1
    for index, output in enumerate(outputs):
        assert leaks(output) == [], f"output {index}"
    assert h.ledger in files
    for path in files:
        assert leaks(path.read_bytes()) == [], path.name
    FIGURES["outputs and files searched for secrets"] += len(outputs) + len(files)


def test_config_errors_hide_secrets(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        toml_document(
            {
                "heartland": {
                    "base_url": f"https://admin:{API_KEY}@shop.example.com/api",
                    "token": TOKEN,
                    "token_file": str(tmp_path / "missing"),
                },
                "yotpo": {"guid": 5, "api_key": API_KEY, "api_key_file": "/nonexistent"},
            }
        )
    )

    result = invoke("--config", str(path), "catch-up", "--since", "2026-01-01")

    assert result.exit_code == 2
    assert "heartland.base_url" in result.stderr
    assert leaks(result.stdout + result.stderr) == []


SECRETS_ENVIRONMENT = {
    "YOTPOSYNC_HEARTLAND__TOKEN": TOKEN,
    "YOTPOSYNC_YOTPO__GUID": GUID,
    "YOTPOSYNC_YOTPO__API_KEY": API_KEY,
}
PING_UUID = "MARKER-ping-uuid-5eed1e55"


@pytest.mark.parametrize(
    ("ping_url", "shown", "reason"),
    [
        (f"ftp://hc-ping.com/{PING_UUID}", "ftp://hc-ping.com/***", "must be an http or https"),
        (f"http://hc-ping.com/{PING_UUID}", "http://hc-ping.com/***", "must use https"),
        (
            f"https://hc-ping.com/x?{PING_UUID}",
            "https://hc-ping.com/***",
            "must not contain a query",
        ),
        (
            f"https://{PING_UUID}@hc-ping.com/x",
            "https://***@hc-ping.com/***",
            "must not contain a user",
        ),
        (f"hc-ping.com/{PING_UUID}", "***", "must be an http or https"),
    ],
)
def test_config_errors_show_ping_host_only(
    tmp_path: Path, ping_url: str, shown: str, reason: str
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        toml_document(
            {
                "heartland": {"base_url": "https://shop.example.com/api"},
                "ops": {"ping_url": ping_url},
            }
        )
    )
    environment = dict(SECRETS_ENVIRONMENT)

    from_file = invoke("--config", str(path), "check", env=environment)
    environment["YOTPOSYNC_OPS__PING_URL"] = ping_url
    from_environment = invoke("--config", str(path), "check", env=environment)

    assert from_file.exit_code == 2
    assert f'ops.ping_url = "{shown}": {reason}' in from_file.stdout
    assert PING_UUID not in from_file.output
    assert from_environment.exit_code == 2
    assert f'ops.ping_url = "{shown}" (from YOTPOSYNC_OPS__PING_URL): {reason}' in (
        from_environment.stdout
    )
    assert PING_UUID not in from_environment.output


BASE_URL_MARKER = "MARKER-query-token-9d2e"


@pytest.mark.parametrize(
    ("section", "base_url", "shown"),
    [
        (
            "heartland",
            f"http://127.0.0.1:18805/api?token={BASE_URL_MARKER}",
            "http://127.0.0.1:18805/api?***",
        ),
        (
            "yotpo",
            f"https://loyalty.example.com/api/v2#{BASE_URL_MARKER}",
            "https://loyalty.example.com/api/v2#***",
        ),
        (
            "yotpo",
            f"https://u:{BASE_URL_MARKER}@loyalty.example.com/v2?{BASE_URL_MARKER}",
            "https://***@loyalty.example.com/v2?***",
        ),
    ],
)
def test_config_errors_hide_base_url_query(
    tmp_path: Path, section: str, base_url: str, shown: str
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(toml_document({"heartland": {"base_url": "https://shop.example.com/api"}}))
    variable = f"YOTPOSYNC_{section.upper()}__BASE_URL"
    environment = {**SECRETS_ENVIRONMENT, variable: base_url}

    result = invoke("--config", str(path), "check", env=environment)

    assert result.exit_code == 2
    assert f'{section}.base_url = "{shown}" (from {variable}): must not contain' in result.stdout
    assert BASE_URL_MARKER not in result.output


# TLS and the sandbox's address.


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command, which makes the test certificate, is not installed")
    folder = tmp_path_factory.mktemp("tls")
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return key, cert


class _Answer(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"results": []}')

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def https_url(self_signed: tuple[Path, Path]) -> Iterator[str]:
    """An HTTPS server on 127.0.0.1 with a certificate no authority signed."""
    server = HTTPServer(("127.0.0.1", 0), _Answer)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certfile=self_signed[1], keyfile=self_signed[0])
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/api"
    finally:
        server.shutdown()
        server.server_close()


def test_tls_verified_by_configured_client(tmp_path: Path, https_url: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        toml_document(
            {
                "heartland": {"base_url": https_url, "token": TOKEN},
                "yotpo": {"guid": GUID, "api_key": API_KEY},
                "delivery": {"max_tries_per_call": 1},
            }
        )
    )
    client = heartland_client(load_settings(path, environ={}))

    with pytest.raises(RetriableError, match="certificate verification failed"):
        client.check()


def test_tls_verification_off_refused_for_remote_host() -> None:
    with pytest.raises(ConfigError, match=r"only for 127\.0\.0\.1"):
        HttpService(
            "yotpo",
            "https://loyalty.yotpo.com/api/v2",
            headers={},
            connect_timeout=1,
            read_timeout=1,
            limiter=RateLimiter(0),
            retry=RetryPolicy(max_tries=1),
            verify_tls=False,
        )


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "example.com"])
def test_sandbox_refuses_non_loopback(host: str) -> None:
    with pytest.raises(ValueError, match="refusing to bind"):
        Sandbox(store=None, host=host)


def test_sandbox_command_refuses_non_loopback() -> None:
    result = invoke("sandbox", "--empty", "--host", "0.0.0.0")

    assert result.exit_code == 2
    assert "refusing to bind" in result.stderr
    assert "--allow-non-loopback" in result.stderr


def test_sandbox_allows_non_loopback_when_told() -> None:
    # Built, not started: the test binds nothing that other machines can reach.
    sandbox = Sandbox(store=None, host="0.0.0.0", allow_non_loopback=True)

    assert sandbox.host == "0.0.0.0"
