"""The customers job against the sandbox: who is enrolled, with what, and what goes to review."""

from __future__ import annotations

from pathlib import Path

from tests.customers.support import Jobs, Shop, make_jobs


def test_opted_in_customer_enrolled(shop: Shop, jobs: Jobs) -> None:
    pat = shop.customer(" Pat.Lee@Example.com ", phone="(512) 555-0147", public_id="C-77")

    summary = jobs.customers()

    account = shop.loyalty(customer_id=str(pat))
    assert account is not None
    assert account["email"] == "pat.lee@example.com"
    assert account["first_name"] == "Pat"
    assert account["last_name"] == "Lee"
    assert account["phone_number"] == "+15125550147"
    assert account["pos_account_id"] == "C-77"
    assert account["opt_in"] is True
    assert summary.sent == 1
    assert jobs.status(pat) == "enrolled"


def test_enrolled_customer_found_by_pos_account(shop: Shop, jobs: Jobs) -> None:
    shop.customer("pat@example.com", public_id="C-77")
    jobs.customers()

    account = shop.loyalty(pos_account_id="C-77")

    assert account is not None
    assert account["email"] == "pat@example.com"


def test_phone_without_area_code_left_out(shop: Shop, jobs: Jobs) -> None:
    pat = shop.customer("pat@example.com", phone="555-0100")

    jobs.customers()

    account = shop.loyalty(customer_id=str(pat))
    assert account is not None
    assert account["phone_number"] is None


def test_opted_out_customer_not_sent(shop: Shop, jobs: Jobs) -> None:
    sam = shop.customer("sam@example.com", opt_in=None)
    kim = shop.customer("kim@example.com", opt_in="no")

    jobs.customers()

    assert shop.customer_writes("sam@example.com") == []
    assert shop.customer_writes("kim@example.com") == []
    assert shop.loyalty(customer_id=str(sam)) is None
    assert jobs.status(sam) == "not_opted_in"
    assert jobs.status(kim) == "not_opted_in"


def test_enrol_all_with_email_setting(shop: Shop, tmp_path: Path) -> None:
    sam = shop.customer("sam@example.com", opt_in=None)
    nobody = shop.customer(None, opt_in=None)
    jobs = make_jobs(shop, tmp_path / "ledger.sqlite3", customers={"enrol_all_with_email": True})

    jobs.customers()

    account = shop.loyalty(customer_id=str(sam))
    assert account is not None
    assert account["opt_in"] is True
    assert jobs.status(nobody) == "no_email"


def test_opt_in_value_ignores_case(shop: Shop, jobs: Jobs) -> None:
    pat = shop.customer("pat@example.com", opt_in=" YES ")

    jobs.customers()

    assert jobs.status(pat) == "enrolled"


def test_walk_in_and_staff_not_enrolled(shop: Shop, jobs: Jobs) -> None:
    walk_in = shop.customer("frontdesk@example.com", public_id="CASH")
    staff = shop.customer("alex@example.com", staff="yes")

    jobs.customers()

    assert jobs.status(walk_in) == "excluded"
    assert jobs.status(staff) == "excluded"
    assert shop.records()["customers"] == []


def test_cleared_opt_in_sends_opted_out(shop: Shop, jobs: Jobs) -> None:
    pat = shop.customer("pat@example.com")
    jobs.customers()
    shop.tick()
    shop.edit(pat, **{"custom@loyalty_opt_in": None})
    shop.tick()

    jobs.customers()

    account = shop.loyalty(customer_id=str(pat))
    assert account is not None
    assert account["opt_in"] is False
    assert jobs.status(pat) == "opted_out"
    assert [entry["body"]["opted_in"] for entry in shop.customer_writes("pat@example.com")] == [
        True,
        False,
    ]


def test_customer_seen_again_sent_once(shop: Shop, jobs: Jobs) -> None:
    shop.customer("pat@example.com")
    jobs.customers()
    shop.tick()

    second = jobs.customers()

    assert len(shop.customer_writes("pat@example.com")) == 1
    assert second.unchanged == 1


def test_name_change_sent_again(shop: Shop, jobs: Jobs) -> None:
    pat = shop.customer("pat@example.com")
    jobs.customers()
    shop.tick()
    shop.edit(pat, first_name="Patricia")
    shop.tick()

    jobs.customers()

    account = shop.loyalty(customer_id=str(pat))
    assert account is not None
    assert account["first_name"] == "Patricia"
    assert len(shop.customer_writes("pat@example.com")) == 2


