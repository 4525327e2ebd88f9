"""`yotposync check`: is this installation ready to run?

Each check returns findings: what was checked, whether it is fine, and for a problem how to
fix it. The checks read only: they call each API with the configured credentials but never
write to either. They print no secret, because configuration validation rejects URLs with
credentials in them, and API error reasons pass through the HTTP layer, which redacts the
credential headers.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import sqlite3
import stat
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from yotposync.clients.heartland import HeartlandClient
from yotposync.clients.yotpo import YotpoClient
from yotposync.config import Settings
from yotposync.errors import ApiError, AuthError, ConfigError, LedgerError, RetriableError
from yotposync.ledger.integrity import (
    MOVED_ASIDE_ADVICE,
    file_in_folder_path,
    missing_schema,
    missing_schema_text,
)
from yotposync.ledger.lock import EMPTIED_ADVICE, LedgerLock, emptied_ledger_text
from yotposync.ledger.schema import SCHEMA_VERSION
from yotposync.ops.address import parse_listen_address
from yotposync.ops.heartland_webhooks import hide_secret, list_webhooks
from yotposync.ops.webhook import webhook_path

OK = "ok"
WARNING = "warning"
PROBLEM = "problem"

# Heartland custom field groups of tickets and customers.
TICKET_FIELD_GROUP = "sales.transaction"
CUSTOMER_FIELD_GROUP = "customer"


@dataclass(frozen=True)
class Finding:
    """One result of `yotposync check`."""

    status: str  # OK, WARNING or PROBLEM
    subject: str  # what was checked, such as "heartland" or "ledger"
    message: str
    fix: str | None = None


@dataclass(frozen=True)
class HeartlandRead:
    """A collection the product reads, and the role permission that reading it needs."""

    label: str
    path: str
    permission: str


# Collections the daemon reads in Heartland.
# NOTE: only read access is checked. Features that write to Heartland (customer custom fields
# for balances, discounts for offers) add their custom fields and permissions here.
HEARTLAND_READS = (
    HeartlandRead("locations", "/locations", "view locations"),
    HeartlandRead("sales tickets", "/sales/tickets", "view sales tickets"),
    HeartlandRead("customers", "/customers", "view customers"),
)


def configuration_problems(error: ConfigError) -> list[Finding]:
    """Turn an invalid configuration into findings, one per problem.

    Each problem already names the key, the value and what is allowed, so no separate fix
    line is added.
    """
    return [Finding(PROBLEM, "configuration", problem) for problem in error.problems]


def check_installation(
    settings: Settings,
    *,
    heartland: Callable[[], HeartlandClient],
    yotpo: Callable[[], YotpoClient],
) -> list[Finding]:
    """Run every check after the configuration loaded; `heartland` and `yotpo` build clients."""
    findings = [Finding(OK, "configuration", "valid")]
    # Each warning names the setting and gives the fix.
    findings += [Finding(WARNING, "configuration", warning) for warning in settings.warnings]
    findings += check_secret_files(settings)
    findings += check_ledger(settings.ledger.path)
    findings += check_go_live(settings, datetime.now(UTC))

    heartland_client = heartland()
    try:
        reachable, heartland_findings = check_heartland(settings, heartland_client)
        findings += heartland_findings
        findings += check_webhook(settings, heartland_client if reachable else None)
    finally:
        heartland_client.close()

    yotpo_client = yotpo()
    try:
        findings += check_yotpo(settings, yotpo_client)
    finally:
        yotpo_client.close()

    findings += check_ops(settings)
    return findings


def check_go_live(settings: Settings, now: datetime) -> list[Finding]:
    """Warn about a go-live date in the future, which is valid but is often a typo."""
    go_live = settings.sync.go_live
    if go_live is None or go_live <= now:
        return []
    return [
        Finding(
            WARNING,
            "configuration",
            f"sync.go_live = {go_live.isoformat()} is in the future: no sale earns before it, "
            "and a sale that earned before and is read again has its points taken back",
            "set sync.go_live to the day the loyalty program starts in the store, or leave it out",
        )
    ]


def check_secret_files(settings: Settings) -> list[Finding]:
    """Warn about each secret file that users other than its owner may read or write."""
    findings = []
    for key, path in settings.secret_files():
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except OSError:
            continue  # loading the settings reports a file that cannot be read
        if mode & 0o077:
            findings.append(
                Finding(
                    WARNING,
                    "configuration",
                    f"{key}: {path} has mode {mode:04o}, so other users may read the secret "
                    "it contains",
                    f"run chmod 600 {path}",
                )
            )
    return findings


# The ledger


# `check` warns when the ledger's file system has less free space than this. A ledger of
# 30,000 tickets takes about 30 MB (see the quick_check note below). SQLite checkpoints the
# -wal file beside it at about 4 MB (1000 pages of 4 KiB), later while a long read runs.
# So 100 MiB leaves room for a catch-up of twice that many tickets. The figure is an estimate.
LOW_FREE_SPACE_BYTES = 100 * 1024 * 1024


def check_ledger(path: Path) -> list[Finding]:
    """Check the ledger's folder, an existing ledger, and the free space of their file system."""
    return [*_ledger_file_findings(path), *_free_space_findings(path)]


