"""The Sandbox server object and the `sandbox` command run as a real process."""

from __future__ import annotations

import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import requests
from click.testing import CliRunner
from sandbox_api import TIMEOUT, Api

from yotposync.sandbox import Sandbox
from yotposync.sandbox.command import sandbox_command
from yotposync.sandbox.server import is_loopback

Connect = Callable[[Sandbox], tuple[Api, Api]]


def test_loopback_hosts_recognised() -> None:
    assert is_loopback("127.0.0.1")
    assert is_loopback("::1")
    assert is_loopback("localhost")
    assert not is_loopback("0.0.0.0")
    assert not is_loopback("192.0.2.10")
    assert not is_loopback("example.com")


def test_non_loopback_host_rejected() -> None:
    with pytest.raises(ValueError, match="allow_non_loopback"):
        Sandbox(store=None, host="0.0.0.0")


def test_urls_need_a_running_sandbox() -> None:
    sandbox = Sandbox(store=None)
    with pytest.raises(RuntimeError, match="not running"):
        _ = sandbox.heartland_url


def test_urls_name_base_paths(empty_sandbox: Sandbox) -> None:
    assert empty_sandbox.heartland_url == f"http://127.0.0.1:{empty_sandbox.heartland_port}/api"
    assert empty_sandbox.yotpo_url == f"http://127.0.0.1:{empty_sandbox.yotpo_port}/api/v2"


def test_stop_releases_ports(connect: Connect) -> None:
    sandbox = Sandbox(store=None).start()
    url = sandbox.heartland_url
    sandbox.stop()
    sandbox.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/locations", timeout=TIMEOUT)


def test_busy_port_raises(empty_sandbox: Sandbox) -> None:
    with pytest.raises(OSError):
        Sandbox(store=None, heartland_port=empty_sandbox.heartland_port).start()


def _read_lines(stream: object, lines: queue.Queue[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        lines.put(line)


def test_command_prints_ready_and_stops_on_sigterm() -> None:
    code = "from yotposync.sandbox.command import sandbox_command; sandbox_command()"
    arguments = ["--heartland-port", "0", "--yotpo-port", "0", "--tickets", "30", "--seed", "4"]
    process = subprocess.Popen(
        [sys.executable, "-c", code, *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_read_lines, args=(process.stdout, lines), daemon=True).start()
    try:
        printed = []
        deadline = time.monotonic() + 20
        ready = None
        while ready is None and time.monotonic() < deadline:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            printed.append(line)
            if line.startswith("SANDBOX READY "):
                ready = line
        assert ready is not None, "".join(printed)

        fields = dict(part.split("=", 1) for part in ready.split()[2:])
        health = requests.get(
            fields["heartland"].removesuffix("/api") + "/_sandbox/health",
            headers={"Authorization": "Bearer sandbox-heartland-token"},
            timeout=TIMEOUT,
        )
        tiers = requests.get(
            fields["yotpo"] + "/vip_tiers",
            headers={"x-guid": "sandbox-guid", "x-api-key": "sandbox-api-key"},
            timeout=TIMEOUT,
        )

        process.send_signal(signal.SIGTERM)
        return_code = process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)

    banner = "".join(printed)
    assert health.status_code == 200
    assert health.json()["tickets"] + health.json()["late_tickets_held"] == 30
    assert [tier["name"] for tier in tiers.json()] == ["Bronze", "Silver", "Gold"]
    assert "sandbox-heartland-token" in banner
    assert "sandbox-api-key" in banner
    assert return_code == 0


def test_command_rejects_non_loopback_host() -> None:
    code = "from yotposync.sandbox.command import sandbox_command; sandbox_command()"
    result = subprocess.run(
        [sys.executable, "-c", code, "--host", "0.0.0.0", "--empty"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "'0.0.0.0', which other machines can reach" in result.stderr
    assert "add --allow-non-loopback" in result.stderr
    assert "allow_non_loopback=True" not in result.stderr


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port on 127.0.0.1 that this test keeps listening on, as another program would."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        yield int(holder.getsockname()[1])


@pytest.mark.parametrize("option", ["--heartland-port", "--yotpo-port"])
def test_command_names_busy_port(taken_port: int, option: str) -> None:
    ports = {"--heartland-port": "0", "--yotpo-port": "0", option: str(taken_port)}
    arguments = ["--empty", *(item for pair in ports.items() for item in pair)]

    result = CliRunner().invoke(sandbox_command, arguments)

    assert result.exit_code == 1
    assert f"port {taken_port} ({option}) on 127.0.0.1 is already in use" in result.stderr
    assert f"choose another port with {option}, or 0 for any free port" in result.stderr
    assert "Errno" not in result.stderr


def test_command_rejects_same_port_twice() -> None:
    result = CliRunner().invoke(
        sandbox_command, ["--empty", "--heartland-port", "8799", "--yotpo-port", "8799"]
    )

    assert result.exit_code == 2
    assert "8799 is also the --heartland-port" in result.stderr
