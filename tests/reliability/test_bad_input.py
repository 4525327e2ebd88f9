"""Bad input: a corpus of malformed or odd Heartland records, and bad configuration files.

Each corpus case is one customer with one sale, served by the sandbox with the case's
changes applied to the ticket or the customer as the API returns them. One catch-up reads
them all, in small pages so that odd records also end pages. Every case ends as it should:
it earns, or it is recorded in the ledger with the reason it earns nothing, or (without a
usable id) it is listed in the run's summary. The cases that earn prove that the rest of the
work went on.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.support import FIGURES, accepted, harness, invoke
from yotposync.sandbox import Store, StoreBuilder
from yotposync.sandbox.faults import FaultPlan, FaultRule, RecordPatch
from yotposync.sandbox.store import SoldLine, TicketPlan

ANCHOR = datetime(2026, 9, 1, 20, 0, tzinfo=UTC)
FIRST_LINE_ID = 990_001


@dataclass(frozen=True)
class Case:
    """One odd record and what must become of it.

    `outcome` is "earns" (an order for `cents`, the sale's amount when None), "skipped" (a
    ledger decision of `kind` whose reason contains `reason`), or "unrecorded" (no usable
    id: the run summary lists it).
    """

    name: str
    outcome: str
    ticket: dict[str, Any] = field(default_factory=dict)
    customer: dict[str, Any] = field(default_factory=dict)
    kind: str = ""
    reason: str = ""
    cents: int | None = None
    email: str | None = None


def item(value: Any, qty: Any = 1, line_id: int = FIRST_LINE_ID, **extra: Any) -> dict[str, Any]:
    return {"id": line_id, "type": "ItemLine", "qty": qty, "value": value, **extra}


def lines(*entries: Any, subtotal: Any) -> dict[str, Any]:
    """Patch the ticket's lines, with a subtotal that makes no ticket-level discount."""
    return {"set": {"lines": list(entries), "subtotal": subtotal}}


def earns(name: str, cents: int | None = None, email: str | None = None, **patch: Any) -> Case:
    return Case(name, "earns", cents=cents, email=email, **patch)


def skipped(name: str, kind: str, reason: str, **patch: Any) -> Case:
    return Case(name, "skipped", kind=kind, reason=reason, **patch)


def invalid(name: str, reason: str, **patch: Any) -> Case:
    return Case(name, "skipped", kind="invalid", reason=reason, **patch)


def setting(**values: Any) -> dict[str, Any]:
    return {"set": values}


def removing(*keys: str) -> dict[str, Any]:
    return {"remove": list(keys)}


