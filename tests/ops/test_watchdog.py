"""The ops runtime's systemd side on a real datagram socket: READY, WATCHDOG, STOPPING."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from structlog.testing import capture_logs

from yotposync.app import utc_now
from yotposync.config import sandbox_settings
from yotposync.ops.runtime import WATCHDOG_JOB, OpsRuntime


def idle() -> None:
    """A job body for the test scheduler."""


class Clock:
    """Real time plus an offset the test moves forward."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return utc_now() + self.offset


@pytest.fixture
def receiver() -> Iterator[tuple[socket.socket, str]]:
    name = f"yotposync-watchdog-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    sock.settimeout(2)
    yield sock, f"@{name}"
    sock.close()


def make_runtime(
    tmp_path: Path, environ: dict[str, str], clock: Clock | None = None
) -> tuple[OpsRuntime, BackgroundScheduler]:
    settings = sandbox_settings(
        "http://127.0.0.1:1/api", "http://127.0.0.1:1/api/v2", tmp_path / "ledger.sqlite3"
    )
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_job(idle, "interval", seconds=60, id="transactions", next_run_time=None)
    runtime = OpsRuntime(settings, scheduler, clock=clock or utc_now, environ=environ)
    return runtime, scheduler


def received(sock: socket.socket) -> list[bytes]:
    sock.settimeout(0.3)
    messages = []
    try:
        while True:
            messages.append(sock.recv(4096))
    except TimeoutError:
        return messages


def test_ready_when_scheduler_starts(tmp_path: Path, receiver: tuple[socket.socket, str]) -> None:
    sock, address = receiver
    runtime, scheduler = make_runtime(tmp_path, {"NOTIFY_SOCKET": address})
    runtime.install()
    scheduler.start()
    try:
        message = sock.recv(4096)
    finally:
        scheduler.shutdown(wait=False)
        runtime.close()
    assert message.startswith(b"READY=1\nSTATUS=Polling Heartland every 60 s")


def test_watchdog_job_at_half_timeout(tmp_path: Path) -> None:
    environ = {"NOTIFY_SOCKET": "@unused", "WATCHDOG_USEC": "3000000"}
    runtime, scheduler = make_runtime(tmp_path, environ)
    runtime.install()
    job = scheduler.get_job(WATCHDOG_JOB)
    runtime.close()
    assert job is not None
    assert job.trigger.interval == timedelta(seconds=1.5)


def test_no_watchdog_job_without_usec(tmp_path: Path) -> None:
    runtime, scheduler = make_runtime(tmp_path, {"NOTIFY_SOCKET": "@unused"})
    runtime.install()
    job = scheduler.get_job(WATCHDOG_JOB)
    runtime.close()
    assert job is None


def test_heartbeat_sent_while_alive(tmp_path: Path, receiver: tuple[socket.socket, str]) -> None:
    sock, address = receiver
    runtime, scheduler = make_runtime(tmp_path, {"NOTIFY_SOCKET": address})
    scheduler.start()
    try:
        runtime.send_heartbeat()
        messages = received(sock)
    finally:
        scheduler.shutdown(wait=False)
        runtime.close()
    assert messages == [b"WATCHDOG=1"]


def test_heartbeat_withheld_for_stuck_job(
    tmp_path: Path, receiver: tuple[socket.socket, str]
) -> None:
    sock, address = receiver
    clock = Clock()
    runtime, scheduler = make_runtime(tmp_path, {"NOTIFY_SOCKET": address}, clock)
    scheduler.start()
    try:
        runtime.job_started("transactions")
        clock.offset = timedelta(seconds=901)  # past ops.job_timeout_seconds = 900
        with capture_logs() as logs:
            runtime.send_heartbeat()
            runtime.send_heartbeat()
        messages = received(sock)
    finally:
        scheduler.shutdown(wait=False)
        runtime.close()
    assert messages == []
    assert [entry["event"] for entry in logs] == ["watchdog_heartbeat_withheld"]


def test_heartbeat_withheld_without_scheduler(
    tmp_path: Path, receiver: tuple[socket.socket, str]
) -> None:
    sock, address = receiver
    runtime, _ = make_runtime(tmp_path, {"NOTIFY_SOCKET": address})
    runtime.send_heartbeat()
    runtime.close()
    assert received(sock) == []


def test_heartbeat_resumes_after_job_finishes(
    tmp_path: Path, receiver: tuple[socket.socket, str]
) -> None:
    sock, address = receiver
    clock = Clock()
    runtime, scheduler = make_runtime(tmp_path, {"NOTIFY_SOCKET": address}, clock)
    scheduler.start()
    try:
        runtime.job_started("transactions")
        clock.offset = timedelta(seconds=901)
        runtime.send_heartbeat()
        runtime.job_finished("transactions", {}, None)
        runtime.send_heartbeat()
        messages = received(sock)
    finally:
        scheduler.shutdown(wait=False)
        runtime.close()
    assert [message for message in messages if message.startswith(b"WATCHDOG")] == [b"WATCHDOG=1"]


def test_stopping_sent(tmp_path: Path, receiver: tuple[socket.socket, str]) -> None:
    sock, address = receiver
    runtime, _ = make_runtime(tmp_path, {"NOTIFY_SOCKET": address})
    runtime.stopping()
    runtime.close()
    assert received(sock)[0].startswith(b"STOPPING=1")
