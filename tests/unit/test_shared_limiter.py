"""The daemon's clients of one API account share one rate limiter, whichever job built them."""

from __future__ import annotations

from pathlib import Path

from yotposync.app import heartland_client, yotpo_client
from yotposync.config import sandbox_settings

HEARTLAND = "http://127.0.0.1:1/api"
YOTPO = "http://127.0.0.1:1/api/v2"


def test_clients_of_one_account_share_limiter(tmp_path: Path) -> None:
    # Yotpo counts its 10 requests per second per account, so the customers, delivery and
    # refresh jobs, each with clients of their own, must draw from one budget.
    settings = sandbox_settings(HEARTLAND, YOTPO, tmp_path / "ledger.sqlite3")
    first, second = yotpo_client(settings), yotpo_client(settings)
    hl_first, hl_second = heartland_client(settings), heartland_client(settings)
    try:
        assert first.http._limiter is second.http._limiter
        assert hl_first.http._limiter is hl_second.http._limiter
        assert first.http._limiter is not hl_first.http._limiter
    finally:
        for client in (first, second, hl_first, hl_second):
            client.close()


def test_other_account_gets_its_own_limiter(tmp_path: Path) -> None:
    settings = sandbox_settings(HEARTLAND, YOTPO, tmp_path / "ledger.sqlite3")
    other = sandbox_settings(
        HEARTLAND, YOTPO, tmp_path / "other.sqlite3", yotpo={"guid": "another-account-guid"}
    )
    mine, theirs = yotpo_client(settings), yotpo_client(other)
    try:
        assert mine.http._limiter is not theirs.http._limiter
    finally:
        mine.close()
        theirs.close()
