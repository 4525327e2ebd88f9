"""An exclusive lock so that only one process writes a ledger at a time."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from yotposync.errors import LedgerError, LockedError
from yotposync.ledger.integrity import (
    MOVED_ASIDE_ADVICE,
    file_in_folder_error,
    file_in_folder_path,
    not_regular_file_error,
)

# A first run killed before it wrote the new ledger leaves the same files behind.
EMPTIED_ADVICE = (
    f"To recover, {MOVED_ASIDE_ADVICE}. If yotposync never finished a run with this ledger, "
    "delete the empty file and run again"
)


def emptied_ledger_text(ledger_path: Path, lock_path: Path) -> str:
    """Describe an empty ledger file beside the lock file of an earlier run."""
    return (
        f"the ledger {ledger_path} is an empty file, but yotposync ran with it before "
        f"({lock_path} is left from that run), so its content was lost"
    )


class LedgerLock:
    """A `flock` on `<ledger>.lock`, released when the process ends, even on SIGKILL.

    The lock file sits beside the ledger's real path, after symlinks are resolved. The ledger
    file itself is locked too, so a process that reaches it through a hard link under another
    name, with a lock file of its own, is turned away as well. That second lock is a `flock`,
    which Linux keeps apart from the POSIX locks SQLite takes on the same file, except on NFS,
    where SQLite's WAL mode does not work anyway.

    Closing a file releases every POSIX lock the process holds on it, SQLite's included, so
    the ledger must be closed before the lock is released.
    """

    def __init__(self, ledger_path: Path) -> None:
        if ledger_path.name in ("", ".", "..") or ledger_path.is_dir():
            raise LedgerError(
                f"ledger.path {str(ledger_path)!r} is a folder, not a file: set it to a file "
                "path such as /var/lib/yotposync/ledger.sqlite3"
            )
        # Named after the real path: a symlink to the ledger, or a path through a symlinked
        # folder, must find the same lock file as the ledger's own path.
        real_path = Path(os.path.realpath(ledger_path.expanduser()))
        self.ledger_path = real_path
        self.path = real_path.with_name(real_path.name + ".lock")
        self._fd: int | None = None
        self._ledger_fd: int | None = None
        self._created_ledger = False

    def acquire(self) -> None:
        # The lock is taken before the ledger is opened, so it may be first to need the folder.
        # The lock file stays after every run, so an existing empty ledger beside it was most
        # likely emptied (EMPTIED_ADVICE also covers a first run killed before writing it).
        used_before = self.path.exists()
        blocker = file_in_folder_path(self.path)
        if blocker is not None:
            raise file_in_folder_error(self.ledger_path, blocker)
        problem = not_regular_file_error(self.ledger_path)
        if problem is not None:
            raise problem
        if self.path.exists() and not self.path.is_file():
            raise LedgerError(self._not_a_file_text())
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise LedgerError(
                f"cannot create the lock file {self.path}: {exc.strerror}: make the ledger's "
                "folder writable by the user that runs yotposync, or set ledger.path"
            ) from None
        if not _try_flock(fd):
            holder = self._read_holder()
            ledger = self.path.with_suffix("")
            raise LockedError(
                f"another yotposync process{holder} is using the ledger {ledger}: stop it "
                "first (for the service: systemctl stop yotposync), or point this one at "
                "another ledger.path"
            )
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        try:
            self._ledger_fd = self._lock_ledger_file()
            if used_before and not self._created_ledger and self._ledger_is_empty():
                text = emptied_ledger_text(self.ledger_path, self.path)
                raise LedgerError(f"{text}. {EMPTIED_ADVICE}")
        except BaseException:
            self.release()
            raise

    def _lock_ledger_file(self) -> int:
        """Lock the ledger file itself, creating it (0600) when it does not exist yet.

        SQLite takes an empty file for a new database.
        """
        self._created_ledger = not self.ledger_path.exists()
        try:
            fd = os.open(self.ledger_path, os.O_RDONLY | os.O_CREAT, 0o600)
        except OSError as exc:
            raise LedgerError(
                f"cannot open the ledger {self.ledger_path}: {exc.strerror}: make it and its "
                "folder readable and writable by the user that runs yotposync"
            ) from None
        if not _try_flock(fd):
            raise LockedError(
                f"another yotposync process is using the ledger file {self.ledger_path} under "
                "another name (a hard link to it): stop that process first, or give each "
                "process a ledger file of its own"
            )
        return fd

    def _ledger_is_empty(self) -> bool:
        assert self._ledger_fd is not None
        return os.fstat(self._ledger_fd).st_size == 0

    def release(self) -> None:
        """Release both locks, removing the ledger file if this lock created it and it is empty.

        Only a process stopped before it wrote the new ledger leaves the file empty. Removing
        it lets the next run start the ledger, while an existing ledger found empty stops it.
        """
        if self._ledger_fd is not None and self._created_ledger and self._ledger_is_empty():
            self.ledger_path.unlink(missing_ok=True)
        if self._ledger_fd is not None:
            _unlock(self._ledger_fd)
            self._ledger_fd = None
        if self._fd is not None:
            _unlock(self._fd)
            self._fd = None

    def is_held(self) -> bool:
        """Return whether another process holds the lock, creating no file.

        A free lock is taken and released at once, so a daemon starting in that instant
        could find it held. Raises OSError when the lock file exists but cannot be opened.
        """
        if self.path.exists() and not self.path.is_file():
            # Opening a FIFO would wait for a writer.
            raise OSError(self._not_a_file_text())
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            # No lock file means no process has ever held the lock of this ledger.
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    def _not_a_file_text(self) -> str:
        kind = "a folder" if self.path.is_dir() else "not a regular file"
        return (
            f"the lock file {self.path} is {kind}: remove it (yotposync creates its lock file "
            "there), or set ledger.path"
        )

    def holder_pid(self) -> int | None:
        """Return the process id written by the last holder, or None when it is unknown."""
        try:
            pid = self.path.read_text().strip()
        except OSError:
            return None
        return int(pid) if pid.isdigit() else None

    def _read_holder(self) -> str:
        pid = self.holder_pid()
        return f" (pid {pid})" if pid is not None else ""

    def __enter__(self) -> LedgerLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _try_flock(fd: int) -> bool:
    """Take an exclusive flock on `fd` without waiting.

    Returns False, and closes `fd`, when another open file already holds the lock.
    """
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False
    return True


def _unlock(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