CASES = [
    # Ticket identity and timestamps.
    invalid("updated_at missing", "updated_at", ticket=removing("updated_at")),
    invalid("updated_at null", "updated_at", ticket=setting(updated_at=None)),
    invalid("updated_at month 13", "updated_at", ticket=setting(updated_at="2026-13-02T10:00:00Z")),
    # The next two keep the instant the emulator sorts by, written another way.
    earns("updated_at without offset", ticket=setting(updated_at="%Y-%m-%dT%H:%M:%S")),
    earns("updated_at with Z and ms", ticket=setting(updated_at="%Y-%m-%dT%H:%M:%S.000Z")),
    Case("id missing", "unrecorded", ticket=removing("id"), reason="ticket without a usable id"),
    Case("id text", "unrecorded", ticket=setting(id="T-1"), reason="ticket without a usable id"),
    invalid("completed_at text", "completed_at", ticket=setting(completed_at="soon")),
    earns("completed_at other offset", ticket=setting(completed_at="2026-08-20T05:00:00-05:00")),
    earns("local_completed_at garbage", ticket=setting(local_completed_at="yesterday")),
    # Type, status and flags.
    invalid("type missing", "type", ticket=removing("type")),
    invalid("type number", "invalid type", ticket=setting(type=7)),
    earns("type unknown", ticket=setting(type="Layaway")),
    earns("status null, completed? true", ticket=setting(status=None)),
    invalid("status number", "invalid status", ticket=setting(status=5)),
    invalid("completed? text", "completed?", ticket=setting(**{"completed?": "yes"})),
    earns("voided? null", ticket=setting(**{"voided?": None})),
    skipped("status voided", "void", "voided", ticket=setting(status="voided")),
    # Money.
    earns("total as string", ticket=setting(total="19.99")),
    invalid("total not a number", "invalid total", ticket=setting(total="abc")),
    invalid("total huge", "amounts beyond", ticket=setting(total=1e12)),
    earns("total negative on a sale", ticket=setting(total=-58.32)),
    invalid("balance NaN", "invalid balance", ticket=setting(balance="NaN")),
    earns("value 19.99 float", 1999, ticket=lines(item(19.99), subtotal=19.99)),
    earns("value as string", 1999, ticket=lines(item("19.99"), subtotal="19.99")),
    earns("value half a cent", 2000, ticket=lines(item(19.995), subtotal=19.995)),
    earns("value large", 25_000_000, ticket=lines(item(250000), subtotal=250000)),
    invalid("value huge", "amounts beyond", ticket=lines(item(5e12), subtotal=5e12)),
    invalid("value and price missing", "neither a value", ticket=lines(item(None), subtotal=1)),
    earns("qty as string", 1500, ticket=lines(item(15, qty="1"), subtotal=15)),
    invalid("qty fractional", "fractional", ticket=lines(item(15, qty=1.5), subtotal=15)),
    invalid("qty huge", "quantities above", ticket=lines(item(15, qty=10**9), subtotal=15)),
    earns(
        "line type unknown",
        1500,
        ticket=lines(
            item(15),
            {"id": FIRST_LINE_ID + 1, "type": "WarrantyLine", "value": 5},
            subtotal=15,
        ),
    ),
    invalid("lines not an array", "invalid lines", ticket=setting(lines="oops")),
    invalid("line null", "each line to be an object", ticket=setting(lines=[None])),
    skipped("lines empty", "sale", "earns on 0.00", ticket=lines(subtotal=0)),
    # Other fields.
    invalid("customer_id text", "customer_id", ticket=setting(customer_id="C-1")),
    skipped(
        "customer unknown",
        "no_customer",
        "customer 999999 not found",
        ticket=setting(customer_id=999999),
    ),
    invalid("custom not an object", "invalid custom", ticket=setting(custom="web")),
    invalid("sales_rep number", "sales_rep", ticket=setting(sales_rep=42)),
    earns("currency unknown", ticket=setting(currency="XYZ")),
    # Customers.
    skipped(
        "email with space", "no_email", "contains a space", customer=setting(email="p q@x.com")
    ),
    earns(
        "email upper case, padded",
        email="pat.upper@example.com",
        customer=setting(email="  PAT.UPPER@EXAMPLE.COM "),
    ),
    skipped("email null", "no_email", "has no e-mail address", customer=setting(email=None)),
    skipped("email blank", "no_email", "has no e-mail address", customer=setting(email="   ")),
    skipped("email number", "no_email", "not text", customer=setting(email=42)),
    skipped("email no dot", "no_email", "has no dot", customer=setting(email="pat@localhost")),
    skipped("email two @", "no_email", "more than one @", customer=setting(email="a@b@x.com")),
    earns(
        "names and email non-ASCII",
        email="zoë.ødegaard@exämple.com",
        customer=setting(first_name="Zoë", last_name="Ødegaard", email="Zoë.Ødegaard@exämple.com"),
    ),
    earns("name placeholder", customer=setting(first_name="?", last_name="?")),
    earns("customer deleted later", customer=setting(deleted_at="2026-08-30T10:00:00+00:00")),
    invalid(
        "customer custom not an object", "unusable customer record", customer=setting(custom=[])
    ),
    invalid("customer id text", "unusable customer record", customer=setting(id="C-x")),
]


@dataclass
class Corpus:
    """The corpus store and, per case, its sale's ticket id and amount."""

    store: Store
    tickets: dict[str, tuple[int, int]]
    plan: FaultPlan


