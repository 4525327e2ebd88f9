"""A loyalty store on the sandbox: Yotpo options and members, Heartland customers and tickets."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
import structlog
from click.testing import CliRunner

from tests.e2e.conftest import API_KEY, GUID, TOKEN, DrainedPopen, cli_environment
from yotposync.cli import main
from yotposync.sandbox.server import Sandbox

GO_LIVE = datetime(2020, 1, 1, tzinfo=UTC)

FIVE_OFF = {
    "id": 3101,
    "name": "$5 Off",
    "type": "Coupon",
    "description": "Get $5 off for 500 points",
    "cost_text": "500 Points",
    "amount": 500,
    "discount_type": "fixed_amount",
    "discount_amount_cents": 500,
    "discount_percentage": None,
}
TEN_PERCENT = {
    "id": 3103,
    "name": "10% Off",
    "type": "Coupon",
    "amount": "800",
    "discount_type": "percentage",
    "discount_amount_cents": 0,
    "discount_percentage": 10,
}
POINTS_FOR_CASH = {
    "id": 3102,
    "name": "Points for cash",
    "type": "Coupon",
    "amount": 1,
    "discount_type": "generic_variable",
    "discount_rate_cents": 1,
}


@dataclass
class LoyaltyStore:
    """One sandbox with no generated data, a ledger path and a config file for the CLI."""

    sandbox: Sandbox
    config: Path
    ledger: Path
    in_process: bool = True

    # Yotpo.

    def yotpo(self, method: str, path: str, body: Any = None, **params: Any) -> requests.Response:
        return requests.request(
            method,
            f"{self.sandbox.yotpo_url}{path}",
            json=body,
            params=params,
            headers={"x-guid": GUID, "x-api-key": API_KEY},
            timeout=10,
        )

    def admin(self, method: str, path: str, body: Any) -> requests.Response:
        response = requests.request(
            method,
            f"{self.sandbox.yotpo_admin_url}{path}",
            json=body,
            headers={"x-guid": GUID, "x-api-key": API_KEY},
            timeout=10,
        )
        response.raise_for_status()
        return response

    def set_options(self, *options: dict[str, Any]) -> None:
        self.admin("PUT", "/redemption_options", {"options": list(options)})

    def member(self, email: str, points: int) -> None:
        """Enrol a Yotpo customer and give them `points`."""
        assert self.yotpo("POST", "/customers", {"email": email}).status_code == 200
        if points:
            body = {"customer_email": email, "point_adjustment_amount": points}
            assert self.yotpo("POST", "/points/adjust", body).status_code == 200

    def balance(self, email: str) -> int:
        response = self.yotpo("GET", "/customers", customer_email=email)
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

    def redeem(self, email: str, option_id: int, *, delay: bool = False) -> str:
        """Redeem an option in Yotpo as the loyalty widget does; return the code Yotpo issued."""
        body = {
            "customer_email": email,
            "redemption_option_id": option_id,
            "delay_points_deduction": delay,
        }
        response = self.yotpo("POST", "/redemptions", body)
        assert response.status_code == 200, response.text
        code: str = response.json()["reward_text"]
        return code

    def restores_after_return(
        self, customer_id: int | None, coupon_code: str, returned: int
    ) -> list[dict[str, Any]]:
        """Sell two $20 items with `coupon_code`, return `returned` of them, and catch up after
        each; return the accepted points adjustments that gave points back."""
        sale = self.ticket(customer_id=customer_id, coupon_code=coupon_code, items=[(2, 20.0)])
        self.catch_up()
        self.ticket(
            customer_id=customer_id,
            coupon_code=None,
            items=[(-returned, 20.0)],
            paid=False,
            parent_id=sale,
        )
        self.catch_up()
        return self.adjustments("Points given back")

    def adjustments(self, title_part: str) -> list[dict[str, Any]]:
        """Accepted adjustments whose history title contains `title_part`."""
        return [
            entry["body"]
            for entry in self.records()["adjustments"]
            if entry["status"] == 200 and title_part in entry["body"].get("history_title", "")
        ]

    def adjusted(self, title_part: str) -> list[tuple[str, int]]:
        """The customer and points of each accepted adjustment whose title has `title_part`."""
        return [
            (body["customer_email"], body["point_adjustment_amount"])
            for body in self.adjustments(title_part)
        ]

    # Heartland.

    def heartland(
        self, method: str, path: str, body: Any = None, **params: Any
    ) -> requests.Response:
        return requests.request(
            method,
            f"{self.sandbox.heartland_url}{path}",
            json=body,
            params=params,
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        )

    def customer(self, email: str | None, name: str = "Pat") -> int:
        body = {"first_name": name, "last_name": "Lee", "email": email}
        response = self.heartland("POST", "/customers", body)
        assert response.status_code == 201, response.text
        return int(response.headers["Location"].rsplit("/", 1)[1])

    def coupons(self) -> list[dict[str, Any]]:
        response = self.heartland("GET", "/coupons", per_page="all")
        response.raise_for_status()
        results: list[dict[str, Any]] = response.json()["results"]
        return results

    def coupon_id(self, code: str) -> int:
        matches = [c["id"] for c in self.coupons() if c["code"] == code]
        assert len(matches) == 1, matches
        return int(matches[0])

    def ticket(
        self,
        *,
        customer_id: int | None,
        coupon_code: str | None,
        items: list[tuple[int, float]],
        paid: bool = True,
        complete: bool = True,
        parent_id: int | None = None,
    ) -> int:
        """Create a ticket of `(qty, unit price)` lines; pay its total when `paid`."""
        lines = [
            {
                "type": "ItemLine",
                "item_id": 4400 + n,
                "description": f"Item {n}",
                "qty": qty,
                "unit_price": price,
            }
            for n, (qty, price) in enumerate(items)
        ]
        body: dict[str, Any] = {"station_id": 301, "customer_id": customer_id, "lines": lines}
        if parent_id is not None:
            body["type"] = "Return"
            body["parent_transaction_id"] = parent_id
        if coupon_code is not None:
            body["coupon_id"] = self.coupon_id(coupon_code)
        response = self.heartland("POST", "/sales/tickets", body)
        assert response.status_code == 201, response.text
        ticket_id = int(response.headers["Location"].rsplit("/", 1)[1])
        if paid:
            self.pay(ticket_id)
        if complete:
            self.complete(ticket_id)
        return ticket_id

    def move_to_new_member(self, ticket_id: int, email: str, points: int) -> int:
        """Make `email` a member with `points`, and move the ticket to them as a cashier does."""
        self.member(email, points)
        customer = self.customer(email, name="Sam")
        response = self.heartland("PUT", f"/sales/tickets/{ticket_id}", {"customer_id": customer})
        assert response.status_code == 200, response.text
        return customer

    def pay(self, ticket_id: int) -> None:
        ticket = self.heartland("GET", f"/sales/tickets/{ticket_id}").json()
        response = self.heartland(
            "POST", f"/sales/tickets/{ticket_id}/payments", {"amount": ticket["balance"]}
        )
        assert response.status_code == 201, response.text

    def complete(self, ticket_id: int) -> None:
        response = self.heartland("PUT", f"/sales/tickets/{ticket_id}", {"status": "complete"})
        assert response.status_code == 200, response.text

    # The CLI.

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run `yotposync --config CONFIG ARGS`: in this process by default, or as a child
        process when `in_process` is False (about 4 seconds more per call)."""
        if self.in_process:
            runner = CliRunner()
            outcome = runner.invoke(main, ["--config", str(self.config), *args])
            if outcome.exception is not None and not isinstance(outcome.exception, SystemExit):
                raise outcome.exception
            result = subprocess.CompletedProcess(
                list(args), outcome.exit_code, outcome.stdout, outcome.stderr
            )
        else:
            result = subprocess.run(
                [sys.executable, "-m", "yotposync", "--config", str(self.config), *args],
                capture_output=True,
                text=True,
                timeout=120,
                env=cli_environment(),
            )
        if check and result.returncode not in (0, 3):
            raise AssertionError(
                f"yotposync {' '.join(args)} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    def popen_daemon(self) -> subprocess.Popen[str]:
        """Start `yotposync run` as a child process."""
        return DrainedPopen(
            [sys.executable, "-m", "yotposync", "--config", str(self.config), "run"]
        )

    def catch_up(self) -> subprocess.CompletedProcess[str]:
        since = (datetime.now(UTC) - timedelta(days=2)).date().isoformat()
        return self.cli("catch-up", "--since", since)

    def catch_up_allowing_undelivered(self) -> subprocess.CompletedProcess[str]:
        """Run a catch-up that may end with exit code 4 (a push Yotpo rejected)."""
        since = (datetime.now(UTC) - timedelta(days=2)).date().isoformat()
        result = self.cli("catch-up", "--since", since, check=False)
        assert result.returncode in (0, 4), result.stderr
        return result


@contextmanager
def restored_logging() -> Iterator[None]:
    """Put the logging set-up back as it was once the block ends.

    `LoyaltyStore.cli` runs commands in this process, and each command configures logging for
    the whole process. Later tests that read log lines with `capsys` need the defaults back.
    """
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.reset_defaults()


def write_offer_config(path: Path, sandbox: Sandbox, ledger: Path, extra: str = "") -> None:
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

[sync]
go_live = "{GO_LIVE.isoformat()}"
overlap_seconds = 0

[delivery]
retry_base_seconds = 1
retry_ceiling_seconds = 1
max_tries_per_call = 1

[logging]
format = "json"

{extra}
"""
    )
