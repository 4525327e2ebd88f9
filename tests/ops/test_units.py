"""The shipped systemd units: `systemd-analyze verify` and the settings the daemon relies on."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

CONFIG = Path(__file__).resolve().parents[2] / "config"
INSTALLED_COMMAND = "/opt/yotposync/bin/yotposync"
SECRET_FILES = ("heartland-token", "yotpo-guid", "yotpo-api-key")
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectControlGroups": "yes",
    "RestrictNamespaces": "yes",
    "CapabilityBoundingSet": "",
}

requires_systemd = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze is not installed, so the units cannot be verified here",
)


def service_section(name: str) -> dict[str, list[str]]:
    """Read the [Service] section; repeated keys such as LoadCredential keep every value."""
    section: dict[str, list[str]] = defaultdict(list)
    current = None
    for raw in (CONFIG / name).read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = line
            continue
        if current == "[Service]":
            key, _, value = line.partition("=")
            section[key].append(value)
    return section


def verify(tmp_path: Path, unit: str, verified_name: str) -> subprocess.CompletedProcess[str]:
    """Run `systemd-analyze verify` on a copy whose ExecStart runs this checkout's yotposync."""
    text = (CONFIG / unit).read_text(encoding="utf-8")
    assert INSTALLED_COMMAND in text
    (tmp_path / unit).write_text(
        text.replace(INSTALLED_COMMAND, f"{sys.executable} -m yotposync"), encoding="utf-8"
    )
    return subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / verified_name)],
        capture_output=True,
        text=True,
        timeout=60,
    )


@requires_systemd
def test_service_passes_verify(tmp_path: Path) -> None:
    result = verify(tmp_path, "yotposync.service", "yotposync.service")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


@requires_systemd
def test_template_instance_passes_verify(tmp_path: Path) -> None:
    result = verify(tmp_path, "yotposync@.service", "yotposync@acme.service")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


@pytest.mark.parametrize("unit", ["yotposync.service", "yotposync@.service"])
def test_notify_with_watchdog(unit: str) -> None:
    service = service_section(unit)
    assert service["Type"] == ["notify"]
    assert service["NotifyAccess"] == ["main"]
    assert service["WatchdogSec"] == ["120s"]


@pytest.mark.parametrize("unit", ["yotposync.service", "yotposync@.service"])
def test_dedicated_user(unit: str) -> None:
    service = service_section(unit)
    assert (service["User"], service["Group"]) == (["yotposync"], ["yotposync"])


@pytest.mark.parametrize("unit", ["yotposync.service", "yotposync@.service"])
def test_hardening(unit: str) -> None:
    service = service_section(unit)
    assert {key: service[key] for key in HARDENING} == {
        key: [value] for key, value in HARDENING.items()
    }
    assert "AF_UNIX" in service["RestrictAddressFamilies"][0]  # the notification socket


def test_service_credentials() -> None:
    names = [
        value.split(":", 1)[0] for value in service_section("yotposync.service")["LoadCredential"]
    ]
    assert names == list(SECRET_FILES)


def test_service_state_directory() -> None:
    service = service_section("yotposync.service")
    assert service["StateDirectory"] == ["yotposync"]
    assert service["Environment"] == ["YOTPOSYNC_LEDGER__PATH=%S/yotposync/ledger.sqlite3"]


def test_template_per_instance_paths() -> None:
    service = service_section("yotposync@.service")
    assert "--config /etc/yotposync/%i.toml run" in service["ExecStart"][0]
    assert service["StateDirectory"] == ["yotposync/%i"]
    assert service["Environment"] == ["YOTPOSYNC_LEDGER__PATH=%S/yotposync/%i/ledger.sqlite3"]
    assert service["LoadCredential"] == [
        f"{name}:/etc/yotposync/credentials/%i/{name}" for name in SECRET_FILES
    ]


def test_sysusers_creates_user() -> None:
    lines = (CONFIG / "yotposync.sysusers.conf").read_text(encoding="utf-8").splitlines()
    entries = [line.split() for line in lines if line and not line.startswith("#")]
    assert [entry[:2] for entry in entries] == [["u", "yotposync"]]