def _free_space_findings(path: Path) -> list[Finding]:
    """Warn when the ledger's file system is nearly full, because SQLite then fails every write."""
    folder = _existing_ancestor(path.parent)
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return []
    if free >= LOW_FREE_SPACE_BYTES:
        return []
    return [
        Finding(
            WARNING,
            "ledger",
            f"the file system of {folder} has {free / 1024 / 1024:.1f} MiB free, less than "
            f"{LOW_FREE_SPACE_BYTES // 1024 // 1024} MiB: when it is full, every job fails "
            "until space is freed",
            "free space on that file system, or stop yotposync, move the ledger with its -wal "
            "file to a file system with room and set ledger.path to the new place",
        )
    ]


def _ledger_file_findings(path: Path) -> list[Finding]:
    subject = "ledger"
    as_root = " (checked as root, not as the service user)" if os.geteuid() == 0 else ""
    if path.exists() and not path.is_file():
        return [Finding(PROBLEM, subject, f"{path} is not a file", "set ledger.path to a file")]
    lock = LedgerLock(path).path
    if lock.exists() and not lock.is_file():
        kind = "a folder" if lock.is_dir() else "not a regular file"
        return [
            Finding(
                PROBLEM,
                subject,
                f"the lock file {lock} is {kind}",
                "remove it (yotposync creates its lock file there), or set ledger.path",
            )
        ]

    blocker = file_in_folder_path(path)
    if blocker is not None:
        return [
            Finding(
                PROBLEM,
                subject,
                f"{path} runs through {blocker}, which is a file, not a folder",
                "set ledger.path to a file in a folder, such as /var/lib/yotposync/ledger.sqlite3",
            )
        ]
    folder = path.parent
    if not folder.exists():
        ancestor = _existing_ancestor(folder)
        if not _can_create_in(ancestor):
            return [
                Finding(
                    PROBLEM,
                    subject,
                    f"{folder} does not exist and cannot be created in {ancestor}{as_root}",
                    "create the folder for the service user, or set ledger.path; under systemd "
                    "StateDirectory= creates /var/lib/yotposync",
                )
            ]
        return [
            Finding(
                OK,
                subject,
                f"{path} will be created on the first run{as_root}, with its folder "
                f"{folder}, which does not exist yet",
            )
        ]

    if not _can_create_in(folder):
        return [
            Finding(
                PROBLEM,
                subject,
                f"cannot write in {folder}{as_root}; SQLite needs it for the journal files",
                f"give the service user write access to {folder}, or set ledger.path",
            )
        ]
    if not path.exists():
        return [Finding(OK, subject, f"{path} will be created on the first run{as_root}")]
    if path.stat().st_size == 0:
        return [_empty_ledger_finding(path, as_root)]
    if not os.access(path, os.R_OK | os.W_OK):
        return [
            Finding(
                PROBLEM,
                subject,
                f"{path} cannot be read and written{as_root}",
                f"give the service user read and write access to {path}",
            )
        ]
    return [_ledger_version_finding(path, as_root), *_ledger_mode_findings(path)]


