"""API clients for interactive commands: few retries and a short time budget.

The daemon's clients retry for minutes, which is right for a background job but leaves a
person at a terminal waiting. These fail within seconds with the reason.
"""

from __future__ import annotations

from yotposync.clients.heartland import HeartlandClient
from yotposync.clients.http import RetryPolicy
from yotposync.clients.yotpo import YotpoClient
from yotposync.config import Settings

COMMAND_RETRY = RetryPolicy(max_tries=2, max_seconds=10.0, max_wait_seconds=5.0)


def command_heartland(settings: Settings) -> HeartlandClient:
    heartland = settings.heartland
    return HeartlandClient(
        heartland.base_url,
        settings.heartland_token(),
        connect_timeout=heartland.connect_timeout_seconds,
        read_timeout=heartland.read_timeout_seconds,
        requests_per_second=heartland.requests_per_second,
        retry=COMMAND_RETRY,
    )


def command_yotpo(settings: Settings) -> YotpoClient:
    yotpo = settings.yotpo
    return YotpoClient(
        yotpo.base_url,
        settings.yotpo_guid(),
        settings.yotpo_api_key(),
        connect_timeout=yotpo.connect_timeout_seconds,
        read_timeout=yotpo.read_timeout_seconds,
        requests_per_second=yotpo.requests_per_second,
        retry=COMMAND_RETRY,
    )