def with_updated_at(patch: dict[str, Any], sale: TicketPlan) -> dict[str, Any]:
    """Fill a patched `updated_at` format with the sale's own updated_at.

    The emulator sorts and filters on the true value, so a patch that moved the instant
    would make the listing disagree with itself, which Heartland never does.
    """
    value = patch.get("set", {}).get("updated_at")
    if not isinstance(value, str) or "%" not in value:
        return patch
    return {**patch, "set": {**patch["set"], "updated_at": sale.updated_at.strftime(value)}}


def build_corpus() -> Corpus:
    builder = StoreBuilder(ANCHOR, go_live=ANCHOR - timedelta(days=30))
    tickets: dict[str, tuple[int, int]] = {}
    ticket_patches: dict[str, RecordPatch] = {}
    customer_patches: dict[str, RecordPatch] = {}
    for index, case in enumerate(CASES):
        customer = builder.add_customer("Case", f"No{index}", f"case{index}@example.com")
        cents = 1000 + 100 * index
        sale = builder.add_sale(
            customer=customer,
            station_id=301,
            lines=[SoldLine(4401, "Canvas Tote", 1, cents, cents)],
            completed_at=ANCHOR - timedelta(hours=len(CASES) - index),
        )
        tickets[case.name] = (sale.id, cents)
        if case.ticket:
            ticket_patches[str(sale.id)] = RecordPatch(**with_updated_at(case.ticket, sale))
        if case.customer:
            customer_patches[str(customer.id)] = RecordPatch(**case.customer)
    rules = (
        FaultRule(
            name="odd-tickets",
            service="heartland",
            kind="patch_records",
            method="GET",
            path="/api/sales/tickets*",
            patches=ticket_patches,
        ),
        FaultRule(
            name="odd-customers",
            service="heartland",
            kind="patch_records",
            method="GET",
            path="/api/customers*",
            patches=customer_patches,
        ),
    )
    return Corpus(builder.build(), tickets, FaultPlan(rules=rules))


@dataclass
class Outcome:
    """What one catch-up over the corpus left behind."""

    exit_code: int
    stdout: str
    decisions: dict[int, tuple[str, str]]
    orders: dict[str, dict[str, Any]]
    run_summary: dict[str, Any]
    rejected: list[dict[str, Any]]


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return build_corpus()


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory, corpus: Corpus) -> Iterator[Outcome]:
    tmp = tmp_path_factory.mktemp("corpus")
    with harness(tmp, corpus.store, faults=corpus.plan, heartland={"page_size": 7}) as h:
        result = h.invoke("catch-up", "--since", h.since())
        records = h.records()
        yield Outcome(
            exit_code=result.exit_code,
            stdout=result.stdout + result.stderr,
            decisions={
                row[0]: (row[1], row[2])
                for row in h.ledger_rows("SELECT id, kind, reason FROM tickets")
            },
            orders={o["order_id"]: o for o in accepted(records, "orders")},
            run_summary=json.loads(
                h.ledger_rows("SELECT summary FROM runs WHERE job = 'catch-up'")[0][0]
            ),
            rejected=[e for e in records["orders"] if e["status"] != 200],
        )
    FIGURES["bad records tried"] += len(CASES)


def test_corpus_run_finishes(outcome: Outcome) -> None:
    assert outcome.exit_code == 0, outcome.stdout
    assert outcome.rejected == []


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_odd_record(case: Case, corpus: Corpus, outcome: Outcome) -> None:
    ticket_id, cents = corpus.tickets[case.name]
    order = outcome.orders.get(f"hl-{ticket_id}")
    decision = outcome.decisions.get(ticket_id)

    if case.outcome == "earns":
        assert decision is not None
        assert decision[0] == "sale", decision
        assert order is not None
        assert order["total_amount_cents"] == (case.cents if case.cents is not None else cents)
        if case.email is not None:
            assert order["customer_email"] == case.email
    elif case.outcome == "skipped":
        assert decision is not None
        assert decision[0] == case.kind, decision
        assert case.reason in decision[1]
        assert order is None
    else:
        assert decision is None
        assert any(case.reason in problem for problem in outcome.run_summary["invalid"])
        assert order is None


