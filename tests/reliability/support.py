"""Shared parts of the reliability tests: a sandbox with a configured daemon, and the checks
that no point was lost or doubled.

A `Harness` is one sandbox (both emulators on 127.0.0.1), one ledger file and one TOML
configuration pointing at them. Tests drive it through the real `yotposync` process, or
in-process through the daemon's own job classes with clients whose retry waits are recorded
instead of slept.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests
import structlog
from click.testing import CliRunner, Result

from yotposync.cli import main
from yotposync.clients.heartland import HeartlandClient
from yotposync.clients.http import RetryPolicy
from yotposync.clients.yotpo import YotpoClient
from yotposync.config import (
    SANDBOX_HEARTLAND_TOKEN,
    SANDBOX_YOTPO_API_KEY,
    SANDBOX_YOTPO_GUID,
    Settings,
    load_settings,
)
from yotposync.ledger import Ledger
from yotposync.sandbox import Sandbox, Store
from yotposync.sandbox.clock import Clock
from yotposync.sandbox.faults import FaultPlan
from yotposync.sandbox.policies import normalize_email
from yotposync.sync.delivery import DeliveryJob, DeliverySummary
from yotposync.sync.transactions import TransactionsJob, TransactionsSummary

TOKEN = SANDBOX_HEARTLAND_TOKEN
GUID = SANDBOX_YOTPO_GUID
API_KEY = SANDBOX_YOTPO_API_KEY
POINTS_PER_DOLLAR = Decimal(2)
HTTP_TIMEOUT = 10

# Figures of this test session, printed at its end by conftest.py for docs/reliability.md.
FIGURES: Counter[str] = Counter()

# The configuration every harness starts from; tests override single keys.
BASE_CONFIG: dict[str, dict[str, Any]] = {
    "heartland": {"token": TOKEN, "page_size": 50, "requests_per_second": 500},
    "yotpo": {"guid": GUID, "api_key": API_KEY, "requests_per_second": 500},
    "sync": {"overlap_seconds": 300},
    "rules": {
        "exclude_customer_public_ids": ["CASH"],
        "exclude_ticket_custom_fields": [{"key": "web_order_no"}],
        "exclude_customer_custom_fields": [{"key": "staff", "equals": "yes"}],
    },
    "schedule": {"transactions_seconds": 1, "delivery_seconds": 1},
    "delivery": {"retry_base_seconds": 1, "retry_ceiling_seconds": 2},
    "logging": {"format": "json"},
}


def toml_value(value: Any) -> str:
    """Render a value of the configuration as TOML (strings, numbers, booleans, arrays, tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{key} = {toml_value(item)}" for key, item in value.items()) + " }"
    raise TypeError(f"cannot write {value!r} as TOML")


def toml_document(sections: Mapping[str, Mapping[str, Any]]) -> str:
    lines = []
    for section, keys in sections.items():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {toml_value(value)}" for key, value in keys.items())
        lines.append("")
    return "\n".join(lines)


def merged(
    base: Mapping[str, Mapping[str, Any]], overrides: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    result = {section: dict(keys) for section, keys in base.items()}
    for section, keys in overrides.items():
        result.setdefault(section, {}).update(keys)
    return result


def subprocess_environment(**extra: str) -> dict[str, str]:
    """The environment for a `yotposync` process: ours without YOTPOSYNC_ variables."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("YOTPOSYNC_")}
    environment["PYTHONUNBUFFERED"] = "1"
    environment.update(extra)
    return environment


def invoke(*args: str, env: Mapping[str, str] | None = None) -> Result:
    """Run a `yotposync` command in this process and restore logging and signals after it.

    Faster than a new process, for tests of messages and exit codes. `YOTPOSYNC_` variables
    of the test's environment are hidden from the command.
    """
    hidden: dict[str, str | None] = {k: None for k in os.environ if k.startswith("YOTPOSYNC_")}
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    handlers_before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return CliRunner(env={**hidden, **(env or {})}).invoke(main, list(args))
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.reset_defaults()
        for sig, handler in handlers_before.items():
            signal.signal(sig, handler)


class Waits:
    """Records the waits a client asks for instead of sleeping them."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


@dataclass
class Running:
    """A `yotposync` process started by `Harness.popen`, and the files it writes to."""

    process: subprocess.Popen[str]
    stdout_path: Path
    stderr_path: Path

    def stop(self, timeout: float = 30) -> tuple[str, str]:
        """Send SIGTERM, wait for the process to end, and return its output."""
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=timeout)
        return self.output()

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def output(self) -> tuple[str, str]:
        return self.stdout_path.read_text(), self.stderr_path.read_text()

    @property
    def returncode(self) -> int | None:
        return self.process.poll()