def test_change_in_same_second_sent(shop: Shop, jobs: Jobs) -> None:
    pat = shop.customer("pat@example.com")
    jobs.customers()
    # The clock does not move: the edit keeps the `updated_at` of the read before it.
    shop.edit(pat, email="pat.lee@example.org")

    jobs.customers()

    moved = shop.loyalty(customer_email="pat.lee@example.org")
    assert moved is not None
    assert moved["third_party_id"] == str(pat)


def test_email_change_keeps_balance(shop: Shop, jobs: Jobs) -> None:
    pat = shop.customer("pat@example.com")
    shop.sale(pat, 120)
    jobs.cycle()
    shop.edit(pat, email="pat.lee@example.org")
    shop.tick()

    jobs.customers()

    moved = shop.loyalty(customer_email="pat.lee@example.org")
    assert moved is not None
    assert moved["points_balance"] == 120
    assert moved["third_party_id"] == str(pat)
    assert shop.loyalty(customer_email="pat@example.com") is None


def test_sale_after_email_change_credits_same_account(shop: Shop, jobs: Jobs) -> None:
    pat = shop.customer("pat@example.com")
    shop.sale(pat, 120)
    jobs.cycle()
    shop.edit(pat, email="pat.lee@example.org")
    shop.sale(pat, 30)
    # The new sale's order goes out before the customers job sends the new e-mail.
    shop.tick()
    jobs.transactions()
    jobs.deliver()
    shop.tick()

    jobs.customers()

    account = shop.loyalty(customer_id=str(pat))
    assert account is not None
    assert account["email"] == "pat.lee@example.org"
    assert account["points_balance"] == 150
    assert jobs.open_reviews() == []


def test_email_of_other_yotpo_customer_goes_to_review(shop: Shop, jobs: Jobs) -> None:
    online = {"email": "pat@example.com", "id": "web-901", "first_name": "Online"}
    assert shop.yotpo_write("/customers", online).status_code == 200
    pat = shop.customer("PAT@example.com")

    jobs.customers()

    assert jobs.status(pat) == "review"
    assert jobs.open_reviews() == [(pat, "email_taken")]
    account = shop.loyalty(customer_email="pat@example.com")
    assert account is not None
    assert account["third_party_id"] == "web-901"
    assert account["first_name"] == "Online"
    assert len(shop.customer_writes("pat@example.com")) == 1


def test_review_names_what_was_found(shop: Shop, jobs: Jobs) -> None:
    shop.yotpo_write("/customers", {"email": "pat@example.com", "id": "web-901"})
    pat = shop.customer("pat@example.com")

    jobs.customers()

    detail = jobs.ledger.db.execute(
        "SELECT detail FROM customer_reviews WHERE customer_id = ?", [pat]
    ).fetchone()[0]
    assert "web-901" in detail
    assert "pat@example.com" in detail


def test_new_email_held_by_other_goes_to_review(shop: Shop, jobs: Jobs) -> None:
    shop.yotpo_write("/customers", {"email": "taken@example.com"})
    pat = shop.customer("pat@example.com")
    jobs.customers()
    shop.tick()
    shop.edit(pat, email="taken@example.com")
    shop.tick()

    jobs.customers()

    assert jobs.open_reviews() == [(pat, "yotpo_rejected")]
    assert shop.loyalty(customer_id=str(pat))["email"] == "pat@example.com"  # type: ignore[index]


def test_shared_email_goes_to_review(shop: Shop, jobs: Jobs) -> None:
    first = shop.customer("pat@example.com")
    second = shop.customer("Pat@Example.com ", first="Patricia")

    jobs.customers()

    assert jobs.status(first) == "enrolled"
    assert jobs.status(second) == "review"
    assert jobs.open_reviews() == [(second, "shared_email")]
    assert len(shop.customer_writes("pat@example.com")) == 1


def test_review_closes_when_email_fixed(shop: Shop, jobs: Jobs) -> None:
    shop.customer("pat@example.com")
    second = shop.customer("pat@example.com", first="Patricia")
    jobs.customers()
    shop.tick()
    shop.edit(second, email="patricia@example.com")
    shop.tick()

    jobs.customers()

    assert jobs.open_reviews() == []
    assert jobs.status(second) == "enrolled"


