"""sd_notify messages on a real datagram socket, by path and in the abstract namespace."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from yotposync.ops.sdnotify import Notifier


@pytest.fixture
def path_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    address = str(tmp_path / "notify.sock")
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(address)
    receiver.settimeout(2)
    yield receiver, address
    receiver.close()


@pytest.fixture
def abstract_socket() -> Iterator[tuple[socket.socket, str]]:
    name = f"yotposync-test-{uuid.uuid4().hex}"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(b"\0" + name.encode())
    receiver.settimeout(2)
    yield receiver, f"@{name}"
    receiver.close()


def test_ready_on_path_socket(path_socket: tuple[socket.socket, str]) -> None:
    receiver, address = path_socket
    assert Notifier(address).ready()
    assert receiver.recv(4096) == b"READY=1"


def test_ready_with_status(path_socket: tuple[socket.socket, str]) -> None:
    receiver, address = path_socket
    Notifier(address).ready("Polling every 60 s")
    assert receiver.recv(4096) == b"READY=1\nSTATUS=Polling every 60 s"


def test_abstract_socket_receives(abstract_socket: tuple[socket.socket, str]) -> None:
    receiver, address = abstract_socket
    notifier = Notifier(address)
    notifier.watchdog()
    notifier.stopping()
    assert receiver.recv(4096) == b"WATCHDOG=1"
    assert receiver.recv(4096) == b"STOPPING=1"


def test_status_line_breaks_removed(path_socket: tuple[socket.socket, str]) -> None:
    receiver, address = path_socket
    Notifier(address).status("first line\nREADY=1")
    assert receiver.recv(4096) == b"STATUS=first line READY=1"


def test_no_socket_sends_nothing() -> None:
    notifier = Notifier.from_environment({})
    assert notifier.enabled is False
    assert notifier.ready() is False


def test_missing_socket_warns_once(tmp_path: Path) -> None:
    notifier = Notifier(str(tmp_path / "gone.sock"))
    with capture_logs() as logs:
        first = notifier.ready()
        second = notifier.watchdog()
    assert first is False
    assert second is False
    assert [entry["event"] for entry in logs] == ["sd_notify_failed"]


def test_relative_address_not_sent() -> None:
    with capture_logs() as logs:
        sent = Notifier("relative/notify.sock").ready()
    assert sent is False
    assert logs[0]["event"] == "sd_notify_failed"


def test_watchdog_interval_is_half() -> None:
    notifier = Notifier.from_environment(
        {"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "30000000"}, pid=42
    )
    assert notifier.watchdog_interval_seconds == 15.0


def test_watchdog_for_other_pid_ignored() -> None:
    environ = {"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "41"}
    assert Notifier.from_environment(environ, pid=42).watchdog_interval_seconds is None


def test_watchdog_for_own_pid_kept() -> None:
    environ = {
        "NOTIFY_SOCKET": "@x",
        "WATCHDOG_USEC": "2000000",
        "WATCHDOG_PID": str(os.getpid()),
    }
    assert Notifier.from_environment(environ).watchdog_interval_seconds == 1.0


@pytest.mark.parametrize("value", ["", "0", "-5", "soon"])
def test_watchdog_invalid_usec_ignored(value: str) -> None:
    environ = {"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": value}
    assert Notifier.from_environment(environ).watchdog_interval_seconds is None


def test_watchdog_needs_socket() -> None:
    assert Notifier.from_environment({"WATCHDOG_USEC": "2000000"}).watchdog_interval_seconds is None