def _ledger_mode_findings(path: Path) -> list[Finding]:
    """Warn when users other than the owner may read or write the ledger file."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if not mode & 0o077:
        return []
    return [
        Finding(
            WARNING,
            "ledger",
            f"{path} has mode {mode:04o}, so other users may read the customer e-mail "
            "addresses it contains",
            f"run chmod 600 {path}",
        )
    ]


def _empty_ledger_finding(path: Path, as_root: str) -> Finding:
    """Tell an emptied ledger from one that a first run has not written yet."""
    lock = LedgerLock(path).path
    if lock.exists():
        return Finding(
            PROBLEM,
            "ledger",
            emptied_ledger_text(path, lock),
            EMPTIED_ADVICE,
        )
    return Finding(OK, "ledger", f"{path} is empty; the first run sets it up{as_root}")


def _ledger_version_finding(path: Path, as_root: str) -> Finding:
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            version = int(connection.execute("PRAGMA user_version").fetchone()[0])
            # Damage inside a table shows only when its page is read, so quick_check reads
            # every page: 0.03 to 0.5 s for a 30 MB ledger of 30,000 tickets. It lists what
            # it finds, or raises when a page cannot be parsed at all.
            try:
                damage = [row[0] for row in connection.execute("PRAGMA quick_check(5)")]
            except sqlite3.DatabaseError as exc:
                damage = [str(exc)]
            # SQLite's findings may span lines; the finding is printed on one.
            damage = [" ".join(str(text).split()) for text in damage]
            missing = missing_schema(connection, version) if damage == ["ok"] else []
        finally:
            connection.close()
    except sqlite3.DatabaseError as exc:
        return Finding(
            PROBLEM,
            "ledger",
            f"{path} is not a readable SQLite database ({exc})",
            "restore the ledger from a backup",
        )
    if damage != ["ok"]:
        return Finding(
            PROBLEM,
            "ledger",
            f"{path} is damaged ({'; '.join(damage)})",
            MOVED_ASIDE_ADVICE,
        )
    if missing:
        return Finding(PROBLEM, "ledger", missing_schema_text(path, missing), MOVED_ASIDE_ADVICE)
    if version > SCHEMA_VERSION:
        return Finding(
            PROBLEM,
            "ledger",
            f"{path} has schema version {version}, newer than this yotposync reads "
            f"({SCHEMA_VERSION})",
            "upgrade yotposync, or restore the backup made before the last upgrade",
        )
    if version < SCHEMA_VERSION:
        return Finding(
            OK,
            "ledger",
            f"{path} has schema version {version}; the next run upgrades it to "
            f"{SCHEMA_VERSION} (back it up first)",
        )
    return Finding(OK, "ledger", f"{path} is readable and writable{as_root}")


def _existing_ancestor(folder: Path) -> Path:
    for parent in (folder, *folder.parents):
        if parent.exists():
            return parent
    return Path("/")


def _can_create_in(folder: Path) -> bool:
    """Create and remove a file in `folder`, which is more reliable than os.access()."""
    if not folder.is_dir():
        return False
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".yotposync-check-"):
            pass
    except OSError:
        return False
    return True


# Heartland


def check_heartland(settings: Settings, client: HeartlandClient) -> tuple[bool, list[Finding]]:
    """Check the token and read access; return whether the API responded, and the findings."""
    subject = "heartland"
    base_url = settings.heartland.base_url
    try:
        first = client.http.get_json("/locations", {"per_page": 1})
    except ApiError as exc:
        return False, [_api_problem(subject, exc, base_url, "locations", "view locations")]
    if not _is_list_body(first):
        # A different service responds there, so its other responses tell nothing about Heartland.
        return False, [_unexpected_body(subject, base_url, "locations", "a Heartland list")]

    findings = [Finding(OK, subject, f"{base_url} accepted the API token")]
    for read in HEARTLAND_READS:
        try:
            body = client.http.get_json(read.path, {"per_page": 1})
        except ApiError as exc:
            findings.append(_api_problem(subject, exc, base_url, read.label, read.permission))
            continue
        if _is_list_body(body):
            findings.append(Finding(OK, subject, f"can read {read.label}"))
        else:
            findings.append(_unexpected_body(subject, base_url, read.label, "a Heartland list"))
    findings += _check_rule_references(settings, client)
    return True, findings


def _check_rule_references(settings: Settings, client: HeartlandClient) -> list[Finding]:
    """Check that the custom fields, locations and stations named by `[rules]` exist.

    A rule that names something Heartland does not have never matches, so the tickets it was
    meant to exclude would earn points.
    """
    rules = settings.rules
    findings: list[Finding] = []
    referenced_fields = [
        ("rules.exclude_ticket_custom_fields", TICKET_FIELD_GROUP, rule.key)
        for rule in rules.exclude_ticket_custom_fields
    ] + [
        ("rules.exclude_customer_custom_fields", CUSTOMER_FIELD_GROUP, rule.key)
        for rule in rules.exclude_customer_custom_fields
    ]
    if referenced_fields:
        try:
            body = client.http.get_json("/custom_fields", {"per_page": "all"})
        except ApiError as exc:
            findings.append(
                Finding(
                    WARNING,
                    "rules",
                    f"cannot list Heartland custom fields to check the rules' keys: {exc}",
                    "give the token's user permission to view custom fields",
                )
            )
        else:
            findings += _check_custom_field_rules(body, referenced_fields)

    if rules.exclude_location_ids or rules.exclude_station_ids:
        findings += _check_location_rules(settings, client)
    return findings


def _check_custom_field_rules(
    body: Any, referenced_fields: list[tuple[str, str, str]]
) -> list[Finding]:
    if not _is_list_body(body, "key"):
        return [_unlisted("custom fields", "the rules' keys")]
    findings: list[Finding] = []
    defined = {(f.get("group_id"), f.get("key")) for f in _results(body)}
    for setting, group, key in referenced_fields:
        if (group, key) in defined:
            findings.append(Finding(OK, "rules", f"{setting}: {key!r} exists"))
        else:
            findings.append(
                Finding(
                    PROBLEM,
                    "rules",
                    f"{setting} names {key!r}, which is not a {group} custom field in "
                    "Heartland, so the rule never matches",
                    "correct the key (Heartland: Settings > Custom Fields) or remove it",
                )
            )
    return findings


def _check_location_rules(settings: Settings, client: HeartlandClient) -> list[Finding]:
    try:
        body = client.http.get_json("/locations", {"per_page": "all", "_include[]": "stations"})
    except ApiError as exc:
        return [Finding(WARNING, "rules", f"cannot list locations to check the rules: {exc}")]
    if not _is_list_body(body, "id"):
        return [_unlisted("locations", "the rules' location and station ids")]
    locations = _results(body)
    location_ids = {location.get("id") for location in locations}
    station_ids = {
        station.get("id")
        for location in locations
        for station in location.get("stations") or []
        if isinstance(station, dict)
    }
    findings = []
    for setting, configured, known in (
        ("rules.exclude_location_ids", settings.rules.exclude_location_ids, location_ids),
        ("rules.exclude_station_ids", settings.rules.exclude_station_ids, station_ids),
    ):
        missing = [value for value in configured if value not in known]
        if missing:
            findings.append(
                Finding(
                    PROBLEM,
                    "rules",
                    f"{setting} names {missing}, which Heartland does not have, so those "
                    "entries never match",
                    "use the ids shown in Heartland, or remove them",
                )
            )
        elif configured:
            findings.append(Finding(OK, "rules", f"{setting}: every id exists"))
    return findings


# Yotpo


def check_yotpo(settings: Settings, client: YotpoClient) -> list[Finding]:
    base_url = settings.yotpo.base_url
    try:
        body = client.http.get_json("/vip_tiers")
    except ApiError as exc:
        return [_api_problem("yotpo", exc, base_url, "VIP tiers", "")]
    # The client reads VIP tiers as an array of objects, as integrations seen in public code do.
    if not isinstance(body, list) or not all(isinstance(tier, dict) for tier in body):
        return [_unexpected_body("yotpo", base_url, "VIP tiers", "an array of VIP tiers")]
    return [Finding(OK, "yotpo", f"{base_url} accepted the GUID and API key")]


# Service options


def check_webhook(settings: Settings, client: HeartlandClient | None) -> list[Finding]:
    """Check the webhook secret and that Heartland has a webhook pointing at this receiver."""
    listen = settings.ops.webhook_listen
    if listen is None:
        return []
    subject = "webhook"
    try:
        secret = settings.webhook_secret()
    except ConfigError as exc:
        return [Finding(PROBLEM, subject, problem, None) for problem in exc.problems]
    if secret is None or client is None:
        return []
    try:
        webhooks = list_webhooks(client.http)
    except ApiError as exc:
        return [_api_problem(subject, exc, settings.heartland.base_url, "webhooks", "")]
    path = webhook_path(secret)
    matching = [hook for hook in webhooks if hook.url.rstrip("/").endswith(path)]
    if not matching:
        return [
            Finding(
                PROBLEM,
                subject,
                f"ops.webhook_listen = {listen} is set, but no Heartland webhook points at it",
                "run `yotposync webhooks register --url https://<public address of the "
                "receiver>`; until then only the regular polls find new tickets",
            )
        ]
    shown = ", ".join(f"{hook.id} ({hide_secret(hook.url, secret)})" for hook in matching)
    return [Finding(OK, subject, f"Heartland posts completed tickets to webhook {shown}")]


def check_ops(settings: Settings) -> list[Finding]:
    ops = settings.ops
    findings = check_listen_addresses(settings)
    if ops.ping_url is not None:
        # Not pinged here: to the monitoring service any ping is a report about a real run.
        host = ops.ping_url.split("://", 1)[-1].split("/", 1)[0]
        findings.append(Finding(OK, "ops", f"pings to {host} around each transactions run"))
    return findings


def check_listen_addresses(settings: Settings) -> list[Finding]:
    """Bind each address the daemon will listen on and close it at once.

    An address in use is not a problem while a yotposync process holds the ledger lock,
    because that is most likely the daemon serving it.
    """
    listeners = [
        ("ops.listen", settings.ops.listen, "/healthz and /metrics"),
        ("ops.webhook_listen", settings.ops.webhook_listen, "webhook receiver"),
    ]
    if settings.offers.enabled:
        # The daemon starts the redemption receiver only when offers are enabled.
        listeners.append(
            ("offers.webhook_listen", settings.offers.webhook_listen, "redemption webhook receiver")
        )
    findings: list[Finding] = []
    for key, address, served in listeners:
        if address is not None:
            findings.append(_listen_finding(settings.ledger.path, key, address, served))
    return findings


def _listen_finding(ledger_path: Path, key: str, address: str, served: str) -> Finding:
    subject = key.split(".", 1)[0]
    host, port = parse_listen_address(address)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            # The daemon's server sets SO_REUSEADDR too, so a port in TIME_WAIT is no problem.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        return _bind_failure(ledger_path, key, address, served, exc)
    return Finding(OK, subject, f"{served} can listen on {key} = {address}")


def _bind_failure(ledger_path: Path, key: str, address: str, served: str, exc: OSError) -> Finding:
    """Describe a failed bind, or a port in use that the running daemon most likely serves."""
    subject = key.split(".", 1)[0]
    port = parse_listen_address(address)[1]
    if exc.errno == errno.EADDRINUSE:
        try:
            holder = _ledger_lock_holder(ledger_path)
        except OSError as lock_error:
            return Finding(
                WARNING,
                subject,
                f"{key} = {address} is in use, and the ledger lock file cannot be read "
                f"to tell whether the running daemon uses it: {lock_error.strerror}",
                "run check as the service user or as root; if no daemon runs, set "
                f"{key} to a free port or stop the process that uses it",
            )
        if holder is not None:
            return Finding(
                OK,
                subject,
                f"{key} = {address} is in use while {holder} holds the ledger lock, "
                f"most likely the running daemon serving the {served} there",
            )
        fix = (
            f"set {key} to a free port, or stop the process that uses it "
            f"(`ss -ltnp 'sport = :{port}'` shows it)"
        )
    elif exc.errno == errno.EADDRNOTAVAIL:
        fix = f"set {key} to an address of this machine, such as 127.0.0.1:{port}"
    elif exc.errno == errno.EACCES:
        fix = (
            f"set {key} to a port above 1023, or give the service the "
            "CAP_NET_BIND_SERVICE capability"
        )
    else:
        fix = f"set {key} to another address"
    return Finding(
        PROBLEM,
        subject,
        f"cannot listen on {key} = {address}: {exc.strerror or exc}, so `yotposync run` would stop",
        fix,
    )


def _ledger_lock_holder(ledger_path: Path) -> str | None:
    """Describe the process that holds the ledger lock, or return None when none does.

    Raises OSError when the lock file exists but cannot be opened.
    """
    try:
        lock = LedgerLock(ledger_path)
    except LedgerError:
        return None  # check_ledger reports a ledger path that is a folder
    if not lock.is_held():
        return None
    pid = lock.holder_pid()
    return "a yotposync process" + (f" (pid {pid})" if pid is not None else "")


def _api_problem(subject: str, exc: ApiError, base_url: str, what: str, permission: str) -> Finding:
    """Describe a failed call and the most likely fix for its kind of failure."""
    key = f"{exc.service}.base_url"
    if isinstance(exc, AuthError) and exc.status == 403 and permission:
        return Finding(
            PROBLEM,
            subject,
            f"the API token's user may not read {what} (HTTP 403)",
            f"give that user a role with the permission to {permission} in Heartland",
        )
    if isinstance(exc, AuthError):
        if exc.service == "yotpo":
            fix = "copy the GUID and API key again from Yotpo Loyalty: Settings > General"
        else:
            fix = (
                "generate a new token in Heartland (My Account > API Tokens) and put it in "
                "heartland.token_file or YOTPOSYNC_HEARTLAND__TOKEN"
            )
        fix += f"; if they are right, check that {key} is this API's address"
        return Finding(PROBLEM, subject, f"credentials rejected: {exc}", fix)
    if isinstance(exc, RetriableError) and exc.status is None:
        return Finding(
            PROBLEM,
            subject,
            f"cannot reach {base_url}: {exc.reason}",
            f"check {key} and that this machine can reach it (DNS, firewall, proxy)",
        )
    if exc.status == 404:
        return Finding(
            PROBLEM,
            subject,
            f"{base_url} has no {exc.path} (HTTP 404): it does not look like the right API",
            f"check {key}",
        )
    if exc.status is not None and 200 <= exc.status < 300:
        return Finding(
            PROBLEM,
            subject,
            f"{base_url} answered the request for {what} with HTTP {exc.status}, but not with "
            f"the API's response ({exc.reason})",
            f"check {key}: it must be the API's address, not a website or a proxy page",
        )
    if exc.status is not None and 300 <= exc.status < 400:
        return Finding(
            PROBLEM,
            subject,
            f"{base_url} answered with a redirect (HTTP {exc.status}), which yotposync does "
            "not follow",
            f"set {key} to the address it redirects to (often https instead of http, or a "
            "different path)",
        )
    if exc.status is not None and 400 <= exc.status < 500 and exc.status != 429:
        # Waiting does not change a 4xx: the request or the address is wrong for this server.
        fix = f"check {key}: this server does not accept the API's requests there"
    else:
        fix = f"try again later; if it persists, check {exc.service}'s service status"
    return Finding(PROBLEM, subject, f"reading {what} failed: {exc}", fix)


def _unexpected_body(subject: str, base_url: str, read: str, expected: str) -> Finding:
    """Report a read that succeeded with JSON of another shape, most likely another service."""
    return Finding(
        PROBLEM,
        subject,
        f"reading {read} from {base_url} returned JSON that is not {expected}",
        f"check that {subject}.base_url is the API's address; another service may answer there",
    )


def _is_list_body(body: Any, item_key: str | None = None) -> bool:
    """Return whether a Heartland list response has its `results` array.

    With `item_key`, every result must also be an object that has that key.
    """
    if not isinstance(body, dict) or not isinstance(body.get("results"), list):
        return False
    if item_key is None:
        return True
    return all(isinstance(item, dict) and item_key in item for item in body["results"])


def _unlisted(listed: str, checked: str) -> Finding:
    """Say that a list came back in another shape, so the rules that need it went unchecked."""
    return Finding(
        WARNING,
        "rules",
        f"cannot check {checked}: Heartland's list of {listed} came back in another shape",
        "run `yotposync check` again; if it persists, check heartland.base_url",
    )


def _results(body: Any) -> list[dict[str, Any]]:
    results = body.get("results") if isinstance(body, dict) else body
    return [item for item in results if isinstance(item, dict)] if isinstance(results, list) else []


def format_findings(findings: Iterable[Finding]) -> str:
    """Render findings for a terminal, each problem with its fix, and a closing count."""
    lines: list[str] = []
    problems = warnings = 0
    for finding in findings:
        label = {OK: "ok", WARNING: "WARNING", PROBLEM: "PROBLEM"}[finding.status]
        lines.append(f"{label:<8} {finding.subject}: {finding.message}")
        if finding.fix and finding.status != OK:
            lines.append(f"{'':<8} fix: {finding.fix}")
        problems += finding.status == PROBLEM
        warnings += finding.status == WARNING
    if problems:
        lines.append(f"{problems} problem{'s' if problems != 1 else ''} found.")
    else:
        lines.append("Ready to run." + (f" {warnings} warning(s)." if warnings else ""))
    return "\n".join(lines)


def findings_as_json(findings: Iterable[Finding]) -> str:
    return json.dumps(
        [
            {"status": f.status, "subject": f.subject, "message": f.message, "fix": f.fix}
            for f in findings
        ],
        indent=2,
    )
