"""Webhooks in the Heartland emulator: registrations, and posts on ticket completion."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests

from tests.ops.recorder import Recorder
from tests.ops.scenario import HeartlandWriter
from yotposync.sandbox import Sandbox

EVENT = "sales_transaction_completed"


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(store=None) as running:
        yield running


@pytest.fixture
def receiver() -> Iterator[Recorder]:
    with Recorder() as recorder:
        yield recorder


def api(sandbox: Sandbox, method: str, path: str, **kwargs: object) -> requests.Response:
    return requests.request(
        method,
        f"{sandbox.heartland_url}{path}",
        headers={"Authorization": f"Bearer {sandbox.heartland_token}"},
        timeout=5,
        **kwargs,  # type: ignore[arg-type]
    )


def register(sandbox: Sandbox, url: str) -> requests.Response:
    return api(sandbox, "POST", "/webhooks", json={"url": url, "events": [EVENT]})


def test_register_answers_201_with_id(sandbox: Sandbox) -> None:
    response = register(sandbox, "http://127.0.0.1:9/hook")
    assert response.status_code == 201
    assert response.json() == {"id": 1, "url": "http://127.0.0.1:9/hook", "events": [EVENT]}
    assert response.headers["Location"] == "/api/webhooks/1"


def test_list_and_delete(sandbox: Sandbox) -> None:
    register(sandbox, "http://127.0.0.1:9/a")
    register(sandbox, "http://127.0.0.1:9/b")
    deleted = api(sandbox, "DELETE", "/webhooks/1")
    listed = api(sandbox, "GET", "/webhooks").json()
    assert deleted.status_code == 204
    assert [hook["url"] for hook in listed["results"]] == ["http://127.0.0.1:9/b"]


def test_delete_unknown_is_404(sandbox: Sandbox) -> None:
    assert api(sandbox, "DELETE", "/webhooks/7").status_code == 404


def test_other_host_rejected(sandbox: Sandbox) -> None:
    response = register(sandbox, "https://hooks.example.com/heartland")
    assert response.status_code == 422
    assert "loopback" in response.json()["details"]["url"]


def test_missing_events_rejected(sandbox: Sandbox) -> None:
    response = api(sandbox, "POST", "/webhooks", json={"url": "http://127.0.0.1:9/x"})
    assert response.status_code == 422
    assert set(response.json()["details"]) == {"events"}


def test_webhooks_need_token(sandbox: Sandbox) -> None:
    response = requests.get(f"{sandbox.heartland_url}/webhooks", timeout=5)
    assert response.status_code == 401


def test_completing_ticket_posts_record(sandbox: Sandbox, receiver: Recorder) -> None:
    register(sandbox, f"{receiver.url}/hook")
    writer = HeartlandWriter(sandbox)
    ticket_id = writer.ticket(301, None, [12.5], status="incomplete")
    writer.complete(ticket_id)
    posted = receiver.wait_for(1)
    record = json.loads(posted[0].body)
    assert (posted[0].method, posted[0].path) == ("POST", "/hook")
    assert (record["id"], record["completed?"]) == (ticket_id, True)
    assert "lines" not in record


def test_created_complete_posts(sandbox: Sandbox, receiver: Recorder) -> None:
    register(sandbox, f"{receiver.url}/hook")
    ticket_id = HeartlandWriter(sandbox).ticket(301, None, [3])
    assert json.loads(receiver.wait_for(1)[0].body)["id"] == ticket_id


def test_open_ticket_posts_nothing(sandbox: Sandbox, receiver: Recorder) -> None:
    register(sandbox, f"{receiver.url}/hook")
    writer = HeartlandWriter(sandbox)
    ticket_id = writer.ticket(301, None, [3], status="incomplete")
    api(sandbox, "PUT", f"/sales/tickets/{ticket_id}", json={"sales_rep": "Kim"})
    sandbox.webhooks.wait_for_deliveries()
    assert receiver.requests == []


def test_second_update_posts_once(sandbox: Sandbox, receiver: Recorder) -> None:
    register(sandbox, f"{receiver.url}/hook")
    writer = HeartlandWriter(sandbox)
    ticket_id = writer.ticket(301, None, [3], status="incomplete")
    writer.complete(ticket_id)
    writer.complete(ticket_id)
    api(sandbox, "PUT", f"/sales/tickets/{ticket_id}", json={"voided?": True})
    receiver.wait_for(1)
    sandbox.webhooks.wait_for_deliveries()
    assert len(receiver.requests) == 1


def test_delivery_logged(sandbox: Sandbox, receiver: Recorder) -> None:
    register(sandbox, f"{receiver.url}/hook")
    ticket_id = HeartlandWriter(sandbox).ticket(301, None, [3])
    receiver.wait_for(1)
    sandbox.webhooks.wait_for_deliveries()
    assert sandbox.webhooks.deliveries[0]["ticket_id"] == ticket_id
    assert sandbox.webhooks.deliveries[0]["status"] == 200
