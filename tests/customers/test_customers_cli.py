"""End to end: the `yotposync` process against the sandbox on the real clock.

Each test scripts the register over HTTP, runs `catch-up` and `customers sync` as a process,
and checks Yotpo, the Heartland customer record and what the commands print.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.customers.support import Shop, start_sandbox
from tests.e2e.conftest import API_KEY, TOKEN, cli_environment, write_config
from yotposync.customers_cli import format_reviews
from yotposync.ledger.customers import Review
from yotposync.sandbox.vip_tiers import STANDARD_REDEMPTION_OPTIONS

pytestmark = pytest.mark.e2e


@dataclass
class Cli:
    """The shop and a configuration file for `yotposync` runs against it."""

    shop: Shop
    config: Path

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "yotposync", "--config", str(self.config), *args],
            capture_output=True,
            text=True,
            timeout=120,
            env=cli_environment(),
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"yotposync {' '.join(args)} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    def catch_up(self) -> None:
        since = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
        self.run("catch-up", "--since", since)

    def sync(self) -> str:
        return self.run("customers", "sync").stdout


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    sandbox = start_sandbox(None)
    shop = Shop(sandbox, None)
    config = tmp_path / "yotposync.toml"
    go_live = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    write_config(config, sandbox, tmp_path / "state" / "ledger.sqlite3", go_live)
    try:
        yield Cli(shop, config)
    finally:
        shop.close()
        sandbox.stop()


def loyalty_fields(shop: Shop, customer_id: int) -> dict[str, Any]:
    custom = shop.heartland_customer(customer_id)["custom"]
    return {
        "points": custom["loyalty_points"],
        "tier": custom["loyalty_tier"],
        "next_tier": custom["loyalty_points_to_next_tier"] or "",
    }


def yotpo_figures(shop: Shop, customer_id: int) -> dict[str, Any]:
    account = shop.loyalty(customer_id=str(customer_id))
    assert account is not None
    needed = account["vip_tier_upgrade_requirements"]["points_needed"]
    return {
        "points": str(account["points_balance"]),
        "tier": account["vip_tier_name"],
        "next_tier": "" if needed is None else str(needed),
    }


# Run by the fast suite: every scenario once, with as few processes as possible.


def test_enrolment_and_review(cli: Cli) -> None:
    pat = cli.shop.customer("pat@example.com", phone="512-555-0147")
    sam = cli.shop.customer("sam@example.com", opt_in=None)
    cli.shop.yotpo_write("/customers", {"email": "kim@example.com", "id": "web-901"})
    kim = cli.shop.customer("kim@example.com", first="Kim")

    output = cli.sync()
    listed = cli.run("customers", "review").stdout
    status = cli.run("status").stdout

    account = cli.shop.loyalty(customer_id=str(pat))
    assert account is not None
    assert account["opt_in"] is True
    assert account["phone_number"] == "+15125550147"
    assert cli.shop.loyalty(customer_id=str(sam)) is None
    assert cli.shop.customer_writes("sam@example.com") == []
    assert "1 sent to Yotpo" in output
    assert "Open reviews: 1" in output
    assert f"customer {kim}, email_taken" in listed
    assert "Customer reviews waiting for staff: 1" in status
    assert "web-901" in listed
    holder = cli.shop.loyalty(customer_email="kim@example.com")
    assert holder is not None
    assert holder["third_party_id"] == "web-901"


def test_fields_and_lookup_after_sale_and_return(cli: Cli) -> None:
    pat = cli.shop.customer("pat@example.com", public_id="C-77")
    sale = cli.shop.sale(pat, 600)
    cli.catch_up()
    cli.sync()
    after_sale = (loyalty_fields(cli.shop, pat), yotpo_figures(cli.shop, pat))
    refund = cli.shop.refund(sale, pat, 200)
    cli.catch_up()
    cli.sync()

    shown = cli.run("customer", "show", "PAT@example.com").stdout

    assert after_sale[0] == after_sale[1]
    assert after_sale[0] == {"points": "600", "tier": "Silver", "next_tier": "900"}
    assert loyalty_fields(cli.shop, pat) == yotpo_figures(cli.shop, pat)
    assert loyalty_fields(cli.shop, pat) == {"points": "400", "tier": "Bronze", "next_tier": "100"}
    assert f"Customer {pat} (C-77): Pat Lee" in shown
    assert "Balance: 400 points" in shown
    assert "Tier: Bronze, 100 points to the next tier" in shown
    assert "Offers they can afford now: none" in shown
    assert f"ticket {sale} ({sale})  sale: earns on 600.00\n" in shown
    assert f"ticket {refund} ({refund})  return: takes back 200.00 of parent sale {sale}\n" in shown
    assert shown.count("earns on 600.00") == 1
    assert f"hl-ret-{refund}  refund against hl-{sale}  200.00  confirmed" in shown


def test_show_names_customers_sharing_email(cli: Cli) -> None:
    pat = cli.shop.customer("pat@example.com", public_id="C-77")
    twin = cli.shop.customer("Pat@Example.com", first="Patricia", public_id="C-78")
    cli.sync()
    reviews = json.loads(cli.run("customers", "review", "--json").stdout)

    output = cli.run("customer", "show", "pat@example.com").stdout
    report = json.loads(cli.run("customer", "show", "pat@example.com", "--json").stdout)

    assert f"Customer {pat} (C-77): Pat Lee" in output
    assert (
        f"2 Heartland customers have e-mail pat@example.com: {pat} (shown here) and {twin}. "
        f"Show another with `yotposync customer show {twin}`." in output
    )
    twin_reviews = [review for review in reviews if review["customer_id"] == twin]
    assert [review["kind"] for review in twin_reviews] == ["shared_email"]
    assert f"Open review #{twin_reviews[0]['id']} of customer {twin} (shared_email)" in output
    assert report["customer_id"] == pat
    assert report["other_customer_ids"] == [twin]
    assert [review["id"] for review in report["other_reviews"]] == [
        review["id"] for review in twin_reviews
    ]


# The rest run with `make test-slow`: each command's other cases.


@pytest.mark.slow
def test_email_change_keeps_balance(cli: Cli) -> None:
    pat = cli.shop.customer("pat@example.com")
    cli.sync()
    cli.shop.sale(pat, 120)
    cli.catch_up()
    cli.shop.edit(pat, email="pat.lee@example.org")

    cli.sync()

    account = cli.shop.loyalty(customer_email="pat.lee@example.org")
    assert account is not None
    assert account["points_balance"] == 120
    assert cli.shop.loyalty(customer_email="pat@example.com") is None


@pytest.mark.slow
def test_resolved_review_reopens_while_conflict_stays(cli: Cli) -> None:
    cli.shop.yotpo_write("/customers", {"email": "pat@example.com", "id": "web-901"})
    pat = cli.shop.customer("pat@example.com")
    cli.sync()
    review_id = json.loads(cli.run("customers", "review", "--json").stdout)[0]["id"]

    resolved = cli.run("customers", "resolve", str(review_id), "--note", "checked\n  by Sam")
    after_resolve = cli.run("customers", "review").stdout
    listed = cli.run("customers", "review", "--all").stdout
    cli.sync()
    after_sync = json.loads(cli.run("customers", "review", "--json").stdout)

    assert f"Review #{review_id} resolved" in resolved.stdout
    assert after_resolve.strip() == "No open reviews."
    assert "      Resolution: checked by Sam\n" in listed
    assert [(r["customer_id"], r["kind"]) for r in after_sync] == [(pat, "email_taken")]


@pytest.mark.slow
def test_resolve_unknown_review_fails(cli: Cli) -> None:
    cli.sync()

    # The number is accepted as `customers review` prints it, with its #.
    result = cli.run("customers", "resolve", "#42", check=False)

    assert result.returncode == 1
    assert "no open review #42" in result.stdout


@pytest.mark.parametrize("value", ["abc", "0", "-3", "4.5"])
def test_resolve_rejects_bad_review_number(cli: Cli, value: str) -> None:
    result = cli.run("customers", "resolve", "--", value, check=False)

    assert result.returncode == 2
    assert f"{value!r} is not a review number" in result.stderr
    assert "`yotposync customers review` shows after the #" in result.stderr


def test_resolve_rejects_too_large_review_number(cli: Cli) -> None:
    result = cli.run("customers", "resolve", "99999999999999999999999", check=False)

    assert result.returncode == 2
    assert "'99999999999999999999999' is larger than any review number" in result.stderr


def test_show_needs_no_heartland_token(cli: Cli) -> None:
    pat = cli.shop.customer("pat@example.com")
    cli.shop.sale(pat, 600)
    cli.catch_up()
    with_token = cli.config.read_text()
    cli.config.write_text(with_token.replace(f'token = "{TOKEN}"\n', "", 1))

    without_token = cli.run("customer", "show", "pat@example.com").stdout
    cli.config.write_text(with_token.replace(f'api_key = "{API_KEY}"\n', "", 1))
    without_key = cli.run("customer", "show", "pat@example.com", check=False)

    assert "Balance: 600 points" in without_token
    assert without_key.returncode == 2
    assert "yotpo.api_key" in without_key.stderr


def test_show_lists_register_offers_only(cli: Cli) -> None:
    cash = {
        "id": 3104,
        "name": "Points for cash",
        "type": "Coupon",
        "amount": 1,
        "discount_type": "generic_variable",
        "discount_rate_cents": 1,
    }
    response = cli.shop.yotpo_session.put(
        f"{cli.shop.sandbox.yotpo_admin_url}/redemption_options",
        json={"options": [*STANDARD_REDEMPTION_OPTIONS, cash]},
        timeout=5,
    )
    assert response.status_code == 200, response.text
    pat = cli.shop.customer("pat@example.com")
    cli.shop.sale(pat, 600)
    cli.catch_up()

    output = cli.run("customer", "show", "pat@example.com").stdout

    # Points for cash gets no coupon, so the cashier could not apply it.
    assert "Offers they can afford now: $5 Off (500 points)\n" in output


@pytest.mark.slow
def test_show_by_id_and_phone(cli: Cli) -> None:
    pat = cli.shop.customer("pat@example.com", phone="(512) 555-0147", public_id="C-77")
    sale = cli.shop.sale(pat, 600)
    cli.catch_up()
    cli.sync()

    by_email = cli.run("customer", "show", "pat@example.com").stdout
    by_id = cli.run("customer", "show", str(pat)).stdout
    by_phone = cli.run("customer", "show", "512-555-0147").stdout

    assert "Tier: Silver, 900 points to the next tier" in by_email
    assert "Offers they can afford now: $5 Off (500 points)" in by_email
    assert f"hl-{sale}  order  600.00  confirmed" in by_email
    assert by_id == by_email
    assert by_phone == by_email


@pytest.mark.slow
def test_show_json(cli: Cli) -> None:
    pat = cli.shop.customer("pat@example.com")
    cli.shop.sale(pat, 950)
    cli.catch_up()
    cli.sync()

    report = json.loads(cli.run("customer", "show", "pat@example.com", "--json").stdout)

    assert report["customer_id"] == pat
    assert report["yotpo"]["points_balance"] == 950
    assert report["yotpo"]["vip_tier"] == "Silver"
    assert report["yotpo"]["points_to_next_tier"] == 550
    assert [o["name"] for o in report["yotpo"]["affordable_offers"]] == ["$5 Off", "$10 Off"]


def test_show_without_ledger_warns(cli: Cli) -> None:
    assert cli.shop.yotpo_write("/customers", {"email": "pat@example.com"}).status_code == 200

    result = cli.run("customer", "show", "pat@example.com")

    assert "Balance: 0 points" in result.stdout
    assert result.stderr.startswith("warning: no ledger at ")
    assert "set ledger.path to it" in result.stderr


@pytest.mark.slow
def test_show_unknown_customer_fails(cli: Cli) -> None:
    cli.sync()

    result = cli.run("customer", "show", "nobody@example.com", check=False)

    assert result.returncode == 1
    assert "No customer found for e-mail nobody@example.com" in result.stderr


@pytest.mark.slow
def test_show_rejects_unreadable_query(cli: Cli) -> None:
    result = cli.run("customer", "show", "not a phone", check=False)

    assert result.returncode == 2
    assert "neither an e-mail address" in result.stderr


def test_review_count_singular_and_plural() -> None:
    opened = datetime(2026, 3, 1, 15, 0, tzinfo=UTC)
    review = Review(1, 9, "shared_email", "detail", "open", opened, opened, None, None)

    assert format_reviews([review], show_all=False).startswith("1 open review:\n")
    assert format_reviews([review, review], show_all=True).startswith("2 reviews:\n")


def test_show_shared_email_linked_customer(cli: Cli) -> None:
    pat = cli.shop.customer("pat@example.com", public_id="C-77")
    twin = cli.shop.customer("Pat@Example.com ", first="Patricia", public_id="C-78")
    cli.shop.sale(twin, 600)
    cli.catch_up()
    cli.sync()
    account = cli.shop.loyalty(customer_email="pat@example.com")

    result = cli.run("customer", "show", "pat@example.com", check=False)
    report = json.loads(cli.run("customer", "show", "pat@example.com", "--json").stdout)

    # The Yotpo account belongs to the twin, so the twin is shown with its balance.
    assert account is not None
    assert account["third_party_id"] == str(twin)
    assert result.returncode == 0, result.stderr
    assert "Balance: 600 points" in result.stdout
    assert report["customer_id"] == twin
    assert report["other_customer_ids"] == [pat]
    assert f"{twin} (shown here) and {pat}" in result.stdout
