"""A shop for the customer tests: an empty sandbox on loopback, its writes, and the jobs.

The sandbox runs on a manual clock that the jobs share, so a test moves time by hand and
nothing sleeps. The Yotpo side has three VIP tiers (Bronze from 0, Silver from 500, Gold
from 1500 lifetime points) and three offers ($5 Off for 500 points, $10 Off for 900, 15%
Off for 1500). One point is earned per dollar.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from yotposync.clients.heartland import HeartlandClient
from yotposync.clients.http import RetryPolicy
from yotposync.clients.yotpo import YotpoClient
from yotposync.config import Settings, sandbox_settings
from yotposync.customer_service import customers_job
from yotposync.ledger import Ledger
from yotposync.offers_runtime import offers_job, run_online_codes
from yotposync.sandbox import ManualClock, Sandbox
from yotposync.sandbox.vip_tiers import STANDARD_REDEMPTION_OPTIONS, STANDARD_VIP_TIERS
from yotposync.sync.customer_job import CustomersSummary
from yotposync.sync.delivery import DeliveryJob, DeliverySummary
from yotposync.sync.offers_job import OffersSummary
from yotposync.sync.refresh_job import RefreshJob, RefreshSummary
from yotposync.sync.transactions import TransactionsJob, TransactionsSummary

ANCHOR = datetime(2025, 5, 1, 15, 0, tzinfo=UTC)
TIMEOUT = 5
# A retry policy that never waits, so a failing call fails at once.
NO_RETRY = RetryPolicy(max_tries=1)


def start_sandbox(clock: ManualClock | None) -> Sandbox:
    """Start an empty sandbox with tiers and offers; on the real clock when `clock` is None."""
    return Sandbox(
        store=None,
        clock=clock,
        vip_tiers=STANDARD_VIP_TIERS,
        redemption_options=STANDARD_REDEMPTION_OPTIONS,
    ).start()


class Shop:
    """The register's writes to Heartland, and reads of both emulators, over HTTP."""

    def __init__(self, sandbox: Sandbox, clock: ManualClock | None) -> None:
        self.sandbox = sandbox
        self.clock = clock
        self.heartland_session = requests.Session()
        self.heartland_session.headers["Authorization"] = f"Bearer {sandbox.heartland_token}"
        self.yotpo_session = requests.Session()
        self.yotpo_session.headers.update(
            {"x-guid": sandbox.yotpo_guid, "x-api-key": sandbox.yotpo_api_key}
        )

    def close(self) -> None:
        self.heartland_session.close()
        self.yotpo_session.close()

    def tick(self, seconds: float = 60) -> None:
        assert self.clock is not None, "this shop runs on the real clock"
        self.clock.advance(seconds)

    # Heartland

    def send(self, method: str, path: str, body: Any = None) -> requests.Response:
        response = self.heartland_session.request(
            method, f"{self.sandbox.heartland_url}{path}", json=body, timeout=TIMEOUT
        )
        assert response.status_code in (200, 201, 204), f"{method} {path}: {response.text}"
        return response

    def customer(
        self,
        email: str | None,
        *,
        first: str = "Pat",
        last: str = "Lee",
        opt_in: str | None = "yes",
        phone: str | None = None,
        public_id: str | None = None,
        **custom: str,
    ) -> int:
        body: dict[str, Any] = {"first_name": first, "last_name": last, "email": email}
        if public_id is not None:
            body["public_id"] = public_id
        if opt_in is not None:
            body["custom@loyalty_opt_in"] = opt_in
        for key, value in custom.items():
            body[f"custom@{key}"] = value
        response = self.send("POST", "/customers", body)
        customer_id = int(response.headers["Location"].rsplit("/", 1)[1])
        if phone is not None:
            self.send("POST", f"/customers/{customer_id}/addresses", {"phone": phone})
        return customer_id

    def edit(self, customer_id: int, **fields: Any) -> None:
        self.send("PUT", f"/customers/{customer_id}", fields)

    def delete(self, customer_id: int) -> None:
        self.send("DELETE", f"/customers/{customer_id}")

    def merge(self, source_id: int, target_id: int) -> None:
        response = self.heartland_session.post(
            f"{self.sandbox.heartland_admin_url}/customers/{source_id}/merge",
            json={"into": target_id},
            timeout=TIMEOUT,
        )
        assert response.status_code == 200, response.text

    def sale(self, customer_id: int, dollars: int) -> int:
        body = {
            "station_id": 301,
            "customer_id": customer_id,
            "status": "complete",
            "lines": [{"type": "ItemLine", "item_id": 4401, "qty": 1, "unit_price": dollars}],
            "payments": [{"amount": dollars}],
        }
        response = self.send("POST", "/sales/tickets", body)
        return int(response.headers["Location"].rsplit("/", 1)[1])

    def refund(self, parent_id: int, customer_id: int, dollars: int) -> int:
        body = {
            "type": "Return",
            "station_id": 301,
            "customer_id": customer_id,
            "parent_transaction_id": parent_id,
            "status": "complete",
            "lines": [{"type": "ItemLine", "item_id": 4401, "qty": -1, "unit_price": dollars}],
            "payments": [{"amount": -dollars}],
        }
        response = self.send("POST", "/sales/tickets", body)
        return int(response.headers["Location"].rsplit("/", 1)[1])

    def heartland_customer(self, customer_id: int) -> dict[str, Any]:
        body: dict[str, Any] = self.send("GET", f"/customers/{customer_id}").json()
        return body

    def custom_field_names(self) -> dict[str, str]:
        """Return the customer custom fields as key -> name."""
        response = self.send("GET", "/custom_fields", None)
        return {
            field["key"]: field["name"]
            for field in response.json()["results"]
            if field["group_id"] == "customer"
        }

    # Yotpo

    def loyalty(self, **params: str) -> dict[str, Any] | None:
        """GET /customers by one identifier; None when Yotpo returns 404."""
        response = self.yotpo_session.get(
            f"{self.sandbox.yotpo_url}/customers", params=params, timeout=TIMEOUT
        )
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def yotpo_write(self, path: str, body: dict[str, Any]) -> requests.Response:
        return self.yotpo_session.post(f"{self.sandbox.yotpo_url}{path}", json=body, timeout=5)

    def records(self) -> dict[str, Any]:
        response = self.yotpo_session.get(f"{self.sandbox.yotpo_admin_url}/records", timeout=5)
        assert response.status_code == 200
        body: dict[str, Any] = response.json()
        return body

    def customer_writes(self, email: str) -> list[dict[str, Any]]:
        """Return the POST /customers calls Yotpo received for this e-mail (any case)."""
        return [
            entry
            for entry in self.records()["customers"]
            if str(entry["body"].get("email", "")).strip().lower() == email.lower()
        ]


