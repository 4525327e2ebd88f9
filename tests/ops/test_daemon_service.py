"""The daemon as a process under a stand-in service manager, with the webhook trigger.

One daemon runs with a one-hour poll interval, `[ops]` endpoints, pings and a webhook
receiver registered in the sandbox. A ticket completed in the sandbox must reach Yotpo within
a few seconds, which only the webhook can make happen. The fixture records what the service
manager's socket, the ping service and the endpoints received, then stops the daemon with
SIGTERM; each test checks one part of that record.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.ops.recorder import Recorder
from tests.ops.scenario import HeartlandWriter, run_cli, write_config
from yotposync.sandbox import Sandbox

pytestmark = pytest.mark.e2e

WEBHOOK_SECRET = "daemon-test-webhook-secret-0123456789"
DEADLINE_SECONDS = 5.0


@dataclass
class DaemonRun:
    """What one daemon run showed to the outside."""

    notifications: list[str] = field(default_factory=list)
    ticket_seconds: float | None = None
    healthz_status: int | None = None
    healthz: dict[str, Any] = field(default_factory=dict)
    metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float] = field(default_factory=dict)
    pings: list[str] = field(default_factory=list)
    register_output: str = ""
    exit_code: int | None = None
    output: str = ""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class NotifySocket:
    """The service manager's end of sd_notify: an abstract datagram socket."""

    def __init__(self) -> None:
        self.address = f"@yotposync-daemon-{uuid.uuid4().hex}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(b"\0" + self.address[1:].encode())
        self.sock.settimeout(0.1)
        self.messages: list[str] = []

    def drain(self) -> list[str]:
        try:
            while True:
                self.messages.append(self.sock.recv(4096).decode())
        except TimeoutError:
            return self.messages

    def wait_for(self, prefix: str, timeout: float, count: int = 1) -> bool:
        """Wait until `count` messages starting with `prefix` have arrived."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sum(message.startswith(prefix) for message in self.drain()) >= count:
                return True
        return False


def balance(sandbox: Sandbox, email: str) -> int:
    response = requests.get(
        f"{sandbox.yotpo_url}/customers",
        params={"customer_email": email},
        headers={"x-guid": sandbox.yotpo_guid, "x-api-key": sandbox.yotpo_api_key},
        timeout=5,
    )
    return int(response.json()["points_balance"]) if response.status_code == 200 else 0


def metric_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


@pytest.fixture(scope="module")
def daemon_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonRun]:
    tmp = tmp_path_factory.mktemp("daemon")
    run = DaemonRun()
    ops_port, webhook_port = free_port(), free_port()
    go_live = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    with Sandbox(store=None) as sandbox, Recorder() as ping_service:
        writer = HeartlandWriter(sandbox)
        customer = writer.customer("Dee", "dee@example.com")
        config = tmp / "yotposync.toml"
        write_config(
            config,
            sandbox,
            tmp / "state" / "ledger.sqlite3",
            extra=f"""
[sync]
go_live = {go_live}

[schedule]
transactions_seconds = 3600
delivery_seconds = 3600

[ops]
listen = "127.0.0.1:{ops_port}"
ping_url = "{ping_service.url}/ping/check-1"
webhook_listen = "127.0.0.1:{webhook_port}"
webhook_secret = "{WEBHOOK_SECRET}"
""",
        )
        registered = run_cli(
            config, "webhooks", "register", "--url", f"http://127.0.0.1:{webhook_port}"
        )
        run.register_output = registered.stdout + registered.stderr

        notify = NotifySocket()
        environment = {k: v for k, v in os.environ.items() if not k.startswith("YOTPOSYNC_")}
        environment |= {"NOTIFY_SOCKET": notify.address, "WATCHDOG_USEC": "1000000"}
        # A file, not a pipe: an unread pipe fills up and blocks the daemon's logging.
        log_file = (tmp / "daemon.log").open("w")
        daemon = subprocess.Popen(
            [sys.executable, "-m", "yotposync", "--config", str(config), "run"],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            text=True,
            env=environment,
        )
        try:
            assert notify.wait_for("READY=1", 30), "the daemon sent no READY=1"
            assert notify.wait_for("STATUS=Last poll", 30), "the first poll did not finish"

            started = time.monotonic()
            writer.ticket(301, customer, [25])
            while time.monotonic() - started < DEADLINE_SECONDS * 3:
                if balance(sandbox, "dee@example.com") == 25:
                    run.ticket_seconds = time.monotonic() - started
                    break
                time.sleep(0.05)

            # Heartbeats come every 0.5 s (half of WATCHDOG_USEC).
            notify.wait_for("WATCHDOG=1", 10, count=2)
            healthz = requests.get(f"http://127.0.0.1:{ops_port}/healthz", timeout=5)
            run.healthz_status, run.healthz = healthz.status_code, healthz.json()
            metrics = requests.get(f"http://127.0.0.1:{ops_port}/metrics", timeout=5)
            run.metrics = metric_samples(metrics.text)
            run.pings = ping_service.paths()
        finally:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
            log_file.close()
            run.exit_code = daemon.returncode
            run.output = (tmp / "daemon.log").read_text()
            run.notifications = notify.drain()
            notify.sock.close()
    yield run


def test_register_hides_secret(daemon_run: DaemonRun) -> None:
    assert "Registered webhook 1" in daemon_run.register_output
    assert "/heartland/***" in daemon_run.register_output
    assert WEBHOOK_SECRET not in daemon_run.register_output


def test_ticket_reaches_yotpo_within_seconds(daemon_run: DaemonRun) -> None:
    assert daemon_run.ticket_seconds is not None, daemon_run.output[-3000:]
    assert daemon_run.ticket_seconds < DEADLINE_SECONDS


def test_ready_first(daemon_run: DaemonRun) -> None:
    assert daemon_run.notifications[0].startswith("READY=1\nSTATUS=")


def test_watchdog_heartbeats(daemon_run: DaemonRun) -> None:
    assert daemon_run.notifications.count("WATCHDOG=1") >= 2


def test_stopping_on_sigterm(daemon_run: DaemonRun) -> None:
    assert daemon_run.notifications[-1].startswith("STOPPING=1")
    assert daemon_run.exit_code == 0


def test_healthz_ok(daemon_run: DaemonRun) -> None:
    assert daemon_run.healthz_status == 200
    assert daemon_run.healthz["jobs"]["transactions"]["last_outcome"] == "ok"


def test_metrics_count_webhook_run(daemon_run: DaemonRun) -> None:
    runs = daemon_run.metrics[
        ("yotposync_job_runs_total", (("job", "transactions"), ("outcome", "ok")))
    ]
    confirmed = daemon_run.metrics[("yotposync_push_results_total", (("result", "confirmed"),))]
    assert runs >= 2
    assert confirmed == 1


def test_pings_around_each_run(daemon_run: DaemonRun) -> None:
    assert daemon_run.pings[:4] == [
        "/ping/check-1/start",
        "/ping/check-1",
        "/ping/check-1/start",
        "/ping/check-1",
    ]


def test_secret_not_logged(daemon_run: DaemonRun) -> None:
    assert WEBHOOK_SECRET not in daemon_run.output
    assert "webhook_received" in daemon_run.output
