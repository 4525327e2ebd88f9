"""The ledger: a small library over one SQLite file, plain data in and out.

It stores cursors, every ticket version seen and what was decided for it, the outbox of pushes
with their states, and a record of each job run. Writes that belong together (a page of
decisions, their pushes and the cursor that covers them) go through `transaction()`.
"""

from __future__ import annotations

import functools
import json
import os
import pwd
import sqlite3
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils
import structlog

from yotposync.errors import LedgerError
from yotposync.ledger.integrity import (
    MOVED_ASIDE_ADVICE,
    damaged_ledger_error,
    edited_value_error,
    file_in_folder_error,
    file_in_folder_path,
    full_ledger_error,
    missing_schema_error,
    not_regular_file_error,
    stored_int,
    stored_time,
)
from yotposync.ledger.lock import EMPTIED_ADVICE, LedgerLock, emptied_ledger_text
from yotposync.ledger.schema import SCHEMA_VERSION, migrate, schema_version
from yotposync.sync.model import Decision, Kind, ParentInfo
from yotposync.sync.plan import OrderBalance, PlannedPush, PushRecord

log = structlog.get_logger("yotposync.ledger")

# The reason `status` gives for a push in a state that yotposync never sets.
UNKNOWN_STATE_ERROR = (
    "yotposync never sets this state, so the push is never sent: restore the ledger from a "
    "backup, or set the push's state to pending"
)

RUN_RUNNING = "running"
RUN_INTERRUPTED = "interrupted"
INTERRUPTED_ERROR = "the process stopped before the run finished (a signal or a crash)"

PENDING = "pending"
SENT = "sent"
CONFIRMED = "confirmed"
REJECTED = "rejected"
FAILED = "failed"
STATES = (PENDING, SENT, CONFIRMED, REJECTED, FAILED)
UNFINISHED = (PENDING, SENT, FAILED)


@dataclass(frozen=True)
class Cursor:
    """A position in a Heartland walk: the last `updated_at` processed and its ticket id."""

    updated_at: datetime
    last_id: int


@dataclass(frozen=True)
class Push:
    """One outbox row, as the delivery job needs it."""

    seq: int
    push_id: str
    kind: str
    role: str
    ticket_id: int
    email: str | None
    target_order_id: str | None
    amount_cents: int
    body: str  # the payload's JSON text, as stored and as sent
    state: str
    attempts: int

    @property
    def payload(self) -> dict[str, Any]:
        """The payload, decoded from `body`."""
        decoded: dict[str, Any] = json.loads(self.body)
        return decoded


@dataclass(frozen=True)
class TicketAmountsRow:
    """The amounts of a ticket that later returns of it, or of its parent, need."""

    item_cents: int
    item_net_cents: int
    returned_item_cents: int = 0


# The last time formatted, and its text. Writes within one page or one delivery group pass
# the same `now` many times, and isoformat() costs more than this identity check.
_last_iso: tuple[datetime | None, str] = (None, "")


def _iso(value: datetime) -> str:
    global _last_iso
    last = _last_iso  # one read: another thread may replace the pair meanwhile
    if value is last[0]:
        return last[1]
    if value.tzinfo is None:
        raise ValueError("ledger times must be timezone-aware")
    text = value.isoformat()
    _last_iso = (value, text)
    return text


# The hot writes of a catch-up (a decision per ticket, a row per push) use plain SQL: the
# table helpers of sqlite-utils read the table's schema on every call, which cost more than
# the write itself. Table and column names here are always literals of this module.


# The delivery job's batch query: open pushes that may go now, in seq order. Both indexes are
# partial, over open pushes only (schema version 4), and each condition repeats its index's
# WHERE so that SQLite may use it. Walking open pushes in seq order lets the query stop after
# the limit instead of reading and sorting every due push.
DUE_PUSHES_SQL = (
    "SELECT seq, push_id, kind, role, ticket_id, email, target_order_id, amount_cents, "
    "payload, state, attempts FROM pushes p INDEXED BY idx_pushes_open_seq "
    "WHERE p.state IN ('pending', 'sent') "
    # A pending push without a time (only an edited ledger has one) is due now.
    "AND (p.state = 'sent' OR p.next_attempt_at IS NULL OR p.next_attempt_at <= ?1) "
    # Leave out pushes held back by an older push of the same customer that cannot go now
    # (waiting for a retry, or failed), so that one customer's backlog never fills the batch
    # and starves everyone else.
    "AND NOT EXISTS (SELECT 1 FROM pushes e INDEXED BY idx_pushes_waiting_email "
    "WHERE e.state IN ('pending', 'failed') AND e.email IS p.email AND e.seq < p.seq "
    "AND (e.state = 'failed' OR e.next_attempt_at > ?1)) "
    "ORDER BY p.seq LIMIT ?2"
)


def _insert(conn: sqlite3.Connection, table: str, row: dict[str, Any]) -> int:
    """Insert one row and return its rowid."""
    cursor = conn.execute(_insert_sql(table, tuple(row)), list(row.values()))
    return int(cursor.lastrowid or 0)


def _upsert(conn: sqlite3.Connection, table: str, row: dict[str, Any], pk: str = "id") -> None:
    """Insert one row, or update the columns given when a row with its primary key exists."""
    conn.execute(_upsert_sql(table, tuple(row), pk), list(row.values()))


@functools.cache
def _insert_sql(table: str, columns: tuple[str, ...]) -> str:
    marks = ", ".join("?" * len(columns))
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608


