"""The daemon's offer jobs and webhook receiver, installed on a scheduler that never starts."""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from apscheduler.schedulers.background import BackgroundScheduler

from yotposync.config import load_settings
from yotposync.errors import FatalError
from yotposync.ledger import Ledger
from yotposync.offers_runtime import CODES_JOB, OFFERS_JOB, OffersRuntime
from yotposync.scheduler import Daemon

BASE = """
[heartland]
base_url = "http://127.0.0.1:9/api"
token = "t"
[yotpo]
base_url = "http://127.0.0.1:9/api/v2"
guid = "g"
api_key = "k"
[ledger]
path = "{ledger}"
[offers]
"""


def _runtime(tmp_path: Path, offers: str) -> tuple[OffersRuntime, BackgroundScheduler]:
    ledger = tmp_path / "ledger.sqlite3"
    Ledger.open(ledger).close()
    config = tmp_path / "yotposync.toml"
    config.write_text(BASE.format(ledger=ledger) + offers)
    settings = load_settings(config, environ={})
    runtime = OffersRuntime(settings, clock=lambda: datetime.now(UTC), should_stop=lambda: False)
    scheduler = BackgroundScheduler(timezone="UTC")

    def guarded(_name: str, job: Callable[[], None]) -> Callable[[], None]:
        return job

    runtime.install(scheduler, guarded, lambda _name, _body: None)
    return runtime, scheduler


def test_install_adds_both_jobs(tmp_path: Path) -> None:
    runtime, scheduler = _runtime(tmp_path, "")
    runtime.close()
    assert sorted(job.id for job in scheduler.get_jobs()) == sorted([OFFERS_JOB, CODES_JOB])
    assert runtime.server is None


def test_disabled_offers_add_no_jobs(tmp_path: Path) -> None:
    _, scheduler = _runtime(tmp_path, "enabled = false\n")
    assert scheduler.get_jobs() == []


def test_webhook_receiver_listens_when_configured(tmp_path: Path) -> None:
    runtime, _ = _runtime(
        tmp_path,
        'webhook_listen = "127.0.0.1:0"\nwebhook_secret = "runtime-secret-0123456789abcdef"\n',
    )
    assert runtime.server is not None
    try:
        url = f"http://127.0.0.1:{runtime.server.port}/yotpo/redemption-created"
        response = requests.post(url, json={}, headers={"X-Api-Secret": "wrong"}, timeout=10)
    finally:
        runtime.close()
    assert response.status_code == 401


def test_busy_webhook_port_is_fatal(tmp_path: Path) -> None:
    # The command line prints a FatalError as one "error: ..." line, but an OSError as a traceback.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = int(listener.getsockname()[1])
        offers = (
            f'webhook_listen = "127.0.0.1:{port}"\n'
            'webhook_secret = "runtime-secret-0123456789abcdef"\n'
        )
        with pytest.raises(FatalError) as caught:
            _runtime(tmp_path, offers)

    assert str(caught.value) == (
        f"cannot listen on offers.webhook_listen = 127.0.0.1:{port}: Address already in use; "
        "choose a free port, or stop the process that uses it"
    )


def test_receiver_closed_when_daemon_start_fails(tmp_path: Path) -> None:
    # The offers receiver starts with the jobs. A later start-up step that fails must not
    # leave it listening, and writing to the ledger, after the daemon gives up its lock.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        busy = int(listener.getsockname()[1])
        ledger = tmp_path / "ledger.sqlite3"
        config = tmp_path / "yotposync.toml"
        config.write_text(
            BASE.format(ledger=ledger)
            + 'webhook_listen = "127.0.0.1:0"\n'
            + 'webhook_secret = "runtime-secret-0123456789abcdef"\n'
            + f'[ops]\nlisten = "127.0.0.1:{busy}"\n'
        )
        daemon = Daemon(load_settings(config, environ={}))
        with pytest.raises(FatalError, match=r"ops\.listen"):
            daemon.run()

    assert daemon.offers.server is None