def test_invalid_email_reported_not_sent(shop: Shop, jobs: Jobs) -> None:
    pat = shop.customer("pat@@example.com")

    jobs.customers()

    assert jobs.status(pat) == "invalid_email"
    assert jobs.open_reviews() == [(pat, "invalid_email")]
    assert shop.records()["customers"] == []


def test_deleted_customer_goes_to_review(shop: Shop, jobs: Jobs) -> None:
    pat = shop.customer("pat@example.com")
    shop.sale(pat, 50)
    jobs.cycle()
    shop.delete(pat)
    shop.tick()

    jobs.customers()

    assert jobs.status(pat) == "gone"
    assert jobs.open_reviews() == [(pat, "gone")]
    account = shop.loyalty(customer_id=str(pat))
    assert account is not None
    assert account["points_balance"] == 50


def test_deleted_customer_without_account_not_reviewed(shop: Shop, jobs: Jobs) -> None:
    sam = shop.customer("sam@example.com", opt_in=None)
    jobs.customers()
    shop.tick()
    shop.delete(sam)
    shop.tick()

    jobs.customers()

    assert jobs.status(sam) == "gone"
    assert jobs.open_reviews() == []


def test_merged_customer_goes_to_review(shop: Shop, jobs: Jobs) -> None:
    old = shop.customer("pat.old@example.com")
    new = shop.customer("pat@example.com")
    shop.sale(old, 40)
    jobs.cycle()
    shop.merge(old, new)
    shop.tick()

    jobs.customers()

    assert jobs.status(old) == "gone"
    assert jobs.open_reviews() == [(old, "gone")]
    assert shop.loyalty(customer_email="pat.old@example.com") is not None


def test_resolved_review_rechecked(shop: Shop, jobs: Jobs) -> None:
    shop.yotpo_write("/customers", {"email": "pat@example.com", "id": "web-901"})
    pat = shop.customer("pat@example.com")
    jobs.customers()
    # Staff link the online account to the Heartland customer in Yotpo, then resolve.
    shop.yotpo_write("/customers", {"email": "pat@example.com", "id": str(pat)})
    review_id = jobs.ledger.db.execute("SELECT id FROM customer_reviews").fetchone()[0]
    from yotposync.ledger import customers as book
    from yotposync.sync.customers import PENDING

    with jobs.ledger.transaction():
        book.resolve_review(jobs.ledger, review_id, "linked in Yotpo", jobs.now())
        book.set_recheck(jobs.ledger, pat, "review resolved", PENDING, jobs.now())
    shop.tick()

    summary = jobs.customers()

    assert summary.rechecked == 1
    assert jobs.status(pat) == "enrolled"
    assert jobs.open_reviews() == []


def test_yotpo_failure_retried_later(shop: Shop, tmp_path: Path) -> None:
    pat = shop.customer("pat@example.com")
    ledger_path = tmp_path / "ledger.sqlite3"
    down = make_jobs(shop, ledger_path, yotpo_url="http://127.0.0.1:9/api/v2")
    first = down.customers()
    down.ledger.close()
    shop.tick(600)
    jobs = make_jobs(shop, ledger_path)

    second = jobs.customers()

    assert first.retrying == 1
    assert second.rechecked == 1
    assert jobs.status(pat) == "enrolled"
    assert len(shop.customer_writes("pat@example.com")) == 1


def test_opt_in_field_created_when_missing(shop: Shop, tmp_path: Path) -> None:
    jobs = make_jobs(shop, tmp_path / "ledger.sqlite3", customers={"opt_in_field": "loyalty"})

    jobs.customers()

    names = shop.custom_field_names()
    assert names["loyalty_opt_in"] == "Loyalty Opt-In"
    assert "loyalty" not in names


def test_retry_waits_for_its_time(shop: Shop, tmp_path: Path) -> None:
    shop.customer("pat@example.com")
    ledger_path = tmp_path / "ledger.sqlite3"
    slow_retry = {"retry_base_seconds": 300, "retry_ceiling_seconds": 600}
    down = make_jobs(shop, ledger_path, yotpo_url="http://127.0.0.1:9/api/v2", delivery=slow_retry)
    down.customers()
    down.ledger.close()
    jobs = make_jobs(shop, ledger_path, delivery=slow_retry)
    shop.tick(60)

    early = jobs.customers()
    shop.tick(300)
    due = jobs.customers()

    assert early.sent == 0
    assert due.sent == 1
    assert len(shop.customer_writes("pat@example.com")) == 1
