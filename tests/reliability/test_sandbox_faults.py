"""The sandbox's fault layer, seen by a plain HTTP client: each fault kind, its switches, its
seeds, and the plan files of `yotposync sandbox --faults`."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.reliability.support import (
    API_KEY,
    GUID,
    TOKEN,
    invoke,
    subprocess_environment,
    wait_until,
)
from yotposync.sandbox import ManualClock, Sandbox, generate_store
from yotposync.sandbox.faults import (
    HUGE_RESET_SECONDS,
    FaultPlan,
    FaultRule,
    load_fault_plan,
    parse_fault_plan,
)

ANCHOR = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
YOTPO_HEADERS = {"x-guid": GUID, "x-api-key": API_KEY}
HEARTLAND_HEADERS = {"Authorization": f"Bearer {TOKEN}"}
TIMEOUT = 5


def rule(name: str, service: str, kind: str, **options: Any) -> FaultRule:
    return FaultRule(name=name, service=service, kind=kind, **options)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def store() -> Any:
    return generate_store(seed=5, tickets=30, anchor=ANCHOR)


@pytest.fixture
def sandbox(store: Any) -> Iterator[Sandbox]:
    with Sandbox(store=store, clock=ManualClock(ANCHOR)) as running:
        yield running


def order(sandbox: Sandbox, order_id: str = "o-1", timeout: float = TIMEOUT) -> requests.Response:
    body = {"customer_email": "pat@example.com", "order_id": order_id, "total_amount_cents": 1000}
    return requests.post(
        f"{sandbox.yotpo_url}/orders", json=body, headers=YOTPO_HEADERS, timeout=timeout
    )


def tickets(sandbox: Sandbox, **params: Any) -> requests.Response:
    return requests.get(
        f"{sandbox.heartland_url}/sales/tickets",
        params={"per_page": 5, "sort[]": ["updated_at", "id"], **params},
        headers=HEARTLAND_HEADERS,
        timeout=TIMEOUT,
    )


def orders_received(sandbox: Sandbox) -> list[dict[str, Any]]:
    return sandbox.yotpo.records()["orders"]


# Each kind of fault.


@pytest.mark.parametrize(
    ("service", "reset", "header", "value"),
    [
        ("yotpo", "seconds", "ratelimit-reset", "7"),
        ("heartland", "seconds", "Retry-After", "7"),
        ("yotpo", "huge", "ratelimit-reset", str(HUGE_RESET_SECONDS)),
        ("heartland", "huge", "Retry-After", str(HUGE_RESET_SECONDS)),
    ],
)
def test_rate_limit_announces_reset(
    sandbox: Sandbox, service: str, reset: str, header: str, value: str
) -> None:
    plan = FaultPlan(rules=(rule("limit", service, "rate_limit", reset=reset, reset_seconds=7),))
    sandbox.faults.set_plan(plan)

    response = order(sandbox) if service == "yotpo" else tickets(sandbox)

    assert response.status_code == 429
    assert response.headers[header] == value


def test_rate_limit_reset_as_http_date(sandbox: Sandbox) -> None:
    plan = FaultPlan(
        rules=(rule("limit", "yotpo", "rate_limit", reset="http-date", reset_seconds=30),)
    )
    sandbox.faults.set_plan(plan)

    response = order(sandbox)
    announced = parsedate_to_datetime(response.headers["Retry-After"])

    assert response.status_code == 429
    assert timedelta(seconds=25) < announced - datetime.now(UTC) <= timedelta(seconds=31)


def test_rate_limit_reset_missing(sandbox: Sandbox) -> None:
    sandbox.faults.set_plan(
        FaultPlan(rules=(rule("limit", "yotpo", "rate_limit", reset="missing"),))
    )

    response = order(sandbox)

    assert response.status_code == 429
    assert "Retry-After" not in response.headers
    assert "ratelimit-reset" not in response.headers


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_error_does_not_apply(sandbox: Sandbox, status: int) -> None:
    sandbox.faults.set_plan(
        FaultPlan(rules=(rule("down", "yotpo", "server_error", status=status),))
    )

    response = order(sandbox)

    assert response.status_code == status
    assert orders_received(sandbox) == []


def test_client_error_does_not_apply(sandbox: Sandbox) -> None:
    plan = FaultPlan(rules=(rule("no", "yotpo", "client_error", message="customer is locked"),))
    sandbox.faults.set_plan(plan)

    response = order(sandbox)

    assert response.status_code == 422
    assert response.json() == {"error": "customer is locked"}
    assert orders_received(sandbox) == []


def test_slow_response_applies_after_delay(sandbox: Sandbox) -> None:
    sandbox.faults.set_plan(FaultPlan(rules=(rule("slow", "yotpo", "slow", delay_seconds=0.6),)))

    with pytest.raises(requests.ReadTimeout):
        order(sandbox, timeout=0.2)

    wait_until(lambda: len(orders_received(sandbox)) == 1, 5, "the slow order to be applied")


def test_lost_response_applies_then_drops(sandbox: Sandbox) -> None:
    sandbox.faults.set_plan(FaultPlan(rules=(rule("lost", "yotpo", "lost_response"),)))

    with pytest.raises(requests.ConnectionError):
        order(sandbox)

    assert [entry["status"] for entry in orders_received(sandbox)] == [200]


def test_lost_response_stalls_past_timeout(sandbox: Sandbox) -> None:
    plan = FaultPlan(rules=(rule("lost", "yotpo", "lost_response", delay_seconds=1),))
    sandbox.faults.set_plan(plan)

    with pytest.raises(requests.ReadTimeout):
        order(sandbox, timeout=0.3)

    assert [entry["status"] for entry in orders_received(sandbox)] == [200]


def test_reset_drops_without_applying(sandbox: Sandbox) -> None:
    sandbox.faults.set_plan(FaultPlan(rules=(rule("reset", "yotpo", "reset"),)))

    with pytest.raises(requests.ConnectionError):
        order(sandbox)

    assert orders_received(sandbox) == []


def test_malformed_json_after_applying(sandbox: Sandbox) -> None:
    sandbox.faults.set_plan(FaultPlan(rules=(rule("bad", "yotpo", "malformed_json"),)))

    response = order(sandbox)

    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()
    assert len(orders_received(sandbox)) == 1


def test_truncated_json_is_half_the_body(sandbox: Sandbox) -> None:
    whole = tickets(sandbox).content
    sandbox.faults.set_plan(FaultPlan(rules=(rule("cut", "heartland", "truncated_json"),)))

    response = tickets(sandbox)

    assert response.content == whole[: len(whole) // 2]
    with pytest.raises(ValueError):
        response.json()


def test_empty_page_keeps_listed_total(sandbox: Sandbox) -> None:
    listed = tickets(sandbox).json()
    assert listed["total"] > 0
    sandbox.faults.set_plan(FaultPlan(rules=(rule("empty", "heartland", "empty_page"),)))

    body = tickets(sandbox).json()

    assert body == {"results": [], "total": listed["total"], "pages": listed["pages"]}


def test_empty_page_with_zero_total(sandbox: Sandbox) -> None:
    assert tickets(sandbox).json()["total"] > 0
    plan = FaultPlan(rules=(rule("empty", "heartland", "empty_page", empty_total="zero"),))
    sandbox.faults.set_plan(plan)

    body = tickets(sandbox).json()

    assert body == {"results": [], "total": 0, "pages": 0}


def test_edit_between_pages_moves_a_ticket(sandbox: Sandbox) -> None:
    clock = sandbox.clock
    assert isinstance(clock, ManualClock)
    clock.advance(3600)
    plan = FaultPlan(seed=3, rules=(rule("edit", "heartland", "edit_between_pages", times=1),))
    sandbox.faults.set_plan(plan)

    tickets(sandbox)
    edited = [t for t in sandbox.heartland.ticket_snapshot() if t["sales_rep"].endswith("(edited)")]

    assert len(edited) == 1
    assert edited[0]["updated_at"] == "2026-03-01T13:00:00+00:00"


def test_patch_records_sets_and_removes(sandbox: Sandbox) -> None:
    first = tickets(sandbox).json()["results"][0]
    patch = {str(first["id"]): {"set": {"total": "19.99", "customer_id": None}, "remove": ["type"]}}
    sandbox.faults.set_plan(
        FaultPlan(rules=(rule("odd", "heartland", "patch_records", patches=patch),))
    )

    patched = tickets(sandbox).json()["results"][0]

    assert patched["total"] == "19.99"
    assert patched["customer_id"] is None
    assert "type" not in patched
    assert patched["id"] == first["id"]


def test_faults_skip_sandbox_paths(sandbox: Sandbox) -> None:
    sandbox.faults.set_plan(FaultPlan(rules=(rule("all", "yotpo", "server_error", path="*"),)))

    response = requests.get(
        f"{sandbox.yotpo_admin_url}/health", headers=YOTPO_HEADERS, timeout=TIMEOUT
    )

    assert response.status_code == 200


def test_method_and_path_select_requests(sandbox: Sandbox) -> None:
    plan = FaultPlan(
        rules=(rule("orders", "yotpo", "server_error", method="POST", path="/api/v2/ord*"),)
    )
    sandbox.faults.set_plan(plan)

    refused = order(sandbox)
    refund = requests.post(
        f"{sandbox.yotpo_url}/refunds",
        json={"order_id": "nope", "total_amount_cents": 1},
        headers=YOTPO_HEADERS,
        timeout=TIMEOUT,
    )

    assert refused.status_code == 503
    assert refund.status_code == 404


def test_after_and_times_bound_the_hits(sandbox: Sandbox) -> None:
    plan = FaultPlan(rules=(rule("some", "yotpo", "server_error", after=2, times=3),))
    sandbox.faults.set_plan(plan)

    statuses = [order(sandbox, f"o-{n}").status_code for n in range(8)]

    assert statuses == [200, 200, 503, 503, 503, 200, 200, 200]


# Seeds.


def statuses_under(plan: FaultPlan, store: Any, count: int) -> list[int]:
    with Sandbox(store=store, clock=ManualClock(ANCHOR), faults=plan) as running:
        return [order(running, f"o-{n}").status_code for n in range(count)]


def test_same_seed_injects_same_faults(store: Any) -> None:
    plan = FaultPlan(seed=11, rules=(rule("flaky", "yotpo", "server_error", probability=0.3),))

    first = statuses_under(plan, store, 40)
    second = statuses_under(plan, store, 40)

    assert first == second
    assert 0 < first.count(503) < 40


def test_other_seed_injects_other_faults(store: Any) -> None:
    rules = (rule("flaky", "yotpo", "server_error", probability=0.3),)

    first = statuses_under(FaultPlan(seed=11, rules=rules), store, 40)
    other = statuses_under(FaultPlan(seed=12, rules=rules), store, 40)

    assert first != other


def test_clock_skew_backdates_heartland_writes(store: Any) -> None:
    plan = FaultPlan(seed=4, heartland_clock_skew_seconds=5)
    with Sandbox(store=store, clock=ManualClock(ANCHOR), faults=plan) as running:
        stamps = []
        for _ in range(12):
            response = requests.post(
                f"{running.heartland_url}/sales/tickets",
                json={
                    "station_id": 301,
                    "lines": [{"type": "ItemLine", "qty": 1, "unit_price": 5}],
                },
                headers=HEARTLAND_HEADERS,
                timeout=TIMEOUT,
            )
            ticket_id = int(response.headers["Location"].rsplit("/", 1)[1])
            stamps.append(running.heartland.get_ticket(ticket_id)["updated_at"])

    lags = sorted({(ANCHOR - datetime.fromisoformat(stamp)).total_seconds() for stamp in stamps})
    assert lags[0] >= 0
    assert lags[-1] <= 5
    assert len(lags) > 2


# Switching at run time over HTTP.


def admin(sandbox: Sandbox, method: str, action: str = "", body: Any = None) -> requests.Response:
    url = f"{sandbox.yotpo_admin_url}/faults" + (f"/{action}" if action else "")
    return requests.request(method, url, json=body, headers=YOTPO_HEADERS, timeout=TIMEOUT)


def test_admin_switches_rules_off_and_on(sandbox: Sandbox) -> None:
    sandbox.faults.set_plan(FaultPlan(rules=(rule("down", "yotpo", "server_error"),)))

    down = order(sandbox, "o-1").status_code
    admin(sandbox, "POST", "disable", {"rules": ["down"]}).raise_for_status()
    back = order(sandbox, "o-2").status_code
    admin(sandbox, "POST", "enable").raise_for_status()
    down_again = order(sandbox, "o-3").status_code
    report = admin(sandbox, "GET").json()

    assert [down, back, down_again] == [503, 200, 503]
    assert report["injected"] == {"down": 2}
    assert report["enabled"] == {"down": True}


def test_admin_plan_shows_live_switches(sandbox: Sandbox) -> None:
    sandbox.faults.set_plan(FaultPlan(rules=(rule("down", "yotpo", "server_error"),)))

    admin(sandbox, "POST", "disable", {"rules": ["down"]}).raise_for_status()
    report = admin(sandbox, "GET").json()
    # The plan read back can be sent again as it is, with the rule still switched off.
    admin(sandbox, "PUT", "", report["plan"]).raise_for_status()

    assert report["enabled"] == {"down": False}
    assert [r["enabled"] for r in report["plan"]["rules"]] == [False]
    assert order(sandbox, "o-1").status_code == 200


def test_admin_on_heartland_port_controls_both(sandbox: Sandbox) -> None:
    sandbox.faults.set_plan(FaultPlan(rules=(rule("down", "yotpo", "server_error"),)))

    response = requests.post(
        f"{sandbox.heartland_admin_url}/faults/disable", headers=HEARTLAND_HEADERS, timeout=TIMEOUT
    )

    assert response.status_code == 200
    assert order(sandbox).status_code == 200


def test_admin_replaces_plan(sandbox: Sandbox) -> None:
    plan = {"seed": 2, "rules": [{"name": "gone", "service": "yotpo", "kind": "reset"}]}

    response = admin(sandbox, "PUT", body=plan)

    assert response.status_code == 200
    assert sandbox.faults.plan.rule_names() == ["gone"]


def test_admin_rejects_invalid_plan(sandbox: Sandbox) -> None:
    plan = {"rules": [{"name": "x", "service": "yotpo", "kind": "flood"}]}

    response = admin(sandbox, "PUT", body=plan)

    assert response.status_code == 400
    assert "rules.0.kind" in response.json()["error"]


def test_admin_unknown_rule_is_404(sandbox: Sandbox) -> None:
    response = admin(sandbox, "POST", "enable", {"rules": ["nope"]})

    assert response.status_code == 404
    assert "nope" in response.json()["error"]


def test_admin_requires_credentials(sandbox: Sandbox) -> None:
    response = requests.get(f"{sandbox.yotpo_admin_url}/faults", timeout=TIMEOUT)

    assert response.status_code == 401


# Plan files.


def test_plan_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "plan.toml"
    path.write_text(
        'seed = 9\nheartland_clock_skew_seconds = 2\n\n[[rules]]\nname = "down"\n'
        'service = "yotpo"\nkind = "server_error"\nstatus = 502\npath = "/api/v2/*"\n'
        "enabled = false\n"
    )

    plan = load_fault_plan(path)

    assert plan.seed == 9
    assert plan.heartland_clock_skew_seconds == 2
    assert plan.rules[0].status == 502
    assert plan.rules[0].enabled is False


def test_plan_from_json(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    patches = {"5001": {"set": {"total": None}}}
    rules = [{"name": "odd", "service": "heartland", "kind": "patch_records", "patches": patches}]
    path.write_text(json.dumps({"rules": rules}))

    plan = load_fault_plan(path)

    assert plan.rules[0].patches["5001"].set == {"total": None}


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("plan.yaml", "seed: 1", "must be a .json or .toml file"),
        ("plan.toml", "seed = ", "not valid TOML"),
        ("plan.json", "{", "not valid JSON"),
        ("plan.json", '{"rules": [{"name": "a", "service": "pos", "kind": "reset"}]}', "service"),
        ("plan.json", '{"rules": [{"service": "yotpo", "kind": "reset"}]}', "rules.0.name"),
        ("plan.json", '{"colour": 1}', "colour"),
    ],
)
def test_plan_file_errors(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(text)

    with pytest.raises(ValueError, match=message):
        load_fault_plan(path)


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ([{"name": "a", "service": "yotpo", "kind": "reset"}] * 2, "repeated: a"),
        ([{"name": "a", "service": "yotpo", "kind": "edit_between_pages"}], "only with service"),
        ([{"name": "a", "service": "yotpo", "kind": "patch_records"}], "at least one entry"),
        ([{"name": "a", "service": "yotpo", "kind": "server_error", "status": 404}], "500 to 599"),
        (
            [{"name": "a", "service": "yotpo", "kind": "client_error", "status": 429}],
            "other than 429",
        ),
        ([{"name": "a", "service": "yotpo", "kind": "reset", "probability": 2}], "probability"),
        ([{"name": "a", "service": "yotpo", "kind": "reset", "method": "GE T"}], "HTTP method"),
    ],
)
def test_plan_rules_validated(rules: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_fault_plan({"rules": rules})


# The sandbox command.


def read_until_ready(process: subprocess.Popen[str]) -> list[str]:
    """Read the sandbox's banner up to its READY line (pytest's timeout bounds the wait)."""
    assert process.stdout is not None
    lines: list[str] = []
    for line in process.stdout:
        lines.append(line.rstrip("\n"))
        if line.startswith("SANDBOX READY"):
            return lines
    raise AssertionError(f"the sandbox stopped before it was ready: {lines}")


def test_sandbox_command_serves_fault_plan(tmp_path: Path) -> None:
    path = tmp_path / "plan.toml"
    path.write_text('[[rules]]\nname = "down"\nservice = "yotpo"\nkind = "server_error"\n')
    command = [sys.executable, "-m", "yotposync", "sandbox", "--empty", "--faults", str(path)]
    command += ["--heartland-port", "0", "--yotpo-port", "0"]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=subprocess_environment(),
    )
    try:
        lines = read_until_ready(process)
        yotpo_url = lines[-1].split("yotpo=", 1)[1]
        down = requests.get(f"{yotpo_url}/vip_tiers", headers=YOTPO_HEADERS, timeout=TIMEOUT)
        switched = requests.post(
            yotpo_url.replace("/api/v2", "/_sandbox/faults/disable"),
            headers=YOTPO_HEADERS,
            timeout=TIMEOUT,
        )
        back = requests.get(f"{yotpo_url}/vip_tiers", headers=YOTPO_HEADERS, timeout=TIMEOUT)
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)

    assert any("down: server_error on yotpo" in line for line in lines)
    assert down.status_code == 503
    assert switched.status_code == 200
    assert back.status_code == 200


def test_sandbox_command_rejects_bad_plan(tmp_path: Path) -> None:
    path = tmp_path / "plan.toml"
    path.write_text('[[rules]]\nname = "x"\nservice = "yotpo"\nkind = "flood"\n')

    result = invoke("sandbox", "--empty", "--faults", str(path))

    assert result.exit_code == 2
    assert "rules.0.kind" in result.stderr


def test_documented_plan_loads(tmp_path: Path) -> None:
    text = (Path(__file__).parents[2] / "docs" / "reliability.md").read_text(encoding="utf-8")
    example = text.split("```toml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "plan.toml"
    path.write_text(example)

    plan = load_fault_plan(path)

    assert plan.rule_names() == ["yotpo-down", "slow-pages", "odd-ticket"]
