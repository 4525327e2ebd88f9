"""Fault plans for the sandbox: which requests fail, how, and how often.

A `FaultPlan` is a list of named rules. Each rule matches requests to one emulator by HTTP
method and path pattern, and describes what goes wrong with them: a 429 with one of four
styles of reset header, a 5xx, a 4xx rejection, a slow response, a response lost after the
request was applied, a connection reset, a malformed or truncated JSON body, an empty list
page, a ticket edited between two page requests, or records with changed values.
`fault_injector` applies a plan.

Each rule draws from its own random generator, seeded from the plan's `seed` and the rule's
name, so the same plan and the same sequence of requests inject the same faults.

Plans are written in Python, or read from a JSON or TOML file by `load_fault_plan`:

    seed = 7
    heartland_clock_skew_seconds = 2

    [[rules]]
    name = "yotpo-down"
    service = "yotpo"
    kind = "server_error"
    status = 503
    path = "/api/v2/*"
"""

from __future__ import annotations

import enum
import json
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Service = Literal["heartland", "yotpo"]
ResetStyle = Literal["seconds", "http-date", "missing", "huge"]
EmptyTotal = Literal["listed", "zero"]

# The reset a "huge" 429 announces: about 31 years, far beyond any sane wait.
HUGE_RESET_SECONDS = 1_000_000_000


class FaultKind(enum.StrEnum):
    """The effect of a rule on a matching request."""

    RATE_LIMIT = "rate_limit"  # 429 with a reset header in the rule's `reset` style
    SERVER_ERROR = "server_error"  # a 5xx (`status`), the request not applied
    CLIENT_ERROR = "client_error"  # a 4xx other than 429 (`status`), the request not applied
    SLOW = "slow"  # wait `delay_seconds`, then apply and respond normally
    LOST_RESPONSE = "lost_response"  # apply, wait `delay_seconds`, close without a response
    RESET = "reset"  # close the connection, nothing applied, no response
    MALFORMED_JSON = "malformed_json"  # apply, answer 200 with a body that is not JSON
    TRUNCATED_JSON = "truncated_json"  # apply, answer with the first half of the body
    EMPTY_PAGE = "empty_page"  # return no records to a list request (see `empty_total`)
    EDIT_BETWEEN_PAGES = "edit_between_pages"  # answer, then edit one random ticket
    PATCH_RECORDS = "patch_records"  # answer with the `patches` applied to records by id


# Kinds that need the Heartland emulator's records.
HEARTLAND_ONLY = frozenset({FaultKind.EDIT_BETWEEN_PAGES})


class RecordPatch(BaseModel):
    """Changes to one record in a response: keys to set (null included) and keys to remove."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    set: dict[str, Any] = Field(default_factory=dict)
    remove: tuple[str, ...] = ()


class FaultRule(BaseModel):
    """One fault: which requests it matches, what it does to them, and how often.

    `path` is a shell-style pattern (`*` matches any characters, `/` included) on the request
    path without its query string, such as `/api/v2/*` or `/api/sales/tickets`. `method` is
    an HTTP method or `*`. Of the matching requests, the first `after` pass untouched, then
    each is hit with probability `probability`, at most `times` times in all. Requests to
    the sandbox's own `/_sandbox/...` paths are never hit.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=80)
    service: Service
    kind: FaultKind
    method: str = "*"
    path: str = "*"
    probability: float = Field(default=1.0, ge=0, le=1)
    after: int = Field(default=0, ge=0)
    times: int | None = Field(default=None, ge=1)
    enabled: bool = True
    # server_error and client_error: the status sent (default 503 and 422). rate_limit always
    # sends 429.
    status: int | None = Field(default=None, ge=400, le=599)
    # rate_limit: how the wait is announced, and the wait in seconds for "seconds" and
    # "http-date".
    reset: ResetStyle = "seconds"
    reset_seconds: int = Field(default=1, ge=0, le=86400)
    # slow and lost_response: seconds to hold the request before going on.
    delay_seconds: float = Field(default=0.0, ge=0, le=300)
    # rate_limit, server_error and client_error: the text of the error body.
    message: str | None = None
    # empty_page on a Heartland GET: the `total` and `pages` of the empty page. "listed" keeps
    # the emulator's own counts, as when a page loses its records on the way. "zero" sends 0,
    # as when the records are gone for the token, for example after it lost a location.
    empty_total: EmptyTotal = "listed"
    # patch_records: changes per record id (the JSON key is the id as text).
    patches: dict[str, RecordPatch] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_kind_options(self) -> FaultRule:
        if self.kind in HEARTLAND_ONLY and self.service != "heartland":
            raise ValueError(f"kind {self.kind.value} works only with service heartland")
        if self.kind is FaultKind.PATCH_RECORDS and not self.patches:
            raise ValueError("kind patch_records needs at least one entry in patches")
        status = self.status if self.status is not None else self.error_status
        if self.kind is FaultKind.SERVER_ERROR and status < 500:
            raise ValueError("kind server_error needs a status from 500 to 599")
        if self.kind is FaultKind.CLIENT_ERROR and (status >= 500 or status == 429):
            raise ValueError("kind client_error needs a status from 400 to 499 other than 429")
        if self.method != "*" and not self.method.isalpha():
            raise ValueError(f"method {self.method!r} must be an HTTP method such as GET, or *")
        return self

    @property
    def method_upper(self) -> str:
        return self.method.upper()

    @property
    def error_status(self) -> int:
        """The status a server_error or client_error rule answers with."""
        if self.status is not None:
            return self.status
        return 422 if self.kind is FaultKind.CLIENT_ERROR else 503


class FaultPlan(BaseModel):
    """A set of fault rules for both emulators, with the seed that makes them reproducible.

    `heartland_clock_skew_seconds` makes every Heartland write take a timestamp up to that
    many whole seconds earlier than the clock, drawn at random per write. Tickets then
    reach the listing with an `updated_at` earlier than tickets already listed, as when the
    clocks of a vendor's servers disagree or a commit is slow.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = 0
    heartland_clock_skew_seconds: int = Field(default=0, ge=0, le=3600)
    rules: tuple[FaultRule, ...] = ()

    @model_validator(mode="after")
    def _check_unique_names(self) -> FaultPlan:
        names = [rule.name for rule in self.rules]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"rule names must be unique; repeated: {', '.join(repeated)}")
        return self

    def rule_names(self) -> list[str]:
        return [rule.name for rule in self.rules]


def parse_fault_plan(data: object, source: str = "fault plan") -> FaultPlan:
    """Validate plain data (from JSON or TOML) as a FaultPlan.

    Raises ValueError that lists every problem, each with the place in `source` it was found.
    """
    try:
        return FaultPlan.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            place = ".".join(str(part) for part in error["loc"]) or "(top level)"
            problems.append(f"  - {place}: {error['msg']}")
        raise ValueError(f"invalid {source}:\n" + "\n".join(problems)) from None


def load_fault_plan(path: Path) -> FaultPlan:
    """Read a fault plan from a `.json` or `.toml` file.

    Raises ValueError naming the file and the problem: unreadable, not JSON or TOML, or
    values that do not make a valid plan.
    """
    suffix = path.suffix.lower()
    if suffix not in (".json", ".toml"):
        raise ValueError(f"{path}: a fault plan must be a .json or .toml file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read the fault plan: {exc}") from None
    try:
        data: object = json.loads(text) if suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path}: not valid {suffix[1:].upper()}: {exc}") from None
    return parse_fault_plan(data, source=str(path))