@functools.cache
def _upsert_sql(table: str, columns: tuple[str, ...], pk: str) -> str:
    updates = ", ".join(f"{name} = excluded.{name}" for name in columns if name != pk)
    return f"{_insert_sql(table, columns)} ON CONFLICT({pk}) DO UPDATE SET {updates}"


def no_ledger_text(path: Path, commands: str) -> str:
    """Return the message for a missing ledger at `path`, which `commands` would start."""
    return (
        f"no ledger at {path} yet: run {commands} to start one, or, if this machine already "
        "has a ledger, set ledger.path to it"
    )


def prepare_ledger_file(path: Path) -> None:
    """Create the ledger's folder (0700) and file (0600) if missing, or raise LedgerError.

    SQLite also writes `-wal` and `-shm` files beside the ledger, so the folder itself must be
    writable by the service user, not only the file.
    """
    if path.name in ("", ".", "..") or path.is_dir():
        raise LedgerError(
            f"ledger.path {str(path)!r} is a folder, not a file: set it to a file path such as "
            "/var/lib/yotposync/ledger.sqlite3"
        )
    problem = not_regular_file_error(path)
    if problem is not None:
        raise problem
    blocker = file_in_folder_path(path)
    if blocker is not None:
        raise file_in_folder_error(path, blocker)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not path.exists():
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    except OSError as exc:
        raise LedgerError(
            f"cannot create the ledger {path}: {exc.strerror}: make its folder writable by the "
            "user that runs yotposync, or set ledger.path to a folder that is"
        ) from None
    if not os.access(path.parent, os.W_OK) or not os.access(path, os.R_OK | os.W_OK):
        raise LedgerError(
            f"the ledger {path} or its folder is not writable by this user: fix the "
            "permissions, or set ledger.path to a folder that is"
        )


def read_only_open_error(exc: sqlite3.DatabaseError, path: Path) -> LedgerError:
    """Explain why a ledger could not be opened for reading.

    SQLite reads a ledger in WAL mode through a `-shm` file beside it, which a reader must
    be able to create when no other process has it open. In a folder the reader cannot
    write, that fails as "attempt to write a readonly database" although the file itself is
    readable.
    """
    text = str(exc).lower()
    if "readonly" in text or "unable to open" in text:
        folder = path.absolute().parent
        return LedgerError(
            f"the ledger {path} is readable, but SQLite must also create {path.name}-shm "
            f"beside it, and this user cannot write in {folder}: {unwritable_folder_advice(folder)}"
        )
    return LedgerError(f"the ledger {path} cannot be read ({exc})")


def unwritable_folder_advice(folder: Path) -> str:
    """Say why this user cannot write in `folder`, and how to fix that or work around it.

    The cause is guessed from the mount flags, the owner and the mode, in that order. A folder
    whose mode allows writing may be immutable (`chattr +i`) or blocked by a security policy.
    """
    copy = "or copy the ledger (with its -wal file, if any) to a folder you can write in"
    try:
        info = folder.stat()
        read_only_mount = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return f"give this user write access to {folder}, {copy}"
    if read_only_mount:
        return f"{folder} is on a file system mounted read-only: mount it read-write, {copy}"
    user = os.geteuid()
    if info.st_uid != user and user != 0:
        owner = _user_name(info.st_uid)
        return f"{folder} belongs to {owner}: run the command as {owner}, {copy}"
    mode = stat.S_IMODE(info.st_mode)
    if not mode & stat.S_IWUSR:
        return f"{folder} is read-only (mode {mode:04o}): run chmod u+w {folder}, {copy}"
    return (
        f"the mode of {folder} ({mode:04o}) allows writing, so it may be immutable (see "
        f"lsattr -d {folder}) or blocked by a security policy: lift that, {copy}"
    )


def _user_name(uid: int) -> str:
    """Return the name of the user `uid`, or "user <uid>" when it has none."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"user {uid}"


def _check_readable_ledger(path: Path) -> None:
    """Raise LedgerError unless `path` is a ledger file with content, for a command that reads.

    Such a command must not create a ledger, nor fill an empty file with a new schema: an
    empty file at the ledger's path was cut short, or never written.
    """
    if path.is_dir():
        raise LedgerError(
            f"ledger.path {str(path)!r} is a folder, not a file: set it to the ledger file, "
            "such as /var/lib/yotposync/ledger.sqlite3"
        )
    problem = not_regular_file_error(path)
    if problem is not None:
        raise problem
    if not path.is_file():
        raise LedgerError(no_ledger_text(path, "`yotposync catch-up` or `yotposync run`"))
    if path.stat().st_size == 0:
        lock = LedgerLock(path).path
        if lock.exists():
            raise LedgerError(f"{emptied_ledger_text(path, lock)}. {EMPTIED_ADVICE}")
        raise LedgerError(
            f"the ledger {path} is an empty file: if yotposync ran with it before, restore it "
            f"from a backup; if not, run `yotposync catch-up` or `yotposync run` to start it"
        )


def _table_names(conn: sqlite3.Connection) -> list[str]:
    """Return the names of the database's own tables, in name order."""
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "ORDER BY name"
    )
    return [str(row[0]) for row in rows]