def test_duplicate_ids_in_one_page(tmp_path: Path) -> None:
    builder = StoreBuilder(ANCHOR, go_live=ANCHOR - timedelta(days=30))
    first = builder.add_customer("Pat", "One", "one@example.com")
    second = builder.add_customer("Pat", "Two", "two@example.com")
    sales = [
        builder.add_sale(
            customer=person,
            station_id=301,
            lines=[SoldLine(4401, "Canvas Tote", 1, cents, cents)],
            completed_at=ANCHOR - timedelta(hours=hours),
        )
        for person, cents, hours in ((first, 1500, 2), (second, 2500, 1))
    ]
    patches = {str(sales[1].id): RecordPatch(set={"id": sales[0].id})}
    rule = FaultRule(
        name="twice",
        service="heartland",
        kind="patch_records",
        method="GET",
        path="/api/sales/tickets",
        patches=patches,
    )
    with harness(tmp_path, builder.build(), faults=FaultPlan(rules=(rule,))) as h:
        result = h.invoke("catch-up", "--since", h.since())
        ids = [row[0] for row in h.ledger_rows("SELECT id FROM tickets")]
        orders = accepted(h.records(), "orders")

    assert result.exit_code == 0
    assert "ticket_listed_twice_in_page" in result.stderr
    assert ids == [sales[0].id]
    assert [o["order_id"] for o in orders] == [f"hl-{sales[0].id}"]


# Bad configuration files.

GOOD = {
    "heartland": 'base_url = "https://shop.example.com/api"\ntoken = "t-123456"',
    "yotpo": 'guid = "g-123456"\napi_key = "k-123456"',
}


def config_text(**sections: str) -> str:
    merged = GOOD | sections
    return "\n".join(f"[{name}]\n{body}" for name, body in merged.items()) + "\n"


CONFIGS = [
    ("toml syntax", "[heartland]\nbase_url = \n", "TOML"),
    ("unknown section", config_text(heartlnd="x = 1"), "heartlnd"),
    ("unknown key", config_text(sync="overlap = 5"), "overlap"),
    ("wrong type", config_text(sync='overlap_seconds = "five"'), "sync.overlap_seconds"),
    ("negative overlap", config_text(sync="overlap_seconds = -1"), "sync.overlap_seconds"),
    ("page size zero", config_text(heartland=GOOD["heartland"] + "\npage_size = 0"), "page_size"),
    (
        "plain http",
        config_text(heartland='base_url = "http://shop.example.com/api"\ntoken = "t-1234"'),
        "must use https",
    ),
    ("currency", config_text(yotpo=GOOD["yotpo"] + '\ncurrency = "usd"'), "yotpo.currency"),
    ("go-live without offset", config_text(sync='go_live = "2026-03-01T09:00:00"'), "go_live"),
    ("token missing", config_text(heartland='base_url = "https://shop.example.com/api"'), "token"),
    (
        "token file missing",
        config_text(
            heartland='base_url = "https://shop.example.com/api"\ntoken_file = "/nonexistent/t"'
        ),
        "file not found",
    ),
    (
        "retry ceiling below base",
        config_text(delivery="retry_base_seconds = 60\nretry_ceiling_seconds = 10"),
        "retry_ceiling_seconds",
    ),
    ("log level", config_text(logging='level = "loud"'), "logging.level"),
    ("heartland missing", '[yotpo]\nguid = "g"\napi_key = "k"\n', "heartland"),
    ("empty file", "", "heartland"),
]


@pytest.mark.parametrize(
    ("text", "names"), [(text, names) for _, text, names in CONFIGS], ids=[c[0] for c in CONFIGS]
)
def test_bad_config_stops_with_message(tmp_path: Path, text: str, names: str) -> None:
    path = tmp_path / "yotposync.toml"
    path.write_text(text, encoding="utf-8")

    result = invoke("--config", str(path), "catch-up", "--since", "2026-01-01")

    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ")
    assert names in result.stderr
    FIGURES["bad configurations tried"] += 1


def test_config_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "yotposync.toml"
    path.write_bytes(b'[heartland]\nbase_url = "https://caf\xe9.example/api"\n')

    result = invoke("--config", str(path), "catch-up", "--since", "2026-01-01")

    assert result.exit_code == 2
    assert "UTF-8" in result.stderr
    FIGURES["bad configurations tried"] += 1
