"""The commands that only read the ledger: on a ledger this user cannot write to, or none.

A backup copy, a read-only mount or another user's ledger can still be inspected. As root,
file modes do not stop writes, so the file is made immutable with `chattr +i` instead; the
tests skip where that is not allowed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.reliability.support import invoke
from tests.reliability.test_config_warnings import write_config
from yotposync.ledger import Cursor, Ledger
from yotposync.ledger.store import unwritable_folder_advice

READING_COMMANDS = [
    ("status",),
    ("customers", "review"),
    ("offers", "list"),
    ("report", "--since", "2026-01-01"),
    ("explain", "1", "--no-balance"),
]


def _make_unwritable(path: Path) -> None:
    if os.geteuid() != 0:
        path.chmod(0o400)
        return
    chattr = shutil.which("chattr")
    if chattr is None:
        pytest.skip("chattr is not installed, and root ignores file modes")
    done = subprocess.run([chattr, "+i", str(path)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"chattr +i is not allowed here: {done.stderr.decode().strip()}")


def _make_writable(path: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True, check=False)
    else:
        path.chmod(0o600)


@pytest.fixture
def unwritable_config(tmp_path: Path) -> Iterator[Path]:
    config = write_config(tmp_path)
    ledger_path = tmp_path / "ledger.sqlite3"
    ledger = Ledger.open(ledger_path)
    try:
        moment = datetime(2026, 3, 1, 15, 0, tzinfo=UTC)
        with ledger.transaction():
            ledger.save_cursor("tickets", Cursor(moment, 1), moment)
        # Leave nothing in the write-ahead log, as a backup copy would.
        ledger.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        ledger.close()
    _make_unwritable(ledger_path)
    try:
        yield config
    finally:
        _make_writable(ledger_path)


def test_reading_commands_read_unwritable_ledger(unwritable_config: Path) -> None:
    for command in READING_COMMANDS:
        result = invoke("--config", str(unwritable_config), *command)

        # explain exits 1 because ticket 1 is not in the ledger; the rest succeed.
        expected = 1 if command[0] == "explain" else 0
        assert result.exit_code == expected, (command, result.output)
        assert "not writable" not in result.output, command

    status = invoke("--config", str(unwritable_config), "status")
    assert "Cursor: 2026-03-01T15:00:00+00:00 (ticket 1)" in status.stdout


def test_writing_command_still_names_unwritable_ledger(unwritable_config: Path) -> None:
    result = invoke("--config", str(unwritable_config), "retry-failed")

    assert result.exit_code != 0
    assert "not writable by this user" in result.output


def test_reading_commands_without_ledger(tmp_path: Path) -> None:
    config = write_config(tmp_path)

    for command in READING_COMMANDS:
        result = invoke("--config", str(config), *command)

        assert result.exit_code == 1, (command, result.output)
        assert result.stdout == "", command
        assert result.stderr.startswith(f"error: no ledger at {tmp_path / 'ledger.sqlite3'}"), (
            command
        )
        # A mistyped path looks the same, so the message names that fix too.
        assert "set ledger.path to it" in result.stderr, command


def test_reading_commands_leave_empty_ledger_alone(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    ledger_path = tmp_path / "ledger.sqlite3"
    ledger_path.touch()

    for command in READING_COMMANDS:
        result = invoke("--config", str(config), *command)

        assert result.exit_code == 1, (command, result.output)
        assert f"the ledger {ledger_path} is an empty file" in result.stderr, command
        assert ledger_path.stat().st_size == 0, command


def test_reading_commands_name_folder_ledger(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    (tmp_path / "ledger.sqlite3").mkdir()

    for command in READING_COMMANDS:
        result = invoke("--config", str(config), *command)

        assert result.exit_code == 1, (command, result.output)
        assert "is a folder, not a file" in result.stderr, command


@pytest.mark.parametrize("make", ["folder", "fifo"])
def test_status_warns_of_unusable_lock_path(tmp_path: Path, make: str) -> None:
    # `run` and `catch-up` reject such a lock path. status still reads the ledger and warns.
    config = write_config(tmp_path)
    Ledger.open(tmp_path / "ledger.sqlite3").close()
    lock_path = tmp_path / "ledger.sqlite3.lock"
    if make == "folder":
        lock_path.mkdir()
    else:
        os.mkfifo(lock_path)

    result = invoke("--config", str(config), "status")

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"Ledger: {tmp_path / 'ledger.sqlite3'}\n")
    kind = "a folder" if make == "folder" else "not a regular file"
    assert (
        f"warning: the lock file {lock_path} is {kind}: remove it (yotposync creates its lock "
        "file there), or set ledger.path; until then `run` and `catch-up` refuse to start"
    ) in result.stderr


@pytest.fixture
def read_only_folder(tmp_path: Path) -> Iterator[Path]:
    """A ledger in a folder this user cannot write in: mode 0555, or immutable as root."""
    config = write_config(tmp_path)
    folder = tmp_path / "state"
    folder.mkdir()
    config.write_text(
        config.read_text().replace(str(tmp_path / "ledger.sqlite3"), str(folder / "ledger.sqlite3"))
    )
    # Closing the only connection removes the -wal and -shm files, so a reader must create one.
    Ledger.open(folder / "ledger.sqlite3").close()
    if os.geteuid() == 0:
        _make_unwritable(folder)
    else:
        folder.chmod(0o555)
    try:
        yield config
    finally:
        if os.geteuid() == 0:
            _make_writable(folder)
        else:
            folder.chmod(0o700)


def test_status_names_read_only_folder(read_only_folder: Path, tmp_path: Path) -> None:
    folder = tmp_path / "state"

    result = invoke("--config", str(read_only_folder), "status")

    assert result.exit_code == 1
    assert f"this user cannot write in {folder}: " in result.stderr
    assert "as the user that owns" not in result.stderr
    if os.geteuid() == 0:
        assert f"so it may be immutable (see lsattr -d {folder})" in result.stderr
    else:
        assert f"{folder} is read-only (mode 0555): run chmod u+w {folder}" in result.stderr


def test_unwritable_folder_advice_by_mode(tmp_path: Path) -> None:
    tmp_path.chmod(0o555)
    try:
        advice = unwritable_folder_advice(tmp_path)
    finally:
        tmp_path.chmod(0o700)

    assert advice.startswith(f"{tmp_path} is read-only (mode 0555): run chmod u+w {tmp_path}")
    assert advice.endswith(
        "or copy the ledger (with its -wal file, if any) to a folder you can write in"
    )