def _warn_if_shared(path: Path) -> None:
    """Log a warning when users other than the owner may read or write the ledger file."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return
    if mode & 0o077:
        log.warning(
            "ledger_file_shared",
            path=str(path),
            mode=f"{mode:04o}",
            fix=f"the ledger holds customer e-mail addresses: run chmod 600 {path}",
        )


class Ledger:
    """One open ledger file."""

    def __init__(self, db: sqlite_utils.Database, path: Path | None) -> None:
        self.db = db
        self.path = path

    @classmethod
    def open(cls, path: Path) -> Ledger:
        """Open or create the ledger at `path`, bringing its schema up to date.

        A new ledger's directory is created 0700 and the file 0600, since it contains customer
        e-mail addresses. A ledger that lacks a table, column or index of its schema version
        raises LedgerError naming it.
        """
        path = path.expanduser()
        prepare_ledger_file(path)
        try:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            db = sqlite_utils.Database(conn)
            conn.execute("PRAGMA busy_timeout = 10000")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            version = schema_version(db)
            missing = missing_schema_error(conn, version, path)
        except sqlite3.DatabaseError as exc:
            raise full_ledger_error(exc, path) or LedgerError(
                f"the ledger {path} is not a readable SQLite database ({exc}): {MOVED_ASIDE_ADVICE}"
            ) from exc
        if version > SCHEMA_VERSION:
            conn.close()
            raise LedgerError(
                f"the ledger {path} has schema version {version}, newer than this yotposync "
                f"supports ({SCHEMA_VERSION}): upgrade yotposync, or restore the ledger backup "
                "made before the last upgrade"
            )
        if version == 0:
            foreign = _table_names(conn)
            if foreign:
                conn.close()
                raise LedgerError(
                    f"{path} is a SQLite database of something else, not a yotposync ledger "
                    f"(it has the tables {', '.join(foreign[:5])}): set ledger.path to a new "
                    "file or to the ledger yotposync created"
                )
            # A mistyped ledger.path would otherwise start over without a word. This checks the
            # schema, not the file, because the ledger lock creates the file empty before this.
            log.warning(
                "ledger_created",
                ledger=str(path),
                detail="a new ledger, which knows of nothing sent to Yotpo before; if this "
                "machine already has a ledger, stop yotposync and set ledger.path to it",
            )
        # Stop before a migration or a later query fails on the missing part as "no such table".
        if missing is not None:
            conn.close()
            raise missing
        _warn_if_shared(path)
        reached = migrate(db)
        if version > 0 and reached:
            log.warning(
                "ledger_schema_upgraded",
                path=str(path),
                from_version=version,
                to_version=reached[-1],
                detail="earlier versions of yotposync can no longer open this ledger; keep the "
                "backup made before the upgrade to go back",
            )
        return cls(db, path)

    @classmethod
    def open_for_writing(cls, path: Path) -> Ledger:
        """Open the ledger for the process that has just taken its lock, as `open` does.

        Only the lock holder starts runs. So every run still marked `running` belongs to an
        earlier process that was killed or crashed, and is closed as `interrupted`. Call it
        once, before this process starts a run.
        """
        ledger = cls.open(path)
        try:
            ledger.close_runs_left_running()
        except BaseException:
            ledger.close()
            raise
        return ledger

    @classmethod
    def open_existing(cls, path: Path) -> Ledger:
        """Open the ledger for a job of a process that opened it before, as `open` does.

        The ledger must still be there with content: a file removed or emptied while the
        daemon runs raises LedgerError, which stops the daemon, instead of becoming a new
        ledger that would send every order and refund again.
        """
        path = path.expanduser()
        if not path.is_file() or path.stat().st_size == 0:
            state = "removed" if not path.exists() else "emptied"
            raise LedgerError(
                f"the ledger {path} was {state} while yotposync was using it, so its content "
                f"was lost. {EMPTIED_ADVICE}"
            )
        return cls.open(path)

    @classmethod
    def open_for_reading(cls, path: Path) -> Ledger:
        """Open an existing ledger for a command that only reads it.

        It opens as `open` does, which brings an older schema up to date, unless this user
        cannot write to the ledger or its folder (a backup copy, a read-only mount, another
        user's ledger). Then it opens read-only, which needs the current schema.
        """
        path = path.expanduser()
        _check_readable_ledger(path)
        writable = os.access(path.parent, os.W_OK) and os.access(path, os.R_OK | os.W_OK)
        if not writable:
            return cls.open_read_only(path)
        return cls.open(path)

    @classmethod
    def open_read_only(cls, path: Path) -> Ledger:
        """Open an existing ledger for reading, without migrating it or taking the lock.

        For readers beside a running daemon, such as metrics and reports. Raises LedgerError
        when the file is missing, unreadable, or not at this code's schema version.
        """
        path = path.expanduser()
        _check_readable_ledger(path)
        try:
            conn = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode=ro",
                uri=True,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute("PRAGMA busy_timeout = 10000")
            db = sqlite_utils.Database(conn)
            version = schema_version(db)
            missing = missing_schema_error(conn, version, path)
        except sqlite3.DatabaseError as exc:
            raise damaged_ledger_error(exc, path) or read_only_open_error(exc, path) from exc
        if version != SCHEMA_VERSION:
            conn.close()
            if version > SCHEMA_VERSION:
                advice = "upgrade yotposync"
            else:
                advice = "run `yotposync run` or `yotposync catch-up` once to upgrade it"
            raise LedgerError(
                f"the ledger {path} has schema version {version}, and this yotposync reads "
                f"version {SCHEMA_VERSION}: {advice}"
            )
        if missing is not None:
            conn.close()
            raise missing
        return cls(db, path)

    @classmethod
    def scratch_copy(cls, path: Path) -> Ledger:
        """Open an in-memory ledger to plan on: a copy of the ledger at `path`, or an empty one.

        Dry runs use it, so they neither create nor change the ledger file and need no lock.
        """
        path = path.expanduser()
        problem = not_regular_file_error(path)
        if problem is not None:
            raise problem
        conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        if path.is_file():
            try:
                source = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
                try:
                    source.backup(conn)
                finally:
                    source.close()
            except sqlite3.DatabaseError as exc:
                raise damaged_ledger_error(exc, path) or LedgerError(
                    f"the ledger {path} cannot be read ({exc})"
                ) from exc
        db = sqlite_utils.Database(conn)
        version = schema_version(db)
        if version > SCHEMA_VERSION:
            raise LedgerError(
                f"the ledger {path} has schema version {version}, newer than this yotposync "
                f"supports ({SCHEMA_VERSION}): upgrade yotposync"
            )
        missing = missing_schema_error(conn, version, path)
        if missing is not None:
            raise missing
        migrate(db)
        return cls(db, None)

    def close(self) -> None:
        self.db.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Commit everything inside the block at once, or nothing.

        The write lock is taken at the start (BEGIN IMMEDIATE), waiting up to the busy
        timeout for another job's connection. A deferred transaction that read first would
        fail at once with "database is locked" if another connection committed meanwhile.
        A nested block becomes a savepoint.
        """
        conn = self.db.conn
        if conn.in_transaction:
            with self.db.atomic():
                yield
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # Cursors

    def get_cursor(self, name: str) -> Cursor | None:
        row = self.db.execute(
            "SELECT updated_at, last_id FROM cursors WHERE name = ?", [name]
        ).fetchone()
        if row is None:
            return None
        return Cursor(
            stored_time(row[0], f"cursors.updated_at of cursor {name!r}"),
            stored_int(row[1], f"cursors.last_id of cursor {name!r}"),
        )

    def save_cursor(self, name: str, cursor: Cursor, now: datetime) -> None:
        """Store `cursor` unless the stored one is already further along."""
        current = self.get_cursor(name)
        if current is not None and (current.updated_at, current.last_id) >= (
            cursor.updated_at,
            cursor.last_id,
        ):
            return
        self.db.table("cursors").upsert(
            {
                "name": name,
                "updated_at": _iso(cursor.updated_at),
                "last_id": cursor.last_id,
                "saved_at": _iso(now),
            },
            pk="name",
        )

    def rewind_cursor(self, name: str, cursor: Cursor, now: datetime) -> None:
        """Store `cursor` even when the stored one is further along; see `_cursor_before`."""
        self.db.execute(
            "UPDATE cursors SET updated_at = ?, last_id = ?, saved_at = ? WHERE name = ?",
            [_iso(cursor.updated_at), cursor.last_id, _iso(now), name],
        )

    # Tickets

    def newest_ticket_update(self, *, before: datetime) -> datetime | None:
        """Return the latest `updated_at` of a ticket in the ledger that is not after `before`.

        Heartland's timestamps keep their UTC offset, so the text does not sort by time; each
        is parsed. Values that do not parse are skipped: this only picks a safe restart point.
        """
        newest: datetime | None = None
        for (text,) in self.db.execute("SELECT updated_at FROM tickets"):
            try:
                moment = datetime.fromisoformat(text)
            except (TypeError, ValueError):
                continue
            if (
                moment.tzinfo is not None
                and moment <= before
                and (newest is None or moment > newest)
            ):
                newest = moment
        return newest

    def parent_info(self, ticket_id: int) -> ParentInfo | None:
        row = self.db.execute(
            "SELECT kind, rule, customer_id, email, earn_cents, item_cents, item_net_cents "
            "FROM tickets WHERE id = ?",
            [ticket_id],
        ).fetchone()
        if row is None:
            return None
        return ParentInfo(
            ticket_id=ticket_id,
            kind=Kind(row[0]),
            rule=row[1],
            customer_id=row[2],
            email=row[3],
            earn_cents=row[4] or 0,
            item_cents=row[5] or 0,
            item_net_cents=row[6] or 0,
        )

    def items_returned_before(
        self, parent_id: int, ticket_id: int, completed_at: datetime | None
    ) -> int:
        """Return the item amount that a sale's returns completed before this one returned.

        Returns are ordered by completion time, then by id. Only those decided as returns or
        exchanges count, so a voided return returned nothing. The amount is 0 when one of them
        was decided before schema version 5 stored the returned item amount, and the return is
        then rounded on its own.
        """
        if completed_at is None:
            return 0
        rows = self.db.execute(
            "SELECT id, completed_at, returned_item_cents FROM tickets "
            "WHERE parent_id = ? AND id != ? AND kind IN (?, ?)",
            [parent_id, ticket_id, Kind.RETURN.value, Kind.EXCHANGE.value],
        ).fetchall()
        # Stored times keep the offset Heartland sent, so they are compared as times, not text.
        returned = 0
        for other_id, other_text, other_cents in rows:
            if other_text is None or other_cents is None:
                return 0
            other_at = stored_time(other_text, f"tickets.completed_at of ticket {other_id}")
            if (other_at, other_id) < (completed_at, ticket_id):
                returned += stored_int(
                    other_cents, f"tickets.returned_item_cents of ticket {other_id}"
                )
        return max(0, returned)

    def returns_of(self, ticket_id: int) -> list[tuple[Decision, datetime | None]]:
        """Return the latest decision and completion time of each return of a sale, oldest first.

        Tickets recorded only as unreadable are left out: they planned nothing.
        """
        rows = self.db.execute(
            "SELECT id, kind, reason, rule, customer_id, email, earn_cents, return_cents, "
            "completed_at FROM tickets WHERE parent_id = ? AND kind != ? ORDER BY id",
            [ticket_id, Kind.INVALID.value],
        )
        return [
            (
                Decision(
                    ticket_id=row[0],
                    kind=Kind(row[1]),
                    reason=row[2],
                    rule=row[3],
                    customer_id=row[4],
                    email=row[5],
                    earn_cents=row[6] or 0,
                    return_cents=row[7] or 0,
                    parent_id=ticket_id,
                ),
                stored_time(row[8], f"tickets.completed_at of ticket {row[0]}") if row[8] else None,
            )
            for row in rows
        ]

    def ticket_kinds(self, ids: Sequence[int]) -> dict[int, str]:
        """Return the latest decided kind of each of these tickets that the ledger has."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.db.execute(f"SELECT id, kind FROM tickets WHERE id IN ({marks})", list(ids))  # noqa: S608
        return {int(row[0]): str(row[1]) for row in rows}

    def known_ticket_ids(self, ids: Sequence[int]) -> set[int]:
        if not ids:
            return set()
        marks = ",".join("?" * len(ids))
        rows = self.db.execute(f"SELECT id FROM tickets WHERE id IN ({marks})", list(ids))  # noqa: S608
        return {int(r[0]) for r in rows}

    def count_tickets_updated_between(self, start: datetime, end: datetime) -> int:
        """Count the tickets whose latest version seen was updated in [start, end]."""
        # Stored times are UTC ISO 8601 text, so text order is time order.
        row = self.db.execute(
            "SELECT count(*) FROM tickets WHERE updated_at >= ? AND updated_at <= ?",
            [_iso(start.astimezone(UTC)), _iso(end.astimezone(UTC))],
        ).fetchone()
        return int(row[0])

    def record_decision(
        self,
        decision: Decision,
        *,
        public_id: str,
        ticket_type: str,
        updated_at: datetime | None,
        completed_at: datetime | None,
        business_date: str | None,
        location_id: int | None,
        amounts: TicketAmountsRow,
        now: datetime,
    ) -> bool:
        """Store the latest decision for a ticket; return True when it differs from the last.

        A new row in `ticket_versions` is written only when the ticket's `updated_at` or the
        decision changed, so a ticket seen again in the overlap window adds nothing.
        """
        previous = self.db.execute(
            "SELECT updated_at, kind, reason, rule, customer_id, earn_cents, return_cents, "
            "versions, first_seen_at, returned_item_cents FROM tickets WHERE id = ?",
            [decision.ticket_id],
        ).fetchone()
        updated = _iso(updated_at) if updated_at else None
        outcome = (
            decision.kind.value,
            decision.reason,
            decision.rule,
            decision.customer_id,
            decision.earn_cents,
            decision.return_cents,
        )
        if previous is not None and previous[0] == updated and tuple(previous[1:7]) == outcome:
            if previous[9] is None and amounts.returned_item_cents:
                # Decided before schema version 5 kept this amount: add it, as no new version.
                self.db.execute(
                    "UPDATE tickets SET returned_item_cents = ? WHERE id = ?",
                    [amounts.returned_item_cents, decision.ticket_id],
                )
            return False
        versions = 1
        if previous is not None:
            versions += stored_int(previous[7], f"tickets.versions of ticket {decision.ticket_id}")
        _upsert(
            self.db.conn,
            "tickets",
            {
                "id": decision.ticket_id,
                "public_id": public_id,
                "type": ticket_type,
                "updated_at": updated,
                "completed_at": _iso(completed_at) if completed_at else None,
                "business_date": business_date,
                "location_id": location_id,
                "kind": decision.kind.value,
                "reason": decision.reason,
                "rule": decision.rule,
                "customer_id": decision.customer_id,
                "email": decision.email,
                "parent_id": decision.parent_id,
                "earn_cents": decision.earn_cents,
                "return_cents": decision.return_cents,
                "item_cents": amounts.item_cents,
                "item_net_cents": amounts.item_net_cents,
                "returned_item_cents": amounts.returned_item_cents,
                "versions": versions,
                "first_seen_at": previous[8] if previous else _iso(now),
                "decided_at": _iso(now),
            },
        )
        _insert(
            self.db.conn,
            "ticket_versions",
            {
                "ticket_id": decision.ticket_id,
                "updated_at": updated,
                "kind": decision.kind.value,
                "reason": decision.reason,
                "rule": decision.rule,
                "customer_id": decision.customer_id,
                "earn_cents": decision.earn_cents,
                "return_cents": decision.return_cents,
                "seen_at": _iso(now),
            },
        )
        return previous is None or tuple(previous[1:7]) != outcome

    def record_invalid(self, ticket_id: int, reason: str, now: datetime) -> None:
        """Record a ticket version that could not be parsed.

        A ticket that already has a usable decision keeps it (its pushes stand), and the bad
        version is added to its history only; an unknown ticket is stored as `invalid`.
        """
        row = self.db.execute("SELECT kind FROM tickets WHERE id = ?", [ticket_id]).fetchone()
        if row is None or row[0] == Kind.INVALID.value:
            self.record_decision(
                Decision(ticket_id=ticket_id, kind=Kind.INVALID, reason=reason),
                public_id="",
                ticket_type="",
                updated_at=None,
                completed_at=None,
                business_date=None,
                location_id=None,
                amounts=TicketAmountsRow(0, 0),
                now=now,
            )
            return
        last = self.db.execute(
            "SELECT kind, reason FROM ticket_versions WHERE ticket_id = ? ORDER BY id DESC LIMIT 1",
            [ticket_id],
        ).fetchone()
        if last is not None and tuple(last) == (Kind.INVALID.value, reason):
            return
        self.db.table("ticket_versions").insert(
            {
                "ticket_id": ticket_id,
                "kind": Kind.INVALID.value,
                "reason": reason,
                "seen_at": _iso(now),
            }
        )

    def decision_counts(self) -> dict[str, int]:
        rows = self.db.execute("SELECT kind, count(*) FROM tickets GROUP BY kind ORDER BY kind")
        return {str(kind): int(n) for kind, n in rows}

    # Pushes

    def pushes_for_ticket(self, ticket_id: int) -> list[PushRecord]:
        """Return a ticket's pushes, in the order they were planned.

        Planning subtracts their amounts from what the ticket earns now, so an amount edited
        in the ledger would send the difference. Each amount is checked against the payload
        stored with it, and a mismatch raises LedgerError.
        """
        rows = self.db.execute(
            "SELECT push_id, role, ticket_id, email, customer_id, target_order_id, amount_cents, "
            "CASE WHEN json_valid(payload) THEN json_extract(payload, '$.total_amount_cents') END "
            "FROM pushes WHERE ticket_id = ? ORDER BY seq",
            [ticket_id],
        )
        records = []
        for push_id, role, owner, email, customer_id, target, stored, sent_cents in rows:
            where = f"pushes.amount_cents of push {push_id}"
            amount = stored_int(stored, where)
            if sent_cents is not None and sent_cents != amount:
                raise edited_value_error(
                    where, amount, f"{sent_cents!r}, the amount in the payload stored with it"
                )
            records.append(PushRecord(push_id, role, owner, email, customer_id, target, amount))
        return records

    def order_balances(self, ticket_id: int) -> list[OrderBalance]:
        """Return the orders crediting a ticket's sold part, with the amount refunded of each.

        Those are the ticket's own orders and the restores of its returns. A voided return
        gives back what it refunded as an order of its own, and that order credits the sale.
        """
        rows = self.db.execute(
            "SELECT o.push_id, o.email, o.customer_id, o.amount_cents, "
            "COALESCE((SELECT sum(r.amount_cents) FROM pushes r "
            "WHERE r.target_order_id = o.push_id AND r.kind = 'refund'), 0), o.role "
            "FROM pushes o WHERE (o.ticket_id = ?1 AND o.role = 'order') "
            "OR (o.role = 'restore' AND o.ticket_id IN "
            "(SELECT id FROM tickets WHERE parent_id = ?1)) ORDER BY o.seq",
            [ticket_id],
        )
        return [OrderBalance(*row) for row in rows]

    def add_push(self, planned: PlannedPush, payload: dict[str, Any], now: datetime) -> int:
        """Queue a push as pending and return its sequence number."""
        return _insert(
            self.db.conn,
            "pushes",
            {
                "push_id": planned.push_id,
                "kind": planned.kind,
                "role": planned.role,
                "ticket_id": planned.ticket_id,
                "customer_id": planned.customer_id,
                "email": planned.email,
                "target_order_id": planned.target_order_id,
                "amount_cents": planned.amount_cents,
                "payload": json.dumps(payload, sort_keys=True),
                "state": PENDING,
                "attempts": 0,
                "next_attempt_at": _iso(now),
                "created_at": _iso(now),
                "updated_at": _iso(now),
            },
        )

    def last_push_seq(self) -> int:
        """Return the sequence number of the newest push, or 0 for an empty outbox."""
        return int(self.db.execute("SELECT COALESCE(max(seq), 0) FROM pushes").fetchone()[0])

    def count_pushes_after(self, seq: int, kind: str) -> int:
        """Count the pushes of `kind` queued after the push with sequence number `seq`."""
        row = self.db.execute(
            "SELECT count(*) FROM pushes WHERE seq > ? AND kind = ?", [seq, kind]
        ).fetchone()
        return int(row[0])

    def pushes_after(self, seq: int, kind: str) -> list[Push]:
        """Return the pushes of `kind` queued after the push with sequence number `seq`."""
        rows = self.db.execute(
            "SELECT seq, push_id, kind, role, ticket_id, email, target_order_id, amount_cents, "
            "payload, state, attempts FROM pushes WHERE seq > ? AND kind = ? ORDER BY seq",
            [seq, kind],
        )
        return [Push(*row) for row in rows]

    def due_pushes(self, now: datetime, limit: int) -> list[Push]:
        """Pushes to try now, in delivery order: pending ones that are due, and sent ones.

        A push left in `sent` was interrupted with its outcome unknown; it is tried again, and
        the stable ids keep Yotpo from counting it twice.
        """
        rows = self.db.execute(DUE_PUSHES_SQL, [_iso(now), limit])
        return [
            Push(
                seq=row[0],
                push_id=row[1],
                kind=row[2],
                role=row[3],
                ticket_id=row[4],
                email=row[5],
                target_order_id=row[6],
                amount_cents=row[7],
                body=row[8],
                state=row[9],
                attempts=row[10],
            )
            for row in rows
        ]

    def first_unfinished_seq_by_customer(self) -> dict[str | None, int]:
        """For each customer, the oldest push not yet confirmed or rejected."""
        rows = self.db.execute(
            "SELECT email, min(seq) FROM pushes WHERE state IN ('pending', 'sent', 'failed') "
            "GROUP BY email"
        )
        return {row[0]: int(row[1]) for row in rows}

    def first_waiting_seq_by_customer(self, now: datetime) -> dict[str | None, int]:
        """For each customer, the oldest unfinished push that is not due at `now`.

        A customer's due pushes older than it may be sent now; it and every later push of that
        customer wait. Only waiting pushes are read (pending ones due later, and failed ones),
        so a catch-up whose whole outbox is due costs one index lookup.
        """
        rows = self.db.execute(
            "SELECT email, min(seq) FROM pushes "
            "WHERE (state = 'pending' AND next_attempt_at > ?) OR state = 'failed' "
            "GROUP BY email",
            [_iso(now)],
        )
        return {row[0]: int(row[1]) for row in rows}

    def check_waiting_times(self, now: datetime) -> None:
        """Raise LedgerError when a pending push waits on a next attempt time that is not one.

        Text sorts after every timestamp, so a time edited into text would hold its push, and
        the customer's later pushes, for good. Only pushes due later are read.
        """
        edited = self.db.execute(
            "SELECT push_id, next_attempt_at FROM pushes WHERE state = 'pending' "
            "AND next_attempt_at > ? AND next_attempt_at NOT GLOB '[0-9][0-9][0-9][0-9]-*' "
            "LIMIT 1",
            [_iso(now)],
        ).fetchone()
        if edited is not None:
            stored_time(edited[1], f"pushes.next_attempt_at of push {edited[0]}")

    def mark_sent(self, seq: int, now: datetime) -> None:
        self.mark_sent_many([seq], now)

    def mark_sent_many(self, seqs: Sequence[int], now: datetime) -> None:
        """Mark pushes `sent`, counting an attempt each, in one statement.

        One call for a whole group matters in the delivery job: each call into SQLite lets
        go of the GIL, and getting it back from busy worker threads can take milliseconds.
        """
        at = _iso(now)
        self.db.conn.executemany(
            "UPDATE pushes SET state = 'sent', attempts = attempts + 1, updated_at = ? "
            "WHERE seq = ?",
            [(at, seq) for seq in seqs],
        )

    def mark_confirmed(self, seq: int, status: int, now: datetime) -> None:
        self.mark_confirmed_many([seq], status, now)

    def mark_confirmed_many(self, seqs: Sequence[int], status: int, now: datetime) -> None:
        """Mark pushes `confirmed` with the same status and time, in one statement."""
        at = _iso(now)
        self.db.conn.executemany(
            "UPDATE pushes SET state = 'confirmed', last_status = ?3, last_error = NULL, "
            "updated_at = ?1, confirmed_at = ?1 WHERE seq = ?2",
            [(at, seq, status) for seq in seqs],
        )

    def mark_rejected(self, seq: int, status: int | None, error: str, now: datetime) -> None:
        self.db.execute(
            "UPDATE pushes SET state = 'rejected', last_status = ?, last_error = ?, "
            "updated_at = ? WHERE seq = ?",
            [status, error, _iso(now), seq],
        )

    def mark_retry(
        self,
        seq: int,
        status: int | None,
        error: str,
        next_attempt_at: datetime,
        now: datetime,
        *,
        failed: bool,
    ) -> None:
        self.db.execute(
            "UPDATE pushes SET state = ?, last_status = ?, last_error = ?, next_attempt_at = ?, "
            "updated_at = ? WHERE seq = ?",
            [FAILED if failed else PENDING, status, error, _iso(next_attempt_at), _iso(now), seq],
        )

    def release_sent(self, seq: int, now: datetime) -> None:
        """Put a push back to pending without counting the attempt (the run was stopped)."""
        self.db.execute(
            "UPDATE pushes SET state = 'pending', attempts = max(attempts - 1, 0), "
            "updated_at = ? WHERE seq = ? AND state = 'sent'",
            [_iso(now), seq],
        )

    def retry_failed(self, now: datetime) -> int:
        """Move every failed push back to pending, due now; return how many moved."""
        cursor = self.db.execute(
            "UPDATE pushes SET state = 'pending', attempts = 0, next_attempt_at = ?, "
            "updated_at = ? WHERE state = 'failed'",
            [_iso(now), _iso(now)],
        )
        return int(cursor.rowcount)

    def push_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATES, 0)
        for state, n in self.db.execute("SELECT state, count(*) FROM pushes GROUP BY state"):
            counts[str(state)] = int(n)
        return counts

    def oldest_unfinished_at(self) -> datetime | None:
        row = self.db.execute(
            "SELECT min(created_at), push_id FROM pushes "
            "WHERE state IN ('pending', 'sent', 'failed')"
        ).fetchone()
        if not row or not row[0]:
            return None
        return stored_time(row[0], f"pushes.created_at of push {row[1]}")

    def next_due_at(self) -> datetime | None:
        """Return when the delivery job can next send a push, or None when none is waiting.

        A customer's pushes go in order, so only the first waiting push of each customer
        counts, and a customer whose first waiting push failed sends nothing until
        `retry-failed`.
        """
        # With min(), SQLite reads push_id from the row that has the minimum.
        row = self.db.execute(
            "SELECT min(p.next_attempt_at), p.push_id FROM pushes p WHERE p.state = 'pending' "
            "AND NOT EXISTS (SELECT 1 FROM pushes e INDEXED BY idx_pushes_waiting_email "
            "WHERE e.state IN ('pending', 'failed') AND e.email IS p.email AND e.seq < p.seq)"
        ).fetchone()
        if not row or not row[0]:
            return None
        return stored_time(row[0], f"pushes.next_attempt_at of push {row[1]}")

    def problem_pushes(self, limit: int) -> list[dict[str, Any]]:
        """Return the latest rejected or failed pushes, newest first.

        A push in a state yotposync never sets (an edited ledger) is listed too, since the
        delivery job never sends it. A rejected register deduction is left out once there is nothing
        to collect: its sale was voided, or the sale moved on to another deduction.
        """
        return list(
            self.db.query(
                "SELECT p.push_id, p.kind, p.ticket_id, p.state, p.last_status, "
                "CASE WHEN p.state IN ('rejected', 'failed') THEN p.last_error "
                "ELSE ? END AS last_error, p.updated_at "
                "FROM pushes p WHERE p.state NOT IN ('pending', 'sent', 'confirmed') "
                "AND NOT (p.role = 'redeem' AND p.state = 'rejected' "
                "AND p.push_id NOT LIKE '%-redeem-back-%' AND ("
                "EXISTS (SELECT 1 FROM tickets t WHERE t.id = p.ticket_id AND t.kind = 'void') "
                "OR NOT EXISTS (SELECT 1 FROM redemptions r "
                "WHERE r.ticket_id = p.ticket_id AND r.push_id = p.push_id))) "
                "ORDER BY p.updated_at DESC, p.seq DESC LIMIT ?",
                [UNKNOWN_STATE_ERROR, limit],
            )
        )

    def held_behind_failed_count(self) -> int:
        """Count the pending pushes that wait behind a failed push of the same customer."""
        row = self.db.execute(
            "SELECT count(*) FROM pushes p WHERE p.state = 'pending' AND EXISTS "
            "(SELECT 1 FROM pushes e INDEXED BY idx_pushes_waiting_email WHERE "
            "e.state IN ('pending', 'failed') AND e.state = 'failed' AND e.email IS p.email "
            "AND e.seq < p.seq)"
        )
        return int(row.fetchone()[0])

    def invalid_ticket_count(self) -> int:
        """Count the ticket versions that could not be read."""
        row = self.db.execute("SELECT count(*) FROM ticket_versions WHERE kind = 'invalid'")
        return int(row.fetchone()[0])

    def invalid_tickets(self, limit: int) -> list[dict[str, Any]]:
        return list(
            self.db.query(
                "SELECT ticket_id AS id, reason, seen_at AS decided_at FROM ticket_versions "
                "WHERE kind = 'invalid' ORDER BY id DESC LIMIT ?",
                [limit],
            )
        )

    # Runs

    def close_runs_left_running(self) -> None:
        """Close every run still marked `running` as `interrupted`; see `open_for_writing`."""
        self.db.execute(
            "UPDATE runs SET outcome = ?, error = ? WHERE outcome = 'running'",
            [RUN_INTERRUPTED, INTERRUPTED_ERROR],
        )

    def start_run(self, job: str, now: datetime) -> int:
        """Record the start of a run of `job`; return its id for `finish_run`.

        Only the process that holds the ledger lock starts runs, and it runs one of each
        job at a time. So an earlier run of the same job that is still marked `running`
        belongs to a process that was killed or stopped mid-run, and it is closed as
        `interrupted`.
        """
        self.db.execute(
            "UPDATE runs SET outcome = ?, error = ? WHERE job = ? AND outcome = 'running'",
            [RUN_INTERRUPTED, INTERRUPTED_ERROR, job],
        )
        table = self.db.table("runs")
        table.insert({"job": job, "started_at": _iso(now), "outcome": RUN_RUNNING})
        return int(table.last_pk or 0)

    def finish_run(
        self,
        run_id: int,
        outcome: str,
        summary: dict[str, Any],
        now: datetime,
        error: str | None = None,
    ) -> None:
        self.db.table("runs").update(
            run_id,
            {
                "finished_at": _iso(now),
                "outcome": outcome,
                "summary": json.dumps(summary, sort_keys=True),
                "error": error,
            },
        )

    def last_run_summary_with(self, key: str) -> dict[str, Any] | None:
        """Return the summary of the latest transactions or catch-up run that recorded `key`.

        Runs that failed recorded no summary. A summary that is not a JSON object is skipped.
        """
        latest: tuple[int, dict[str, Any]] | None = None
        for job in ("transactions", "catch-up"):
            # One job at a time, so that the (job, id) index gives its runs newest first.
            for run_id, text in self.db.execute(
                "SELECT id, summary FROM runs WHERE job = ? AND instr(summary, ?) > 0 "
                "ORDER BY id DESC LIMIT 5",
                [job, f'"{key}"'],
            ):
                try:
                    summary = json.loads(text)
                except ValueError:
                    continue
                if isinstance(summary, dict) and key in summary:
                    if latest is None or run_id > latest[0]:
                        latest = (run_id, summary)
                    break
        return latest[1] if latest is not None else None

    def last_runs(self) -> list[dict[str, Any]]:
        """Return the latest run of each job."""
        return list(
            self.db.query(
                "SELECT id, job, started_at, finished_at, outcome, summary, error FROM runs "
                "WHERE id IN (SELECT max(id) FROM runs GROUP BY job) ORDER BY job"
            )
        )

    def recent_run_errors(self, limit: int) -> list[dict[str, Any]]:
        return list(
            self.db.query(
                "SELECT job, finished_at, error FROM runs WHERE error IS NOT NULL "
                "ORDER BY id DESC LIMIT ?",
                [limit],
            )
        )
