"""End-to-end fixtures: the sandbox on loopback, a config file, the real `yotposync` process."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from yotposync.sandbox.generator import generate_store
from yotposync.sandbox.server import Sandbox
from yotposync.sandbox.store import Store

GUID = "sandbox-guid"
API_KEY = "sandbox-api-key"
TOKEN = "sandbox-heartland-token"
POINTS_PER_DOLLAR = Decimal(2)


@dataclass
class Env:
    """One sandbox, one ledger and one config file, ready for CLI runs."""

    sandbox: Sandbox
    store: Store
    config: Path
    ledger: Path
    tmp: Path

    def cli(
        self, *args: str, timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "yotposync", "--config", str(self.config), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=cli_environment(),
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"yotposync {' '.join(args)} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    def popen(self, *args: str) -> subprocess.Popen[str]:
        command = [sys.executable, "-m", "yotposync", "--config", str(self.config), *args]
        return DrainedPopen(command)

    def since(self) -> str:
        return (self.store.anchor - timedelta(days=366)).date().isoformat()

    def yotpo(self, path: str, **params: Any) -> requests.Response:
        return requests.get(
            f"{self.sandbox.yotpo_url}{path}",
            params=params,
            headers={"x-guid": GUID, "x-api-key": API_KEY},
            timeout=10,
        )

    def heartland(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return requests.request(
            method,
            f"{self.sandbox.heartland_url}{path}",
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
            **kwargs,
        )

    def balance(self, email: str) -> int:
        response = self.yotpo("/customers", customer_email=email)
        if response.status_code == 404:
            return 0
        response.raise_for_status()
        return int(response.json()["points_balance"])

    def records(self) -> dict[str, Any]:
        response = requests.get(
            f"{self.sandbox.yotpo_admin_url}/records",
            headers={"x-guid": GUID, "x-api-key": API_KEY},
            timeout=10,
        )
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body


class DrainedPopen(subprocess.Popen[str]):
    """A `yotposync` process whose output is read while it runs.

    A process blocks once an unread pipe contains 64 KiB (the Linux default pipe size), which
    a daemon's log reaches within seconds. `communicate()` returns all the output, as with
    plain pipes.
    """

    def __init__(self, command: list[str]) -> None:
        super().__init__(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_environment(),
        )
        self._output: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self._readers = [
            threading.Thread(target=self._drain, args=(name,), daemon=True) for name in self._output
        ]
        for reader in self._readers:
            reader.start()

    def _drain(self, name: str) -> None:
        for line in getattr(self, name):
            self._output[name].append(line)

    def communicate(self, input: Any = None, timeout: float | None = None) -> tuple[str, str]:
        self.wait(timeout)
        for reader in self._readers:
            reader.join(timeout)
        return "".join(self._output["stdout"]), "".join(self._output["stderr"])


def cli_environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("YOTPOSYNC_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def write_config(
    path: Path, sandbox: Sandbox, ledger: Path, go_live: datetime, extra: str = ""
) -> None:
    path.write_text(
        f"""
[heartland]
base_url = "{sandbox.heartland_url}"
token = "{TOKEN}"
page_size = 50
requests_per_second = 500

[yotpo]
base_url = "{sandbox.yotpo_url}"
guid = "{GUID}"
api_key = "{API_KEY}"
requests_per_second = 500

[ledger]
path = "{ledger}"

[sync]
go_live = "{go_live.isoformat()}"
overlap_seconds = 300

[rules]
exclude_customer_public_ids = ["CASH"]
exclude_ticket_custom_fields = [{{ key = "web_order_no" }}]
exclude_customer_custom_fields = [{{ key = "staff", equals = "yes" }}]

[schedule]
transactions_seconds = 1
delivery_seconds = 1

[delivery]
retry_base_seconds = 1
retry_ceiling_seconds = 2

[logging]
format = "json"
{extra}
"""
    )


def make_env(tmp: Path, seed: int, tickets: int, **sandbox_options: Any) -> Iterator[Env]:
    store = generate_store(seed=seed, tickets=tickets)
    with Sandbox(store=store, points_per_dollar=POINTS_PER_DOLLAR, **sandbox_options) as sandbox:
        ledger = tmp / "state" / "ledger.sqlite3"
        config = tmp / "yotposync.toml"
        write_config(config, sandbox, ledger, store.go_live)
        yield Env(sandbox, store, config, ledger, tmp)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    yield from make_env(tmp_path, seed=11, tickets=250)
