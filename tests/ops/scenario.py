"""A scripted store with known outcomes, synced into a ledger by two real catch-ups.

A module of its own, not conftest.py, so test files can import its names.

On 2025-05-01 (business day in both locations), at 1 point per dollar:
- location 201 (station 301): T1 Ann buys 30.00 + 20.00 and earns 50 points. T2 has no
  customer. T5 is bought by staff member Sam (excluded). R1 returns T1's 20.00 item, but
  Yotpo rejects its refund, because the first catch-up sent T1's order in EUR and the second
  sends refunds in USD.
- location 202 (station 303): T3 is bought by Bob, who has no e-mail; T4 carries a web order
  number (excluded); T6 Cat buys 50.00 + 30.00 (80 points); R2 returns T6's 30.00 item and
  takes 30 points back.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from yotposync.app import run_catch_up
from yotposync.config import sandbox_settings
from yotposync.sandbox import ManualClock, Sandbox

ANCHOR = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
SINCE = datetime(2025, 4, 30, tzinfo=UTC)
BUSINESS_DAY = "2025-05-01"
TOKEN = "sandbox-heartland-token"
GUID = "sandbox-guid"
API_KEY = "sandbox-api-key"
SECRETS = (TOKEN, GUID, API_KEY)


@dataclass
class Scenario:
    sandbox: Sandbox
    clock: ManualClock
    ledger: Path
    config: Path
    ids: dict[str, int]  # ticket ids by scenario name: T1 ... T6, R1, R2

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_cli(self.config, *args, check=check)

    def config_without(self, path: Path, *secrets: str) -> Path:
        """Write a copy of the configuration at `path` with the given secret values removed."""
        lines = self.config.read_text(encoding="utf-8").splitlines()
        kept_lines = [
            line for line in lines if not any(f'"{secret}"' in line for secret in secrets)
        ]
        path.write_text("\n".join(kept_lines) + "\n", encoding="utf-8")
        return path

    def edited_copy(self, tmp_path: Path, statement: str) -> Path:
        """Copy the ledger, run `statement` on the copy, and return a config that names it."""
        copy = tmp_path / "edited.sqlite3"
        source = sqlite3.connect(self.ledger)
        target = sqlite3.connect(copy)
        try:
            source.backup(target)
            target.execute(statement)
            target.commit()
        finally:
            source.close()
            target.close()
        config = tmp_path / "edited.toml"
        text = self.config.read_text(encoding="utf-8")
        config.write_text(text.replace(str(self.ledger), str(copy)), encoding="utf-8")
        return config


def run_cli(config: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("YOTPOSYNC_")}
    result = subprocess.run(
        [sys.executable, "-m", "yotposync", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"yotposync {' '.join(args)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
    return result


def write_config(path: Path, sandbox: Sandbox, ledger: Path, extra: str = "") -> None:
    path.write_text(
        f"""
[heartland]
base_url = "{sandbox.heartland_url}"
token = "{TOKEN}"
requests_per_second = 500

[yotpo]
base_url = "{sandbox.yotpo_url}"
guid = "{GUID}"
api_key = "{API_KEY}"
requests_per_second = 500

[ledger]
path = "{ledger}"

[rules]
exclude_customer_public_ids = ["CASH"]
exclude_ticket_custom_fields = [{{ key = "web_order_no" }}]
exclude_customer_custom_fields = [{{ key = "staff", equals = "yes" }}]

[logging]
format = "json"
{extra}
""",
        encoding="utf-8",
    )


class HeartlandWriter:
    """Creates customers and tickets in the Heartland emulator over HTTP."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.base = sandbox.heartland_url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {sandbox.heartland_token}"

    def customer(self, first_name: str, email: str | None, **custom: str) -> int:
        body: dict[str, Any] = {"first_name": first_name, "last_name": "Test", "email": email}
        if custom:
            body["custom"] = custom
        response = self.session.post(f"{self.base}/customers", json=body, timeout=10)
        assert response.status_code == 201, response.text
        return int(response.headers["Location"].rsplit("/", 1)[1])

    def ticket(
        self,
        station_id: int,
        customer_id: int | None,
        prices: list[float],
        *,
        status: str = "complete",
        **fields: Any,
    ) -> int:
        lines = [
            {"type": "ItemLine", "item_id": 4400 + index, "qty": 1, "unit_price": price}
            for index, price in enumerate(prices)
        ]
        body = {
            "station_id": station_id,
            "customer_id": customer_id,
            "lines": lines,
            "status": status,
            **fields,
        }
        response = self.session.post(f"{self.base}/sales/tickets", json=body, timeout=10)
        assert response.status_code == 201, response.text
        return int(response.headers["Location"].rsplit("/", 1)[1])

    def return_of(self, station_id: int, parent_id: int, price: float) -> int:
        body = {
            "type": "Return",
            "station_id": station_id,
            "parent_transaction_id": parent_id,
            "status": "complete",
            "lines": [{"type": "ItemLine", "item_id": 4401, "qty": -1, "unit_price": price}],
        }
        response = self.session.post(f"{self.base}/sales/tickets", json=body, timeout=10)
        assert response.status_code == 201, response.text
        return int(response.headers["Location"].rsplit("/", 1)[1])

    def complete(self, ticket_id: int) -> None:
        response = self.session.put(
            f"{self.base}/sales/tickets/{ticket_id}", json={"status": "complete"}, timeout=10
        )
        assert response.status_code == 200, response.text


def build_scenario(tmp: Path) -> tuple[Scenario, Sandbox]:
    """Start an empty sandbox, write the store above and sync it; the caller stops the sandbox."""
    clock = ManualClock(ANCHOR)
    sandbox = Sandbox(store=None, clock=clock).start()
    writer = HeartlandWriter(sandbox)
    ann = writer.customer("Ann", "ann@example.com")
    bob = writer.customer("Bob", None)
    sam = writer.customer("Sam", "sam@example.com", staff="yes")
    cat = writer.customer("Cat", "cat@example.com")

    ids = {
        "T1": writer.ticket(301, ann, [30, 20]),
        "T2": writer.ticket(301, None, [20]),
        "T3": writer.ticket(303, bob, [15]),
        "T4": writer.ticket(303, ann, [40], custom={"web_order_no": "W-1"}),
        "T5": writer.ticket(301, sam, [25]),
    }
    ledger = tmp / "state" / "ledger.sqlite3"
    settings = sandbox_settings(
        sandbox.heartland_url, sandbox.yotpo_url, ledger, yotpo={"currency": "EUR"}
    )
    run_catch_up(settings, since=SINCE, until=None)

    clock.advance(3600)
    ids["R1"] = writer.return_of(301, ids["T1"], 20)
    ids["T6"] = writer.ticket(303, cat, [50, 30])
    ids["R2"] = writer.return_of(303, ids["T6"], 30)
    settings = sandbox_settings(sandbox.heartland_url, sandbox.yotpo_url, ledger)
    run_catch_up(settings, since=SINCE, until=None)

    config = tmp / "yotposync.toml"
    write_config(config, sandbox, ledger)
    return Scenario(sandbox, clock, ledger, config, ids), sandbox