@dataclass
class Harness:
    """One sandbox, one ledger and one configuration file, for CLI runs and in-process jobs."""

    sandbox: Sandbox
    store: Store
    tmp: Path
    ledger: Path
    config: Path
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    started: int = 0  # processes started by popen()

    # Configuration.

    def configure(self, **overrides: Mapping[str, Any]) -> None:
        """Write the configuration file: the base sections with `overrides` per section."""
        sandbox_sections = {
            "heartland": {"base_url": self.sandbox.heartland_url},
            "yotpo": {"base_url": self.sandbox.yotpo_url},
            "ledger": {"path": str(self.ledger)},
            "sync": {"go_live": self.store.go_live.isoformat()},
        }
        self.sections = merged(merged(BASE_CONFIG, sandbox_sections), overrides)
        self.config.write_text(toml_document(self.sections), encoding="utf-8")

    def settings(self) -> Settings:
        return load_settings(self.config, environ={})

    def since(self) -> str:
        """A catch-up start that covers every generated ticket."""
        return (self.store.anchor - timedelta(days=366)).date().isoformat()

    # The yotposync process.

    def cli(
        self, *args: str, timeout: float = 120, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "yotposync", "--config", str(self.config), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=dict(env) if env is not None else subprocess_environment(),
        )

    def cli_ok(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        result = self.cli(*args, timeout=timeout)
        assert result.returncode in (0, 3), (
            f"yotposync {' '.join(args)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
        return result

    def invoke(self, *args: str, env: Mapping[str, str] | None = None) -> Result:
        """Run a command in this process against the harness's configuration."""
        return invoke("--config", str(self.config), *args, env=env)

    def popen(self, *args: str, env: Mapping[str, str] | None = None) -> Running:
        """Start a `yotposync` process whose output goes to files in the harness's folder.

        Files, not pipes: a pipe that is never read fills up, and the process then blocks on its
        next log line.
        """
        self.started += 1
        folder = self.tmp / "output"
        folder.mkdir(exist_ok=True)
        stdout = folder / f"{self.started}.stdout"
        stderr = folder / f"{self.started}.stderr"
        with stdout.open("w") as out, stderr.open("w") as err:
            process = subprocess.Popen(
                [sys.executable, "-m", "yotposync", "--config", str(self.config), *args],
                stdout=out,
                stderr=err,
                text=True,
                env=dict(env) if env is not None else subprocess_environment(),
            )
        return Running(process, stdout, stderr)

    # In-process jobs.

    def clients(
        self, waits: Waits, *, read_timeout: float = 5.0, max_tries: int = 4
    ) -> tuple[HeartlandClient, YotpoClient]:
        """Clients for the sandbox that record their retry waits in `waits`."""
        retry = RetryPolicy(max_tries=max_tries, jitter=lambda wait: wait)
        heartland = HeartlandClient(
            self.sandbox.heartland_url,
            TOKEN,
            read_timeout=read_timeout,
            requests_per_second=0,
            retry=retry,
            sleep=waits,
        )
        yotpo = YotpoClient(
            self.sandbox.yotpo_url,
            GUID,
            API_KEY,
            read_timeout=read_timeout,
            requests_per_second=0,
            retry=retry,
            sleep=waits,
        )
        return heartland, yotpo

    def transactions(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        force: bool = False,
        clock: Callable[[], datetime] | None = None,
        waits: Waits | None = None,
        read_timeout: float = 5.0,
    ) -> TransactionsSummary:
        """Run the transactions job once, as the daemon does, on the harness's ledger."""
        heartland, _ = self.clients(waits or Waits(), read_timeout=read_timeout)
        with self.open_ledger() as ledger:
            job = TransactionsJob(self.settings(), ledger, heartland, clock=clock or utc_now)
            return job.run(since=since, until=until, force=force)

    def delivery(
        self,
        *,
        clock: Callable[[], datetime] | None = None,
        waits: Waits | None = None,
        read_timeout: float = 5.0,
    ) -> DeliverySummary:
        """Run the delivery job once, as the daemon does, on the harness's ledger."""
        _, yotpo = self.clients(waits or Waits(), read_timeout=read_timeout)
        with self.open_ledger() as ledger:
            return DeliveryJob(self.settings(), ledger, yotpo, clock=clock or utc_now).run()

    @contextmanager
    def open_ledger(self) -> Iterator[Ledger]:
        ledger = Ledger.open(self.ledger)
        try:
            yield ledger
        finally:
            ledger.close()

    # Reading the outcome.

    def records(self) -> dict[str, Any]:
        return self.sandbox.yotpo.records()

    def balances(self) -> dict[str, int]:
        return self.sandbox.yotpo.balances()

    def history(self, email: str) -> list[dict[str, Any]]:
        """A Yotpo customer's history items, oldest first, read over HTTP."""
        response = requests.get(
            f"{self.sandbox.yotpo_url}/customers",
            params={"customer_email": email, "with_history": "true"},
            headers={"x-guid": GUID, "x-api-key": API_KEY},
            timeout=HTTP_TIMEOUT,
        )
        response.raise_for_status()
        items: list[dict[str, Any]] = response.json()["history_items"]
        return list(reversed(items))

    def ledger_rows(self, sql: str, *parameters: Any) -> list[tuple[Any, ...]]:
        """Run a read-only query on the ledger file, which a daemon may be writing."""
        uri = f"file:{self.ledger}?mode=ro"
        with closing(sqlite3.connect(uri, uri=True, timeout=10)) as connection:
            return list(connection.execute(sql, parameters))

    def cursor(self) -> tuple[str, int] | None:
        rows = self.ledger_rows("SELECT updated_at, last_id FROM cursors WHERE name = 'tickets'")
        return (str(rows[0][0]), int(rows[0][1])) if rows else None

    def admin(self, service: str, method: str, action: str = "", body: Any = None) -> Any:
        """Call the fault administration endpoint of one emulator over HTTP."""
        if service == "heartland":
            base = self.sandbox.heartland_admin_url
            headers = {"Authorization": f"Bearer {TOKEN}"}
        else:
            base = self.sandbox.yotpo_admin_url
            headers = {"x-guid": GUID, "x-api-key": API_KEY}
        url = f"{base}/faults" + (f"/{action}" if action else "")
        response = requests.request(method, url, json=body, headers=headers, timeout=HTTP_TIMEOUT)
        response.raise_for_status()
        return response.json()


class Register:
    """Rings up sales in the sandbox over HTTP, as a cashier does, and remembers them."""

    def __init__(self, h: Harness) -> None:
        self.h = h
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {TOKEN}"
        self.sales: dict[int, tuple[str, int]] = {}  # ticket id -> (e-mail, cents)

    def customer(self, email: str) -> int:
        response = self.session.post(
            f"{self.h.sandbox.heartland_url}/customers",
            json={"first_name": "Pat", "last_name": "Lee", "email": email},
            timeout=10,
        )
        assert response.status_code == 201, response.text
        return int(response.headers["Location"].rsplit("/", 1)[1])

    def sale(self, customer_id: int, email: str, dollars: int, station: int = 301) -> int:
        line = {"type": "ItemLine", "qty": 1, "unit_price": dollars, "description": "Mug"}
        body = {
            "station_id": station,
            "customer_id": customer_id,
            "status": "complete",
            "lines": [line],
        }
        response = self.session.post(
            f"{self.h.sandbox.heartland_url}/sales/tickets", json=body, timeout=10
        )
        assert response.status_code == 201, response.text
        ticket_id = int(response.headers["Location"].rsplit("/", 1)[1])
        self.sales[ticket_id] = (email, dollars * 100)
        return ticket_id


def utc_now() -> datetime:
    return datetime.now(UTC)


@contextmanager
def harness(
    tmp: Path,
    store: Store,
    *,
    faults: FaultPlan | None = None,
    clock: Clock | None = None,
    **config: Mapping[str, Any],
) -> Iterator[Harness]:
    """Start a sandbox serving `store`, write a configuration for it, and stop it afterwards.

    The faults the sandbox injected are added to the session's figures.
    """
    with Sandbox(
        store=store, points_per_dollar=POINTS_PER_DOLLAR, faults=faults, clock=clock
    ) as sandbox:
        tmp.mkdir(parents=True, exist_ok=True)
        state = tmp / "state"
        started = Harness(sandbox, store, tmp, state / "ledger.sqlite3", tmp / "yotposync.toml")
        started.configure(**config)
        try:
            yield started
        finally:
            FIGURES["faults injected"] += sandbox.faults.report()["total_injected"]


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `condition` until it holds; fail naming `what` after `timeout` seconds.

    This waits on a separate process or server thread, not on a retry of our own code.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


# Checks that no point was lost or doubled.


def accepted(records: Mapping[str, Any], kind: str) -> list[dict[str, Any]]:
    """Bodies Yotpo applied: status 200 and not ignored as a repeat."""
    return [e["body"] for e in records[kind] if e["status"] == 200 and not e["duplicate"]]


def net_by_email(records: Mapping[str, Any]) -> dict[str, tuple[int, int]]:
    """Per customer: total ordered and total refunded, in cents."""
    orders = accepted(records, "orders")
    owner = {o["order_id"]: normalize_email(o["customer_email"]) for o in orders}
    totals: dict[str, list[int]] = {}
    for order in orders:
        email = normalize_email(order["customer_email"])
        totals.setdefault(email, [0, 0])[0] += order["total_amount_cents"]
    for refund in accepted(records, "refunds"):
        totals.setdefault(owner[refund["order_id"]], [0, 0])[1] += refund["total_amount_cents"]
    return {email: (ordered, refunded) for email, (ordered, refunded) in totals.items()}


def expected_net(store: Store, include_late: bool) -> dict[str, tuple[int, int]]:
    totals: dict[str, list[int]] = {}
    for push in store.expected_effects(store.go_live, include_late):
        slot = 0 if push.kind == "order" else 1
        totals.setdefault(push.email, [0, 0])[slot] += push.amount_cents
    return {email: (ordered, refunded) for email, (ordered, refunded) in totals.items()}


def repeated(values: list[str]) -> list[str]:
    return sorted(value for value, count in Counter(values).items() if count > 1)


def assert_settled(h: Harness, *, include_late: bool = False) -> None:
    """Check that Yotpo contains exactly what the store should have earned: nothing lost, nothing
    twice, nothing rejected. Adds the points lost and the points doubled to the figures."""
    expected = h.store.expected_balances(POINTS_PER_DOLLAR, h.store.go_live, include_late)
    balances = h.balances()
    actual = {email: balances.get(email, 0) for email in expected}
    FIGURES["points lost"] += sum(max(0, expected[e] - actual[e]) for e in expected)
    FIGURES["points doubled"] += sum(max(0, actual[e] - expected[e]) for e in expected)
    records = h.records()

    assert actual == expected
    assert net_by_email(records) == expected_net(h.store, include_late)
    assert repeated([o["order_id"] for o in accepted(records, "orders")]) == []
    assert repeated([r["id"] for r in accepted(records, "refunds")]) == []
    assert [e for kind in ("orders", "refunds") for e in records[kind] if e["status"] != 200] == []


def ledger_sequence(h: Harness) -> dict[str, list[tuple[str, str]]]:
    """Per customer, the confirmed pushes in ledger order as (kind, order id)."""
    rows = h.ledger_rows(
        "SELECT email, kind, push_id, target_order_id FROM pushes "
        "WHERE state = 'confirmed' ORDER BY seq"
    )
    sequence: dict[str, list[tuple[str, str]]] = {}
    for email, kind, push_id, target in rows:
        order_id = push_id if kind == "order" else target
        sequence.setdefault(normalize_email(email), []).append((kind, order_id))
    return sequence


def yotpo_sequence(h: Harness, email: str) -> list[tuple[str, str]]:
    """A customer's orders and refunds in the order Yotpo applied them, as (kind, order id)."""
    kinds = {"Make a purchase": "order", "Refund": "refund"}
    return [
        (kinds[item["action"]], item["order_ids"][0])
        for item in h.history(email)
        if item["action"] in kinds
    ]
