"""Health-check pings around each transactions run (`[ops] ping_url`).

The convention of Healthchecks.io and compatible services: GET `<url>/start` when a run
begins, `<url>` when it succeeds and `<url>/fail` when it fails. The service raises an alarm
when the success ping stops coming. A ping that fails is logged as a warning and changes
nothing else, because monitoring must never stop the sync.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import requests
import structlog

from yotposync import __version__

log = structlog.get_logger("yotposync.ping")

START = "start"
SUCCESS = "success"
FAIL = "fail"
_SUFFIXES = {START: "/start", SUCCESS: "", FAIL: "/fail"}


class Pinger:
    """Sends the three pings to one check URL. The URL is never logged, only its host,
    because its path identifies the check and anyone who has it can send pings."""

    def __init__(
        self, url: str, timeout_seconds: float, session: requests.Session | None = None
    ) -> None:
        self._url = url.rstrip("/")
        self._host = urlsplit(url).hostname or "?"
        self._timeout = timeout_seconds
        self._session = session if session is not None else requests.Session()
        self._failures = 0

    def start(self) -> bool:
        return self._ping(START)

    def success(self) -> bool:
        return self._ping(SUCCESS)

    def fail(self) -> bool:
        return self._ping(FAIL)

    def close(self) -> None:
        self._session.close()

    def _ping(self, signal: str) -> bool:
        """Send one ping; return whether the service accepted it with a 2xx status."""
        problem: str | None = None
        try:
            response = self._session.get(
                self._url + _SUFFIXES[signal],
                timeout=(self._timeout, self._timeout),
                headers={"User-Agent": f"yotposync/{__version__}"},
            )
        except requests.RequestException as exc:
            problem = type(exc).__name__
        else:
            response.close()
            if not 200 <= response.status_code < 300:
                problem = f"HTTP {response.status_code}"
        if problem is None:
            if self._failures:
                log.info("ping_recovered", host=self._host, failed_before=self._failures)
            self._failures = 0
            return True
        self._failures += 1
        log.warning(
            "ping_failed",
            host=self._host,
            signal=signal,
            error=problem,
            consecutive_failures=self._failures,
        )
        return False