@dataclass
class Jobs:
    """The daemon's jobs over one ledger, on the shop's clock."""

    shop: Shop
    settings: Settings
    ledger: Ledger
    heartland: HeartlandClient
    yotpo: YotpoClient

    def close(self) -> None:
        self.heartland.close()
        self.yotpo.close()
        self.ledger.close()

    def now(self) -> datetime:
        assert self.shop.clock is not None, "the jobs run on the shop's manual clock"
        return self.shop.clock.now()

    def customers(self) -> CustomersSummary:
        job = customers_job(self.settings, self.ledger, self.heartland, self.yotpo, clock=self.now)
        return job.run()

    def transactions(self) -> TransactionsSummary:
        return TransactionsJob(self.settings, self.ledger, self.heartland, clock=self.now).run()

    def deliver(self) -> DeliverySummary:
        return DeliveryJob(self.settings, self.ledger, self.yotpo, clock=self.now).run()

    def refresh(self) -> RefreshSummary:
        job = RefreshJob(self.settings, self.ledger, self.heartland, self.yotpo, clock=self.now)
        return job.run()

    def offers(self) -> OffersSummary:
        job = offers_job(self.settings, self.ledger, self.heartland, self.yotpo, self.now)
        return job.run()

    def codes(self) -> dict[str, Any]:
        """Run the online codes job once, with clients of its own, on the shop's clock."""
        return run_online_codes(self.settings, self.ledger, self.now)

    def cycle(self) -> None:
        """Run every job once, a minute apart, as the daemon would."""
        for step in (self.offers, self.customers, self.transactions, self.deliver, self.refresh):
            self.shop.tick(60)
            step()

    def status(self, customer_id: int) -> str:
        row = self.ledger.db.execute(
            "SELECT status FROM customers WHERE id = ?", [customer_id]
        ).fetchone()
        assert row is not None, f"customer {customer_id} is not in the ledger"
        return str(row[0])

    def open_reviews(self) -> list[tuple[int, str]]:
        rows = self.ledger.db.execute(
            "SELECT customer_id, kind FROM customer_reviews WHERE state = 'open' ORDER BY id"
        )
        return [(int(row[0]), str(row[1])) for row in rows]


def make_settings(sandbox: Sandbox, ledger_path: Path, **overrides: Any) -> Settings:
    sections: dict[str, Any] = {
        "sync": {"overlap_seconds": 300, "go_live": ANCHOR - timedelta(days=1)},
        "delivery": {"retry_base_seconds": 1, "retry_ceiling_seconds": 2},
    }
    for name, values in overrides.items():
        sections[name] = {**sections.get(name, {}), **values}
    return sandbox_settings(sandbox.heartland_url, sandbox.yotpo_url, ledger_path, **sections)


def make_jobs(
    shop: Shop, ledger_path: Path, yotpo_url: str | None = None, **overrides: Any
) -> Jobs:
    settings = make_settings(shop.sandbox, ledger_path, **overrides)
    heartland = HeartlandClient(
        shop.sandbox.heartland_url,
        shop.sandbox.heartland_token,
        requests_per_second=0,
        retry=NO_RETRY,
        sleep=lambda seconds: None,
    )
    yotpo = YotpoClient(
        yotpo_url or shop.sandbox.yotpo_url,
        shop.sandbox.yotpo_guid,
        shop.sandbox.yotpo_api_key,
        requests_per_second=0,
        retry=NO_RETRY,
        sleep=lambda seconds: None,
    )
    return Jobs(shop, settings, Ledger.open(ledger_path), heartland, yotpo)
