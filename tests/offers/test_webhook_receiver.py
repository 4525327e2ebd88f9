"""The redemption-created receiver over real HTTP on 127.0.0.1, with a real ledger file."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from structlog.testing import capture_logs

from yotposync.ledger import Ledger
from yotposync.ledger.offers import OfferLedger
from yotposync.ops.http_server import BackgroundServer
from yotposync.webhooks.yotpo import PATH, RedemptionWebhook

SECRET = "receiver-secret-0123456789-abcdefghij"
EVENT = {
    "topic": "swell/redemption/created",
    "redemption": {"id": 77001, "reward_text": "LOYAL-5OFF-8XK2"},
    "redemption_option": {"id": "3101", "name": "$5 Off", "amount": 500},
    "customer": {"email": "pat@example.com", "points_balance": 730},
}


class Receiver:
    def __init__(self, url: str, ledger: Path, woken: list[int]) -> None:
        self.url = url
        self.ledger = ledger
        self.woken = woken

    def post(self, body: Any, path: str = PATH, **headers: str) -> requests.Response:
        return requests.post(self.url + path, json=body, headers=headers, timeout=10)

    def codes(self) -> list[dict[str, Any]]:
        ledger = Ledger.open(self.ledger)
        try:
            return OfferLedger(ledger).codes_in_state("pending")
        finally:
            ledger.close()


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    path = tmp_path / "ledger.sqlite3"
    Ledger.open(path).close()
    woken: list[int] = []
    app = RedemptionWebhook(
        path, SECRET, clock=lambda: datetime.now(UTC), on_recorded=lambda: woken.append(1)
    )
    server = BackgroundServer("test", "127.0.0.1", 0, app)
    server.start()
    try:
        yield Receiver(f"http://127.0.0.1:{server.port}", path, woken)
    finally:
        server.stop()


def test_header_secret_records_code(receiver: Receiver) -> None:
    response = receiver.post(EVENT, **{"X-Api-Secret": SECRET})
    codes = receiver.codes()
    assert response.status_code == 200
    assert [(c["code"], c["option_id"], c["email"]) for c in codes] == [
        ("LOYAL-5OFF-8XK2", 3101, "pat@example.com")
    ]
    assert receiver.woken == [1]


def test_path_secret_records_code(receiver: Receiver) -> None:
    response = receiver.post(EVENT, path=f"{PATH}/{SECRET}")
    assert response.status_code == 200
    assert len(receiver.codes()) == 1


def test_repeated_event_recorded_once(receiver: Receiver) -> None:
    receiver.post(EVENT, **{"X-Api-Secret": SECRET})
    response = receiver.post(EVENT, **{"X-Api-Secret": SECRET})
    assert response.json() == {"status": "already recorded"}
    assert len(receiver.codes()) == 1
    assert receiver.woken == [1]


@pytest.mark.parametrize("given", ["", "wrong", SECRET[:-1], SECRET + "x"])
def test_wrong_secret_rejected(receiver: Receiver, given: str) -> None:
    response = receiver.post(EVENT, **{"X-Api-Secret": given})
    assert response.status_code == 401
    assert receiver.codes() == []


def test_body_without_code_rejected(receiver: Receiver) -> None:
    body = {**EVENT, "redemption": {"id": 1}}
    response = receiver.post(body, **{"X-Api-Secret": SECRET})
    assert response.status_code == 400


@pytest.mark.parametrize("code", ["BAD\nCODE", "TWO WORDS", "\u00c7\u00d6D\u00c9", "X" * 201])
def test_text_that_is_no_code_rejected(receiver: Receiver, code: str) -> None:
    body = {**EVENT, "redemption": {"id": 1, "reward_text": code}}

    with capture_logs() as logs:
        response = receiver.post(body, **{"X-Api-Secret": SECRET})

    assert response.status_code == 400
    assert "printable ASCII characters without spaces" in response.json()["status"]
    assert receiver.codes() == []
    # Yotpo may have taken the points, so the log names what staff need to settle it.
    invalid = [entry for entry in logs if entry["event"] == "webhook_invalid"]
    assert [(e["redemption_id"], e["code"], e["customer"]) for e in invalid] == [
        ("1", repr(code)[:80], "p***@example.com")
    ]


def test_other_method_rejected(receiver: Receiver) -> None:
    response = requests.get(receiver.url + PATH, timeout=10)
    assert response.status_code == 405


def test_other_path_not_found(receiver: Receiver) -> None:
    response = receiver.post(EVENT, path="/other", **{"X-Api-Secret": SECRET})
    assert response.status_code == 404


def test_damaged_ledger_answered_503_and_logged(receiver: Receiver) -> None:
    # A table dropped by hand: the code is not recorded, Yotpo retries on the 503 (a 500 would
    # mean the error reached the server with its traceback), and the log names the table.
    with closing(sqlite3.connect(receiver.ledger, isolation_level=None)) as connection:
        connection.execute("DROP TABLE online_codes")

    with capture_logs() as logs:
        response = receiver.post(EVENT, **{"X-Api-Secret": SECRET})

    assert response.status_code == 503
    assert response.json() == {"status": "the ledger cannot be used, retry later"}
    assert receiver.woken == []
    [logged] = [entry for entry in logs if entry["event"] == "webhook_ledger_unusable"]
    assert "is missing the table online_codes" in logged["error"]


@pytest.mark.parametrize("change", ["emptied", "removed"])
def test_lost_ledger_not_recreated(receiver: Receiver, change: str) -> None:
    # The daemon's jobs stop on a ledger lost while it runs. A receiver that made a new one
    # would let them start over on it and send every order and refund again.
    if change == "emptied":
        receiver.ledger.write_bytes(b"")
    else:
        receiver.ledger.unlink()

    with capture_logs() as logs:
        response = receiver.post(EVENT, **{"X-Api-Secret": SECRET})

    assert response.status_code == 503
    assert receiver.woken == []
    assert not receiver.ledger.exists() or receiver.ledger.stat().st_size == 0
    [logged] = [entry for entry in logs if entry["event"] == "webhook_ledger_unusable"]
    assert f"was {change} while yotposync was using it" in logged["error"]


@pytest.mark.parametrize(
    "body",
    [
        "[" * 50_000,
        '{"redemption": {"id": ' + "1" * 5000 + "}}",
        b'{"redemption": "\xff"}',
    ],
    ids=["nested-too-deep", "integer-too-long", "not-utf-8"],
)
def test_unreadable_json_rejected(receiver: Receiver, body: str | bytes) -> None:
    response = requests.post(
        receiver.url + PATH, data=body, headers={"X-Api-Secret": SECRET}, timeout=10
    )
    assert response.status_code == 400
    assert response.json() == {"status": "body is not valid JSON"}


@pytest.mark.parametrize("field", ["id", "amount"])
def test_number_beyond_sqlite_integer_ignored(receiver: Receiver, field: str) -> None:
    # SQLite stores integers of up to 64 bits, so a larger one is stored as no value.
    body = {**EVENT, "redemption_option": {**EVENT["redemption_option"], field: 2**63}}
    response = receiver.post(body, **{"X-Api-Secret": SECRET})
    [code] = receiver.codes()
    assert response.status_code == 200
    assert code["option_id"] == (None if field == "id" else 3101)
    assert code["points_cost"] == (None if field == "amount" else 500)


def test_unauthorized_calls_logged_once_per_minute(tmp_path: Path) -> None:
    # A scanner that finds the public address would otherwise write a warning per request.
    now = [0.0]
    app = RedemptionWebhook(
        tmp_path / "ledger.sqlite3",
        SECRET,
        clock=lambda: datetime.now(UTC),
        monotonic=lambda: now[0],
    )
    server = BackgroundServer("test", "127.0.0.1", 0, app)
    server.start()
    url = f"http://127.0.0.1:{server.port}{PATH}/guess"
    try:
        with capture_logs() as logs:
            for _ in range(3):
                requests.post(url, json=EVENT, timeout=10)
            now[0] = 61.0
            requests.post(url, json=EVENT, timeout=10)
    finally:
        server.stop()

    unauthorized = [entry for entry in logs if entry["event"] == "webhook_unauthorized"]
    assert [entry["calls"] for entry in unauthorized] == [1, 3]
    assert [entry["client"] for entry in unauthorized] == ["127.0.0.1", "127.0.0.1"]
    assert SECRET not in repr(logs)
